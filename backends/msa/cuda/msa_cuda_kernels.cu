// The CUDA kernels of msa_cuda.h in one translation unit (one nvcc run for the whole library).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <climits>

#include "backends/msa/cuda/msa_cuda.h"

namespace msabench::cuda {

namespace {

__device__ __forceinline__ float bf16f(bf16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }
__device__ __forceinline__ bf16_t to_bf16(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

__device__ __forceinline__ void load8(const float* p, float* out) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p)), b = __ldg(reinterpret_cast<const float4*>(p + 4));
  out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
}
__device__ __forceinline__ void load8(const bf16_t* p, float* out) {
  const uint4 w = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t x[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(x[i] << 16);  // little endian: the lower half is the first element
    out[2 * i + 1] = __uint_as_float(x[i] & 0xffff0000u);
  }
}

// Float max through integer atomics: non-negative floats order like ints, negative ones reversed
// like unsigned ints, so each sign takes the matching atomic (no NaNs in scores).
__device__ __forceinline__ void atomic_max_float(float* addr, float v) {
  if (v >= 0.0f) atomicMax(reinterpret_cast<int*>(addr), __float_as_int(v));
  else atomicMin(reinterpret_cast<unsigned*>(addr), __float_as_uint(v));
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block; every thread gets it. `sh` holds one float per warp.
__device__ float block_sum(float v, float* sh) {
  v = warp_sum(v);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
  __syncthreads();
  float s = 0;
  for (unsigned w = 0; w < (blockDim.x + 31) / 32; ++w) s += sh[w];
  return s;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

cudaError_t allow_smem(const void* kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

// ---------------------------------------------------------------- fill, fold

__global__ void fill_kernel(float* p, int64_t n, float value) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = value;
}

// One block per token, one thread per dimension.
__global__ void fold_kernel(const float* q, int64_t H, int64_t Hk, int64_t D, float scale, bool normalize,
                            float* out) {
  __shared__ float sh[32];
  const int64_t t = blockIdx.x, d = threadIdx.x, G = H / Hk;
  for (int64_t g = 0; g < Hk; ++g) {
    float acc = 0;
    for (int64_t h = g * G; h < (g + 1) * G; ++h) {
      const float x = d < D ? q[(t * H + h) * D + d] : 0.0f;
      const float inv = normalize ? 1.0f / fmaxf(sqrtf(block_sum(x * x, sh)), 1e-12f) : 1.0f;
      acc += x * inv;
    }
    if (d < D) out[(t * Hk + g) * D + d] = acc * (scale / static_cast<float>(H));
  }
}

// ---------------------------------------------------------------- routing scores

constexpr int kRouteThreads = 128;  // chunks per block, one per thread
constexpr int kRouteTokens = 16;    // query tokens per pass over the keys (register accumulators)

// Block (tile, b): chunks [tile * 128, +128) against the tokens of query b. blockIdx.x runs over b
// fastest, so the blocks of one tile read the same keys back to back (L2 hits for b > 0). Per
// KV head a thread holds its chunk's D keys in registers and the pass's 16 tokens come from
// shared memory as broadcasts.
template <typename KeyT, int D>
__global__ void __launch_bounds__(kRouteThreads) routing_kernel(RoutingShape s, const float* __restrict__ qf,
                                                                const int32_t* __restrict__ q_off,
                                                                const KeyT* __restrict__ keys,
                                                                const int32_t* __restrict__ chunk_doc,
                                                                float* doc_scores, float* chunk_scores) {
  extern __shared__ float4 smem_route[];
  float* sq = reinterpret_cast<float*>(smem_route);  // [kRouteTokens][Hk * D]
  __shared__ float s_best[kRouteThreads];
  const int64_t b = blockIdx.x % s.queries, tile = blockIdx.x / s.queries;
  const int64_t c = tile * kRouteThreads + threadIdx.x, HD = s.kv_heads * D;
  const bool active = c < s.chunks;
  const int t0 = q_off[b], t1 = q_off[b + 1];
  float best = -FLT_MAX;
  for (int tt = t0; tt < t1; tt += kRouteTokens) {
    const int nt = min(kRouteTokens, t1 - tt);
    __syncthreads();
    for (int64_t i = threadIdx.x; i < kRouteTokens * HD; i += kRouteThreads) {
      const int64_t u = i / HD;
      sq[i] = u < nt ? qf[(tt + u) * HD + i % HD] : 0.0f;
    }
    __syncthreads();
    if (!active) continue;
    float acc[kRouteTokens];
#pragma unroll
    for (int u = 0; u < kRouteTokens; ++u) acc[u] = 0.0f;
    for (int64_t g = 0; g < s.kv_heads; ++g) {
      float kr[D];
      const KeyT* kp = keys + g * s.key_head_stride + c * D;
#pragma unroll
      for (int d = 0; d < D; d += 8) load8(kp + d, kr + d);
      const float* qg = sq + g * D;
#pragma unroll
      for (int u = 0; u < kRouteTokens; ++u) {
        float a = 0.0f;
#pragma unroll
        for (int d = 0; d < D; d += 4) {
          const float4 x = *reinterpret_cast<const float4*>(qg + u * HD + d);
          a = fmaf(x.x, kr[d], a);
          a = fmaf(x.y, kr[d + 1], a);
          a = fmaf(x.z, kr[d + 2], a);
          a = fmaf(x.w, kr[d + 3], a);
        }
        acc[u] += a;
      }
    }
#pragma unroll
    for (int u = 0; u < kRouteTokens; ++u)
      if (u < nt) best = fmaxf(best, acc[u]);
  }
  const int doc = active ? chunk_doc[c] : -1;
  if (active && chunk_scores) chunk_scores[b * s.chunks + c] = best;
  // Chunk -> document max: the lanes of one document combine first, the lowest lane writes.
  s_best[threadIdx.x] = best;
  __syncwarp();
  const unsigned peers = __match_any_sync(0xffffffffu, doc);
  const int lane = threadIdx.x % 32;
  if (active && lane == __ffs(peers) - 1) {
    float m = best;
    for (unsigned rest = peers; rest; rest &= rest - 1) m = fmaxf(m, s_best[threadIdx.x - lane + __ffs(rest) - 1]);
    if (m > -FLT_MAX) atomic_max_float(doc_scores + b * s.docs + doc, m);
  }
}

template <typename KeyT, int D>
cudaError_t launch_routing(const RoutingShape& s, const float* qf, const int32_t* q_off, const KeyT* keys,
                           const int32_t* chunk_doc, float* doc_scores, float* chunk_scores, cudaStream_t st) {
  const size_t smem = static_cast<size_t>(kRouteTokens) * s.kv_heads * D * sizeof(float);
  auto kernel = routing_kernel<KeyT, D>;
  if (cudaError_t e = allow_smem(reinterpret_cast<const void*>(kernel), smem); e != cudaSuccess) return e;
  const int64_t blocks = (s.chunks + kRouteThreads - 1) / kRouteThreads * s.queries;
  kernel<<<static_cast<unsigned>(blocks), kRouteThreads, smem, st>>>(s, qf, q_off, keys, chunk_doc, doc_scores,
                                                                     chunk_scores);
  return cudaGetLastError();
}

// ---------------------------------------------------------------- top-k

constexpr int kTopThreads = 256, kTopPer = 8, kTopItems = kTopThreads * kTopPer;
constexpr int kNoId = INT_MAX;  // empty slot: score -inf, loses every comparison

__device__ __forceinline__ bool better(float s1, int i1, float s2, int i2) { return s1 > s2 || (s1 == s2 && i1 < i2); }

__device__ __forceinline__ void warp_best(float& s, int& id) {
#pragma unroll
  for (int o = 16; o; o >>= 1) {
    const float os = __shfl_xor_sync(0xffffffffu, s, o);
    const int oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (better(os, oi, s, id)) s = os, id = oi;
  }
}

// Block (blk, b): the top k of entries [blk * 2048, +2048) of row b by k rounds of a block argmax.
// in_ids == nullptr: the id is the column. `final`: empty slots become (-1, lowest).
__global__ void __launch_bounds__(kTopThreads) topk_kernel(const float* in_s, const int32_t* in_ids, int64_t n,
                                                           int64_t in_stride, int k, float* out_s, int32_t* out_ids,
                                                           int64_t out_stride, bool final) {
  __shared__ float ws[kTopThreads / 32];
  __shared__ int wi[kTopThreads / 32];
  __shared__ float win_s;
  __shared__ int win_i;
  const int64_t b = blockIdx.y, base = static_cast<int64_t>(blockIdx.x) * kTopItems;
  float s[kTopPer];
  int id[kTopPer];
#pragma unroll
  for (int j = 0; j < kTopPer; ++j) {
    const int64_t i = base + j * kTopThreads + threadIdx.x;
    s[j] = -INFINITY, id[j] = kNoId;
    if (i < n) {
      const float v = in_s[b * in_stride + i];
      const int vi = in_ids ? in_ids[b * in_stride + i] : static_cast<int>(i);
      if (v > kValidScore && vi != kNoId) s[j] = v, id[j] = vi;
    }
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float* os = out_s + b * out_stride + static_cast<int64_t>(blockIdx.x) * k;
  int32_t* oi = out_ids + b * out_stride + static_cast<int64_t>(blockIdx.x) * k;
  for (int r = 0; r < k; ++r) {
    float bs = -INFINITY;
    int bi = kNoId;
#pragma unroll
    for (int j = 0; j < kTopPer; ++j)
      if (better(s[j], id[j], bs, bi)) bs = s[j], bi = id[j];
    warp_best(bs, bi);
    if (lane == 0) ws[warp] = bs, wi[warp] = bi;
    __syncthreads();
    if (warp == 0) {
      bs = lane < kTopThreads / 32 ? ws[lane] : -INFINITY;
      bi = lane < kTopThreads / 32 ? wi[lane] : kNoId;
      warp_best(bs, bi);
      if (lane == 0) win_s = bs, win_i = bi;
    }
    __syncthreads();
    const float w_s = win_s;
    const int w_i = win_i;
    if (w_i == kNoId) {  // nothing left: the rest of the slots are empty
      for (int rr = r + threadIdx.x; rr < k; rr += kTopThreads) {
        os[rr] = final ? kLowestScore : -INFINITY;
        oi[rr] = final ? -1 : kNoId;
      }
      return;
    }
    if (threadIdx.x == 0) os[r] = w_s, oi[r] = w_i;
#pragma unroll
    for (int j = 0; j < kTopPer; ++j)
      if (id[j] == w_i) s[j] = -INFINITY, id[j] = kNoId;  // ids are unique within a row
  }
}

// ---------------------------------------------------------------- gather

// One block per segment; 16-byte vectors of 8 elements.
__global__ void gather_kernel(RowSource src, const CopySegment* segs, int64_t Hk, int64_t D, bf16_t* dst_k,
                              bf16_t* dst_v) {
  const CopySegment seg = segs[blockIdx.x];
  const int64_t vec = D / 8, per_row = Hk * vec, n = seg.rows * per_row;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t r = i / per_row, g = (i % per_row) / vec, e = (i % vec) * 8;
    const int64_t from = (seg.src_row + r) * src.row_stride + g * src.head_stride + e;
    const int64_t to = ((seg.dst_row + r) * Hk + g) * D + e;
    *reinterpret_cast<uint4*>(dst_k + to) = *reinterpret_cast<const uint4*>(src.k + from);
    *reinterpret_cast<uint4*>(dst_v + to) = *reinterpret_cast<const uint4*>(src.v + from);
  }
}

// ---------------------------------------------------------------- attention

constexpr int kAttnThreads = 256, kAttnWarps = kAttnThreads / 32;
constexpr int kAttnPairs = 32;  // (query row, head) pairs per block
constexpr int kAttnKeys = 32;   // keys per tile, one per lane when scoring
constexpr int kPairsPerWarp = kAttnPairs / kAttnWarps;

// Block (row tile, KV head g, sample b): R = 32 / G query rows times the G query heads of g, so the
// K/V tile in shared memory serves every head that shares it (GQA). Per key tile a lane scores
// one key (no shuffles in the dot product), then the warp runs the online softmax and each lane
// accumulates D / 32 output dimensions.
template <int D>
__global__ void __launch_bounds__(kAttnThreads) attention_kernel(AttentionShape s, const bf16_t* __restrict__ q,
                                                                 const bf16_t* __restrict__ k,
                                                                 const bf16_t* __restrict__ v,
                                                                 const int32_t* __restrict__ cu_q,
                                                                 const int32_t* __restrict__ cu_k,
                                                                 const uint8_t* __restrict__ key_valid, bf16_t* o) {
  constexpr int NE = D / 32, KP = D + 1;  // odd K row pitch: lanes reading different keys hit different banks
  extern __shared__ float4 smem_attn[];
  float* Qs = reinterpret_cast<float*>(smem_attn);  // [kAttnPairs][D], pre-scaled
  float* Ks = Qs + kAttnPairs * D;                   // [kAttnKeys][KP]
  float* Vs = Ks + kAttnKeys * KP;                   // [kAttnKeys][D]
  __shared__ bool ok_s[kAttnKeys];
  const int H = static_cast<int>(s.q_heads), Hk = static_cast<int>(s.kv_heads), G = H / Hk;
  const int R = max(1, kAttnPairs / G), P = R * G;
  const int b = blockIdx.z, g = blockIdx.y, i0 = blockIdx.x * R;
  const int qb = cu_q[b], lq = cu_q[b + 1] - qb, kb = cu_k[b], lk = cu_k[b + 1] - kb;
  if (i0 >= lq) return;  // the whole block: before any barrier
  const int rows = min(R, lq - i0);
  for (int idx = threadIdx.x; idx < kAttnPairs * D; idx += kAttnThreads) {
    const int p = idx / D, d = idx % D, r = p / G, hh = p % G;
    Qs[idx] = p < P && r < rows ? bf16f(q[(static_cast<int64_t>(qb + i0 + r) * H + g * G + hh) * D + d]) * s.scale : 0.0f;
  }
  const int kend = s.causal ? max(0, min(lk, lk - lq + i0 + rows)) : lk;  // keys the last row sees
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float m[kPairsPerWarp], l[kPairsPerWarp], acc[kPairsPerWarp][NE];
#pragma unroll
  for (int pp = 0; pp < kPairsPerWarp; ++pp) {
    m[pp] = -INFINITY, l[pp] = 0.0f;
#pragma unroll
    for (int e = 0; e < NE; ++e) acc[pp][e] = 0.0f;
  }
  for (int j0 = 0; j0 < kend; j0 += kAttnKeys) {
    __syncthreads();
    for (int idx = threadIdx.x; idx < kAttnKeys * D; idx += kAttnThreads) {
      const int j = idx / D, d = idx % D;
      const bool in = j0 + j < kend;
      const int64_t at = (static_cast<int64_t>(kb + j0 + j) * Hk + g) * D + d;
      Ks[j * KP + d] = in ? bf16f(k[at]) : 0.0f;
      Vs[j * D + d] = in ? bf16f(v[at]) : 0.0f;
    }
    if (threadIdx.x < kAttnKeys)
      ok_s[threadIdx.x] = j0 + threadIdx.x < kend && (!key_valid || key_valid[kb + j0 + threadIdx.x]);
    __syncthreads();
#pragma unroll
    for (int pp = 0; pp < kPairsPerWarp; ++pp) {
      const int p = pp * kAttnWarps + warp, row = i0 + p / G;
      if (p >= P || p / G >= rows) continue;  // warp-uniform
      const float* qp = Qs + p * D;
      const float* kp = Ks + lane * KP;
      float sc = 0.0f;
#pragma unroll 16
      for (int d = 0; d < D; ++d) sc = fmaf(qp[d], kp[d], sc);
      const bool ok = ok_s[lane] && (!s.causal || j0 + lane <= lk - lq + row);
      sc = ok ? sc : -INFINITY;
      const float tmax = warp_max(sc);
      if (tmax == -INFINITY) continue;  // warp-uniform: no key of this tile is seen
      const float mn = fmaxf(m[pp], tmax), corr = __expf(m[pp] - mn);
      const float pj = ok ? __expf(sc - mn) : 0.0f;
      l[pp] = l[pp] * corr + warp_sum(pj);
#pragma unroll
      for (int e = 0; e < NE; ++e) acc[pp][e] *= corr;
#pragma unroll 8
      for (int jj = 0; jj < kAttnKeys; ++jj) {
        const float w = __shfl_sync(0xffffffffu, pj, jj);
#pragma unroll
        for (int e = 0; e < NE; ++e) acc[pp][e] = fmaf(w, Vs[jj * D + lane + 32 * e], acc[pp][e]);
      }
      m[pp] = mn;
    }
  }
#pragma unroll
  for (int pp = 0; pp < kPairsPerWarp; ++pp) {
    const int p = pp * kAttnWarps + warp, r = p / G, hh = p % G;
    if (p >= P || r >= rows) continue;
    bf16_t* out = o + (static_cast<int64_t>(qb + i0 + r) * H + g * G + hh) * D;
    const float inv = l[pp] > 0.0f ? 1.0f / l[pp] : 0.0f;
#pragma unroll
    for (int e = 0; e < NE; ++e) out[lane + 32 * e] = to_bf16(acc[pp][e] * inv);
  }
}

template <int D>
cudaError_t launch_attention(const AttentionShape& s, const bf16_t* q, const bf16_t* k, const bf16_t* v,
                             const int32_t* cu_q, const int32_t* cu_k, const uint8_t* key_valid, bf16_t* o,
                             cudaStream_t st) {
  const size_t smem = (static_cast<size_t>(kAttnPairs) * D + kAttnKeys * (D + 1) + kAttnKeys * D) * sizeof(float);
  auto kernel = attention_kernel<D>;
  if (cudaError_t e = allow_smem(reinterpret_cast<const void*>(kernel), smem); e != cudaSuccess) return e;
  const int64_t G = s.q_heads / s.kv_heads, R = std::max<int64_t>(1, kAttnPairs / G);
  const dim3 grid(static_cast<unsigned>((s.max_q + R - 1) / R), static_cast<unsigned>(s.kv_heads),
                  static_cast<unsigned>(s.batch));
  kernel<<<grid, kAttnThreads, smem, st>>>(s, q, k, v, cu_q, cu_k, key_valid, o);
  return cudaGetLastError();
}

}  // namespace

cudaError_t fill(float* p, int64_t n, float value, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65536);
  fill_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p, n, value);
  return cudaGetLastError();
}

