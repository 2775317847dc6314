#include <gtest/gtest.h>

#include <algorithm>

#include "metrics/report.h"

using nlohmann::json;
using namespace msabench;

namespace {

json result(const std::string& ds, int64_t size, const std::string& spec, int n, int hits, bool generates = false,
            int k = 10) {
  json recs = json::array();
  for (int i = 0; i < n; ++i) {
    json m = {{"recall@1", i < hits ? 1.0 : 0.0}, {"recall@5", 1.0}, {"recall@10", 1.0}};
    if (generates) m["judge_score"] = i < hits ? 5.0 : 2.0;
    recs.push_back({{"query_id", "q" + std::to_string(i)}, {"corpus_id", "s" + std::to_string(i)}, {"metrics", m}});
  }
  json aggs = {{"recall@1", static_cast<double>(hits) / n}, {"recall@5", 1.0}, {"recall@10", 1.0},
               {"token_f1", nullptr}};
  if (generates) aggs["judge_score"] = (5.0 * hits + 2.0 * (n - hits)) / n;
  return {{"schema", "msabench.result/1"},
          {"created", "2026-01-01T00:00:00Z"},
          {"backend", {{"spec", spec}, {"generates_answers", generates}}},
          {"dataset", {{"name", ds}, {"tokenizer", "whitespace-words"}, {"memory_tokens", size}, {"queries", n},
                       {"meta", {{"seed", 42}}}}},
          {"k", k},
          {"aggregates", aggs},
          {"timings", {{"index_tokens_per_s", 1.5e6}, {"queries_per_s", 900.0}, {"mean_query_ms", 1.1}}},
          {"memory", {{"peak_rss_bytes", 50 << 20}}},
          {"machine", {{"cpu", "Test CPU"}, {"logical_cores", 2}, {"memory_bytes", int64_t{8} << 30}, {"os", "TestOS"}}},
          {"git", {{"commit", "0123456789abcdef0123456789abcdef01234567"}, {"dirty", false}}},
          {"records", recs}};
}

std::vector<json> sample() {
  return {result("niah_single_1", 16384, "bm25:b=0.4,k1=0.9", 20, 18),
          result("niah_single_1", 65536, "bm25:b=0.4,k1=0.9", 20, 15),
          result("niah_multikey_1", 16384, "bm25:b=0.4,k1=0.9", 10, 10),
          result("niah_single_1", 16384, "msa:model=msa-4b", 20, 19, true),
          result("hotpotqa", 1048576, "rag:model=qwen3-4b", 10, 6, true, 5)};
}

}  // namespace

TEST(Report, Table2ShapeWithPublishedColumnsAndFacts) {
  const std::string md = report_markdown(sample());
  EXPECT_NE(md.find("## Table 2 shape"), std::string::npos);
  EXPECT_NE(md.find("`bm25:b=0.4,k1=0.9` R@1 | `bm25:b=0.4,k1=0.9` R@5 | `bm25:b=0.4,k1=0.9` R@10"), std::string::npos);
  EXPECT_NE(md.find("`msa:model=msa-4b` adaptive"), std::string::npos);
  // hotpotqa is a paper dataset: MSA 4.061 and Qwen3-4B RAG R@1/5/10 beside it
  EXPECT_NE(md.find("| 4.061 | 2.252 / 3.582 / 3.787 |"), std::string::npos) << md;
  EXPECT_NE(md.find("not in paper"), std::string::npos);
  // the generating RAG backend run at k=5 fills its R@5 column with the judge score
  EXPECT_NE(md.find("| hotpotqa | 1M | judge_score |"), std::string::npos) << md;
  EXPECT_NE(md.find("3.800 ["), std::string::npos);  // (5*6 + 2*4) / 10
  for (const char* fact : {"*model: ", " · data: ", " · sizes: ", " · machine: Test CPU, 2 logical cores",
                           " · git: 0123456789ab*"})
    EXPECT_NE(md.find(fact), std::string::npos) << fact;
}

TEST(Report, Figure4AndFigure1WithPublishedRowsAndCIs) {
  const std::string md = report_markdown(sample());
  EXPECT_NE(md.find("## Figure 4 shape"), std::string::npos);
  EXPECT_NE(md.find("| MSA | published | niah_accuracy | – | 0.99 |"), std::string::npos) << md;
  EXPECT_NE(md.find("## Figure 1 shape"), std::string::npos);
  EXPECT_NE(md.find("MS MARCO / Qwen2.5-14B-Instruct-1M | published | judge_score"), std::string::npos);
  EXPECT_NE(md.find("≈3.01"), std::string::npos);
  // per-dataset table with a bootstrap interval around 0.900 (18/20)
  EXPECT_NE(md.find("0.900 [0.7"), std::string::npos) << md;
  // two backends on the same niah_single_1 16K queries: a paired bootstrap line
  EXPECT_NE(md.find("**paired bootstrap**"), std::string::npos);
  EXPECT_NE(md.find("| 16K | recall@10 | `bm25:b=0.4,k1=0.9` | `msa:model=msa-4b` |"), std::string::npos) << md;
}

