#include "metrics/stats.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

using nlohmann::json;

namespace msabench {

namespace {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by multiply-shift (bias < n / 2^64, negligible for query counts).
  size_t below(size_t n) {
    return static_cast<size_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

 private:
  uint64_t s_;
};

void check_options(const BootstrapOptions& opt) {
  if (opt.resamples < 1) throw Error("bootstrap: resamples must be at least 1");
  if (!(opt.level > 0 && opt.level < 1)) throw Error("bootstrap: level must be in (0, 1)");
}

// Linear interpolation between order statistics (type 7 quantile).
double quantile_sorted(const std::vector<double>& s, double q) {
  const double pos = q * static_cast<double>(s.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  if (i + 1 >= s.size()) return s.back();
  const double f = pos - static_cast<double>(i);
  return s[i] + f * (s[i + 1] - s[i]);
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

}  // namespace

std::optional<ConfidenceInterval> bootstrap_ci(const std::vector<double>& values, const BootstrapOptions& opt) {
  if (values.empty()) return std::nullopt;
  return bootstrap_ci_groups({values}, opt);
}

std::optional<ConfidenceInterval> bootstrap_ci_groups(const std::vector<std::vector<double>>& groups,
                                                      const BootstrapOptions& opt) {
  check_options(opt);
  std::vector<const std::vector<double>*> g;
  size_t n = 0;
  for (const auto& v : groups)
    if (!v.empty()) {
      g.push_back(&v);
      n += v.size();
    }
  if (g.empty()) return std::nullopt;
  ConfidenceInterval ci;
  ci.n = n;
  double total = 0;
  for (const auto* v : g) total += mean_of(*v);
  ci.mean = total / static_cast<double>(g.size());

  SplitMix64 rng(opt.seed);
  std::vector<double> stats(static_cast<size_t>(opt.resamples));
  for (auto& st : stats) {
    double sum_means = 0;
    for (const auto* v : g) {
      double s = 0;
      for (size_t i = 0; i < v->size(); ++i) s += (*v)[rng.below(v->size())];
      sum_means += s / static_cast<double>(v->size());
    }
    st = sum_means / static_cast<double>(g.size());
  }
  std::sort(stats.begin(), stats.end());
  const double alpha = 1 - opt.level;
  ci.low = quantile_sorted(stats, alpha / 2);
  ci.high = quantile_sorted(stats, 1 - alpha / 2);
  return ci;
}

std::optional<PairedComparison> paired_bootstrap(const std::vector<double>& a, const std::vector<double>& b,
                                                 const BootstrapOptions& opt) {
  check_options(opt);
  if (a.size() != b.size())
    throw Error("paired bootstrap: the two systems have " + std::to_string(a.size()) + " and " +
                std::to_string(b.size()) + " scores; they must score the same queries");
  if (a.empty()) return std::nullopt;
  const size_t n = a.size();
  PairedComparison pc;
  pc.n = n;
  pc.mean_a = mean_of(a);
  pc.mean_b = mean_of(b);
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = b[i] - a[i];
  pc.diff = mean_of(d);

  SplitMix64 rng(opt.seed);
  std::vector<double> stats(static_cast<size_t>(opt.resamples));
  size_t extreme = 0;
  // Differences within rounding of the observed one count as "as extreme" (ties in 0/1 data).
  const double eps = 1e-12 * std::max(1.0, std::fabs(pc.diff));
  for (auto& st : stats) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += d[rng.below(n)];
    st = s / static_cast<double>(n);
    if (std::fabs(st - pc.diff) + eps >= std::fabs(pc.diff)) ++extreme;
  }
  std::sort(stats.begin(), stats.end());
  const double alpha = 1 - opt.level;
  pc.diff_low = quantile_sorted(stats, alpha / 2);
  pc.diff_high = quantile_sorted(stats, 1 - alpha / 2);
  pc.p_value = static_cast<double>(extreme + 1) / static_cast<double>(opt.resamples + 1);
  if (pc.diff == 0) pc.p_value = 1;
  return pc;
}

std::map<std::string, double> metric_values(const json& result, const std::string& metric) {
  std::map<std::string, double> out;
  if (!result.contains("records") || !result["records"].is_array()) return out;
  for (const auto& r : result["records"]) {
    if (!r.contains("metrics") || !r["metrics"].is_object()) continue;
    auto it = r["metrics"].find(metric);
    if (it == r["metrics"].end() || !it->is_number()) continue;
    auto id = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
    const std::string key = (r.contains("corpus_id") ? id(r["corpus_id"]) : std::string()) + "/" +
                            (r.contains("query_id") ? id(r["query_id"]) : std::string());
    out[key] = it->get<double>();
  }
  return out;
}

std::optional<PairedComparison> paired_bootstrap_results(const json& a, const json& b, const std::string& metric,
                                                         const BootstrapOptions& opt) {
  const auto va = metric_values(a, metric), vb = metric_values(b, metric);
  std::vector<double> xa, xb;
  for (const auto& [k, v] : va) {
    auto it = vb.find(k);
    if (it == vb.end()) continue;
    xa.push_back(v);
    xb.push_back(it->second);
  }
  return paired_bootstrap(xa, xb, opt);
}

json confidence_intervals(const json& result, const BootstrapOptions& opt) {
  json metrics = json::object();
  if (result.contains("aggregates") && result["aggregates"].is_object()) {
    for (const auto& [name, v] : result["aggregates"].items()) {
      std::vector<double> xs;
      for (const auto& [k, x] : metric_values(result, name)) xs.push_back(x);
      auto ci = bootstrap_ci(xs, opt);
      metrics[name] = ci ? json{{"low", ci->low}, {"high", ci->high}, {"n", ci->n}} : json(nullptr);
    }
  }
  return json{{"method", "percentile bootstrap over queries"},
              {"level", opt.level},
              {"resamples", opt.resamples},
              {"seed", opt.seed},
              {"metrics", metrics}};
}

void add_confidence_intervals(json& result, const BootstrapOptions& opt) {
  result["aggregates_ci"] = confidence_intervals(result, opt);
}

}  // namespace msabench
