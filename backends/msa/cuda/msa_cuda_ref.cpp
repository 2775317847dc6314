#include "backends/msa/cuda/msa_cuda_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "core/bf16.h"

namespace msabench::cuda {

float bf16_to_float(bf16_t h) { return bf16_bits_to_float(h); }
bf16_t float_to_bf16(float x) { return float_to_bf16_bits(x); }

void fold_router_queries_ref(const float* q, int64_t T, int64_t H, int64_t Hk, int64_t D, float scale,
                             bool normalize, float* out) {
  if (Hk <= 0 || H % Hk != 0) throw std::invalid_argument("fold_router_queries: H must be a multiple of Hk");
  const int64_t G = H / Hk;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < Hk; ++g) {
      float* o = out + (t * Hk + g) * D;
      std::fill(o, o + D, 0.0f);
      for (int64_t h = g * G; h < (g + 1) * G; ++h) {
        const float* x = q + (t * H + h) * D;
        float inv = 1.0f;
        if (normalize) {
          float ss = 0;
          for (int64_t d = 0; d < D; ++d) ss += x[d] * x[d];
          inv = 1.0f / std::max(std::sqrt(ss), 1e-12f);
        }
        for (int64_t d = 0; d < D; ++d) o[d] += x[d] * inv;
      }
      for (int64_t d = 0; d < D; ++d) o[d] *= scale / static_cast<float>(H);
    }
}

void routing_scores_ref(const RoutingShape& s, const float* qf, const int32_t* q_offsets, const void* keys,
                        KeyType key_type, const int32_t* chunk_doc, float* doc_scores, float* chunk_scores) {
  const int64_t Hk = s.kv_heads, D = s.head_dim;
  std::vector<float> key(static_cast<size_t>(Hk * D));
  for (int64_t c = 0; c < s.chunks; ++c) {
    for (int64_t g = 0; g < Hk; ++g)
      for (int64_t d = 0; d < D; ++d) {
        const int64_t at = g * s.key_head_stride + c * D + d;
        key[g * D + d] = key_type == KeyType::F32 ? static_cast<const float*>(keys)[at]
                                                  : bf16_to_float(static_cast<const bf16_t*>(keys)[at]);
      }
    for (int64_t b = 0; b < s.queries; ++b) {
      float best = kLowestScore;
      for (int64_t t = q_offsets[b]; t < q_offsets[b + 1]; ++t) {
        float acc = 0;
        for (int64_t i = 0; i < Hk * D; ++i) acc += qf[t * Hk * D + i] * key[i];
        best = std::max(best, acc);
      }
      if (chunk_scores) chunk_scores[b * s.chunks + c] = best;
      float& doc = doc_scores[b * s.docs + chunk_doc[c]];
      doc = std::max(doc, best);
    }
  }
}

void top_k_ref(const float* scores, int64_t B, int64_t N, int k, int32_t* top_ids, float* top_scores) {
  if (k < 1 || k > kMaxTopK) throw std::invalid_argument("top_k: k outside [1, kMaxTopK]");
  const int64_t kk = std::min<int64_t>(k, N);
  std::vector<int32_t> order(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b) {
    const float* row = scores + b * N;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + kk, order.end(),
                      [&](int32_t x, int32_t y) { return row[x] != row[y] ? row[x] > row[y] : x < y; });
    for (int j = 0; j < k; ++j) {
      const bool ok = j < kk && row[order[j]] > kValidScore;
      top_ids[b * k + j] = ok ? order[j] : -1;
      top_scores[b * k + j] = ok ? row[order[j]] : kLowestScore;
    }
  }
}

ContextPlan plan_context(const int32_t* selected, int64_t B, int k, const int64_t* doc_first_chunk,
                         const int64_t* doc_chunks, int64_t n_tpl, const int32_t* cu_q) {
  ContextPlan p;
  p.cu_k.assign(static_cast<size_t>(B + 1), 0);
  int64_t at = 0;
  for (int64_t b = 0; b < B; ++b) {
    p.cu_k[b] = static_cast<int32_t>(at);
    if (n_tpl > 0) p.tpl.push_back({0, n_tpl, at});
    at += n_tpl;
    std::vector<int32_t> docs;
    for (int j = 0; j < k; ++j)
      if (selected[b * k + j] >= 0) docs.push_back(selected[b * k + j]);
    std::sort(docs.begin(), docs.end());
    docs.erase(std::unique(docs.begin(), docs.end()), docs.end());
    for (int32_t d : docs) {
      if (doc_chunks[d] == 0) continue;
      p.chunks.push_back({doc_first_chunk[d], doc_chunks[d], at});
      at += doc_chunks[d];
    }
    const int64_t m = cu_q[b + 1] - cu_q[b];
    if (m > 0) p.query.push_back({cu_q[b], m, at});
    at += m;
    p.max_k = std::max(p.max_k, at - p.cu_k[b]);
  }
  p.cu_k[B] = static_cast<int32_t>(at);
  p.total_k = at;
  return p;
}

