#include "metrics/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "core/result.h"
#include "core/text.h"
#include "metrics/report.h"
#include "metrics/stats.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

double Tolerances::tolerance_for(const std::string& name, bool is_timing) const {
  auto it = per_metric.find(name);
  if (it != per_metric.end()) return it->second;
  return is_timing ? timing : accuracy;
}

Tolerances parse_tolerances(const std::vector<std::string>& items) {
  Tolerances t;
  auto number = [](const std::string& s, const std::string& item) {
    size_t idx = 0;
    double v = 0;
    try {
      v = std::stod(s, &idx);
    } catch (const std::exception&) {
      idx = 0;
    }
    if (idx == 0 || idx != s.size() || !(v >= 0) || !std::isfinite(v))
      throw Error("--tolerance '" + item + "': '" + s + "' is not a non-negative number");
    return v;
  };
  for (const auto& raw : items) {
    std::stringstream ss(raw);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item.empty()) continue;
      const auto eq = item.find('=');
      if (eq == std::string::npos) {
        t.accuracy = number(item, item);
        continue;
      }
      const std::string key = item.substr(0, eq);
      const double v = number(item.substr(eq + 1), item);
      if (key.empty()) throw Error("--tolerance '" + item + "': missing name before '='");
      if (key == "accuracy") t.accuracy = v;
      else if (key == "timing") t.timing = v;
      else t.per_metric[key] = v;
    }
  }
  return t;
}

