#include "metrics/metrics.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/text.h"

namespace msabench {

double recall_at_k(const std::vector<std::string>& gold, const std::vector<ScoredDoc>& ranked, int k) {
  if (gold.empty()) return 0.0;
  std::set<std::string> g(gold.begin(), gold.end());
  size_t hit = 0;
  const size_t n = std::min(ranked.size(), static_cast<size_t>(std::max(k, 0)));
  for (size_t i = 0; i < n; ++i) hit += g.erase(ranked[i].id);
  return static_cast<double>(hit) / static_cast<double>(std::set<std::string>(gold.begin(), gold.end()).size());
}

double mrr_at_k(const std::vector<std::string>& gold, const std::vector<ScoredDoc>& ranked, int k) {
  std::set<std::string> g(gold.begin(), gold.end());
  const size_t n = std::min(ranked.size(), static_cast<size_t>(std::max(k, 0)));
  for (size_t i = 0; i < n; ++i)
    if (g.count(ranked[i].id)) return 1.0 / static_cast<double>(i + 1);
  return 0.0;
}

double string_match_all(const std::vector<std::string>& gold, const std::string& prediction) {
  if (gold.empty()) return 0.0;
  // RULER post-processing: control characters become newlines; then lower-case substring test.
  std::string pred = prediction;
  for (auto& c : pred)
    if (static_cast<unsigned char>(c) < 0x20) c = '\n';
  pred = to_lower_ascii(pred);
  size_t hit = 0;
  for (const auto& g : gold) hit += pred.find(to_lower_ascii(g)) != std::string::npos;
  return static_cast<double>(hit) / static_cast<double>(gold.size());
}

double exact_match(const std::vector<std::string>& gold, const std::string& prediction) {
  const std::string p = squad_normalize(prediction);
  for (const auto& g : gold)
    if (squad_normalize(g) == p) return 1.0;
  return 0.0;
}

double token_f1(const std::vector<std::string>& gold, const std::string& prediction) {
  const auto p = squad_tokens(prediction);
  double best = 0.0;
  for (const auto& g : gold) {
    const auto t = squad_tokens(g);
    if (p.empty() || t.empty()) {
      best = std::max(best, p == t ? 1.0 : 0.0);
      continue;
    }
    std::map<std::string, int> counts;
    for (const auto& w : t) ++counts[w];
    int common = 0;
    for (const auto& w : p) {
      auto it = counts.find(w);
      if (it != counts.end() && it->second > 0) {
        ++common;
        --it->second;
      }
    }
    if (common == 0) continue;
    const double precision = static_cast<double>(common) / p.size();
    const double recall = static_cast<double>(common) / t.size();
    best = std::max(best, 2 * precision * recall / (precision + recall));
  }
  return best;
}

namespace {

class RecallAtK : public Metric {
 public:
  explicit RecallAtK(int k) : k_(k) {}
  std::string name() const override { return "recall@" + std::to_string(k_); }
  std::string description() const override { return "fraction of gold documents in the top " + std::to_string(k_); }
  std::optional<double> score(const Query& q, const Answer& a) const override {
    if (q.gold_doc_ids.empty()) return std::nullopt;
    return recall_at_k(q.gold_doc_ids, a.retrieved, k_);
  }

