// GPU benchmark of the stage-2 kernels (scripts/gpu_bench.sh; issue #11), framework-free: device
// copy and host-to-device bandwidth measured in the same run, routing scan bytes/s against them,
// pinned fetch on a copy stream, attention TFLOP/s, and routing
// latency of one router layer at 1M / 10M / 100M memory tokens with synthetic keys (MSA-4B
// shapes: P = 64, 8 KV heads x 128, 32 query heads), times 18 router layers as an estimate.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/msa/cuda/msa_cuda.h"

using namespace msabench::cuda;

namespace {

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "gpu_bench: %s: %s\n", what, cudaGetErrorString(e));
  std::exit(1);
}
#define CK(x) check((x), #x)

template <class T>
T* dev_alloc(size_t n) {
  void* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(T)));
  return static_cast<T*>(p);
}
template <class T>
T* dev_copy(const std::vector<T>& v) {
  T* p = dev_alloc<T>(v.size());
  CK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

// Best time in ms of `reps` runs of fn on `st` (one warm-up run first).
double best_ms(cudaStream_t st, int reps, const std::function<void()>& fn) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  fn();
  CK(cudaStreamSynchronize(st));
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    CK(cudaEventRecord(a, st));
    fn();
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    best = std::min(best, static_cast<double>(ms));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return best;
}

// Random bf16 values in [-1, 1) written in 64 MiB pieces (synthetic router keys / content K/V).
void fill_random_bf16(bf16_t* dst, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<bf16_t> piece(std::min<size_t>(n, size_t{32} << 20));
  for (auto& x : piece) x = float_to_bf16(u(rng));
  for (size_t at = 0; at < n; at += piece.size())
    CK(cudaMemcpy(dst + at, piece.data(), std::min(piece.size(), n - at) * sizeof(bf16_t), cudaMemcpyHostToDevice));
}

struct Args {
  std::string out = "results/gpu";
  int64_t routing_tokens = 64, queries = 1;
  int top_k = 16, reps = 10;
  std::vector<int64_t> scales = {1000000, 10000000, 100000000};
};

constexpr int64_t kP = 64, kHk = 8, kD = 128, kH = 32, kDocChunks = 16, kLayers = 18, kTpl = 3;

struct RoutingResult {
  int64_t tokens = 0, chunks = 0, docs = 0;
  double scan_ms = 0, layer_ms = 0, scan_gbs = 0;
};

RoutingResult bench_routing(const Args& a, int64_t tokens, cudaStream_t st) {
  RoutingResult r;
  r.tokens = tokens, r.chunks = tokens / kP, r.docs = (r.chunks + kDocChunks - 1) / kDocChunks;
  const int64_t T = a.routing_tokens * a.queries;
  auto* keys = dev_alloc<bf16_t>(static_cast<size_t>(kHk * r.chunks * kD));
  fill_random_bf16(keys, static_cast<size_t>(kHk * r.chunks * kD), 1);
  std::vector<int32_t> cd(static_cast<size_t>(r.chunks)), off;
  for (int64_t c = 0; c < r.chunks; ++c) cd[c] = static_cast<int32_t>(c / kDocChunks);
  for (int64_t b = 0; b <= a.queries; ++b) off.push_back(static_cast<int32_t>(b * a.routing_tokens));
  std::vector<float> q(static_cast<size_t>(T * kH * kD));
  std::mt19937_64 rng(2);
  std::normal_distribution<float> nd;
  for (auto& x : q) x = nd(rng);
  auto *dq = dev_copy(q), *qf = dev_alloc<float>(static_cast<size_t>(T * kHk * kD));
  auto *dcd = dev_copy(cd), *doff = dev_copy(off);
  auto* scores = dev_alloc<float>(static_cast<size_t>(a.queries * r.docs));
  auto* top_s = dev_alloc<float>(static_cast<size_t>(a.queries * a.top_k));
  auto* top_i = dev_alloc<int32_t>(static_cast<size_t>(a.queries * a.top_k));
  void* ws = dev_alloc<char>(top_k_workspace_bytes(a.queries, r.docs, a.top_k));
  const RoutingShape s{a.queries, kHk, kD, r.chunks, r.chunks * kD, r.docs};
  const float scale = 1.0f / std::sqrt(static_cast<float>(kD));
  auto scan = [&] { CK(routing_scores(s, qf, doff, keys, KeyType::BF16, dcd, scores, nullptr, st)); };
  auto layer = [&] {
    CK(fold_router_queries(dq, T, kH, kHk, kD, scale, false, qf, st));
    CK(fill(scores, a.queries * r.docs, kLowestScore, st));
    scan();
    CK(top_k(scores, a.queries, r.docs, a.top_k, top_i, top_s, ws, st));
  };
  r.layer_ms = best_ms(st, a.reps, layer);
  r.scan_ms = best_ms(st, a.reps, scan);
  r.scan_gbs = static_cast<double>(kHk * r.chunks * kD * sizeof(bf16_t)) / (r.scan_ms * 1e6);
  for (void* p : {static_cast<void*>(keys), static_cast<void*>(dq), static_cast<void*>(qf), static_cast<void*>(dcd),
                  static_cast<void*>(doff), static_cast<void*>(scores), static_cast<void*>(top_s),
                  static_cast<void*>(top_i), ws})
    CK(cudaFree(p));
  return r;
}

