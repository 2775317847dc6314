// Bootstrap statistics over per-query scores: percentile confidence intervals for a mean, and
// paired bootstrap tests between two backends answering the same queries. Resampling uses its
// own generator (splitmix64 + multiply-shift), so results are identical on every platform and
// standard library for a given seed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace msabench {

struct BootstrapOptions {
  int resamples = 2000;
  double level = 0.95;      // two-sided coverage of the interval
  uint64_t seed = 20260101;
};

struct ConfidenceInterval {
  double mean = 0, low = 0, high = 0;
  size_t n = 0;  // queries (summed over groups)
};

// Percentile bootstrap CI of the mean, resampling values with replacement. Empty input: nullopt.
std::optional<ConfidenceInterval> bootstrap_ci(const std::vector<double>& values, const BootstrapOptions& opt = {});

// CI of the mean of group means (e.g. accuracy averaged over NIAH tasks): resamples within
// each group (stratified), so unequal group sizes keep their weight. Empty groups are ignored.
std::optional<ConfidenceInterval> bootstrap_ci_groups(const std::vector<std::vector<double>>& groups,
                                                      const BootstrapOptions& opt = {});

struct PairedComparison {
  size_t n = 0;                        // paired queries
  double mean_a = 0, mean_b = 0;
  double diff = 0;                     // mean_b - mean_a
  double diff_low = 0, diff_high = 0;  // percentile CI of diff
  double p_value = 1;                  // two-sided, H0: no difference
};

// Paired bootstrap: resamples query indices, applying the same draw to both systems. The
// p-value counts resampled differences at least as far from the observed one as the observed
// one is from 0 (the null distribution is the bootstrap distribution shifted to 0), with the
// usual +1 correction so it is never exactly 0. Sizes must match; throws Error otherwise.
std::optional<PairedComparison> paired_bootstrap(const std::vector<double>& a, const std::vector<double>& b,
                                                 const BootstrapOptions& opt = {});

// Per-query values of `metric` in a result document (records[].metrics), keyed by
// "corpus_id/query_id". Records without the metric are left out, as in the aggregates.
std::map<std::string, double> metric_values(const nlohmann::json& result, const std::string& metric);

// Paired values of two results on the queries both answered with `metric`.
std::optional<PairedComparison> paired_bootstrap_results(const nlohmann::json& a, const nlohmann::json& b,
                                                         const std::string& metric,
                                                         const BootstrapOptions& opt = {});

// {"method": ..., "level", "resamples", "seed", "metrics": {name: {"low", "high", "n"}|null}}
// for every key of result["aggregates"]; computed from the records.
nlohmann::json confidence_intervals(const nlohmann::json& result, const BootstrapOptions& opt = {});
// Stores confidence_intervals(result) as result["aggregates_ci"] (for the harness).
void add_confidence_intervals(nlohmann::json& result, const BootstrapOptions& opt = {});

}  // namespace msabench
