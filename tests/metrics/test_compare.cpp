#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/io.h"
#include "metrics/compare.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace msabench;

namespace {

// A result with n queries of which `hits` have recall@1 = 1.
json cell(const std::string& ds, int64_t size, int n, int hits, double query_ms = 10, double index_tps = 1e6) {
  json recs = json::array();
  for (int i = 0; i < n; ++i)
    recs.push_back({{"query_id", "q" + std::to_string(i)},
                    {"corpus_id", "c" + std::to_string(i)},
                    {"metrics", {{"recall@1", i < hits ? 1.0 : 0.0}, {"recall@10", 1.0}}}});
  return {{"schema", "msabench.result/1"},
          {"backend", {{"spec", "bm25:b=0.4,k1=0.9"}, {"generates_answers", false}}},
          {"dataset", {{"name", ds}, {"memory_tokens", size}, {"queries", n}}},
          {"aggregates", {{"recall@1", static_cast<double>(hits) / n}, {"recall@10", 1.0}, {"token_f1", nullptr}}},
          {"timings", {{"mean_query_ms", query_ms}, {"index_tokens_per_s", index_tps}}},
          {"records", recs}};
}

ComparedResult cr(json j, std::optional<double> cal = 1.0) { return {std::move(j), "mem.json", cal}; }

}  // namespace

TEST(Compare, IdenticalResultsPass) {
  std::vector<ComparedResult> a = {cr(cell("niah_single_1", 4096, 20, 18)), cr(cell("niah_single_1", 16384, 20, 17))};
  auto out = compare_results(a, a, Tolerances{});
  EXPECT_FALSE(out.failed()) << out.text;
  EXPECT_NE(out.text.find("OK:"), std::string::npos);
}

