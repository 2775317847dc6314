#include <gtest/gtest.h>

#include "metrics/metrics.h"

using namespace msabench;

namespace {
std::vector<ScoredDoc> ranked(std::initializer_list<const char*> ids) {
  std::vector<ScoredDoc> out;
  double s = 10;
  for (auto* id : ids) out.push_back({id, s--});
  return out;
}
}  // namespace

TEST(Metrics, RecallAndMrr) {
  auto r = ranked({"a", "b", "c", "d"});
  EXPECT_DOUBLE_EQ(recall_at_k({"c"}, r, 1), 0.0);
  EXPECT_DOUBLE_EQ(recall_at_k({"c"}, r, 3), 1.0);
  EXPECT_DOUBLE_EQ(recall_at_k({"a", "d"}, r, 2), 0.5);
  EXPECT_DOUBLE_EQ(recall_at_k({"a", "a"}, r, 1), 1.0);  // duplicate gold counted once
  EXPECT_DOUBLE_EQ(mrr_at_k({"c"}, r, 10), 1.0 / 3);
  EXPECT_DOUBLE_EQ(mrr_at_k({"z"}, r, 10), 0.0);
  EXPECT_DOUBLE_EQ(mrr_at_k({"d"}, r, 3), 0.0);
}

TEST(Metrics, RulerStringMatchAll) {
  EXPECT_DOUBLE_EQ(string_match_all({"1234567"}, "The number is 1234567."), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all({"ABC", "def"}, "abc only"), 0.5);
  EXPECT_DOUBLE_EQ(string_match_all({"x"}, ""), 0.0);
}

TEST(Metrics, SquadExactMatchAndF1) {
  EXPECT_DOUBLE_EQ(exact_match({"The Eiffel Tower"}, "eiffel tower!"), 1.0);
  EXPECT_DOUBLE_EQ(exact_match({"Paris"}, "in Paris"), 0.0);
  // pred "in paris france" vs gold "paris": P=1/3, R=1 -> F1=0.5
  EXPECT_DOUBLE_EQ(token_f1({"Paris"}, "in Paris, France"), 0.5);
  EXPECT_DOUBLE_EQ(token_f1({"x y", "Paris"}, "Paris"), 1.0);
  EXPECT_DOUBLE_EQ(token_f1({"Paris"}, "London"), 0.0);
}

TEST(Metrics, RetrievalOnlySkipsAnswerMetrics) {
  Query q{"q", "question", {"42"}, {"d1"}, {}};
  Answer a;
  a.retrieval_only = true;
  a.retrieved = ranked({"d0", "d1"});
  int answer_metrics = 0, retrieval_metrics = 0;
  for (const auto& m : default_metrics()) {
    auto v = m->score(q, a);
    if (m->name().rfind("router_recall", 0) == 0 || m->name().rfind("pred_ids_", 0) == 0) {
      EXPECT_FALSE(v.has_value());  // no router
      continue;
    }
    if (m->name().rfind("recall@", 0) == 0 || m->name() == "mrr@10") {
      ASSERT_TRUE(v.has_value());
      ++retrieval_metrics;
    } else {
      EXPECT_FALSE(v.has_value()) << m->name();
      ++answer_metrics;
    }
  }
  EXPECT_EQ(retrieval_metrics, 4);
  EXPECT_EQ(answer_metrics, 3);
}

// router_recall counts the first call's routing; router_recall_any_call the union over every call
// (the highest router layer of each), where a later round's routing can add the second hop.
TEST(Metrics, RouterRecallOverAllInterleaveCalls) {
  Query q{"q", "question", {"42"}, {"d1", "d2"}, {}};
  Answer a;
  a.router_topk = {"d1", "d7"};
  auto routing = [](std::vector<std::string> low, std::vector<std::string> high) {
    return nlohmann::json{{"routing", {{{"layer", 3}, {"doc_ids", high}}, {{"layer", 2}, {"doc_ids", low}}}}};
  };
  a.detail = {{"calls", {routing({"d2"}, {"d1", "d7"}), routing({"d9"}, {"d7", "d2"})}}};
  std::map<std::string, double> got;
  for (const auto& m : default_metrics())
    if (auto v = m->score(q, a); v && m->name().rfind("router_recall", 0) == 0) got[m->name()] = *v;
  EXPECT_DOUBLE_EQ(got["router_recall"], 0.5);
  EXPECT_DOUBLE_EQ(got["router_recall_any_call"], 1.0);  // d2 from the second call's layer 3
  a.detail = {{"calls", {routing({"d2"}, {"d1", "d7"})}}};  // layer 2's d2 does not count
  for (const auto& m : default_metrics())
    if (m->name() == "router_recall_any_call") EXPECT_DOUBLE_EQ(*m->score(q, a), 0.5);
}

TEST(Metrics, ReferenceSetMetricsOverPredictedIds) {
  Query q{"q", "question", {"42"}, {"d1", "d2"}, {}};
  Answer a;
  a.detail = {{"predicted_doc_ids", {"d1", "d3", "d4"}}};
  std::map<std::string, double> got;
  for (const auto& m : default_metrics())
    if (auto v = m->score(q, a); v && m->name().rfind("pred_ids_", 0) == 0) got[m->name()] = *v;
  EXPECT_DOUBLE_EQ(got["pred_ids_precision"], 1.0 / 3);
  EXPECT_DOUBLE_EQ(got["pred_ids_recall"], 0.5);
  EXPECT_DOUBLE_EQ(got["pred_ids_f1"], 2 * (1.0 / 3) * 0.5 / (1.0 / 3 + 0.5));
  EXPECT_DOUBLE_EQ(got["pred_ids_iou"], 1.0 / 4);
}
