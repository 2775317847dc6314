// CPU routing scan over a memory bank's pooled router keys (msa-reference §6.3, §8.5), laid out
// for bandwidth: chunks in blocks of 16, each block dimension-major (the 16 chunks' values of
// dimension 0, then of dimension 1, ...), all KV heads of a chunk concatenated. One vector load
// then feeds 16 chunk scores per query token, every key byte is read once per query batch, and
// the chunk -> document max is fused into the scan. The head mean is folded into the query
// (sum of the query heads sharing a KV head, times scale / H), so a chunk's score for one token
// is a single dot product of length Hk * D.
//
// Key storage: fp32, bf16 (round to nearest even, as torch casts) or int8 with one scale per chunk
// (max |x| / 127 over all heads, so the scale factors out of the head sum). fp32 and bf16 keys
// are scored against fp32 queries; int8 keys against int8 queries (one scale per token) with
// exact integer sums (AVX-512 VNNI where present), since fp32 products would make the scan
// compute-bound at a quarter of the int8 bytes.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/msa.h"

namespace msabench {

enum class KeyDtype { F32, BF16, I8 };
KeyDtype parse_key_dtype(const std::string& s);  // fp32 | bf16 | int8
std::string key_dtype_name(KeyDtype d);
int64_t key_element_bytes(KeyDtype d);
// Bytes one chunk's router keys take in the scan layout (keys plus the int8 scale).
int64_t router_key_bytes_per_chunk(KeyDtype d, int64_t dim);

class RouterKeyIndex {
 public:
  static constexpr int64_t kBlock = 16;
  RouterKeyIndex(int64_t dim, KeyDtype dt, int64_t reserve_chunks = 0);
  ~RouterKeyIndex();
  RouterKeyIndex(RouterKeyIndex&&) noexcept;
  RouterKeyIndex& operator=(RouterKeyIndex&&) noexcept;
  RouterKeyIndex(const RouterKeyIndex&) = delete;
  RouterKeyIndex& operator=(const RouterKeyIndex&) = delete;

  // rows [n, dim] fp32, one chunk per row (all KV heads of the chunk concatenated).
  void append(const float* rows, int64_t n);
  // router_k [Hk, C, D]; normalize: L2 per head and chunk (cosine routing).
  static RouterKeyIndex from_tensor(const torch::Tensor& router_k, bool normalize, KeyDtype dt);

  int64_t chunks() const { return chunks_; }
  int64_t dim() const { return dim_; }
  KeyDtype dtype() const { return dtype_; }
  int64_t bytes() const;                   // keys and scales as stored
  std::vector<float> row(int64_t c) const;  // dequantized keys of chunk c

  // q [T, dim] fp32 query tokens; token_query[t] in [0, B), tokens of one query adjacent.
  // doc_end[d]: exclusive end chunk of document d (non-decreasing, back() == chunks()).
  // out [B, N] (N = doc_end.size()): per document the max (chunk_mean: mean) over its chunks of
  // the max over its query's tokens of q.k; lowest float for documents without chunks.
  // Runs on `threads` threads, each over whole documents.
  void scan(const float* q, int64_t T, const int32_t* token_query, int64_t B, const std::vector<int64_t>& doc_end,
            bool chunk_mean, float* out, int threads) const;

 private:
  struct Buffer;
  int64_t dim_ = 0, chunks_ = 0;
  KeyDtype dtype_ = KeyDtype::F32;
  std::unique_ptr<Buffer> keys_, scales_;
};

// Routing of a bank layer through a RouterKeyIndex with MsaModel::document_scores' contract
// (same query preparation; head mean only). Returns doc scores [B, N] fp32 on the CPU.
torch::Tensor index_document_scores(const MsaOptions& opt, const torch::Tensor& q_router,
                                    const torch::Tensor& routing_mask, const RouterKeyIndex& index,
                                    const std::vector<int64_t>& doc_end, int threads);

// One index per router layer of a bank (keys of bank.router_k), for the bank's documents.
std::vector<std::shared_ptr<const RouterKeyIndex>> build_router_indexes(const MemoryBank& bank, bool normalize,
                                                                      KeyDtype dt);
// Exclusive end chunk of every document of a bank.
std::vector<int64_t> bank_doc_end(const MemoryBank& bank);
// Switches a bank's routing to the scan layout in precision dt (normalised keys when the model
// routes by cosine) and releases the router-key tensors where routing no longer reads them.
void use_scan_layout(MemoryBank& bank, const MsaModel& model, KeyDtype dt);

// Tests: run the portable kernels even where AVX-512 is available (same results: fp32 up to
// summation order, int8 exactly).
void use_portable_routing_kernels(bool on);

// Streaming read of `bytes` (a sum of floats) on `threads` threads; best of `reps`, bytes/s.
double memory_read_bandwidth(int64_t bytes, int threads, int reps);

}  // namespace msabench
