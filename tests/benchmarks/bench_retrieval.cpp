// Query latency and index memory of the three retrieval mechanisms at 1M and 10M memory tokens,
// side by side in one process: BM25 over Lucene++ (real NIAH haystack text), Faiss Flat inner
// product over one vector per 512-token document, and MSA stage-2 routing over one pooled router
// key per 64 tokens (Qwen3-4B-like geometry per layer: 8 KV heads x 128, one router layer).
// Embeddings and router keys are synthetic (random, fp32): latency and bytes do not depend on
// their values.   build/tests/benchmarks/bench_retrieval [--benchmark_min_time=1]
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>
#include <memory>

#include "baselines/bm25/lucene_bm25.h"
#include "baselines/dense/faiss_index.h"
#include "core/model/msa.h"
#include "tests/model_configs.h"
#include "core/tokenizer.h"
#include "datasets/niah.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {

constexpr int64_t kDocTokens = 512, kChunk = 64, kEmbDim = 1024, kKvHeads = 8, kHeadDim = 128;

struct Bm25Fixture {
  std::unique_ptr<LuceneBm25Index> index;
  std::string query;
  int64_t bytes = 0;
};

Bm25Fixture& bm25(int64_t tokens) {
  static std::map<int64_t, Bm25Fixture> cache;
  auto& f = cache[tokens];
  if (!f.index) {
    WhitespaceWordCounter counter;
    NiahConfig cfg;
    cfg.task = "niah_single_1";
    cfg.target_tokens = tokens;
    cfg.samples = 1;
    cfg.doc_tokens = kDocTokens;
    auto corpus = NiahGenerator(cfg, counter).sample(0);
    const std::string dir = (fs::temp_directory_path() / ("msabench-bench-bm25-" + std::to_string(tokens))).string();
    LuceneBm25Index::build(dir, corpus.documents);
    f.index = std::make_unique<LuceneBm25Index>(dir);
    f.query = corpus.queries[0].text;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) f.bytes += static_cast<int64_t>(e.file_size());
  }
  return f;
}

void BM_Bm25Query(benchmark::State& state) {
  auto& f = bm25(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(f.index->search(f.query, 10, {}));
  state.counters["memory_tokens"] = static_cast<double>(state.range(0));
  state.counters["index_bytes"] = static_cast<double>(f.bytes);
}

void BM_FaissFlatQuery(benchmark::State& state) {
  const int64_t docs = state.range(0) / kDocTokens;
  auto x = torch::randn({docs, kEmbDim});
  x = x / x.norm(2, -1, true);
  FaissIndex index(kEmbDim, "Flat");
  index.build(x.data_ptr<float>(), docs);
  auto q = torch::randn({1, kEmbDim});
  std::vector<int64_t> ids;
  std::vector<float> sc;
  for (auto _ : state) index.search(q.data_ptr<float>(), 1, 10, ids, sc);
  state.counters["memory_tokens"] = static_cast<double>(state.range(0));
  state.counters["index_bytes"] = static_cast<double>(docs * kEmbDim * sizeof(float));
}

void BM_MsaRoutingQuery(benchmark::State& state) {
  const int64_t chunks = state.range(0) / kChunk;
  ModelConfig c = msabench::testing::routing_only_config(32, kKvHeads, kHeadDim);
  MsaOptions o;
  o.score_tile_chunks = 65536;
  MsaModel model(Qwen3Model::random_init(c, 1), o);
  auto rk = torch::randn({kKvHeads, chunks, kHeadDim});
  auto chunk_doc = torch::arange(chunks, torch::kInt64).floor_divide(kDocTokens / kChunk);
  const int64_t docs = (chunks + 7) / 8;
  auto q = torch::randn({1, 32, 24, kHeadDim});  // a 24-token routing query
  auto mask = torch::ones({1, 24}, torch::kBool);
  for (auto _ : state) {
    auto s = model.document_scores(q, mask, rk, chunk_doc, docs);
    std::vector<std::vector<int64_t>> ids;
    std::vector<std::vector<double>> sc;
    MsaModel::top_k_documents(s, 16, ids, sc);
    benchmark::DoNotOptimize(ids.data());
  }
  state.counters["memory_tokens"] = static_cast<double>(state.range(0));
  state.counters["index_bytes"] = static_cast<double>(rk.nbytes());  // router keys of one layer
}

}  // namespace

BENCHMARK(BM_Bm25Query)->Arg(1 << 20)->Arg(10 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FaissFlatQuery)->Arg(1 << 20)->Arg(10 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MsaRoutingQuery)->Arg(1 << 20)->Arg(10 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
