// Prefill and decode throughput of the Qwen3 engine on a small random config, each reported with
// its ratio to the fp32 GEMM rate torch::matmul reaches on this machine, measured in the same run.
//   build/tests/benchmarks/bench_qwen3 [--benchmark_min_time=1]
#include <benchmark/benchmark.h>

#include <chrono>

#include "core/model/qwen3.h"

using namespace msabench;

namespace {

ModelConfig bench_config() {
  ModelConfig c;
  c.vocab_size = 4096;
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.head_dim = 32;
  c.rope_theta = 1e6;
  c.tie_word_embeddings = true;
  c.torch_dtype = "float32";
  return c;
}

// Dense matmul FLOPs per token of the forward (projections, MLP, LM head); attention excluded.
double flops_per_token(const ModelConfig& c) {
  const double E = c.hidden_size, H = c.num_attention_heads, Hk = c.num_key_value_heads, D = c.head_dim,
               I = c.intermediate_size;
  const double per_layer = 2 * E * (H * D + 2 * Hk * D) + 2 * H * D * E + 3 * 2 * E * I;
  return c.num_hidden_layers * per_layer + 2 * E * c.vocab_size;
}

// Best of several timed 512^3 fp32 matmuls, in FLOP/s.
double gemm_flops() {
  static double rate = [] {
    const int64_t n = 512;
    auto a = torch::randn({n, n}), b = torch::randn({n, n});
    double best = 0;
    for (int rep = 0; rep < 20; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      auto c = torch::matmul(a, b);
      benchmark::DoNotOptimize(c.data_ptr<float>());
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, 2.0 * n * n * n / s);
    }
    return best;
  }();
  return rate;
}

Qwen3Model& model() {
  static Qwen3Model m = Qwen3Model::random_init(bench_config(), 1);
  return m;
}

// tokens/s, achieved dense GFLOP/s, and that as a fraction of the measured GEMM rate.
void report(benchmark::State& state, double tokens, double seconds, const ModelConfig& c) {
  const double flops = tokens * flops_per_token(c) / seconds;
  state.counters["tokens/s"] = tokens / seconds;
  state.counters["GFLOP/s"] = flops / 1e9;
  state.counters["gemm_GFLOP/s"] = gemm_flops() / 1e9;
  state.counters["fraction_of_gemm"] = flops / gemm_flops();
}

void BM_GemmFp32(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  for (auto _ : state) {
    auto c = torch::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GemmFp32)->Arg(512)->Unit(benchmark::kMillisecond);

void BM_Prefill(benchmark::State& state) {
  auto& m = model();
  const int64_t L = state.range(0);
  auto ids = torch::randint(0, m.config().vocab_size, {1, L}, torch::kInt64);
  auto pos = torch::arange(L, torch::kInt64).unsqueeze(0);
  double seconds = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto logits = m.forward(ids, pos);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(state, static_cast<double>(L) * state.iterations(), seconds, m.config());
}
BENCHMARK(BM_Prefill)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  auto& m = model();
  const int64_t context = state.range(0);
  auto ids = torch::randint(0, m.config().vocab_size, {1, context}, torch::kInt64);
  auto pos = torch::arange(context, torch::kInt64).unsqueeze(0);
  int64_t steps = 0;
  double seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    KVCache cache;
    m.forward(ids, pos, &cache);
    state.ResumeTiming();
    auto t0 = std::chrono::steady_clock::now();
    auto tok = torch::zeros({1, 1}, torch::kInt64);
    for (int i = 0; i < 32; ++i) {
      auto logits = m.forward(tok, torch::full({1, 1}, context + i, torch::kInt64), &cache);
      tok = logits.select(1, 0).argmax(-1, true);
      ++steps;
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(state, static_cast<double>(steps), seconds, m.config());
}
BENCHMARK(BM_Decode)->Arg(128)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
