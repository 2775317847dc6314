#include "core/model/routing_kernel.h"
// GCC 12 flags its own AVX-512 intrinsic headers (_mm512_undefined_*) as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "core/bf16.h"
#include "core/error.h"

namespace msabench {

namespace {

constexpr float kLowest = std::numeric_limits<float>::lowest();
constexpr int64_t B16 = RouterKeyIndex::kBlock;
constexpr int kTile = 8;  // query tokens per register tile (8 accumulators hide the FMA latency)

std::atomic<bool> g_portable{false};

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return yes && !g_portable.load();
}

uint16_t to_bf16(float x) { return float_to_bf16_bits(x); }
float from_bf16(uint16_t h) { return bf16_bits_to_float(h); }

// Runs f(i) for i in [0, n) on n threads (the calling thread takes i = 0).
template <class F>
void run_threads(int n, F&& f) {
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back([&f, i] { f(i); });
  f(0);
  for (auto& t : pool) t.join();
}

// ---- per-block kernels: cmax[q*16 + lane] = max over the query's tokens of q_t . key(lane)

bool has_vnni() {
  static const bool yes = __builtin_cpu_supports("avx512vnni");
  return yes && has_avx512();
}

__attribute__((target("avx512f,avx512bw"))) void decode_bf16_avx512(const uint16_t* s, int64_t dim, float* dst) {
  for (int64_t j = 0; j < dim; ++j) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(s + j * B16)));
    _mm512_store_ps(dst + j * B16, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
}

// TT query tokens against one fp32 block [dim][16]: one key load feeds TT broadcast FMAs.
template <int TT>
__attribute__((target("avx512f,avx512bw"))) inline void tile_f32(const float* kb, int64_t dim, const float* qt,
                                                                   const int32_t* tq, float* cmax) {
  __m512 acc[TT];
#pragma GCC unroll 8
  for (int u = 0; u < TT; ++u) acc[u] = _mm512_setzero_ps();
  for (int64_t j = 0; j < dim; ++j) {
    const __m512 kv = _mm512_load_ps(kb + j * B16);
#pragma GCC unroll 8
    for (int u = 0; u < TT; ++u) acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(qt[u * dim + j]), kv, acc[u]);
  }
#pragma GCC unroll 8
  for (int u = 0; u < TT; ++u) {
    float* m = cmax + static_cast<int64_t>(tq[u]) * B16;
    _mm512_store_ps(m, _mm512_max_ps(_mm512_load_ps(m), acc[u]));
  }
}

__attribute__((target("avx512f,avx512bw"))) void block_f32_avx512(const float* kb, int64_t dim, const float* q,
                                                                    int64_t T, const int32_t* tq, float* cmax) {
  int64_t t = 0;
  for (; t + kTile <= T; t += kTile) tile_f32<kTile>(kb, dim, q + t * dim, tq + t, cmax);
  switch (T - t) {
    case 1: tile_f32<1>(kb, dim, q + t * dim, tq + t, cmax); break;
    case 2: tile_f32<2>(kb, dim, q + t * dim, tq + t, cmax); break;
    case 3: tile_f32<3>(kb, dim, q + t * dim, tq + t, cmax); break;
    case 4: tile_f32<4>(kb, dim, q + t * dim, tq + t, cmax); break;
    case 5: tile_f32<5>(kb, dim, q + t * dim, tq + t, cmax); break;
    case 6: tile_f32<6>(kb, dim, q + t * dim, tq + t, cmax); break;
    case 7: tile_f32<7>(kb, dim, q + t * dim, tq + t, cmax); break;
    default: break;
  }
}

// int8: keys stored as u8 (k + 128) in groups of 4 dimensions per chunk lane, queries quantized to
// s8 per token; vpdpbusd sums 4 products per lane, and sum((k + 128) q) - 128 sum(q) = sum(k q).
struct QuantQuery {
  std::vector<int32_t> packed;  // [T][dim4 / 4], 4 s8 per int32
  std::vector<float> scale;     // [T]
  std::vector<int32_t> corr;    // [T] 128 * sum(q)
};

template <int TT>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void tile_u8(const uint8_t* kb, int64_t groups,
                                                                             const QuantQuery& qq, int64_t t0,
                                                                             const int32_t* tq, float* cmax) {
  __m512i acc[TT];
#pragma GCC unroll 8
  for (int u = 0; u < TT; ++u) acc[u] = _mm512_setzero_si512();
  const int32_t* qp = qq.packed.data() + t0 * groups;
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i kv = _mm512_load_si512(kb + g * 64);
#pragma GCC unroll 8
    for (int u = 0; u < TT; ++u) acc[u] = _mm512_dpbusd_epi32(acc[u], kv, _mm512_set1_epi32(qp[u * groups + g]));
  }
