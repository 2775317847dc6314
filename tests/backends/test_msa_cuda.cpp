// Stage-2 kernels of backends/msa/cuda. CpuRef: the C++ references against naive loops written
// from msa-reference §6.3 / §6.6 (every machine). Gpu: each CUDA kernel against its reference
// (only where the library was built with nvcc and a device exists; skipped visibly otherwise).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/msa/cuda/msa_cuda_ref.h"
#ifdef MSABENCH_HAVE_CUDA
#include "backends/msa/cuda/msa_cuda.h"
#endif

using namespace msabench::cuda;

namespace {

std::vector<float> randn(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
std::vector<bf16_t> to_bf16(const std::vector<float>& v) {
  std::vector<bf16_t> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), float_to_bf16);
  return out;
}

// A bank tile: documents of 0..9 chunks (document 2 has none), keys [Hk, C, D].
struct Bank {
  int64_t Hk = 0, D = 0, C = 0, N = 0;
  std::vector<int32_t> chunk_doc;
  std::vector<int64_t> first, count;
  std::vector<float> keys;
};
Bank make_bank(int64_t Hk, int64_t D, int64_t N, uint64_t seed) {
  Bank b;
  b.Hk = Hk, b.D = D, b.N = N;
  std::mt19937_64 rng(seed);
  for (int64_t d = 0; d < N; ++d) {
    const int64_t n = d == 2 ? 0 : static_cast<int64_t>(rng() % 10);
    b.first.push_back(b.C);
    b.count.push_back(n);
    for (int64_t j = 0; j < n; ++j) b.chunk_doc.push_back(static_cast<int32_t>(d));
    b.C += n;
  }
  b.keys = randn(static_cast<size_t>(Hk * b.C * D), seed + 1);
  return b;
}

// Query 1 has no routing token.
struct Queries {
  int64_t B = 0, H = 0, T = 0;
  std::vector<int32_t> off;
  std::vector<float> q;  // [T, H, D]
};
Queries make_queries(int64_t H, int64_t D, std::vector<int32_t> lens, uint64_t seed) {
  Queries qs;
  qs.B = static_cast<int64_t>(lens.size()), qs.H = H;
  qs.off.push_back(0);
  for (int32_t n : lens) qs.off.push_back(qs.off.back() + n);
  qs.T = qs.off.back();
  qs.q = randn(static_cast<size_t>(qs.T * H * D), seed);
  return qs;
}

void expect_near_rel(const std::vector<float>& a, const std::vector<float>& b, float rel, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    ASSERT_NEAR(a[i], b[i], rel * std::max(1.0f, std::fabs(b[i]))) << what << " at " << i;
  }
}

// Naive §6.3: per query, chunk: max over tokens of the mean over heads of scale * q_h . k_g(h);
// per document the max over its chunks.
std::vector<float> naive_doc_scores(const Bank& bk, const Queries& qs, const std::vector<float>& keys, float scale) {
  const int64_t G = qs.H / bk.Hk, D = bk.D;
  std::vector<float> out(static_cast<size_t>(qs.B * bk.N), kLowestScore);
  for (int64_t b = 0; b < qs.B; ++b)
    for (int64_t c = 0; c < bk.C; ++c) {
      float best = kLowestScore;
      for (int64_t t = qs.off[b]; t < qs.off[b + 1]; ++t) {
        double mean = 0;
        for (int64_t h = 0; h < qs.H; ++h) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += static_cast<double>(qs.q[(t * qs.H + h) * D + d]) * keys[((h / G) * bk.C + c) * D + d];
          mean += dot * scale / static_cast<double>(qs.H);
        }
        best = std::max(best, static_cast<float>(mean));
      }
      float& o = out[b * bk.N + bk.chunk_doc[c]];
      o = std::max(o, best);
    }
  return out;
}

