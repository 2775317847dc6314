// Stage-2 routing over 1M pooled chunks: bytes of router keys scanned per second, and the ratio
// to a memory-bandwidth probe (a streaming sum over a buffer of the same size) in the same process.
//   build/tests/benchmarks/bench_msa_routing [--benchmark_min_time=1]
#include <benchmark/benchmark.h>

#include <chrono>

#include "core/model/msa.h"
#include "tests/model_configs.h"

using namespace msabench;

namespace {

constexpr int64_t kChunks = 1 << 20, kKvHeads = 2, kHeads = 8, kHeadDim = 64, kQueryTokens = 32;

ModelConfig routing_config() { return msabench::testing::routing_only_config(kHeads, kKvHeads, kHeadDim); }

struct Fixture {
  torch::Tensor router_k = torch::randn({kKvHeads, kChunks, kHeadDim});
  torch::Tensor chunk_doc = torch::arange(kChunks, torch::kInt64).floor_divide(16);  // 16 chunks per document
  int64_t num_docs = kChunks / 16;
  MsaModel model{Qwen3Model::random_init(routing_config(), 1), MsaOptions{}};
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

double bandwidth_bytes_per_s() {
  static double rate = [] {
    auto buf = torch::randn({kKvHeads, kChunks, kHeadDim});
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      auto s = buf.sum();
      benchmark::DoNotOptimize(s.item<float>());
      best = std::max(best, buf.nbytes() / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }();
  return rate;
}

void BM_MemoryBandwidthProbe(benchmark::State& state) {
  auto buf = torch::randn({kKvHeads, kChunks, kHeadDim});
  for (auto _ : state) {
    auto s = buf.sum();
    benchmark::DoNotOptimize(s.item<float>());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(buf.nbytes()) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemoryBandwidthProbe)->Unit(benchmark::kMillisecond);

void BM_RouteOneMillionChunks(benchmark::State& state) {
  auto& f = fixture();
  f.model.options().score_tile_chunks = state.range(0);
  auto q = torch::randn({1, kHeads, kQueryTokens, kHeadDim});
  auto mask = torch::ones({1, kQueryTokens}, torch::kBool);
  double seconds = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto scores = f.model.document_scores(q, mask, f.router_k, f.chunk_doc, f.num_docs);
    std::vector<std::vector<int64_t>> ids;
    std::vector<std::vector<double>> sc;
    MsaModel::top_k_documents(scores, 16, ids, sc);
    benchmark::DoNotOptimize(ids.data());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double bytes = static_cast<double>(f.router_k.nbytes()) * state.iterations();
  state.counters["chunks"] = static_cast<double>(kChunks);
  state.counters["GB/s_scanned"] = bytes / seconds / 1e9;
  state.counters["probe_GB/s"] = bandwidth_bytes_per_s() / 1e9;
  state.counters["fraction_of_bandwidth"] = bytes / seconds / bandwidth_bytes_per_s();
  state.counters["ms/query"] = 1e3 * seconds / state.iterations();
}
BENCHMARK(BM_RouteOneMillionChunks)->Arg(16384)->Arg(131072)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