#pragma GCC unroll 8
  for (int u = 0; u < TT; ++u) {
    const __m512i exact = _mm512_sub_epi32(acc[u], _mm512_set1_epi32(qq.corr[t0 + u]));
    const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), _mm512_set1_ps(qq.scale[t0 + u]));
    float* m = cmax + static_cast<int64_t>(tq[t0 + u]) * B16;
    _mm512_store_ps(m, _mm512_max_ps(_mm512_load_ps(m), v));
  }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void block_u8_vnni(const uint8_t* kb, int64_t groups,
                                                                           const QuantQuery& qq, int64_t T,
                                                                           const int32_t* tq, float* cmax) {
  int64_t t = 0;
  for (; t + kTile <= T; t += kTile) tile_u8<kTile>(kb, groups, qq, t, tq, cmax);
  switch (T - t) {
    case 1: tile_u8<1>(kb, groups, qq, t, tq, cmax); break;
    case 2: tile_u8<2>(kb, groups, qq, t, tq, cmax); break;
    case 3: tile_u8<3>(kb, groups, qq, t, tq, cmax); break;
    case 4: tile_u8<4>(kb, groups, qq, t, tq, cmax); break;
    case 5: tile_u8<5>(kb, groups, qq, t, tq, cmax); break;
    case 6: tile_u8<6>(kb, groups, qq, t, tq, cmax); break;
    case 7: tile_u8<7>(kb, groups, qq, t, tq, cmax); break;
    default: break;
  }
}

// Portable versions of the same arithmetic (int8: the same integer sums, so equal results).
void block_u8_generic(const uint8_t* kb, int64_t groups, const QuantQuery& qq, int64_t T, const int32_t* tq,
                      float* cmax) {
  for (int64_t t = 0; t < T; ++t) {
    int32_t acc[B16] = {};
    const int32_t* qp = qq.packed.data() + t * groups;
    for (int64_t g = 0; g < groups; ++g) {
      int8_t q4[4];
      std::memcpy(q4, &qp[g], 4);
      for (int64_t l = 0; l < B16; ++l)
        for (int i = 0; i < 4; ++i) acc[l] += static_cast<int32_t>(kb[g * 64 + l * 4 + i]) * q4[i];
    }
    float* m = cmax + static_cast<int64_t>(tq[t]) * B16;
    for (int64_t l = 0; l < B16; ++l)
      m[l] = std::max(m[l], static_cast<float>(acc[l] - qq.corr[t]) * qq.scale[t]);
  }
}

void decode_bf16_generic(const uint16_t* s, int64_t dim, float* dst) {
  for (int64_t i = 0; i < dim * B16; ++i) dst[i] = from_bf16(s[i]);
}

void block_f32_generic(const float* kb, int64_t dim, const float* q, int64_t T, const int32_t* tq, float* cmax) {
  for (int64_t t = 0; t < T; ++t) {
    float acc[B16] = {};
    const float* qt = q + t * dim;
    for (int64_t j = 0; j < dim; ++j)
      for (int64_t l = 0; l < B16; ++l) acc[l] += qt[j] * kb[j * B16 + l];
    float* m = cmax + static_cast<int64_t>(tq[t]) * B16;
    for (int64_t l = 0; l < B16; ++l) m[l] = std::max(m[l], acc[l]);
  }
}

QuantQuery quantize_queries(const float* q, int64_t T, int64_t dim, int64_t dim4) {
  QuantQuery qq;
  const int64_t groups = dim4 / 4;
  qq.packed.assign(static_cast<size_t>(T * groups), 0);
  qq.scale.resize(T);
  qq.corr.resize(T);
  for (int64_t t = 0; t < T; ++t) {
    float amax = 0;
    for (int64_t j = 0; j < dim; ++j) amax = std::max(amax, std::fabs(q[t * dim + j]));
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    qq.scale[t] = amax / 127.0f;
    std::vector<int8_t> qi(static_cast<size_t>(dim4), 0);
    int32_t sum = 0;
    for (int64_t j = 0; j < dim; ++j) {
      qi[j] = static_cast<int8_t>(std::clamp(std::nearbyint(q[t * dim + j] * inv), -127.0f, 127.0f));
      sum += qi[j];
    }
    std::memcpy(qq.packed.data() + t * groups, qi.data(), static_cast<size_t>(dim4));
    qq.corr[t] = 128 * sum;
  }
  return qq;
}