TEST(Report, DeterministicAndIndependentOfTimeAndOrder) {
  auto a = sample();
  auto b = sample();
  std::reverse(b.begin(), b.end());
  for (auto& r : b) r["created"] = "2030-12-31T23:59:59Z";
  EXPECT_EQ(report_markdown(a), report_markdown(b));
  EXPECT_EQ(report_csv(a), report_csv(b));
  EXPECT_EQ(report_latex(a), report_latex(b));
}

TEST(Report, CsvCarriesMeasuredAndPublishedRows) {
  const std::string csv = report_csv(sample());
  EXPECT_EQ(csv.rfind("source,figure,dataset,backend,metric,memory_tokens,k,value,ci_low,ci_high,n\n", 0), 0u);
  EXPECT_NE(csv.find("measured,cell,niah_single_1,\"bm25:b=0.4,k1=0.9\",recall@1,16384,10,0.9,"), std::string::npos)
      << csv;
  EXPECT_NE(csv.find("published,fig4,RULER NIAH (mean of 8 tasks),MSA,niah_accuracy,1048576,,0.95,,,\n"),
            std::string::npos);
  EXPECT_NE(csv.find("published,table2,hotpotqa,MSA,judge_score,1350000,adaptive,4.061,,,\n"), std::string::npos);
  EXPECT_NE(csv.find("measured,fig4,niah (mean over tasks)"), std::string::npos);
}

TEST(Report, LatexTablesEscapeAndStateFacts) {
  const std::string tex = report_latex(sample());
  EXPECT_NE(tex.find("\\begin{tabular}"), std::string::npos);
  EXPECT_NE(tex.find("niah\\_single\\_1"), std::string::npos);
  EXPECT_EQ(tex.find("niah_single_1"), std::string::npos);  // never unescaped
  EXPECT_NE(tex.find("Git: 0123456789ab"), std::string::npos);
  EXPECT_NE(tex.find("$\\approx$3.01"), std::string::npos);
}

// Found by fuzz_results: a result without timings.* or memory read freed memory (const
// operator[] on a missing key); the report shows "–" and 0 MiB instead.
TEST(Report, MissingOptionalTimingsAndMemory) {
  json r = result("niah_single_1", 16384, "bm25:b=0.4,k1=0.9", 4, 2);
  r["timings"] = json::object();
  r.erase("memory");
  const std::string md = report_markdown({r});
  EXPECT_NE(md.find("– · – · 0 ·"), std::string::npos) << md;
}

TEST(Report, NamesPartiallyTrainedModels) {
  json r = result("niah_single_1", 16384, "rag:generator=msa-small", 4, 2, true);
  r["backend"]["info"] = {{"generator", {{"model", "msa-small"}, {"trained_steps", 850}, {"planned_steps", 20000},
                                         {"training", "partial"}}},
                          {"retriever", json::object()}};
  const std::string md = report_markdown({r});
  EXPECT_NE(md.find("- partially trained: msa-small (850 of 20000 planned training steps)"), std::string::npos) << md;
  r["backend"]["info"]["generator"]["training"] = "complete";
  EXPECT_EQ(report_markdown({r}).find("partially trained"), std::string::npos);
}

TEST(Report, FlagsRouterNamedMsaBackendsAsDiagnostics) {
  json plain = result("niah_single_1", 16384, "msa:model=msa-small,topk=16", 4, 2, true);
  json diag = result("niah_single_1", 16384, "msa:model=msa-small,naming=router,topk=16", 4, 2, true);
  EXPECT_EQ(report_markdown({plain}).find("diagnostic, not the paper's protocol"), std::string::npos);
  const std::string md = report_markdown({plain, diag});
  EXPECT_NE(md.find("- diagnostic, not the paper's protocol: `msa:model=msa-small,naming=router,topk=16`"),
            std::string::npos) << md;
  EXPECT_EQ(md.find("`msa:model=msa-small,topk=16` ("), std::string::npos) << md;
}

// Found by fuzz_results: integers read from out-of-range floats (undefined behaviour).
TEST(Report, OutOfRangeNumbersAreNotReadAsIntegers) {
  json r = result("niah_single_1", 16384, "bm25:b=0.4,k1=0.9", 4, 2);
  r["memory"]["peak_rss_bytes"] = 1.69e32;
  r["dataset"]["queries"] = 1e300;
  r["k"] = -1e40;
  r["machine"]["logical_cores"] = 1e99;
  EXPECT_NO_THROW(report_markdown({r}));
  EXPECT_NO_THROW(report_csv({r}));
  EXPECT_NO_THROW(report_latex({r}));
}