std::vector<float> ref_doc_scores(const Bank& bk, const Queries& qs, const void* keys, KeyType kt, float scale,
                                  std::vector<float>* chunk_scores = nullptr) {
  std::vector<float> qf(static_cast<size_t>(qs.T * bk.Hk * bk.D));
  fold_router_queries_ref(qs.q.data(), qs.T, qs.H, bk.Hk, bk.D, scale, false, qf.data());
  RoutingShape s{qs.B, bk.Hk, bk.D, bk.C, bk.C * bk.D, bk.N};
  std::vector<float> out(static_cast<size_t>(qs.B * bk.N), kLowestScore);
  if (chunk_scores) chunk_scores->assign(static_cast<size_t>(qs.B * bk.C), 0.0f);
  routing_scores_ref(s, qf.data(), qs.off.data(), keys, kt, bk.chunk_doc.data(), out.data(),
                     chunk_scores ? chunk_scores->data() : nullptr);
  return out;
}

// Scores with many exact ties and invalid entries.
std::vector<float> tie_scores(int64_t B, int64_t N, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> s(static_cast<size_t>(B * N));
  for (auto& x : s) {
    const auto r = rng() % 100;
    x = r < 5 ? kLowestScore : r < 8 ? -2e9f : static_cast<float>(static_cast<int>(rng() % 50)) * 0.25f;
  }
  return s;
}

void naive_top_k(const std::vector<float>& s, int64_t B, int64_t N, int k, std::vector<int32_t>& ids,
                 std::vector<float>& sc) {
  ids.assign(static_cast<size_t>(B * k), -1);
  sc.assign(static_cast<size_t>(B * k), kLowestScore);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> order;
    for (int64_t i = 0; i < N; ++i)
      if (s[b * N + i] > kValidScore) order.push_back(static_cast<int32_t>(i));
    std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return s[b * N + x] > s[b * N + y]; });
    for (int j = 0; j < k && j < static_cast<int>(order.size()); ++j) {
      ids[b * k + j] = order[j];
      sc[b * k + j] = s[b * N + order[j]];
    }
  }
}

// One assembled context: template [Hk, n_tpl, D], bank K/V [Hk, C, D], query K/V [total_q, Hk, D].
struct Context {
  int64_t Hk = 2, D = 64, n_tpl = 3, B = 3;
  Bank bank;
  std::vector<bf16_t> tpl_k, tpl_v, bank_k, bank_v, q_k, q_v;
  std::vector<int32_t> cu_q, selected;
  int k = 4;
  ContextPlan plan;
};
Context make_context(uint64_t seed) {
  Context c;
  c.bank = make_bank(c.Hk, c.D, 40, seed);
  const int64_t C = c.bank.C;
  c.tpl_k = to_bf16(randn(static_cast<size_t>(c.Hk * c.n_tpl * c.D), seed + 2));
  c.tpl_v = to_bf16(randn(c.tpl_k.size(), seed + 3));
  c.bank_k = to_bf16(randn(static_cast<size_t>(c.Hk * C * c.D), seed + 4));
  c.bank_v = to_bf16(randn(c.bank_k.size(), seed + 5));
  c.cu_q = {0, 5, 6, 13};
  c.q_k = to_bf16(randn(static_cast<size_t>(13 * c.Hk * c.D), seed + 6));
  c.q_v = to_bf16(randn(c.q_k.size(), seed + 7));
  // query 0: unsorted with a chunkless document (2) and a repeat; query 1: nothing; query 2: two docs
  c.selected = {17, 2, 5, 17, -1, -1, -1, -1, 39, 0, -1, -1};
  c.plan = plan_context(c.selected.data(), c.B, c.k, c.bank.first.data(), c.bank.count.data(), c.n_tpl, c.cu_q.data());
  return c;
}
// Sources of the three segment lists.
RowSource tpl_src(const Context& c) { return {c.tpl_k.data(), c.tpl_v.data(), c.D, c.n_tpl * c.D}; }
RowSource bank_src(const Context& c) { return {c.bank_k.data(), c.bank_v.data(), c.D, c.bank.C * c.D}; }
RowSource query_src(const Context& c) { return {c.q_k.data(), c.q_v.data(), c.Hk * c.D, c.D}; }

