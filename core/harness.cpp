#include "core/harness.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "core/result.h"

using nlohmann::json;

namespace msabench {

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

json run_cell(Backend& backend, const CorpusStream& data, const MetricList& metrics, const CellOptions& opt) {
  reset_peak_rss();
  const auto cell_start = std::chrono::steady_clock::now();
  double generate_s = 0, index_s = 0, answer_s = 0;
  int64_t memory_tokens_total = 0, indexed_tokens = 0, documents = 0, reused = 0;
  std::map<std::string, double> stage_totals;
  std::map<std::string, std::pair<double, int64_t>> sums;  // metric -> (sum, n)
  json records = json::array();

  for (size_t ci = 0; ci < data.count; ++ci) {
    auto tg = std::chrono::steady_clock::now();
    MemoryCorpus corpus = data.make(ci);
    generate_s += since(tg);

    IndexStats is = backend.index(corpus);
    index_s += is.seconds;
    indexed_tokens += is.tokens;
    documents += static_cast<int64_t>(corpus.documents.size());
    memory_tokens_total += corpus.tokens;
    reused += is.reused ? 1 : 0;
    for (const auto& [stage, s] : is.stage_seconds) stage_totals[stage] += s;

    const size_t B = static_cast<size_t>(std::max(1, opt.batch));
    for (size_t first = 0; first < corpus.queries.size(); first += B) {
      std::vector<const Query*> group;
      for (size_t i = first; i < std::min(corpus.queries.size(), first + B); ++i) group.push_back(&corpus.queries[i]);
      auto ta = std::chrono::steady_clock::now();
      std::vector<Answer> answers = backend.answer_batch(group, opt.k);
      const double batch_s = since(ta);
      if (answers.size() != group.size()) throw Error(backend.spec() + ": answer_batch returned the wrong count");
      answer_s += batch_s;
      for (size_t gi = 0; gi < group.size(); ++gi) {
        const Query& q = *group[gi];
        Answer& a = answers[gi];
        const double took = batch_s / static_cast<double>(group.size());  // batch wall time, shared
        for (const auto& [stage, s] : a.stage_seconds) stage_totals[stage] += s;

        json rec;
        rec["query_id"] = q.id;
        rec["corpus_id"] = corpus.id;
        rec["question"] = q.text;
        rec["gold_answers"] = q.answers;
        rec["gold_doc_ids"] = q.gold_doc_ids;
        rec["retrieval_only"] = a.retrieval_only;
        rec["answer"] = a.retrieval_only ? json(nullptr) : json(a.text);
        json ret = json::array();
        for (const auto& r : a.retrieved) ret.push_back({{"id", r.id}, {"score", r.score}});
        rec["retrieved"] = ret;
        rec["seconds"] = took;
        rec["stage_seconds"] = a.stage_seconds;
        if (!a.router_topk.empty()) rec["router_topk"] = a.router_topk;
        if (!a.detail.is_null()) rec["detail"] = a.detail;
        json m = json::object();
        for (const auto& metric : metrics) {
          auto v = metric->score(q, a);
          if (!v) continue;
          m[metric->name()] = *v;
          auto& s = sums[metric->name()];
          s.first += *v;
          s.second += 1;
        }
        rec["metrics"] = m;
        if (!q.meta.empty()) rec["meta"] = q.meta;
        if (group.size() > 1) rec["batch_size"] = group.size();
        records.push_back(std::move(rec));
        if (opt.progress) opt.progress->advance(1, 0);
      }
    }
  }

  json aggregates = json::object();
  for (const auto& metric : metrics) {
    auto it = sums.find(metric->name());
    aggregates[metric->name()] = (it == sums.end() || it->second.second == 0)
                                     ? json(nullptr)
                                     : json(it->second.first / static_cast<double>(it->second.second));
  }
  const size_t nq = records.size();
  json timings = {{"wall_s", since(cell_start)},
                  {"generate_s", generate_s},
                  {"index_s", index_s},
                  {"answer_s", answer_s},
                  {"stage_s", stage_totals},
                  {"queries_per_s", answer_s > 0 ? json(nq / answer_s) : json(nullptr)},
                  {"index_tokens_per_s", index_s > 0 && reused == 0 ? json(memory_tokens_total / index_s) : json(nullptr)},
                  {"mean_query_ms", nq ? json(1000.0 * answer_s / nq) : json(nullptr)},
                  {"batch", std::max(1, opt.batch)}};
  json result = {
      {"schema", kResultSchema},
      {"suite", opt.suite},
      {"created", utc_timestamp()},
      {"backend", {{"spec", backend.spec()}, {"generates_answers", backend.generates_answers()}, {"info", backend.info()}}},
      {"dataset",
       {{"name", data.dataset},
        {"tokenizer", data.tokenizer},
        {"memory_tokens", data.memory_tokens},
        {"corpora", data.count},
        {"queries", nq},
        {"documents", documents},
        {"tokens_total", memory_tokens_total},
        {"backend_indexed_tokens", indexed_tokens},
        {"indexes_reused", reused},
        {"meta", data.meta}}},
      {"k", opt.k},
      {"aggregates", aggregates},
      {"timings", timings},
      {"memory", {{"peak_rss_bytes", peak_rss_bytes()}, {"peak_rss_scope", "this cell (VmHWM after clear_refs)"}}},
      {"machine", machine_info()},
      {"git", git_info()},
      {"records", records},
  };
  return result;
}

}  // namespace msabench