namespace {

std::optional<double> calibration_of(const json& j) {
  if (j.is_object() && j.contains("calibration") && j["calibration"].is_object() &&
      j["calibration"].contains("seconds") && j["calibration"]["seconds"].is_number()) {
    const double s = j["calibration"]["seconds"].get<double>();
    if (s > 0) return s;
  }
  return std::nullopt;
}

std::optional<double> suite_calibration(const fs::path& file) {
  const fs::path dir = file.parent_path();
  for (const fs::path& d : {dir, dir.parent_path()}) {  // the cell's directory, then the run directory
    const fs::path suite = d / "suite.json";
    if (d.empty() || !fs::exists(suite)) continue;
    try {
      return calibration_of(json::parse(read_file(suite.string())));
    } catch (const json::exception& e) {
      throw Error(suite.string() + ": invalid JSON (" + e.what() + ")");
    }
  }
  return std::nullopt;
}

std::string cell_key(const json& r) {
  return r.at("dataset").at("name").get<std::string>() + " @ " +
         format_token_count(r.at("dataset").at("memory_tokens").get<int64_t>()) + "  " +
         r.at("backend").at("spec").get<std::string>();
}

std::string num(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string signed_num(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.*f", digits, v);
  return buf;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

struct Timing {
  const char* name;
  const char* unit;
  bool higher_is_better;
};
const Timing kTimings[] = {{"mean_query_ms", "ms", false}, {"index_tokens_per_s", "tokens/s", true}};

}  // namespace

std::vector<ComparedResult> load_compared(const std::vector<std::string>& inputs) {
  std::vector<ComparedResult> out;
  for (auto& [f, j] : load_result_files(inputs)) {
    ComparedResult c;
    c.calibration_s = calibration_of(j);
    if (!c.calibration_s) c.calibration_s = suite_calibration(fs::path(f));
    c.result = std::move(j);
    c.source = f;
    out.push_back(std::move(c));
  }
  return out;
}

CompareOutcome compare_results(const std::vector<ComparedResult>& base, const std::vector<ComparedResult>& next,
                               const Tolerances& tol, bool verbose) {
  auto index = [](const std::vector<ComparedResult>& v, const char* side) {
    std::map<std::string, const ComparedResult*> m;
    for (const auto& c : v) {
      const std::string k = cell_key(c.result);
      auto [it, fresh] = m.emplace(k, &c);
      if (!fresh)
        throw Error(std::string(side) + " has two results for the cell " + k + ": " + it->second->source + " and " +
                    c.source);
    }
    return m;
  };
  const auto b = index(base, "BASE"), n = index(next, "NEW");
  CompareOutcome out;
  std::ostringstream txt;
  int cells_regressed = 0;
  std::vector<std::string> missing_cal;

  for (const auto& [key, bc] : b) {
    std::vector<std::string> lines;
    int cell_regressions = 0;
    auto line = [&](const std::string& status, const std::string& name, const std::string& rest) {
      lines.push_back("  " + pad(status, 11) + pad(name, 24) + rest);
    };
    auto it = n.find(key);
    ++out.checks;
    if (it == n.end()) {
      ++out.regressions;
      ++cells_regressed;
      txt << key << "\n  REGRESSION  cell missing from NEW (BASE: " << bc->source << ")\n";
      continue;
    }
    const json& br = bc->result;
    const json& nr = it->second->result;

    // accuracy
    std::set<std::string> names;
    for (const auto& [m, v] : br["aggregates"].items()) names.insert(m);
    for (const auto& [m, v] : nr["aggregates"].items()) names.insert(m);
    for (const auto& m : names) {
      const json bv = br["aggregates"].contains(m) ? br["aggregates"][m] : json(nullptr);
      const json nv = nr["aggregates"].contains(m) ? nr["aggregates"][m] : json(nullptr);
      if (bv.is_null() && nv.is_null()) continue;
      ++out.checks;
      if (bv.is_null()) {
        line("new", m, "– -> " + num(nv.get<double>()));
        continue;
      }
      if (nv.is_null()) {
        ++cell_regressions;
        line("REGRESSION", m, num(bv.get<double>()) + " -> –  (no longer measured)");
        continue;
      }
      const double x = bv.get<double>(), y = nv.get<double>(), t = tol.tolerance_for(m, false);
      const double d = y - x;
      std::string rest = num(x) + " -> " + num(y) + "  (" + signed_num(d);
      if (auto pc = paired_bootstrap_results(br, nr, m); pc && d != 0)
        rest += "; paired bootstrap p=" + num(pc->p_value) + ", 95% CI [" + signed_num(pc->diff_low) + ", " +
                signed_num(pc->diff_high) + "], n=" + std::to_string(pc->n);
      if (-d > t + 1e-12) {
        ++cell_regressions;
        line("REGRESSION", m, rest + "; drop exceeds tolerance " + num(t) + ")");
      } else if (d > 1e-12) {
        ++out.improvements;
        line("improved", m, rest + ")");
      } else if (d < 0) {
        line("ok", m, rest + "; within tolerance " + num(t) + ")");
      } else if (verbose) {
        line("ok", m, num(x) + " (unchanged)");
      }
    }

    // timings, normalised by each run's calibration probe
    if (tol.check_timing) {
      const auto bcal = bc->calibration_s, ncal = it->second->calibration_s;
      if (!bcal || !ncal) {
        missing_cal.push_back(key + (!bcal ? " (BASE " + bc->source + ")" : " (NEW " + it->second->source + ")"));
      } else {
        for (const auto& tm : kTimings) {
          const json& bt = br["timings"].contains(tm.name) ? br["timings"][tm.name] : json(nullptr);
          const json& nt = nr["timings"].contains(tm.name) ? nr["timings"][tm.name] : json(nullptr);
          if (!bt.is_number() || !nt.is_number() || bt.get<double>() <= 0 || nt.get<double>() <= 0) continue;
          ++out.checks;
          const double x = bt.get<double>(), y = nt.get<double>();
          // slowdown > 1 means NEW is slower per unit of machine speed
          const double ratio = tm.higher_is_better ? (x * *bcal) / (y * *ncal) : (y / *ncal) / (x / *bcal);
          const double t = tol.tolerance_for(tm.name, true);
          const std::string rest = num(x, 4) + " -> " + num(y, 4) + " " + tm.unit + ", normalised slowdown " +
                                   num(ratio, 3) + "x (calibration " + num(*bcal, 4) + " s -> " + num(*ncal, 4) + " s)";
          if (ratio > 1 + t + 1e-12) {
            ++cell_regressions;
            line("REGRESSION", tm.name, rest + ", tolerance " + num(t, 2) + " (max " + num(1 + t, 2) + "x)");
          } else if (verbose) {
            line("ok", tm.name, rest);
          }
        }
      }
    }
    out.regressions += cell_regressions;
    if (cell_regressions) ++cells_regressed;
    if (!lines.empty()) {
      txt << key << "\n";
      for (const auto& l : lines) txt << l << "\n";
    }
  }
  for (const auto& [key, nc] : n)
    if (!b.count(key)) txt << key << "\n  " << pad("new", 11) << "cell only in NEW (" << nc->source << ")\n";
  if (!missing_cal.empty()) {
    txt << "timings not checked for " << missing_cal.size() << " cell(s): no calibration probe recorded";
    txt << " (first: " << missing_cal.front() << ")\n";
  }

  std::ostringstream head;
  head << "compare: BASE " << base.size() << " cells, NEW " << next.size() << " cells; accuracy tolerance "
       << num(tol.accuracy) << " (absolute drop)";
  if (tol.check_timing) head << ", timing tolerance " << num(100 * tol.timing, 0) << "% (normalised by calibration probe)";
  else head << ", timings not checked";
  for (const auto& [k, v] : tol.per_metric) head << ", " << k << "=" << num(v);
  head << "\n";
  std::ostringstream tail;
  if (out.failed())
    tail << "FAIL: " << out.regressions << " regression(s) in " << cells_regressed << " cell(s) (" << out.checks
         << " checks)\n";
  else
    tail << "OK: " << out.checks << " checks, no regression" << (out.improvements ? ", " + std::to_string(out.improvements) + " improved" : "")
         << "\n";
  out.text = head.str() + txt.str() + tail.str();
  return out;
}

}  // namespace msabench
