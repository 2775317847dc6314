// Stage-2 MSA kernels (msa-reference §6.3, §6.6, §6.7, §8.5) on raw pointers: the shared types,
// the context-assembly planner and the plain C++ reference of every CUDA kernel of msa_cuda.h.
// No CUDA and no LibTorch here, so the references build and are tested on every machine; the
// GPU functions take the same arguments as device pointers plus a stream.
//
// Layouts (row-major, element strides):
//   router queries        [T, H, D] fp32, tokens of query b at [q_offsets[b], q_offsets[b+1])
//   folded queries        [T, Hk, D] fp32 (head mean folded in, see fold_router_queries_ref)
//   pooled keys / values  [Hk, C, D] as the memory bank stores them (bf16 or fp32 router keys)
//   attention q / o       [total_q, H, D] bf16; attention k / v [total_k, Hk, D] bf16 (varlen)
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

namespace msabench::cuda {

using bf16_t = uint16_t;  // raw bfloat16 bits (device code reinterprets them as __nv_bfloat16)

float bf16_to_float(bf16_t h);
bf16_t float_to_bf16(float x);  // round to nearest even, as torch casts

enum class KeyType : int { F32 = 0, BF16 = 1 };

constexpr float kLowestScore = std::numeric_limits<float>::lowest();
constexpr float kValidScore = -1e9f;  // documents scoring at or below this are never selected
constexpr int kMaxTopK = 1024;

// Router queries [T, H, D] -> [T, Hk, D]: out[t][g] = scale / H * sum of the query heads h with
// h / (H / Hk) == g (L2-normalised per token and head first when `normalize`, cosine routing).
// The head mean of q_h . k_g(h) is then one dot product per KV head.
void fold_router_queries_ref(const float* q, int64_t T, int64_t H, int64_t Hk, int64_t D, float scale,
                             bool normalize, float* out);

struct RoutingShape {
  int64_t queries = 0;          // B
  int64_t kv_heads = 0;         // Hk
  int64_t head_dim = 0;         // D
  int64_t chunks = 0;           // chunks in this tile
  int64_t key_head_stride = 0;  // elements between the heads of `keys` (C_total * D for [Hk, C_total, D])
  int64_t docs = 0;             // columns of doc_scores
};

// keys: chunk c, head g at keys + g * key_head_stride + c * D (fp32 or bf16); chunk_doc[c] in [0, docs).
// chunk_scores [B, chunks] (optional): max over the query's tokens of qf_t . k_c (fp32 accumulate),
// kLowestScore for a query without tokens. doc_scores [B, docs]: max-accumulated per document, so a
// bank is scored tile by tile into one buffer that starts at kLowestScore.
void routing_scores_ref(const RoutingShape& s, const float* qf, const int32_t* q_offsets, const void* keys,
                        KeyType key_type, const int32_t* chunk_doc, float* doc_scores, float* chunk_scores);

// Top-k of every row of scores [B, N]: descending, equal scores by ascending id; scores at or below
// kValidScore are never selected. Unused slots get id -1 and kLowestScore. k <= kMaxTopK.
void top_k_ref(const float* scores, int64_t B, int64_t N, int k, int32_t* top_ids, float* top_scores);

// Copy of `rows` consecutive rows from a strided source to destination rows starting at dst_row.
struct CopySegment {
  int64_t src_row = 0, rows = 0, dst_row = 0;
};
// A K/V pair read as row r, head g at base + r * row_stride + g * head_stride.
struct RowSource {
  const bf16_t* k = nullptr;
  const bf16_t* v = nullptr;
  int64_t row_stride = 0, head_stride = 0;
};

// Assembly of each query's key list [template (n_tpl); chunks of its selected documents in ascending
// id order; its own tokens] (msa-reference §6.6 step 4) as three segment lists, one per source.
struct ContextPlan {
  std::vector<int32_t> cu_k;  // [B + 1] key offsets
  std::vector<CopySegment> tpl, chunks, query;
  int64_t total_k = 0, max_k = 0;
};
// selected [B, k] document ids (-1 = none, any order); doc_first_chunk / doc_chunks per document;
// cu_q [B + 1] query token offsets. Sources: template [Hk, n_tpl, D], bank [Hk, C, D], query
// tokens [total_q, Hk, D].
ContextPlan plan_context(const int32_t* selected, int64_t B, int k, const int64_t* doc_first_chunk,
                         const int64_t* doc_chunks, int64_t n_tpl, const int32_t* cu_q);

// dst_k / dst_v [rows, Hk, D]: every segment's rows of `src` (gather of the selected chunks,
// template rows and query rows into one contiguous context).
void gather_rows_ref(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                     bf16_t* dst_k, bf16_t* dst_v);

// Fetch of head-major rows (src.row_stride == D, e.g. pinned host K/V [Hk, C, D]) into a staging
// buffer [Hk, staging_rows, D] with the same segments; the device version is a set of async 2D copies.
void fetch_rows_ref(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                    int64_t staging_rows, bf16_t* dst_k, bf16_t* dst_v);

struct AttentionShape {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  int64_t max_q = 0;  // longest query block (sizes the GPU grid)
  float scale = 0;
  bool causal = true;
};
// Varlen GQA attention, fp32 accumulate. Query head h uses KV head h / (H / Hk). Causal rows are
// aligned to the bottom right (flash-attn varlen): query i of a block of len_q sees key j iff
// j <= len_k - len_q + i, so prompt tokens see [template; chunks] and prompt tokens up to themselves.
// key_valid [total_k] (optional, nonzero = valid). A row that sees no key gets zeros.
void attention_ref(const AttentionShape& s, const bf16_t* q, const bf16_t* k, const bf16_t* v, const int32_t* cu_q,
                   const int32_t* cu_k, const uint8_t* key_valid, bf16_t* o);

}  // namespace msabench::cuda