 private:
  int k_;
};

// Fraction of the gold documents among `ids` (an unranked selection).
template <class Ids>
double recall_of_set(const std::vector<std::string>& gold, const Ids& ids) {
  std::vector<ScoredDoc> r;
  for (const auto& id : ids) r.push_back({id, 0.0});
  return recall_at_k(gold, r, static_cast<int>(r.size()));
}

// Router recall: gold documents among those the MSA router selected (top-k of the routing layers).
class RouterRecall : public Metric {
 public:
  std::string name() const override { return "router_recall"; }
  std::string description() const override { return "fraction of gold documents in the router's top-k (MSA)"; }
  std::optional<double> score(const Query& q, const Answer& a) const override {
    if (q.gold_doc_ids.empty() || a.router_topk.empty()) return std::nullopt;
    return recall_of_set(q.gold_doc_ids, a.router_topk);
  }
};

// Router recall over every call of the interleave loop: gold documents that the last router layer
// selected in any call. A later call routes with the documents injected before (msa-reference
// §9.3), so on multi-hop questions the gap to router_recall is what the later rounds' routing found.
class RouterRecallAnyCall : public Metric {
 public:
  std::string name() const override { return "router_recall_any_call"; }
  std::string description() const override {
    return "fraction of gold documents the router selected in any call of the interleave loop (MSA)";
  }
  std::optional<double> score(const Query& q, const Answer& a) const override {
    if (q.gold_doc_ids.empty() || !a.detail.is_object() || !a.detail.contains("calls")) return std::nullopt;
    std::set<std::string> selected;
    for (const auto& call : a.detail["calls"]) {
      if (!call.contains("routing") || call["routing"].empty()) continue;
      const nlohmann::json* last = nullptr;  // the highest router layer, as router_topk
      for (const auto& layer : call["routing"])
        if (!last || layer.value("layer", 0) > last->value("layer", 0)) last = &layer;
      for (const auto& id : (*last)["doc_ids"]) selected.insert(id.get<std::string>());
    }
    if (selected.empty()) return std::nullopt;
    return recall_of_set(q.gold_doc_ids, selected);
  }
};

// The reference's retrieval metrics over the set of document ids found in the MSA response
// (msa-reference §9.5, §10.4): precision, recall, F1 and IoU against the gold set.
class PredictedIds : public Metric {
 public:
  enum Kind { Precision, Recall, F1, IoU };
  explicit PredictedIds(Kind k) : k_(k) {}
  std::string name() const override {
    static const char* n[] = {"pred_ids_precision", "pred_ids_recall", "pred_ids_f1", "pred_ids_iou"};
    return n[k_];
  }
  std::string description() const override { return "reference set metric over predicted document ids (MSA)"; }
  std::optional<double> score(const Query& q, const Answer& a) const override {
    if (!a.detail.is_object() || !a.detail.contains("predicted_doc_ids")) return std::nullopt;
    std::set<std::string> pred, gold(q.gold_doc_ids.begin(), q.gold_doc_ids.end());
    for (const auto& id : a.detail["predicted_doc_ids"]) pred.insert(id.get<std::string>());
    if (gold.empty()) return 0.0;
    size_t hit = 0;
    for (const auto& id : pred) hit += gold.count(id);
    const double p = pred.empty() ? 0.0 : static_cast<double>(hit) / pred.size();
    const double r = static_cast<double>(hit) / gold.size();
    switch (k_) {
      case Precision: return p;
      case Recall: return r;
      case F1: return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
      case IoU: return static_cast<double>(hit) / static_cast<double>(gold.size() + pred.size() - hit);
    }
    return std::nullopt;
  }

 private:
  Kind k_;
};

class MrrAt10 : public Metric {
 public:
  std::string name() const override { return "mrr@10"; }
  std::string description() const override { return "reciprocal rank of the first gold document (top 10)"; }
  std::optional<double> score(const Query& q, const Answer& a) const override {
    if (q.gold_doc_ids.empty()) return std::nullopt;
    return mrr_at_k(q.gold_doc_ids, a.retrieved, 10);
  }
};

// Answer metrics share the "needs a generated answer and gold answers" rule.
class AnswerMetric : public Metric {
 public:
  using Fn = double (*)(const std::vector<std::string>&, const std::string&);
  AnswerMetric(std::string name, std::string desc, Fn fn) : name_(std::move(name)), desc_(std::move(desc)), fn_(fn) {}
  std::string name() const override { return name_; }
  std::string description() const override { return desc_; }
  std::optional<double> score(const Query& q, const Answer& a) const override {
    if (a.retrieval_only || q.answers.empty()) return std::nullopt;
    return fn_(q.answers, a.text);
  }

 private:
  std::string name_, desc_;
  Fn fn_;
};

}  // namespace

MetricList default_metrics() {
  MetricList m;
  m.push_back(std::make_unique<RecallAtK>(1));
  m.push_back(std::make_unique<RecallAtK>(5));
  m.push_back(std::make_unique<RecallAtK>(10));
  m.push_back(std::make_unique<MrrAt10>());
  m.push_back(std::make_unique<RouterRecall>());
  m.push_back(std::make_unique<RouterRecallAnyCall>());
  for (auto k : {PredictedIds::Precision, PredictedIds::Recall, PredictedIds::F1, PredictedIds::IoU})
    m.push_back(std::make_unique<PredictedIds>(k));
  m.push_back(std::make_unique<AnswerMetric>("ruler_string_match_all",
                                             "RULER: fraction of gold strings contained in the answer",
                                             &string_match_all));
  m.push_back(std::make_unique<AnswerMetric>("exact_match", "SQuAD exact match (max over gold)", &exact_match));
  m.push_back(std::make_unique<AnswerMetric>("token_f1", "SQuAD token F1 (max over gold)", &token_f1));
  return m;
}

}  // namespace msabench
