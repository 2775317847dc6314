#include "metrics/report.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "core/result.h"
#include "core/text.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

// Metrics shown, in order; a metric is shown for a dataset only if some result has a value.
const std::vector<std::pair<std::string, std::string>> kAccuracy = {
    {"recall@1", "retrieval recall@1"},
    {"recall@5", "retrieval recall@5"},
    {"recall@10", "retrieval recall@10"},
    {"mrr@10", "MRR@10"},
    {"ruler_string_match_all", "RULER string match (all)"},
    {"exact_match", "exact match"},
    {"token_f1", "token F1"}};

struct Cell {
  const json* r;
};

std::string fmt(const json& v, int digits = 3) {
  if (v.is_null()) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v.get<double>());
  return buf;
}

std::string fmt_rate(const json& v) {
  if (v.is_null()) return "–";
  double x = v.get<double>();
  char buf[64];
  if (x >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", x / 1e6);
  else if (x >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK", x / 1e3);
  else std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

// dataset -> backend -> size -> result (last one wins if repeated)
using Grid = std::map<std::string, std::map<std::string, std::map<int64_t, const json*>>>;

Grid make_grid(const std::vector<json>& results, std::map<std::string, std::set<int64_t>>& sizes) {
  Grid g;
  for (const auto& r : results) {
    const std::string ds = r["dataset"]["name"].get<std::string>();
    const int64_t size = r["dataset"]["memory_tokens"].get<int64_t>();
    g[ds][r["backend"]["spec"].get<std::string>()][size] = &r;
    sizes[ds].insert(size);
  }
  return g;
}

bool has_metric(const std::map<std::string, std::map<int64_t, const json*>>& rows, const std::string& m) {
  for (const auto& [b, cells] : rows)
    for (const auto& [s, r] : cells)
      if (r->at("aggregates").contains(m) && !r->at("aggregates")[m].is_null()) return true;
  return false;
}

json agg(const json* r, const std::string& m) {
  if (!r || !r->at("aggregates").contains(m)) return nullptr;
  return r->at("aggregates")[m];
}

}  // namespace

std::vector<json> load_results(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    if (fs::is_directory(in)) {
      for (const auto& e : fs::recursive_directory_iterator(in))
        if (e.is_regular_file() && e.path().extension() == ".json" && e.path().filename() != "suite.json")
          files.push_back(e.path().string());
    } else if (fs::exists(in)) {
      files.push_back(in);
    } else {
      throw Error(in + ": no such result file or directory");
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<json> out;
  for (const auto& f : files) {
    json j;
    try {
      j = json::parse(read_file(f));
    } catch (const json::parse_error& e) {
      throw Error(f + ": invalid JSON (" + e.what() + ")");
    }
    if (j.is_object() && j.contains("schema") && j["schema"].is_string() &&
        j["schema"].get<std::string>().rfind("msabench.result/", 0) != 0)
      continue;  // some other JSON (e.g. a dataset meta.json) inside a searched directory
    validate_result(j, f);
    out.push_back(std::move(j));
  }
  if (out.empty()) throw Error("no result files found in the given paths");
  return out;
}

std::string report_markdown(const std::vector<json>& results) {
  std::map<std::string, std::set<int64_t>> sizes;
  Grid g = make_grid(results, sizes);
  std::ostringstream md;
  md << "# MSA-Bench report\n\n";
  std::set<std::string> machines, tokenizers, commits;
  for (const auto& r : results) {
    if (r.contains("machine")) {
      const auto& m = r["machine"];
      machines.insert(m.value("cpu", std::string("?")) + ", " + std::to_string(m.value("logical_cores", 0)) +
                      " logical cores, " + m.value("os", std::string("?")));
    }
    tokenizers.insert(r["dataset"].value("tokenizer", std::string("?")));
    if (r.contains("git") && r["git"]["commit"].is_string())
      commits.insert(r["git"]["commit"].get<std::string>().substr(0, 12) +
                     (r["git"].value("dirty", false) ? "+dirty" : ""));
  }
  auto join = [](const std::set<std::string>& s) {
    std::string o;
    for (const auto& x : s) o += (o.empty() ? "" : "; ") + x;
    return o;
  };
  md << "- results: " << results.size() << " cells\n- machine: " << join(machines)
     << "\n- memory sizes counted in: " << join(tokenizers) << " tokens\n- git: " << join(commits) << "\n\n";

  for (const auto& [ds, rows] : g) {
    const auto& cols = sizes[ds];
    auto header = [&](const std::string& first) {
      md << "| " << first << " |";
      for (int64_t s : cols) md << " " << format_token_count(s) << " |";
      md << "\n|---|";
      for (size_t i = 0; i < cols.size(); ++i) md << "---:|";
      md << "\n";
    };
    md << "## " << ds << "\n\n";
    for (const auto& [metric, title] : kAccuracy) {
      if (!has_metric(rows, metric)) continue;
      md << "**" << title << "**\n\n";
      header("backend");
      for (const auto& [b, cells] : rows) {
        md << "| `" << b << "` |";
        for (int64_t s : cols) {
          auto it = cells.find(s);
          md << " " << fmt(agg(it == cells.end() ? nullptr : it->second, metric)) << " |";
        }
        md << "\n";
      }
      md << "\n";
    }
    md << "**throughput and memory** (index tokens/s · queries/s · peak RSS MiB · queries)\n\n";
    header("backend");
    for (const auto& [b, cells] : rows) {
      md << "| `" << b << "` |";
      for (int64_t s : cols) {
        auto it = cells.find(s);
        if (it == cells.end()) {
          md << " – |";
          continue;
        }
        const json& r = *it->second;
        char rss[32];
        std::snprintf(rss, sizeof rss, "%.0f", r["memory"].value("peak_rss_bytes", int64_t{0}) / 1048576.0);
        md << " " << fmt_rate(r["timings"]["index_tokens_per_s"]) << " · " << fmt_rate(r["timings"]["queries_per_s"])
           << " · " << rss << " · " << r["dataset"].value("queries", 0) << " |";
      }
      md << "\n";
    }
    md << "\n";
  }
  return md.str();
}

std::string report_csv(const std::vector<json>& results) {
  std::map<std::string, std::set<int64_t>> sizes;
  Grid g = make_grid(results, sizes);
  std::ostringstream csv;
  csv << "dataset,backend,metric,memory_tokens,value\n";
  std::vector<std::string> extra = {"index_tokens_per_s", "queries_per_s"};
  for (const auto& [ds, rows] : g)
    for (const auto& [b, cells] : rows)
      for (const auto& [s, r] : cells) {
        std::string bq = "\"" + b + "\"";  // specs contain commas
        for (const auto& [metric, title] : kAccuracy) {
          json v = agg(r, metric);
          if (!v.is_null()) csv << ds << "," << bq << "," << metric << "," << s << "," << v.get<double>() << "\n";
        }
        for (const auto& t : extra)
          if (!r->at("timings")[t].is_null())
            csv << ds << "," << bq << "," << t << "," << s << "," << r->at("timings")[t].get<double>() << "\n";
        csv << ds << "," << bq << ",peak_rss_bytes," << s << "," << r->at("memory").value("peak_rss_bytes", int64_t{0})
            << "\n";
      }
  return csv.str();
}

ReportFiles write_report(const std::vector<json>& results, const std::string& out_dir, bool plot) {
  ReportFiles f;
  f.markdown = (fs::path(out_dir) / "report.md").string();
  f.csv = (fs::path(out_dir) / "report.csv").string();
  write_file_atomic(f.markdown, report_markdown(results));
  write_file_atomic(f.csv, report_csv(results));
  if (plot) {
    const std::string script = std::string(MSABENCH_SOURCE_DIR) + "/scripts/plot_results.py";
    const std::string png = (fs::path(out_dir) / "report.png").string();
    const std::string tmp = png + ".tmp.png";
    // Debian's interpreter has python3-matplotlib; a user's pyenv/venv python3 may not.
    const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    std::string cmd = python + " '" + script + "' '" + f.csv + "' '" + tmp + "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    if (p) {
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
    }
    int rc = p ? ::pclose(p) : -1;
    if (rc == 0 && fs::exists(tmp)) {
      fs::rename(tmp, png);
      f.png = png;
    } else {
      std::error_code ec;
      fs::remove(tmp, ec);
      std::fprintf(stderr, "warning: plot not written (%s): %s\n", script.c_str(), out.c_str());
    }
  }
  return f;
}

}  // namespace msabench