__attribute__((target("avx512f"))) double sum_avx512(const float* p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  double s = 0;
  for (float x : lanes) s += x;
  for (; i < n; ++i) s += p[i];
  return s;
}

double sum_generic(const float* p, int64_t n) {
  float a[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) a[l] += p[i + l];
  double s = 0;
  for (float x : a) s += x;
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace

// Page-aligned anonymous memory (transparent huge pages where the kernel allows), so 64-byte
// vector loads never split cache lines and a 100M-token scan walks few TLB entries.
struct RouterKeyIndex::Buffer {
  void* p = nullptr;
  size_t cap = 0;
  explicit Buffer(size_t bytes) { reserve(bytes); }
  ~Buffer() {
    if (p) munmap(p, cap);
  }
  void reserve(size_t bytes) {
    if (bytes <= cap) return;
    size_t want = std::max(bytes, cap * 2);
    want = (want + (2u << 20) - 1) / (2u << 20) * (2u << 20);
    void* q = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) throw Error("routing keys: cannot allocate " + std::to_string(want) + " bytes");
    madvise(q, want, MADV_HUGEPAGE);
    if (p) {
      std::memcpy(q, p, cap);
      munmap(p, cap);
    }
    p = q;
    cap = want;
  }
};

void use_portable_routing_kernels(bool on) { g_portable = on; }

KeyDtype parse_key_dtype(const std::string& s) {
  if (s == "fp32" || s == "f32" || s == "float32") return KeyDtype::F32;
  if (s == "bf16" || s == "bfloat16") return KeyDtype::BF16;
  if (s == "int8" || s == "i8") return KeyDtype::I8;
  throw Error("key_dtype must be fp32, bf16 or int8 (got '" + s + "')");
}

std::string key_dtype_name(KeyDtype d) { return d == KeyDtype::F32 ? "fp32" : d == KeyDtype::BF16 ? "bf16" : "int8"; }
int64_t key_element_bytes(KeyDtype d) { return d == KeyDtype::F32 ? 4 : d == KeyDtype::BF16 ? 2 : 1; }
// int8 rows are padded to whole groups of 4 dimensions (the vpdpbusd unit).
static int64_t stored_dim(KeyDtype d, int64_t dim) { return d == KeyDtype::I8 ? (dim + 3) / 4 * 4 : dim; }
int64_t router_key_bytes_per_chunk(KeyDtype d, int64_t dim) {
  return stored_dim(d, dim) * key_element_bytes(d) + (d == KeyDtype::I8 ? 4 : 0);
}

RouterKeyIndex::RouterKeyIndex(int64_t dim, KeyDtype dt, int64_t reserve_chunks)
    : dim_(dim), dtype_(dt) {
  if (dim < 1) throw Error("routing keys: dimension must be >= 1");
  const int64_t blocks = (std::max<int64_t>(reserve_chunks, 1) + B16 - 1) / B16;
  keys_ = std::make_unique<Buffer>(static_cast<size_t>(blocks * B16 * stored_dim(dt, dim) * key_element_bytes(dt)));
  scales_ = std::make_unique<Buffer>(static_cast<size_t>(blocks * B16 * sizeof(float)));
}
RouterKeyIndex::~RouterKeyIndex() = default;
RouterKeyIndex::RouterKeyIndex(RouterKeyIndex&&) noexcept = default;
RouterKeyIndex& RouterKeyIndex::operator=(RouterKeyIndex&&) noexcept = default;

int64_t RouterKeyIndex::bytes() const {
  const int64_t padded = (chunks_ + B16 - 1) / B16 * B16;
  return padded * router_key_bytes_per_chunk(dtype_, dim_);
}

// Byte offset of (chunk c, dimension j) in the key buffer.
static int64_t key_offset(KeyDtype dt, int64_t dim, int64_t c, int64_t j) {
  const int64_t blk = c / RouterKeyIndex::kBlock, lane = c % RouterKeyIndex::kBlock;
  const int64_t sd = stored_dim(dt, dim), es = key_element_bytes(dt);
  const int64_t base = blk * RouterKeyIndex::kBlock * sd * es;
  if (dt == KeyDtype::I8) return base + (j / 4) * 64 + lane * 4 + j % 4;
  return base + (j * RouterKeyIndex::kBlock + lane) * es;
}