cudaError_t fold_router_queries(const float* q, int64_t T, int64_t H, int64_t Hk, int64_t D, float scale,
                                bool normalize, float* out, cudaStream_t stream) {
  if (Hk <= 0 || H % Hk != 0 || D <= 0 || D > 1024) return cudaErrorInvalidValue;
  if (T <= 0) return cudaSuccess;
  const unsigned threads = static_cast<unsigned>((D + 31) / 32 * 32);
  fold_kernel<<<static_cast<unsigned>(T), threads, 0, stream>>>(q, H, Hk, D, scale, normalize, out);
  return cudaGetLastError();
}

cudaError_t routing_scores(const RoutingShape& s, const float* qf, const int32_t* q_offsets, const void* keys,
                           KeyType key_type, const int32_t* chunk_doc, float* doc_scores, float* chunk_scores,
                           cudaStream_t stream) {
  if (s.queries <= 0 || s.chunks <= 0) return cudaSuccess;
  if (s.kv_heads <= 0 || s.key_head_stride % 8 != 0 || !aligned16(keys) || !aligned16(qf)) return cudaErrorInvalidValue;
  if (key_type == KeyType::BF16) {
    const auto* kp = static_cast<const bf16_t*>(keys);
    if (s.head_dim == 128) return launch_routing<bf16_t, 128>(s, qf, q_offsets, kp, chunk_doc, doc_scores, chunk_scores, stream);
    if (s.head_dim == 64) return launch_routing<bf16_t, 64>(s, qf, q_offsets, kp, chunk_doc, doc_scores, chunk_scores, stream);
  } else {
    const auto* kp = static_cast<const float*>(keys);
    if (s.head_dim == 128) return launch_routing<float, 128>(s, qf, q_offsets, kp, chunk_doc, doc_scores, chunk_scores, stream);
    if (s.head_dim == 64) return launch_routing<float, 64>(s, qf, q_offsets, kp, chunk_doc, doc_scores, chunk_scores, stream);
  }
  return cudaErrorInvalidValue;  // head_dim other than 64 / 128
}