void assemble_ref(const Context& c, std::vector<bf16_t>& k, std::vector<bf16_t>& v) {
  k.assign(static_cast<size_t>(c.plan.total_k * c.Hk * c.D), 0);
  v.assign(k.size(), 0);
  gather_rows_ref(tpl_src(c), c.plan.tpl.data(), static_cast<int64_t>(c.plan.tpl.size()), c.Hk, c.D, k.data(), v.data());
  gather_rows_ref(bank_src(c), c.plan.chunks.data(), static_cast<int64_t>(c.plan.chunks.size()), c.Hk, c.D, k.data(),
                  v.data());
  gather_rows_ref(query_src(c), c.plan.query.data(), static_cast<int64_t>(c.plan.query.size()), c.Hk, c.D, k.data(),
                  v.data());
}

struct Attn {
  AttentionShape s;
  std::vector<int32_t> cu_q, cu_k;
  std::vector<bf16_t> q, k, v;
  std::vector<uint8_t> valid;
};
// Query blocks of the given lengths over key lists of template + chunks + the block (§6.6).
Attn make_attn(int64_t H, int64_t Hk, int64_t D, const std::vector<int32_t>& lq, const std::vector<int32_t>& lk,
               uint64_t seed) {
  Attn a;
  a.s.batch = static_cast<int64_t>(lq.size()), a.s.q_heads = H, a.s.kv_heads = Hk, a.s.head_dim = D;
  a.s.scale = 1.0f / std::sqrt(static_cast<float>(D));
  a.cu_q = {0};
  a.cu_k = {0};
  for (size_t b = 0; b < lq.size(); ++b) {
    a.cu_q.push_back(a.cu_q.back() + lq[b]);
    a.cu_k.push_back(a.cu_k.back() + lk[b]);
    a.s.max_q = std::max<int64_t>(a.s.max_q, lq[b]);
  }
  a.q = to_bf16(randn(static_cast<size_t>(a.cu_q.back() * H * D), seed));
  a.k = to_bf16(randn(static_cast<size_t>(a.cu_k.back() * Hk * D), seed + 1));
  a.v = to_bf16(randn(a.k.size(), seed + 2));
  std::mt19937_64 rng(seed + 3);
  for (int32_t j = 0; j < a.cu_k.back(); ++j) a.valid.push_back(rng() % 5 != 0);
  return a;
}
std::vector<bf16_t> run_attention_ref(const Attn& a, bool masked) {
  std::vector<bf16_t> o(a.q.size());
  attention_ref(a.s, a.q.data(), a.k.data(), a.v.data(), a.cu_q.data(), a.cu_k.data(), masked ? a.valid.data() : nullptr,
                o.data());
  return o;
}
std::vector<float> as_float(const std::vector<bf16_t>& v) {
  std::vector<float> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), bf16_to_float);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- CPU references

TEST(MsaCudaCpuRef, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(bf16_to_float(0x3f81)), 0x3f81);
  float halfway;  // 1 + 2^-8: exactly between 0x3f80 and 0x3f81, rounds to the even 0x3f80
  const uint32_t u = 0x3f808000u;
  std::memcpy(&halfway, &u, 4);
  EXPECT_EQ(float_to_bf16(halfway), 0x3f80);
}

TEST(MsaCudaCpuRef, RoutingScoresEqualNaiveHeadMeanTokenMaxDocMax) {
  const Bank bk = make_bank(4, 16, 30, 7);
  const Queries qs = make_queries(8, 16, {5, 0, 3}, 11);
  const float scale = 0.25f;
  std::vector<float> chunk;
  const auto ref = ref_doc_scores(bk, qs, bk.keys.data(), KeyType::F32, scale, &chunk);
  expect_near_rel(ref, naive_doc_scores(bk, qs, bk.keys, scale), 1e-4f, "fp32 keys");
  for (int64_t d = 0; d < bk.N; ++d) EXPECT_EQ(ref[1 * bk.N + d], kLowestScore) << "query without tokens";
  for (int64_t b = 0; b < qs.B; ++b) EXPECT_EQ(ref[b * bk.N + 2], kLowestScore) << "document without chunks";
  // bf16 keys score as their rounded values
  const auto kb = to_bf16(bk.keys);
  expect_near_rel(ref_doc_scores(bk, qs, kb.data(), KeyType::BF16, scale), naive_doc_scores(bk, qs, as_float(kb), scale),
                  1e-4f, "bf16 keys");
}