void RouterKeyIndex::append(const float* rows, int64_t n) {
  const int64_t blocks = (chunks_ + n + B16 - 1) / B16;
  keys_->reserve(static_cast<size_t>(blocks * B16 * router_key_bytes_per_chunk(dtype_, dim_)));
  scales_->reserve(static_cast<size_t>(blocks * B16 * sizeof(float)));
  auto* scales = static_cast<float*>(scales_->p);
  auto* kbytes = static_cast<char*>(keys_->p);
  for (int64_t i = 0; i < n; ++i, ++chunks_) {
    const float* r = rows + i * dim_;
    if (dtype_ == KeyDtype::F32) {
      for (int64_t j = 0; j < dim_; ++j) std::memcpy(kbytes + key_offset(dtype_, dim_, chunks_, j), &r[j], 4);
    } else if (dtype_ == KeyDtype::BF16) {
      for (int64_t j = 0; j < dim_; ++j) {
        const uint16_t h = to_bf16(r[j]);
        std::memcpy(kbytes + key_offset(dtype_, dim_, chunks_, j), &h, 2);
      }
    } else {
      float amax = 0;
      for (int64_t j = 0; j < dim_; ++j) amax = std::max(amax, std::fabs(r[j]));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      scales[chunks_] = amax / 127.0f;
      for (int64_t j = 0; j < stored_dim(dtype_, dim_); ++j) {
        const float v = j < dim_ ? std::clamp(std::nearbyint(r[j] * inv), -127.0f, 127.0f) : 0.0f;
        kbytes[key_offset(dtype_, dim_, chunks_, j)] = static_cast<char>(static_cast<uint8_t>(static_cast<int>(v) + 128));
      }
    }
  }
}

std::vector<float> RouterKeyIndex::row(int64_t c) const {
  if (c < 0 || c >= chunks_) throw Error("routing keys: chunk out of range");
  std::vector<float> out(dim_);
  const auto* kbytes = static_cast<const char*>(keys_->p);
  for (int64_t j = 0; j < dim_; ++j) {
    const char* at = kbytes + key_offset(dtype_, dim_, c, j);
    if (dtype_ == KeyDtype::F32) {
      std::memcpy(&out[j], at, 4);
    } else if (dtype_ == KeyDtype::BF16) {
      uint16_t h;
      std::memcpy(&h, at, 2);
      out[j] = from_bf16(h);
    } else {
      out[j] = static_cast<float>(static_cast<int>(static_cast<uint8_t>(*at)) - 128) * static_cast<const float*>(scales_->p)[c];
    }
  }
  return out;
}

RouterKeyIndex RouterKeyIndex::from_tensor(const torch::Tensor& router_k, bool normalize, KeyDtype dt) {
  if (router_k.dim() != 3) throw Error("routing keys: expected [Hk, C, D]");
  auto k = router_k.to(torch::kCPU, torch::kFloat32);
  if (normalize) k = k / k.norm(2, -1, true).clamp_min(1e-12);
  const int64_t Hk = k.size(0), C = k.size(1), D = k.size(2);
  RouterKeyIndex ix(Hk * D, dt, C);
  const int64_t step = 65536;
  for (int64_t c0 = 0; c0 < C; c0 += step) {
    const int64_t n = std::min(step, C - c0);
    auto rows = k.narrow(1, c0, n).permute({1, 0, 2}).contiguous();  // [n, Hk, D]
    ix.append(rows.data_ptr<float>(), n);
  }
  return ix;
}

