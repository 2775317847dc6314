// Regression check between two result sets (`msabench compare BASE NEW`): cells are matched by
// dataset, memory size and backend spec. An accuracy aggregate that drops by more than its
// tolerance (absolute), a cell missing from NEW, or a timing whose ratio NEW/BASE - after
// dividing each side by the calibration probe measured in the same run - exceeds 1 + its
// tolerance is a regression.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace msabench {

struct Tolerances {
  double accuracy = 0.0;  // absolute drop allowed for every accuracy aggregate
  double timing = 0.25;   // allowed slowdown (0.25 = 25 %) of normalised timings
  std::map<std::string, double> per_metric;  // overrides by metric or timing name
  bool check_timing = true;
  double tolerance_for(const std::string& name, bool is_timing) const;
};

// Parses --tolerance items: "0.01" (accuracy), "accuracy=0.01", "timing=0.5", "recall@1=0.02",
// "mean_query_ms=1.0"; items may also be comma-separated. Throws Error on junk.
Tolerances parse_tolerances(const std::vector<std::string>& items);

struct ComparedResult {
  nlohmann::json result;
  std::string source;                 // file it came from
  std::optional<double> calibration_s;  // probe seconds of the run that produced it
};

// Result files or directories (searched recursively; suite.json and non-result JSON skipped).
// The calibration comes from the result's "calibration" field, else from a suite.json in the
// file's directory or its parent (a run directory's cells/ layout).
std::vector<ComparedResult> load_compared(const std::vector<std::string>& inputs);

struct CompareOutcome {
  int checks = 0, regressions = 0, improvements = 0;
  std::string text;  // the readable diff
  bool failed() const { return regressions > 0; }
};

// Timings checked (lower is better after normalisation): "mean_query_ms", and index time per
// token (from "index_tokens_per_s"). verbose: also list checks that did not change.
CompareOutcome compare_results(const std::vector<ComparedResult>& base, const std::vector<ComparedResult>& next,
                               const Tolerances& tol, bool verbose = false);

}  // namespace msabench