TEST(MsaCudaCpuRef, RoutingScoresAccumulateTileByTile) {
  const Bank bk = make_bank(2, 8, 25, 3);
  const Queries qs = make_queries(4, 8, {4, 2}, 5);
  const auto whole = ref_doc_scores(bk, qs, bk.keys.data(), KeyType::F32, 1.0f);
  std::vector<float> qf(static_cast<size_t>(qs.T * bk.Hk * bk.D)), tiled(whole.size(), kLowestScore);
  fold_router_queries_ref(qs.q.data(), qs.T, qs.H, bk.Hk, bk.D, 1.0f, false, qf.data());
  for (int64_t c0 = 0; c0 < bk.C; c0 += 16) {
    RoutingShape s{qs.B, bk.Hk, bk.D, std::min<int64_t>(16, bk.C - c0), bk.C * bk.D, bk.N};
    routing_scores_ref(s, qf.data(), qs.off.data(), bk.keys.data() + c0 * bk.D, KeyType::F32,
                       bk.chunk_doc.data() + c0, tiled.data(), nullptr);
  }
  EXPECT_EQ(tiled, whole);
}

TEST(MsaCudaCpuRef, FoldNormalizesEachHeadForCosine) {
  const int64_t H = 4, Hk = 2, D = 8;
  auto q = randn(static_cast<size_t>(H * D), 9);
  std::vector<float> out(static_cast<size_t>(Hk * D));
  fold_router_queries_ref(q.data(), 1, H, Hk, D, 1.0f, true, out.data());
  for (int64_t d = 0; d < D; ++d) {
    float want = 0;
    for (int64_t h = 0; h < 2; ++h) {
      float n = 0;
      for (int64_t e = 0; e < D; ++e) n += q[h * D + e] * q[h * D + e];
      want += q[h * D + d] / std::sqrt(n);
    }
    EXPECT_NEAR(out[d], want / H, 1e-6f);
  }
}

TEST(MsaCudaCpuRef, TopKDescendingTiesToLowerIdInvalidNeverSelected) {
  for (auto [N, k] : {std::pair<int64_t, int>{1, 1}, {7, 16}, {300, 16}, {5000, 64}}) {
    const auto s = tie_scores(3, N, 100 + N);
    std::vector<int32_t> ids(static_cast<size_t>(3 * k)), nid;
    std::vector<float> sc(ids.size()), nsc;
    top_k_ref(s.data(), 3, N, k, ids.data(), sc.data());
    naive_top_k(s, 3, N, k, nid, nsc);
    EXPECT_EQ(ids, nid) << "N=" << N << " k=" << k;
    EXPECT_EQ(sc, nsc) << "N=" << N << " k=" << k;
  }
}

TEST(MsaCudaCpuRef, ContextIsTemplateThenSelectedChunksInIdOrderThenQuery) {
  const Context c = make_context(21);
  std::vector<bf16_t> k, v;
  assemble_ref(c, k, v);
  const int64_t Hk = c.Hk, D = c.D;
  int64_t at = 0;
  auto expect_row = [&](const bf16_t* sk, const bf16_t* sv, int64_t row_stride, int64_t head_stride, int64_t r) {
    for (int64_t g = 0; g < Hk; ++g)
      for (int64_t d = 0; d < D; ++d) {
        ASSERT_EQ(k[(at * Hk + g) * D + d], sk[r * row_stride + g * head_stride + d]) << "row " << at;
        ASSERT_EQ(v[(at * Hk + g) * D + d], sv[r * row_stride + g * head_stride + d]) << "row " << at;
      }
    ++at;
  };
  const std::vector<std::vector<int32_t>> docs = {{5, 17}, {}, {0, 39}};  // sorted, unique, chunkless 2 dropped
  for (int64_t b = 0; b < c.B; ++b) {
    ASSERT_EQ(c.plan.cu_k[b], at);
    for (int64_t t = 0; t < c.n_tpl; ++t) expect_row(c.tpl_k.data(), c.tpl_v.data(), D, c.n_tpl * D, t);
    for (int32_t d : docs[b])
      for (int64_t j = 0; j < c.bank.count[d]; ++j)
        expect_row(c.bank_k.data(), c.bank_v.data(), D, c.bank.C * D, c.bank.first[d] + j);
    for (int32_t t = c.cu_q[b]; t < c.cu_q[b + 1]; ++t) expect_row(c.q_k.data(), c.q_v.data(), Hk * D, D, t);
  }
  EXPECT_EQ(c.plan.total_k, at);
}