struct AttnResult {
  std::string name;
  double ms = 0, tflops = 0;
};

// Query blocks of lq rows over [template; n_chunks chunks; block] keys, causal or not.
AttnResult bench_attention(const std::string& name, int64_t B, int64_t lq, int64_t n_chunks, bool causal,
                           cudaStream_t st, int reps) {
  const int64_t lk = kTpl + n_chunks + lq;
  std::vector<int32_t> cu_q, cu_k;
  for (int64_t b = 0; b <= B; ++b) cu_q.push_back(static_cast<int32_t>(b * lq)), cu_k.push_back(static_cast<int32_t>(b * lk));
  auto *q = dev_alloc<bf16_t>(static_cast<size_t>(B * lq * kH * kD)), *o = dev_alloc<bf16_t>(static_cast<size_t>(B * lq * kH * kD));
  auto *k = dev_alloc<bf16_t>(static_cast<size_t>(B * lk * kHk * kD)), *v = dev_alloc<bf16_t>(static_cast<size_t>(B * lk * kHk * kD));
  fill_random_bf16(q, static_cast<size_t>(B * lq * kH * kD), 3);
  fill_random_bf16(k, static_cast<size_t>(B * lk * kHk * kD), 4);
  fill_random_bf16(v, static_cast<size_t>(B * lk * kHk * kD), 5);
  auto *dq = dev_copy(cu_q), *dk = dev_copy(cu_k);
  AttentionShape s;
  s.batch = B, s.q_heads = kH, s.kv_heads = kHk, s.head_dim = kD, s.max_q = lq, s.causal = causal;
  s.scale = 1.0f / std::sqrt(static_cast<float>(kD));
  AttnResult r;
  r.name = name;
  r.ms = best_ms(st, reps, [&] { CK(attention(s, q, k, v, dq, dk, nullptr, o, st)); });
  double pairs = 0;  // (query row, key) pairs attended
  for (int64_t i = 0; i < lq; ++i) pairs += static_cast<double>(causal ? lk - lq + i + 1 : lk);
  r.tflops = 4.0 * kH * kD * pairs * static_cast<double>(B) / (r.ms * 1e9);
  for (void* p : {static_cast<void*>(q), static_cast<void*>(o), static_cast<void*>(k), static_cast<void*>(v),
                  static_cast<void*>(dq), static_cast<void*>(dk)})
    CK(cudaFree(p));
  return r;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at < s.size()) {
    const size_t end = s.find(',', at);
    out.push_back(std::stoll(s.substr(at, end == std::string::npos ? std::string::npos : end - at)));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--out") a.out = v;
    else if (k == "--routing-tokens") a.routing_tokens = std::stoll(v);
    else if (k == "--queries") a.queries = std::stoll(v);
    else if (k == "--top-k") a.top_k = std::stoi(v);
    else if (k == "--reps") a.reps = std::stoi(v);
    else if (k == "--scales") a.scales = parse_list(v);
    else {
      std::fprintf(stderr, "usage: gpu_bench [--out DIR] [--routing-tokens N] [--queries B] [--top-k K] [--reps N] "
                           "[--scales 1000000,10000000,100000000]\n");
      return 2;
    }
  }
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::fprintf(stderr, "gpu_bench: no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t st, copy;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  CK(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking));

  // Device copy bandwidth (read + write bytes) and pinned host-to-device bandwidth.
  const size_t big = size_t{1} << 30;
  char *d0 = dev_alloc<char>(big), *d1 = dev_alloc<char>(big);
  CK(cudaMemset(d0, 1, big));
  const double d2d_ms = best_ms(st, a.reps, [&] { CK(cudaMemcpyAsync(d1, d0, big, cudaMemcpyDeviceToDevice, st)); });
  const double d2d_gbs = 2.0 * static_cast<double>(big) / (d2d_ms * 1e6);
  void* pinned = nullptr;
  CK(cudaHostAlloc(&pinned, big, cudaHostAllocDefault));
  std::fill(static_cast<char*>(pinned), static_cast<char*>(pinned) + big, 1);
  const double h2d_ms = best_ms(copy, a.reps, [&] { CK(cudaMemcpyAsync(d1, pinned, big, cudaMemcpyHostToDevice, copy)); });
  const double h2d_gbs = static_cast<double>(big) / (h2d_ms * 1e6);
  CK(cudaFreeHost(pinned));
  CK(cudaFree(d0));
  CK(cudaFree(d1));

  std::vector<RoutingResult> routing;
  for (int64_t tokens : a.scales) routing.push_back(bench_routing(a, tokens, st));

  // Fetch of the selected documents' content K/V from pinned host memory ([Hk, C, D] per tensor,
  // 1M-token bank) on the copy stream: top-k documents of 16 chunks, and 1024 documents for a
  // bandwidth figure.
  const int64_t C = 1000000 / kP;
  bf16_t *hk = nullptr, *hv = nullptr;
  CK(cudaHostAlloc(reinterpret_cast<void**>(&hk), static_cast<size_t>(kHk * C * kD) * sizeof(bf16_t), cudaHostAllocDefault));
  CK(cudaHostAlloc(reinterpret_cast<void**>(&hv), static_cast<size_t>(kHk * C * kD) * sizeof(bf16_t), cudaHostAllocDefault));
  std::fill(hk, hk + kHk * C * kD, float_to_bf16(0.5f));
  std::fill(hv, hv + kHk * C * kD, float_to_bf16(0.25f));
  auto fetch_case = [&](int64_t docs) {
    std::vector<CopySegment> segs;
    for (int64_t d = 0; d < docs; ++d) segs.push_back({(d * 37 % (C / kDocChunks)) * kDocChunks, kDocChunks, d * kDocChunks});
    const int64_t rows = docs * kDocChunks;
    auto *sk = dev_alloc<bf16_t>(static_cast<size_t>(kHk * rows * kD)), *sv = dev_alloc<bf16_t>(static_cast<size_t>(kHk * rows * kD));
    const RowSource src{hk, hv, kD, C * kD};
    const double ms = best_ms(copy, a.reps, [&] {
      CK(fetch_rows(src, segs.data(), static_cast<int64_t>(segs.size()), kHk, kD, rows, sk, sv, copy));
    });
    CK(cudaFree(sk));
    CK(cudaFree(sv));
    return std::pair{ms, 2.0 * static_cast<double>(kHk * rows * kD * sizeof(bf16_t)) / (ms * 1e6)};
  };
  const auto [fetch_topk_ms, fetch_topk_gbs] = fetch_case(a.top_k);
  const auto [fetch_bulk_ms, fetch_bulk_gbs] = fetch_case(1024);
  CK(cudaFreeHost(hk));
  CK(cudaFreeHost(hv));

  std::vector<AttnResult> attn = {
      bench_attention("prefill B=1 q=4096 chunks=256 causal", 1, 4096, 256, true, st, a.reps),
      bench_attention("prefill B=8 q=512 chunks=256 causal", 8, 512, 256, true, st, a.reps),
      bench_attention("decode B=64 q=1 ctx=4096+256", 64, 1, 256 + 4095, false, st, a.reps),
  };

  // Table
  std::printf("device: %s (sm_%d%d, %d SMs, %.1f GiB)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  std::printf("device copy (read+write): %.1f GB/s   pinned H2D: %.1f GB/s\n", d2d_gbs, h2d_gbs);
  std::printf("%-12s %10s %10s %10s %12s %12s %10s %12s\n", "tokens", "chunks", "docs", "scan ms", "scan GB/s",
              "of copy bw", "layer ms", "x18 ms");
  for (const auto& r : routing)
    std::printf("%-12lld %10lld %10lld %10.3f %12.1f %11.1f%% %10.3f %12.2f\n", static_cast<long long>(r.tokens),
                static_cast<long long>(r.chunks), static_cast<long long>(r.docs), r.scan_ms, r.scan_gbs,
                100.0 * r.scan_gbs / d2d_gbs, r.layer_ms, r.layer_ms * kLayers);
  std::printf("fetch top-%d docs (K+V): %.3f ms, %.2f GB/s; 1024 docs: %.3f ms, %.2f GB/s (%.1f%% of H2D)\n", a.top_k,
              fetch_topk_ms, fetch_topk_gbs, fetch_bulk_ms, fetch_bulk_gbs, 100.0 * fetch_bulk_gbs / h2d_gbs);
  for (const auto& r : attn) std::printf("attention %-40s %9.3f ms %8.2f TFLOP/s\n", r.name.c_str(), r.ms, r.tflops);

  // JSON: results/gpu/<device>.json
  std::string dev = prop.name;
  for (auto& ch : dev)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  const std::string path = a.out + "/" + dev + ".json";
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "gpu_bench: cannot write %s\n", path.c_str());
    return 1;
  }
  std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"compute_capability\": \"%d.%d\",\n  \"sms\": %d,\n", prop.name,
               prop.major, prop.minor, prop.multiProcessorCount);
  std::fprintf(f, "  \"config\": {\"P\": %lld, \"kv_heads\": %lld, \"head_dim\": %lld, \"q_heads\": %lld, "
                  "\"routing_tokens\": %lld, \"queries\": %lld, \"top_k\": %d, \"doc_chunks\": %lld, \"key_dtype\": \"bf16\"},\n",
               static_cast<long long>(kP), static_cast<long long>(kHk), static_cast<long long>(kD),
               static_cast<long long>(kH), static_cast<long long>(a.routing_tokens), static_cast<long long>(a.queries),
               a.top_k, static_cast<long long>(kDocChunks));
  std::fprintf(f, "  \"device_copy_gbs_read_plus_write\": %.2f,\n  \"h2d_pinned_gbs\": %.2f,\n  \"routing\": [\n", d2d_gbs,
               h2d_gbs);
  for (size_t i = 0; i < routing.size(); ++i) {
    const auto& r = routing[i];
    std::fprintf(f, "    {\"tokens\": %lld, \"chunks\": %lld, \"docs\": %lld, \"scan_ms\": %.4f, \"scan_gbs\": %.2f, "
                    "\"scan_fraction_of_copy_bw\": %.4f, \"layer_ms\": %.4f, \"x18_layers_ms\": %.3f}%s\n",
                 static_cast<long long>(r.tokens), static_cast<long long>(r.chunks), static_cast<long long>(r.docs),
                 r.scan_ms, r.scan_gbs, r.scan_gbs / d2d_gbs, r.layer_ms, r.layer_ms * kLayers,
                 i + 1 < routing.size() ? "," : "");
  }
  std::fprintf(f, "  ],\n  \"fetch\": {\"topk_docs\": %d, \"topk_ms\": %.4f, \"topk_gbs\": %.3f, \"bulk_docs\": 1024, "
                  "\"bulk_ms\": %.4f, \"bulk_gbs\": %.3f, \"bulk_fraction_of_h2d\": %.4f},\n  \"attention\": [\n",
               a.top_k, fetch_topk_ms, fetch_topk_gbs, fetch_bulk_ms, fetch_bulk_gbs, fetch_bulk_gbs / h2d_gbs);
  for (size_t i = 0; i < attn.size(); ++i)
    std::fprintf(f, "    {\"case\": \"%s\", \"ms\": %.4f, \"tflops\": %.3f}%s\n", attn[i].name.c_str(), attn[i].ms,
                 attn[i].tflops, i + 1 < attn.size() ? "," : "");
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