void RouterKeyIndex::scan(const float* q, int64_t T, const int32_t* tq, int64_t B, const std::vector<int64_t>& doc_end,
                          bool chunk_mean, float* out, int threads) const {
  const int64_t N = static_cast<int64_t>(doc_end.size());
  if (N > 0 && doc_end.back() != chunks_) throw Error("routing keys: document map does not cover the keys");
  std::fill(out, out + B * N, chunk_mean ? 0.0f : kLowest);
  if (T == 0 || N == 0) return;
  const bool avx = has_avx512(), vnni = has_vnni();
  const int64_t sd = stored_dim(dtype_, dim_);
  QuantQuery qq;
  if (dtype_ == KeyDtype::I8) qq = quantize_queries(q, T, dim_, sd);
  threads = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(1, chunks_ / (64 * B16))));
  // Thread i owns the documents ending in (split[i], split[i+1]]: no two threads write a document.
  std::vector<int64_t> split(threads + 1, 0);
  split[threads] = chunks_;
  for (int i = 1; i < threads; ++i) split[i] = *std::lower_bound(doc_end.begin(), doc_end.end(), chunks_ * i / threads);
  const auto* scales = static_cast<const float*>(scales_->p);
  const int64_t block_bytes = B16 * sd * key_element_bytes(dtype_);
  run_threads(threads, [&](int ti) {
    const int64_t lo = split[ti], hi = split[ti + 1];
    if (lo >= hi) return;
    std::vector<float> cm_store(static_cast<size_t>(B * B16 + 16)), scratch_v(static_cast<size_t>(dim_ * B16 + 16));
    // 64-byte aligned views (the block kernels use aligned vector loads and stores)
    auto align = [](float* p) { return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63}); };
    float* cmax = align(cm_store.data());
    float* scratch = align(scratch_v.data());
    int64_t d = std::upper_bound(doc_end.begin(), doc_end.end(), lo) - doc_end.begin();
    for (int64_t blk = lo / B16; blk * B16 < hi; ++blk) {
      const char* src = static_cast<const char*>(keys_->p) + blk * block_bytes;
      std::fill(cmax, cmax + B * B16, kLowest);
      if (dtype_ == KeyDtype::I8) {
        const auto* kb = reinterpret_cast<const uint8_t*>(src);
        if (vnni) block_u8_vnni(kb, sd / 4, qq, T, tq, cmax);
        else block_u8_generic(kb, sd / 4, qq, T, tq, cmax);
      } else {
        const float* kb = reinterpret_cast<const float*>(src);
        if (dtype_ == KeyDtype::BF16) {
          if (avx) decode_bf16_avx512(reinterpret_cast<const uint16_t*>(src), dim_, scratch);
          else decode_bf16_generic(reinterpret_cast<const uint16_t*>(src), dim_, scratch);
          kb = scratch;
        }
        if (avx) block_f32_avx512(kb, dim_, q, T, tq, cmax);
        else block_f32_generic(kb, dim_, q, T, tq, cmax);
      }
      const int64_t c_begin = std::max(blk * B16, lo), c_end = std::min(blk * B16 + B16, hi);
      while (doc_end[d] <= c_begin) ++d;
      if (!chunk_mean && c_begin == blk * B16 && c_end == c_begin + B16 && doc_end[d] >= c_end) {
        // The whole block is one document (the usual case): one max over its 16 lanes.
        for (int64_t b = 0; b < B; ++b) {
          float best = kLowest;
          for (int64_t l = 0; l < B16; ++l)
            best = std::max(best, cmax[b * B16 + l] * (dtype_ == KeyDtype::I8 ? scales[c_begin + l] : 1.0f));
          out[b * N + d] = std::max(out[b * N + d], best);
        }
        continue;
      }
      for (int64_t c = c_begin; c < c_end; ++c) {
        while (doc_end[d] <= c) ++d;
        const float s = dtype_ == KeyDtype::I8 ? scales[c] : 1.0f;  // scale >= 0 commutes with the max
        const int64_t lane = c - blk * B16;
        if (chunk_mean)
          for (int64_t b = 0; b < B; ++b) out[b * N + d] += cmax[b * B16 + lane] * s;
        else
          for (int64_t b = 0; b < B; ++b) out[b * N + d] = std::max(out[b * N + d], cmax[b * B16 + lane] * s);
      }
    }
  });
  if (chunk_mean) {
    for (int64_t dd = 0; dd < N; ++dd) {
      const int64_t n = doc_end[dd] - (dd ? doc_end[dd - 1] : 0);
      for (int64_t b = 0; b < B; ++b) out[b * N + dd] = n > 0 ? out[b * N + dd] / static_cast<float>(n) : kLowest;
    }
  }
}