TEST(MsaCudaCpuRef, FetchToStagingThenGatherEqualsDirectGather) {
  const Context c = make_context(23);
  int64_t rows = 0;
  std::vector<CopySegment> to_staging, from_staging;
  for (const auto& s : c.plan.chunks) {
    to_staging.push_back({s.src_row, s.rows, rows});
    from_staging.push_back({rows, s.rows, s.dst_row});
    rows += s.rows;
  }
  std::vector<bf16_t> sk(static_cast<size_t>(c.Hk * rows * c.D)), sv(sk.size());
  fetch_rows_ref(bank_src(c), to_staging.data(), static_cast<int64_t>(to_staging.size()), c.Hk, c.D, rows, sk.data(),
                 sv.data());
  std::vector<bf16_t> k1(static_cast<size_t>(c.plan.total_k * c.Hk * c.D)), v1(k1.size()), k2(k1.size()), v2(k1.size());
  gather_rows_ref(bank_src(c), c.plan.chunks.data(), static_cast<int64_t>(c.plan.chunks.size()), c.Hk, c.D, k1.data(),
                  v1.data());
  gather_rows_ref({sk.data(), sv.data(), c.D, rows * c.D}, from_staging.data(), static_cast<int64_t>(from_staging.size()),
                  c.Hk, c.D, k2.data(), v2.data());
  EXPECT_EQ(k1, k2);
  EXPECT_EQ(v1, v2);
}

TEST(MsaCudaCpuRef, CausalPrefillEqualsTokenByTokenDecode) {
  // 2 samples: 6 query rows over 3 + 4 + 6 keys, 1 row over 5 keys (decode shape)
  Attn a = make_attn(4, 2, 16, {6, 1}, {13, 5}, 31);
  const auto prefill = run_attention_ref(a, true);
  for (int64_t b = 0; b < a.s.batch; ++b) {
    const int32_t lq = a.cu_q[b + 1] - a.cu_q[b], lk = a.cu_k[b + 1] - a.cu_k[b];
    for (int32_t i = 0; i < lq; ++i) {
      // one query row over the keys it sees: the prefix up to lk - lq + i
      Attn d = a;
      d.s.batch = 1, d.s.max_q = 1;
      d.cu_q = {0, 1};
      d.cu_k = {0, lk - lq + i + 1};
      const int64_t row = a.cu_q[b] + i, HD = a.s.q_heads * a.s.head_dim, KD = a.s.kv_heads * a.s.head_dim;
      d.q.assign(a.q.begin() + row * HD, a.q.begin() + (row + 1) * HD);
      d.k.assign(a.k.begin() + a.cu_k[b] * KD, a.k.begin() + (a.cu_k[b] + d.cu_k[1]) * KD);
      d.v.assign(a.v.begin() + a.cu_k[b] * KD, a.v.begin() + (a.cu_k[b] + d.cu_k[1]) * KD);
      d.valid.assign(a.valid.begin() + a.cu_k[b], a.valid.begin() + a.cu_k[b] + d.cu_k[1]);
      const auto one = run_attention_ref(d, true);
      for (int64_t e = 0; e < HD; ++e) ASSERT_EQ(one[e], prefill[row * HD + e]) << "sample " << b << " row " << i;
    }
  }
}

