#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "metrics/calibration.h"
#include "metrics/stats.h"

using nlohmann::json;
using namespace msabench;

TEST(Bootstrap, DeterministicForASeedAndSensitiveToIt) {
  std::vector<double> v;
  for (int i = 0; i < 60; ++i) v.push_back(i % 3 == 0 ? 1.0 : 0.0);
  auto a = bootstrap_ci(v), b = bootstrap_ci(v);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->low, b->low);
  EXPECT_EQ(a->high, b->high);
  EXPECT_DOUBLE_EQ(a->mean, 20.0 / 60.0);
  // continuous scores (0/1 data makes percentiles coincide across seeds)
  std::vector<double> w;
  for (int i = 0; i < 60; ++i) w.push_back(std::fmod(i * 0.618034, 1.0));
  BootstrapOptions other;
  other.seed = 7;
  auto c = bootstrap_ci(w), d = bootstrap_ci(w, other);
  EXPECT_TRUE(c->low != d->low || c->high != d->high);
  EXPECT_EQ(a->n, 60u);
}

TEST(Bootstrap, IntervalWidthMatchesNormalApproximation) {
  // Bernoulli(0.5), n=100: the 95% interval is about mean +- 1.96 * 0.05.
  std::vector<double> v;
  for (int i = 0; i < 100; ++i) v.push_back(i % 2);
  auto ci = bootstrap_ci(v);
  ASSERT_TRUE(ci);
  EXPECT_NEAR(ci->low, 0.402, 0.025);
  EXPECT_NEAR(ci->high, 0.598, 0.025);
  EXPECT_LT(ci->low, ci->mean);
  EXPECT_GT(ci->high, ci->mean);
}

TEST(Bootstrap, ConstantEmptyAndBadOptions) {
  auto ci = bootstrap_ci({1, 1, 1});
  EXPECT_EQ(ci->low, 1.0);
  EXPECT_EQ(ci->high, 1.0);
  EXPECT_FALSE(bootstrap_ci({}));
  BootstrapOptions bad;
  bad.level = 1.5;
  EXPECT_THROW(bootstrap_ci({1, 0}, bad), Error);
}

TEST(Bootstrap, GroupsAverageGroupMeans) {
  // stratified: mean of the two task means (1 and 0), not the pooled 4/5
  auto ci = bootstrap_ci_groups({{1, 1, 1, 1}, {0}, {}});
  ASSERT_TRUE(ci);
  EXPECT_DOUBLE_EQ(ci->mean, 0.5);
  EXPECT_DOUBLE_EQ(ci->low, 0.5);  // no within-group variance
  EXPECT_DOUBLE_EQ(ci->high, 0.5);
  EXPECT_EQ(ci->n, 5u);
}

TEST(PairedBootstrap, ClearDifferenceIsSignificant) {
  std::vector<double> a(40, 0.0), b(40, 0.0);
  for (int i = 0; i < 30; ++i) b[i] = 1;
  auto pc = paired_bootstrap(a, b);
  ASSERT_TRUE(pc);
  EXPECT_DOUBLE_EQ(pc->diff, 0.75);
  EXPECT_LT(pc->p_value, 0.01);
  EXPECT_GT(pc->diff_low, 0.5);
  EXPECT_LE(pc->diff_high, 1.0);
}

TEST(PairedBootstrap, NoiseIsNotSignificant) {
  std::vector<double> a, b;
  for (int i = 0; i < 50; ++i) {
    a.push_back(i % 2);
    b.push_back(i % 2);
  }
  b[0] = 1;  // one query better, one worse: diff 0
  b[1] = 0;
  auto same = paired_bootstrap(a, b);
  EXPECT_DOUBLE_EQ(same->diff, 0.0);
  EXPECT_DOUBLE_EQ(same->p_value, 1.0);
  b[3] = 0;  // one net loss out of 50
  auto small = paired_bootstrap(a, b);
  EXPECT_GT(small->p_value, 0.2);
  EXPECT_LT(small->diff_low, 0.0);
}

TEST(PairedBootstrap, SizesMustMatch) {
  EXPECT_THROW(paired_bootstrap({1, 0}, {1}), Error);
  EXPECT_FALSE(paired_bootstrap({}, {}));
}

namespace {
json result_with(const std::vector<std::pair<std::string, double>>& recall1) {
  json recs = json::array();
  for (const auto& [id, v] : recall1)
    recs.push_back({{"query_id", id}, {"corpus_id", "c" + id}, {"metrics", {{"recall@1", v}}}});
  recs.push_back({{"query_id", "nometric"}, {"corpus_id", "x"}, {"metrics", json::object()}});
  return {{"aggregates", {{"recall@1", 0.5}, {"token_f1", nullptr}}}, {"records", recs}};
}
}  // namespace

TEST(ResultStats, PairsByQueryNotByPosition) {
  json a = result_with({{"1", 1}, {"2", 0}, {"3", 1}});
  json b = result_with({{"3", 1}, {"1", 1}, {"2", 1}, {"4", 0}});  // reordered, one extra query
  auto vals = metric_values(b, "recall@1");
  EXPECT_EQ(vals.size(), 4u);
  EXPECT_EQ(vals.at("c2/2"), 1.0);
  auto pc = paired_bootstrap_results(a, b, "recall@1");
  ASSERT_TRUE(pc);
  EXPECT_EQ(pc->n, 3u);
  EXPECT_NEAR(pc->diff, 1.0 / 3.0, 1e-12);
}

TEST(ResultStats, ConfidenceIntervalsForEveryAggregate) {
  json r = result_with({{"1", 1}, {"2", 0}, {"3", 1}, {"4", 0}});
  add_confidence_intervals(r);
  const json& ci = r["aggregates_ci"];
  EXPECT_EQ(ci["level"], 0.95);
  EXPECT_EQ(ci["metrics"]["recall@1"]["n"], 4);
  EXPECT_LE(ci["metrics"]["recall@1"]["low"].get<double>(), 0.5);
  EXPECT_GE(ci["metrics"]["recall@1"]["high"].get<double>(), 0.5);
  EXPECT_TRUE(ci["metrics"]["token_f1"].is_null());
}

TEST(Calibration, ProbeIsPositiveAndDeterministicInWork) {
  json a = calibration_probe(1), b = calibration_probe(2);
  EXPECT_EQ(a["schema"], "msabench.calibration/1");
  EXPECT_GT(a["seconds"].get<double>(), 0.0);
  EXPECT_NEAR(a["seconds"].get<double>(), a["memory_s"].get<double>() + a["compute_s"].get<double>(), 1e-12);
  EXPECT_EQ(a["checksum"], b["checksum"]);  // same fixed workload
  EXPECT_THROW(calibration_probe(0), Error);
}
