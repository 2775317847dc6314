// CUDA versions of the kernels of msa_cuda_ref.h: the same arguments as device pointers (or
// device-accessible ones: mapped pinned host memory works as a gather source), plus a stream.
// Every function only enqueues work and returns the launch status; nothing synchronises.
#pragma once
#include <cuda_runtime_api.h>

#include "backends/msa/cuda/msa_cuda_ref.h"

namespace msabench::cuda {

// Fills n floats with `value` (doc_scores start at kLowestScore).
cudaError_t fill(float* p, int64_t n, float value, cudaStream_t stream);

// D <= 1024.
cudaError_t fold_router_queries(const float* q, int64_t T, int64_t H, int64_t Hk, int64_t D, float scale,
                                bool normalize, float* out, cudaStream_t stream);

// One thread per chunk reads its keys once per query and 8 query tokens at a time from shared
// memory; the chunk -> document max ends in one float atomic max per document and warp.
// D % 8 == 0, key_head_stride % 8 == 0, keys 16-byte aligned. q_offsets on the device.
cudaError_t routing_scores(const RoutingShape& s, const float* qf, const int32_t* q_offsets, const void* keys,
                           KeyType key_type, const int32_t* chunk_doc, float* doc_scores, float* chunk_scores,
                           cudaStream_t stream);

// Blockwise top-k: each block keeps the top k of its 2048 entries, repeated until one block is left.
// workspace: top_k_workspace_bytes(B, N, k) bytes of device memory.
size_t top_k_workspace_bytes(int64_t B, int64_t N, int k);
cudaError_t top_k(const float* scores, int64_t B, int64_t N, int k, int32_t* top_ids, float* top_scores,
                  void* workspace, cudaStream_t stream);

// segs on the device. D % 8 == 0, strides % 8 == 0, pointers 16-byte aligned.
cudaError_t gather_rows(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                        bf16_t* dst_k, bf16_t* dst_v, cudaStream_t stream);

// segs on the host: one cudaMemcpy2DAsync per segment and tensor (Hk rows of segs[i].rows * D
// elements), so a pinned source is copied by the copy engines while kernels run on other streams.
cudaError_t fetch_rows(const RowSource& src, const CopySegment* segs, int64_t n_segs, int64_t Hk, int64_t D,
                       int64_t staging_rows, bf16_t* dst_k, bf16_t* dst_v, cudaStream_t stream);

// head_dim 64 or 128, H / Hk <= 32. cu_q, cu_k, key_valid on the device.
cudaError_t attention(const AttentionShape& s, const bf16_t* q, const bf16_t* k, const bf16_t* v, const int32_t* cu_q,
                      const int32_t* cu_k, const uint8_t* key_valid, bf16_t* o, cudaStream_t stream);

}  // namespace msabench::cuda