torch::Tensor index_document_scores(const MsaOptions& opt, const torch::Tensor& q_router_in,
                                    const torch::Tensor& routing_mask_in, const RouterKeyIndex& index,
                                    const std::vector<int64_t>& doc_end, int threads) {
  torch::NoGradGuard no_grad;
  if (opt.head_reduce != Reduce::Mean) throw Error("routing keys index: needs head_reduce=mean");
  const int64_t B = q_router_in.size(0), H = q_router_in.size(1), L = q_router_in.size(2), D = q_router_in.size(3);
  const int64_t Hk = index.dim() / D, N = static_cast<int64_t>(doc_end.size());
  if (Hk * D != index.dim() || H % Hk != 0) throw Error("routing keys index: query heads do not match the keys");
  const bool cosine = opt.similarity == RoutingSimilarity::Cosine;
  auto q = q_router_in.to(torch::kCPU, torch::kFloat32);
  if (cosine) q = q / q.norm(2, -1, true).clamp_min(1e-12);
  const double scale = cosine ? 1.0 : 1.0 / std::sqrt(static_cast<double>(D));
  // [B, L, Hk*D]: heads sharing a KV head summed, times scale / H (head mean folded in).
  auto fold = (q.view({B, Hk, H / Hk, L, D}).sum(2) * (scale / H)).permute({0, 2, 1, 3}).reshape({B, L, Hk * D});
  auto mask = routing_mask_in.to(torch::kCPU, torch::kBool);
  std::vector<torch::Tensor> rows;
  std::vector<int32_t> tq;
  for (int64_t b = 0; b < B; ++b) {
    auto idx = mask[b].nonzero().squeeze(1);
    if (idx.numel() == 0) continue;  // no routing token: the row stays at the lowest score
    auto toks = fold[b].index_select(0, idx);
    if (opt.query_reduce == QueryReduce::Mean) toks = toks.mean(0, true);  // mean of dots = dot of the mean
    else if (opt.query_reduce == QueryReduce::Last) toks = toks.narrow(0, toks.size(0) - 1, 1);
    rows.push_back(toks);
    tq.insert(tq.end(), toks.size(0), static_cast<int32_t>(b));
  }
  auto out = torch::full({B, N}, kLowest, torch::kFloat32);
  if (rows.empty()) return out;
  auto qt = torch::cat(rows, 0).contiguous();
  index.scan(qt.data_ptr<float>(), qt.size(0), tq.data(), B, doc_end, opt.chunk_reduce == Reduce::Mean,
             out.data_ptr<float>(), threads);
  return out;
}

std::vector<int64_t> bank_doc_end(const MemoryBank& bank) {
  std::vector<int64_t> end(bank.doc_chunks.size());
  int64_t at = 0;
  for (size_t d = 0; d < end.size(); ++d) {
    if (bank.doc_chunks[d] > 0 && bank.doc_first_chunk[d] != at)
      throw Error("routing keys index: chunks are not in document order");
    at += bank.doc_chunks[d];
    end[d] = at;
  }
  return end;
}

std::vector<std::shared_ptr<const RouterKeyIndex>> build_router_indexes(const MemoryBank& bank, bool normalize,
                                                                      KeyDtype dt) {
  std::vector<std::shared_ptr<const RouterKeyIndex>> out;
  for (const auto& rk : bank.router_k)
    out.push_back(std::make_shared<const RouterKeyIndex>(RouterKeyIndex::from_tensor(rk, normalize, dt)));
  return out;
}

void use_scan_layout(MemoryBank& bank, const MsaModel& model, KeyDtype dt) {
  const auto& o = model.options();
  bank.router_index = build_router_indexes(bank, o.similarity == RoutingSimilarity::Cosine, dt);
  bank.index_doc_end = bank_doc_end(bank);
  if (model.base().config().msa->decouple_router && o.head_reduce == Reduce::Mean)
    for (auto& t : bank.router_k) t = torch::Tensor();
}

double memory_read_bandwidth(int64_t bytes, int threads, int reps) {
  const int64_t n = bytes / 4 / 64 * 64;
  threads = std::max(1, threads);
  void* p = mmap(nullptr, static_cast<size_t>(n * 4), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("bandwidth probe: cannot allocate " + std::to_string(n * 4) + " bytes");
  madvise(p, static_cast<size_t>(n * 4), MADV_HUGEPAGE);
  auto* f = static_cast<float*>(p);
  for (int64_t i = 0; i < n; ++i) f[i] = static_cast<float>(i & 7);
  const bool avx = has_avx512();
  double best = 0;
  std::atomic<double> sink{0};
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    run_threads(threads, [&](int ti) {
      const int64_t a = n * ti / threads / 64 * 64, b = ti + 1 == threads ? n : n * (ti + 1) / threads / 64 * 64;
      const double s = avx ? sum_avx512(f + a, b - a) : sum_generic(f + a, b - a);
      double cur = sink.load();
      while (!sink.compare_exchange_weak(cur, cur + s)) {
      }
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * 4) / sec);
  }
  munmap(p, static_cast<size_t>(n * 4));
  if (sink.load() < 0) throw Error("bandwidth probe: impossible sum");
  return best;
}

}  // namespace msabench