TEST(MsaCudaCpuRef, GqaEqualsRepeatedKvHeadsAndMaskEqualsDroppedKeys) {
  Attn a = make_attn(4, 2, 16, {3}, {9}, 41);
  a.s.causal = false;
  // GQA: KV head g serves query heads 2g, 2g+1; repeating it to 4 heads gives the same output
  Attn m = a;
  m.s.kv_heads = 4;
  m.k.clear(), m.v.clear();
  for (int32_t j = 0; j < a.cu_k.back(); ++j)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t d = 0; d < 16; ++d) {
        m.k.push_back(a.k[(j * 2 + h / 2) * 16 + d]);
        m.v.push_back(a.v[(j * 2 + h / 2) * 16 + d]);
      }
  EXPECT_EQ(run_attention_ref(a, true), run_attention_ref(m, true));
  // masked keys: as if they were not there
  Attn dropped = a;
  dropped.k.clear(), dropped.v.clear();
  int32_t kept = 0;
  for (int32_t j = 0; j < a.cu_k.back(); ++j) {
    if (!a.valid[j]) continue;
    ++kept;
    dropped.k.insert(dropped.k.end(), a.k.begin() + j * 32, a.k.begin() + (j + 1) * 32);
    dropped.v.insert(dropped.v.end(), a.v.begin() + j * 32, a.v.begin() + (j + 1) * 32);
  }
  dropped.cu_k = {0, kept};
  EXPECT_EQ(run_attention_ref(a, true), run_attention_ref(dropped, false));
  // no visible key: zeros
  Attn none = a;
  std::fill(none.valid.begin(), none.valid.end(), 0);
  for (bf16_t x : run_attention_ref(none, true)) EXPECT_EQ(x, 0);
}

// ---------------------------------------------------------------- GPU

#ifdef MSABENCH_HAVE_CUDA
namespace {

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}
#define REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "skipped: no GPU (CUDA kernels compiled for " MSABENCH_CUDA_ARCHS ")"
#define CUDA_OK(x)                                          \
  do {                                                      \
    const cudaError_t err_ = (x);                           \
    ASSERT_EQ(err_, cudaSuccess) << cudaGetErrorString(err_); \
  } while (0)