size_t top_k_workspace_bytes(int64_t B, int64_t N, int k) {
  const int64_t blocks = (N + kTopItems - 1) / kTopItems;
  if (blocks <= 1) return 0;
  return 2 * static_cast<size_t>(B * blocks * k) * (sizeof(float) + sizeof(int32_t));
}

cudaError_t top_k(const float* scores, int64_t B, int64_t N, int k, int32_t* top_ids, float* top_scores,
                  void* workspace, cudaStream_t stream) {
  if (k < 1 || k > kMaxTopK || B > 65535) return cudaErrorInvalidValue;
  if (B <= 0) return cudaSuccess;
  const int64_t cap = B * std::max<int64_t>(1, (N + kTopItems - 1) / kTopItems) * k;  // entries per ping-pong half
  auto* ws_s = static_cast<float*>(workspace);
  auto* ws_i = reinterpret_cast<int32_t*>(ws_s + 2 * cap);
  const float* in_s = scores;
  const int32_t* in_i = nullptr;
  int64_t n = N, half = 0;
  for (;;) {
    const int64_t blocks = std::max<int64_t>(1, (n + kTopItems - 1) / kTopItems);
    const bool final = blocks == 1;
    float* out_s = final ? top_scores : ws_s + half * cap;
    int32_t* out_i = final ? top_ids : ws_i + half * cap;
    const int64_t out_stride = final ? k : blocks * k;
    topk_kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(B)), kTopThreads, 0, stream>>>(
        in_s, in_i, n, n, k, out_s, out_i, out_stride, final);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess || final) return e;
    in_s = out_s, in_i = out_i, n = out_stride, half ^= 1;
  }
}