TEST(Compare, InjectedAccuracyDropFailsWithReadableDiff) {
  std::vector<ComparedResult> base = {cr(cell("niah_single_1", 4096, 20, 18))};
  std::vector<ComparedResult> next = {cr(cell("niah_single_1", 4096, 20, 12))};
  auto out = compare_results(base, next, Tolerances{});
  EXPECT_TRUE(out.failed());
  EXPECT_EQ(out.regressions, 1);
  EXPECT_NE(out.text.find("niah_single_1 @ 4K  bm25:b=0.4,k1=0.9"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("REGRESSION"), std::string::npos);
  EXPECT_NE(out.text.find("recall@1"), std::string::npos);
  EXPECT_NE(out.text.find("0.900 -> 0.600"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("paired bootstrap p="), std::string::npos);
  EXPECT_NE(out.text.find("FAIL: 1 regression"), std::string::npos);
  // the same drop within tolerance passes; a per-metric override wins over the default
  EXPECT_FALSE(compare_results(base, next, parse_tolerances({"0.35"})).failed());
  EXPECT_TRUE(compare_results(base, next, parse_tolerances({"0.35", "recall@1=0.1"})).failed());
  // an improvement is never a regression
  auto up = compare_results(next, base, Tolerances{});
  EXPECT_FALSE(up.failed());
  EXPECT_EQ(up.improvements, 1);
}

TEST(Compare, MissingCellOrMetricFails) {
  std::vector<ComparedResult> base = {cr(cell("a", 4096, 10, 5)), cr(cell("b", 4096, 10, 5))};
  std::vector<ComparedResult> next = {cr(cell("a", 4096, 10, 5))};
  auto out = compare_results(base, next, Tolerances{});
  EXPECT_TRUE(out.failed());
  EXPECT_NE(out.text.find("cell missing from NEW"), std::string::npos);
  json lost = cell("a", 4096, 10, 5);
  lost["aggregates"]["recall@10"] = nullptr;
  auto out2 = compare_results({cr(cell("a", 4096, 10, 5))}, {cr(lost)}, Tolerances{});
  EXPECT_TRUE(out2.failed());
  EXPECT_NE(out2.text.find("no longer measured"), std::string::npos);
}

TEST(Compare, TimingsAreNormalisedByCalibration) {
  std::vector<ComparedResult> base = {cr(cell("a", 4096, 10, 5, 10.0, 1e6), 1.0)};
  // machine twice as slow (calibration 2 s) and the query twice as slow: no regression
  EXPECT_FALSE(compare_results(base, {cr(cell("a", 4096, 10, 5, 20.0, 0.5e6), 2.0)}, Tolerances{}).failed());
  // same machine speed, queries 50% slower: beyond the default 25%
  auto slow = compare_results(base, {cr(cell("a", 4096, 10, 5, 15.0, 1e6), 1.0)}, Tolerances{});
  EXPECT_TRUE(slow.failed());
  EXPECT_NE(slow.text.find("mean_query_ms"), std::string::npos) << slow.text;
  EXPECT_NE(slow.text.find("normalised slowdown 1.500x"), std::string::npos) << slow.text;
  EXPECT_FALSE(compare_results(base, {cr(cell("a", 4096, 10, 5, 15.0, 1e6), 1.0)}, parse_tolerances({"timing=0.6"}))
                   .failed());
  // indexing throughput halves on the same machine: regression (higher is better)
  auto idx = compare_results(base, {cr(cell("a", 4096, 10, 5, 10.0, 0.5e6), 1.0)}, Tolerances{});
  EXPECT_TRUE(idx.failed());
  EXPECT_NE(idx.text.find("index_tokens_per_s"), std::string::npos);
  // without a calibration on one side, timings are reported as not checked
  auto nocal = compare_results(base, {cr(cell("a", 4096, 10, 5, 100.0, 1e6), std::nullopt)}, Tolerances{});
  EXPECT_FALSE(nocal.failed());
  EXPECT_NE(nocal.text.find("timings not checked"), std::string::npos);
  Tolerances off;
  off.check_timing = false;
  EXPECT_FALSE(compare_results(base, {cr(cell("a", 4096, 10, 5, 15.0, 1e6), 1.0)}, off).failed());
}

TEST(Compare, ParseTolerances) {
  auto t = parse_tolerances({"0.01", "timing=0.5,recall@1=0.2"});
  EXPECT_DOUBLE_EQ(t.accuracy, 0.01);
  EXPECT_DOUBLE_EQ(t.timing, 0.5);
  EXPECT_DOUBLE_EQ(t.tolerance_for("recall@1", false), 0.2);
  EXPECT_DOUBLE_EQ(t.tolerance_for("mrr@10", false), 0.01);
  EXPECT_DOUBLE_EQ(t.tolerance_for("mean_query_ms", true), 0.5);
  try {
    parse_tolerances({"recall@1=abc"});
    FAIL() << "junk accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("recall@1=abc"), std::string::npos);
  }
  EXPECT_THROW(parse_tolerances({"-1"}), Error);
  EXPECT_THROW(parse_tolerances({"=0.1"}), Error);
}

TEST(Compare, LoadsCalibrationFromSuiteJsonAndRejectsDuplicates) {
  const fs::path dir = fs::temp_directory_path() / ("msabench-compare-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "cells");
  write_json_atomic((dir / "cells" / "a.json").string(), cell("a", 4096, 4, 2));
  write_json_atomic((dir / "suite.json").string(), json{{"schema", "msabench.suite/1"}, {"calibration", {{"seconds", 0.25}}}});
  write_file_atomic((dir / "cells" / "notes.json").string(), R"({"schema": "something/else"})");
  auto loaded = load_compared({dir.string()});
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_TRUE(loaded[0].calibration_s);
  EXPECT_DOUBLE_EQ(*loaded[0].calibration_s, 0.25);
  json own = cell("a", 4096, 4, 2);
  own["calibration"] = {{"seconds", 0.5}};  // a per-cell probe wins over suite.json
  write_json_atomic((dir / "cells" / "a.json").string(), own);
  EXPECT_DOUBLE_EQ(*load_compared({dir.string()})[0].calibration_s, 0.5);
  write_json_atomic((dir / "cells" / "b.json").string(), own);
  try {
    compare_results(load_compared({dir.string()}), load_compared({dir.string()}), Tolerances{});
    FAIL() << "duplicate cells accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("two results for the cell"), std::string::npos);
  }
  EXPECT_THROW(load_compared({(dir / "nope").string()}), Error);
  fs::remove_all(dir);
}