void gather_rows_ref(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                     bf16_t* dst_k, bf16_t* dst_v) {
  for (int64_t s = 0; s < n_segs; ++s)
    for (int64_t r = 0; r < segs[s].rows; ++r)
      for (int64_t g = 0; g < Hk; ++g) {
        const int64_t from = (segs[s].src_row + r) * src.row_stride + g * src.head_stride;
        const int64_t to = ((segs[s].dst_row + r) * Hk + g) * D;
        std::memcpy(dst_k + to, src.k + from, static_cast<size_t>(D) * sizeof(bf16_t));
        std::memcpy(dst_v + to, src.v + from, static_cast<size_t>(D) * sizeof(bf16_t));
      }
}

void fetch_rows_ref(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                    int64_t staging_rows, bf16_t* dst_k, bf16_t* dst_v) {
  if (src.row_stride != D) throw std::invalid_argument("fetch_rows: the source must be head-major (row_stride == D)");
  for (int64_t s = 0; s < n_segs; ++s)
    for (int64_t g = 0; g < Hk; ++g) {
      const int64_t from = g * src.head_stride + segs[s].src_row * D, to = (g * staging_rows + segs[s].dst_row) * D;
      const size_t n = static_cast<size_t>(segs[s].rows * D) * sizeof(bf16_t);
      std::memcpy(dst_k + to, src.k + from, n);
      std::memcpy(dst_v + to, src.v + from, n);
    }
}

void attention_ref(const AttentionShape& s, const bf16_t* q, const bf16_t* k, const bf16_t* v, const int32_t* cu_q,
                   const int32_t* cu_k, const uint8_t* key_valid, bf16_t* o) {
  const int64_t H = s.q_heads, Hk = s.kv_heads, D = s.head_dim;
  if (Hk <= 0 || H % Hk != 0) throw std::invalid_argument("attention: H must be a multiple of Hk");
  const int64_t G = H / Hk;
  std::vector<float> p, acc(static_cast<size_t>(D));
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t lq = cu_q[b + 1] - cu_q[b], lk = cu_k[b + 1] - cu_k[b];
    p.assign(static_cast<size_t>(lk), 0.0f);
    for (int64_t i = 0; i < lq; ++i)
      for (int64_t h = 0; h < H; ++h) {
        const bf16_t* qi = q + ((cu_q[b] + i) * H + h) * D;
        const int64_t g = h / G;
        float m = -INFINITY;
        for (int64_t j = 0; j < lk; ++j) {
          const bool seen = (!key_valid || key_valid[cu_k[b] + j]) && (!s.causal || j <= lk - lq + i);
          p[j] = -INFINITY;
          if (!seen) continue;
          const bf16_t* kj = k + ((cu_k[b] + j) * Hk + g) * D;
          float dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += bf16_to_float(qi[d]) * bf16_to_float(kj[d]);
          p[j] = dot * s.scale;
          m = std::max(m, p[j]);
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        float l = 0;
        if (m != -INFINITY)
          for (int64_t j = 0; j < lk; ++j) {
            if (p[j] == -INFINITY) continue;
            const float e = std::exp(p[j] - m);
            l += e;
            const bf16_t* vj = v + ((cu_k[b] + j) * Hk + g) * D;
            for (int64_t d = 0; d < D; ++d) acc[d] += e * bf16_to_float(vj[d]);
          }
        bf16_t* oi = o + ((cu_q[b] + i) * H + h) * D;
        for (int64_t d = 0; d < D; ++d) oi[d] = float_to_bf16(l > 0 ? acc[d] / l : 0.0f);
      }
  }
}

}  // namespace msabench::cuda