cudaError_t gather_rows(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                        bf16_t* dst_k, bf16_t* dst_v, cudaStream_t stream) {
  if (n_segs <= 0) return cudaSuccess;
  if (D % 8 || src.row_stride % 8 || src.head_stride % 8 || !aligned16(src.k) || !aligned16(src.v) ||
      !aligned16(dst_k) || !aligned16(dst_v) || n_segs > INT_MAX)
    return cudaErrorInvalidValue;
  gather_kernel<<<static_cast<unsigned>(n_segs), 256, 0, stream>>>(src, segs, Hk, D, dst_k, dst_v);
  return cudaGetLastError();
}

cudaError_t fetch_rows(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                       int64_t staging_rows, bf16_t* dst_k, bf16_t* dst_v, cudaStream_t stream) {
  if (src.row_stride != D) return cudaErrorInvalidValue;
  const size_t el = sizeof(bf16_t);
  for (int64_t i = 0; i < n_segs; ++i) {
    const CopySegment& s = segs[i];
    const size_t width = static_cast<size_t>(s.rows * D) * el;
    const size_t spitch = static_cast<size_t>(src.head_stride) * el, dpitch = static_cast<size_t>(staging_rows * D) * el;
    for (auto [from, to] : {std::pair{src.k, dst_k}, std::pair{src.v, dst_v}})
      if (cudaError_t e = cudaMemcpy2DAsync(to + s.dst_row * D, dpitch, from + s.src_row * D, spitch, width,
                                            static_cast<size_t>(Hk), cudaMemcpyDefault, stream);
          e != cudaSuccess)
        return e;
  }
  return cudaSuccess;
}

cudaError_t attention(const AttentionShape& s, const bf16_t* q, const bf16_t* k, const bf16_t* v, const int32_t* cu_q,
                      const int32_t* cu_k, const uint8_t* key_valid, bf16_t* o, cudaStream_t stream) {
  if (s.kv_heads <= 0 || s.q_heads % s.kv_heads != 0 || s.q_heads / s.kv_heads > kAttnPairs || s.batch > 65535)
    return cudaErrorInvalidValue;
  if (s.batch <= 0 || s.max_q <= 0) return cudaSuccess;
  if (s.head_dim == 128) return launch_attention<128>(s, q, k, v, cu_q, cu_k, key_valid, o, stream);
  if (s.head_dim == 64) return launch_attention<64>(s, q, k, v, cu_q, cu_k, key_valid, o, stream);
  return cudaErrorInvalidValue;
}

}  // namespace msabench::cuda
