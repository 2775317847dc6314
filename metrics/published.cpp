#include "metrics/published.h"

#include <cmath>

#include "core/text.h"

namespace msabench {

const std::vector<PublishedTable2Row>& published_table2() {
  static const std::vector<PublishedTable2Row> rows = {
      {"msmarco_v1", "MS MARCO v1", "7.34M", {2.893, 3.011, 3.005}, {2.934, 3.032, 3.017}, {2.676, 3.005, 3.019}, 4.141},
      {"nature_questions", "Natural Questions", "1.47M", {3.452, 3.374, 3.297}, {3.494, 3.408, 3.385}, {3.338, 3.389, 3.374}, 3.545},
      {"dureader", "DuReader", "277K", {3.726, 3.579, 3.594}, {3.848, 3.618, 3.607}, {2.941, 3.485, 3.415}, 4.155},
      {"triviaqa_10M", "TriviaQA (10M)", "10M", {4.133, 4.414, 4.273}, {4.313, 4.375, 4.391}, {4.188, 4.430, 4.367}, 4.621},
      {"hipporag_narrative", "NarrativeQA", "538K", {1.611, 2.567, 2.860}, {3.638, 3.492, 3.536}, {1.959, 2.628, 2.655}, 3.395},
      {"hipporag_popqa", "PopQA", "1.18M", {2.959, 3.273, 3.299}, {3.315, 3.264, 3.266}, {3.111, 3.249, 3.249}, 3.433},
      {"2wikimultihopqa", "2WikiMultiHopQA", "722K", {1.065, 3.055, 3.136}, {1.187, 3.057, 3.159}, {1.045, 3.180, 3.330}, 4.280},
      {"hotpotqa", "HotpotQA", "1.35M", {2.252, 3.582, 3.787}, {2.642, 3.990, 4.022}, {3.230, 3.770, 3.970}, 4.061},
      {"musique", "MuSiQue", "1.41M", {0.936, 1.752, 1.928}, {1.144, 1.960, 1.965}, {1.020, 1.907, 2.095}, 2.211},
  };
  return rows;
}

const PublishedTable2Row* published_table2_row(const std::string& dataset) {
  for (const auto& r : published_table2())
    if (r.dataset == dataset) return &r;
  return nullptr;
}

namespace {

// Builds a curve from the paper's size labels; NAN marks "curve ended" (no point), negative
// values mark approximate readings (stored positive with approximate = true).
PublishedCurve curve(const std::string& model, const std::vector<const char*>& sizes, const std::vector<double>& v) {
  PublishedCurve c{model, {}};
  for (size_t i = 0; i < sizes.size() && i < v.size(); ++i) {
    if (std::isnan(v[i])) continue;
    c.points.push_back({parse_token_count(sizes[i]), std::fabs(v[i]), v[i] < 0});
  }
  return c;
}

}  // namespace

const std::vector<PublishedCurve>& published_figure4() {
  static const std::vector<const char*> s = {"32K", "64K", "128K", "256K", "512K", "1M"};
  static const std::vector<PublishedCurve> curves = {
      curve("Qwen3-4B-Instruct (backbone)", s, {0.95, 1.00, 0.99, 0.48, 0.42, 0.25}),
      curve("Qwen2.5-14B-1M", s, {1.00, 0.99, 0.97, 0.90, 0.68, 0.53}),
      curve("Qwen3-30B-A3B", s, {0.99, 0.99, 0.79, 0.81, 0.78, 0.80}),
      curve("Qwen3-Next-80B-A3B", s, {1.00, 1.00, 1.00, 0.97, 0.88, 0.81}),
      curve("RL-MemoryAgent-14B", s, {0.98, 0.98, 0.97, 0.95, 0.95, 0.93}),
      curve("MSA", s, {0.99, 0.98, 0.98, 0.98, 0.97, 0.95}),
  };
  return curves;
}

const std::vector<PublishedCurve>& published_figure1() {
  static const std::vector<const char*> s = {"16K", "32K", "64K", "128K", "256K", "512K",
                                             "1M",  "10M", "30M", "50M",  "100M"};
  const double x = NAN;
  static const std::vector<PublishedCurve> curves = {
      curve("MSA-4B", s, {4.02, 3.96, 4.02, 3.99, 4.05, 4.03, 3.98, 3.91, 3.80, 3.79, 3.67}),
      curve("Qwen3-4B-Instruct-2507", s, {3.26, 3.25, 3.18, 2.84, 2.33, 1.44, 1.20, x, x, x, x}),
      curve("Qwen2.5-14B-Instruct-1M", s, {3.21, 3.18, 2.97, 2.97, -3.01, 2.55, 2.35, x, x, x, x}),
      curve("Qwen3-Next-80B-A3B-Instruct", s, {3.52, -3.41, -3.46, 3.36, 3.16, 3.04, 2.72, x, x, x, x}),
      curve("Qwen3-30B-A3B-Instruct-2507", s, {-3.45, 3.40, 3.31, 3.15, 2.90, 2.88, 2.80, x, x, x, x}),
      curve("MemAgent-14B", s, {3.15, 3.13, 3.14, 3.07, 2.86, 2.95, 2.92, x, x, x, x}),
      curve("QwenLong-L1.5-30B-A3B", s, {3.45, 3.44, 3.46, 3.30, 3.01, x, x, x, x, x, x}),
      curve("DeepSeek-V3.2", s, {3.70, -3.60, 3.52, 3.20, x, x, x, x, x, x, x}),
      curve("GPT-4.1", s, {3.60, 3.60, 3.59, 3.59, 3.39, 3.34, x, x, x, x, x}),
  };
  return curves;
}

}  // namespace msabench