template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    if (cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(1, n) * sizeof(T)) != cudaSuccess) p = nullptr;
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) {
    if (p && n) cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  std::vector<T> get() const {
    std::vector<T> v(n);
    if (n) cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
};

void gpu_routing(KeyType kt) {
  // 700 documents (chunks not a multiple of the 128-chunk tile), 32 query heads over 8 KV heads,
  // 37 tokens (passes of 16 plus a remainder), a query without tokens.
  const Bank bk = make_bank(8, 128, 700, 51);
  const Queries qs = make_queries(32, 128, {37, 0, 5}, 53);
  const float scale = 1.0f / std::sqrt(128.0f);
  const auto kb = to_bf16(bk.keys);
  const void* host_keys = kt == KeyType::F32 ? static_cast<const void*>(bk.keys.data()) : kb.data();
  std::vector<float> want_chunk;
  const auto want = ref_doc_scores(bk, qs, host_keys, kt, scale, &want_chunk);

  Dev<float> q(qs.q), qf(static_cast<size_t>(qs.T * 8 * 128)), docs(static_cast<size_t>(qs.B * bk.N)),
      chunk(static_cast<size_t>(qs.B * bk.C));
  Dev<int32_t> off(qs.off), cd(bk.chunk_doc);
  Dev<float> kf(bk.keys);
  Dev<bf16_t> kh(kb);
  const void* keys = kt == KeyType::F32 ? static_cast<const void*>(kf.p) : kh.p;
  CUDA_OK(fold_router_queries(q.p, qs.T, 32, 8, 128, scale, false, qf.p, nullptr));
  CUDA_OK(fill(docs.p, static_cast<int64_t>(docs.n), kLowestScore, nullptr));
  RoutingShape s{qs.B, 8, 128, bk.C, bk.C * 128, bk.N};
  CUDA_OK(routing_scores(s, qf.p, off.p, keys, kt, cd.p, docs.p, chunk.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  // fp32 accumulate in another order: relative 1e-4 of the score magnitude
  expect_near_rel(docs.get(), want, 1e-4f, "doc scores");
  expect_near_rel(chunk.get(), want_chunk, 1e-4f, "chunk scores");
}

}  // namespace

TEST(MsaCudaGpu, RoutingScoresBf16KeysMatchReference) {
  REQUIRE_GPU();
  gpu_routing(KeyType::BF16);
}

TEST(MsaCudaGpu, RoutingScoresFp32KeysMatchReference) {
  REQUIRE_GPU();
  gpu_routing(KeyType::F32);
}

TEST(MsaCudaGpu, FoldWithCosineMatchesReference) {
  REQUIRE_GPU();
  const int64_t T = 9, H = 32, Hk = 8, D = 128;
  const auto q = randn(static_cast<size_t>(T * H * D), 61);
  std::vector<float> want(static_cast<size_t>(T * Hk * D));
  fold_router_queries_ref(q.data(), T, H, Hk, D, 1.0f, true, want.data());
  Dev<float> dq(q), out(want.size());
  CUDA_OK(fold_router_queries(dq.p, T, H, Hk, D, 1.0f, true, out.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_near_rel(out.get(), want, 1e-5f, "folded queries");
}

TEST(MsaCudaGpu, TopKIsExactWithTiesAcrossBlocksAndStages) {
  REQUIRE_GPU();
  // 1: single block; 5000: two stages; 3M: three stages (millions of documents)
  for (auto [N, k] : {std::pair<int64_t, int>{7, 16}, {5000, 16}, {3000000, 16}, {100000, 1024}}) {
    const int64_t B = 2;
    const auto s = tie_scores(B, N, 200 + N);
    std::vector<int32_t> want_ids(static_cast<size_t>(B * k));
    std::vector<float> want_sc(want_ids.size());
    top_k_ref(s.data(), B, N, k, want_ids.data(), want_sc.data());
    Dev<float> ds(s), osc(want_sc.size());
    Dev<int32_t> oid(want_ids.size());
    Dev<char> ws(top_k_workspace_bytes(B, N, k));
    CUDA_OK(top_k(ds.p, B, N, k, oid.p, osc.p, ws.p, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT_EQ(oid.get(), want_ids) << "N=" << N << " k=" << k;
    EXPECT_EQ(osc.get(), want_sc) << "N=" << N << " k=" << k;
  }
}

TEST(MsaCudaGpu, GatherAndPinnedFetchAssembleTheReferenceContext) {
  REQUIRE_GPU();
  const Context c = make_context(71);
  std::vector<bf16_t> want_k, want_v;
  assemble_ref(c, want_k, want_v);
  Dev<bf16_t> tk(c.tpl_k), tv(c.tpl_v), qk(c.q_k), qv(c.q_v), ok(want_k.size()), ov(want_k.size());
  // bank K/V in mapped pinned host memory: the gather reads them over the bus
  bf16_t *hk = nullptr, *hv = nullptr;
  CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&hk), c.bank_k.size() * sizeof(bf16_t), cudaHostAllocMapped));
  CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&hv), c.bank_v.size() * sizeof(bf16_t), cudaHostAllocMapped));
  std::copy(c.bank_k.begin(), c.bank_k.end(), hk);
  std::copy(c.bank_v.begin(), c.bank_v.end(), hv);
  Dev<CopySegment> st(c.plan.tpl), sc(c.plan.chunks), sq(c.plan.query);
  CUDA_OK(gather_rows({tk.p, tv.p, c.D, c.n_tpl * c.D}, st.p, static_cast<int64_t>(st.n), c.Hk, c.D, ok.p, ov.p, nullptr));
  CUDA_OK(gather_rows({hk, hv, c.D, c.bank.C * c.D}, sc.p, static_cast<int64_t>(sc.n), c.Hk, c.D, ok.p, ov.p, nullptr));
  CUDA_OK(gather_rows({qk.p, qv.p, c.Hk * c.D, c.D}, sq.p, static_cast<int64_t>(sq.n), c.Hk, c.D, ok.p, ov.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_EQ(ok.get(), want_k);
  EXPECT_EQ(ov.get(), want_v);
  // async 2D copies on a copy stream into a staging buffer equal the reference fetch
  int64_t rows = 0;
  std::vector<CopySegment> segs;
  for (const auto& s : c.plan.chunks) segs.push_back({s.src_row, s.rows, rows}), rows += s.rows;
  std::vector<bf16_t> fk(static_cast<size_t>(c.Hk * rows * c.D)), fv(fk.size());
  fetch_rows_ref(bank_src(c), segs.data(), static_cast<int64_t>(segs.size()), c.Hk, c.D, rows, fk.data(), fv.data());
  Dev<bf16_t> gk(fk.size()), gv(fk.size());
  cudaStream_t copy;
  CUDA_OK(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking));
  CUDA_OK(fetch_rows({hk, hv, c.D, c.bank.C * c.D}, segs.data(), static_cast<int64_t>(segs.size()), c.Hk, c.D, rows,
                     gk.p, gv.p, copy));
  CUDA_OK(cudaStreamSynchronize(copy));
  cudaStreamDestroy(copy);
  EXPECT_EQ(gk.get(), fk);
  EXPECT_EQ(gv.get(), fv);
  cudaFreeHost(hk);
  cudaFreeHost(hv);
}

namespace {
void gpu_attention(Attn a, bool masked) {
  const auto want = as_float(run_attention_ref(a, masked));
  Dev<bf16_t> q(a.q), k(a.k), v(a.v), o(a.q.size());
  Dev<int32_t> cq(a.cu_q), ck(a.cu_k);
  Dev<uint8_t> valid(a.valid);
  CUDA_OK(attention(a.s, q.p, k.p, v.p, cq.p, ck.p, masked ? valid.p : nullptr, o.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  // bf16 output: one bf16 ulp (2^-8 relative) plus fp32 summation order
  const auto got = as_float(o.get());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-2f * std::max(1.0f, std::fabs(want[i]))) << "at " << i;
}
}  // namespace

TEST(MsaCudaGpu, AttentionPrefillGqaCausalMaskedMatchesReference) {
  REQUIRE_GPU();
  // MSA-4B heads (32 over 8, D 128); blocks of 1, 37 and 300 rows over 3 + chunks + block keys
  gpu_attention(make_attn(32, 8, 128, {37, 1, 300}, {37 + 3 + 64, 1 + 3, 300 + 3 + 700}, 81), true);
  gpu_attention(make_attn(32, 8, 128, {37, 1, 300}, {37 + 3 + 64, 1 + 3, 300 + 3 + 700}, 83), false);
  Attn small = make_attn(6, 2, 64, {10, 4}, {50, 4}, 85);  // G = 3 (rows per block not a power of 2), D 64
  gpu_attention(small, true);
}

TEST(MsaCudaGpu, AttentionDecodeWithoutCausalMaskMatchesReference) {
  REQUIRE_GPU();
  Attn a = make_attn(32, 8, 128, {1, 1, 3, 1}, {900, 17, 40, 1}, 91);
  a.s.causal = false;  // qa_mode decode: validity mask only (msa-reference §6.7)
  gpu_attention(a, true);
}
#endif  // MSABENCH_HAVE_CUDA

// `--gpu-status`: one line for scripts/test.sh (the GPU tests' skip reason or the device).
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--gpu-status") {
#ifdef MSABENCH_HAVE_CUDA
      int n = 0;
      cudaDeviceProp p{};
      if (cudaGetDeviceCount(&n) == cudaSuccess && n > 0 && cudaGetDeviceProperties(&p, 0) == cudaSuccess)
        std::printf("msa_cuda_tests: GPU %s (sm_%d%d)\n", p.name, p.major, p.minor);
      else
        std::printf("msa_cuda_tests: skipped: no GPU (CUDA kernels compiled for %s)\n", MSABENCH_CUDA_ARCHS);
#else
      std::printf("msa_cuda_tests: skipped: no GPU tests (built without nvcc: CPU references only)\n");
#endif
      return 0;
    }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
