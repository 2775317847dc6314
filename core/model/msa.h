// Memory Sparse Attention on top of the Qwen3 engine (../shared/reference/msa-reference.md §4-6).
//   Stage 1  encode_memory(): documents processed independently (doc-local RoPE, causal within the
//            document); router layers keep per-chunk means of K (post-norm, post-RoPE), V and the
//            router key (raw); every layer keeps the 3-token template-prefix K/V.
//   Stage 2  prefill(): the prompt (positions from 3 + k) routes in every router layer: router query
//            vs pooled router keys -> reduce heads, query tokens, chunks -> top-k documents; attends to
//            [template KV; all chunks of the selected documents; prompt (causal)].
//   Stage 3  decode_step(): ordinary KV-cached decoding over that assembled context.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model/qwen3.h"

namespace msabench {

class RouterKeyIndex;
class ThreadPool;

enum class RoutingSimilarity {
  ScaledDot,  // q.k / sqrt(D), no normalisation: the released engine with INFONCE_DECOUPLE
  Cosine,     // L2-normalised q and pooled k, scale 1: training and the paper (Eq. 2)
};
enum class QueryReduce { Max, Mean, Last };

struct MsaOptions {
  int doc_top_k = 16;
  RoutingSimilarity similarity = RoutingSimilarity::ScaledDot;
  Reduce head_reduce = Reduce::Mean;
  QueryReduce query_reduce = QueryReduce::Max;
  Reduce chunk_reduce = Reduce::Max;
  int pooling_kernel_size = 64;
  // First position of the prompt. Code rule: 3 template positions + doc_top_k slots (= 19);
  // the paper's variant starts at doc_top_k.
  int64_t query_position_start = 19;
  int64_t score_tile_chunks = 16384;   // routing is tiled over chunks to bound peak memory
  int64_t stage1_token_budget = 8192;  // padded tokens per stage-1 forward (documents are batched)
  // Content fetch: 0 = in the calling thread; N = N pool threads fetch each selected document's
  // K/V while the caller waits only for what the current layer needs.
  // Default 0: on the 2-core development machine the pool never beat the calling thread
  // (results/fetch); machines with idle cores or slow storage can try more.
  int fetch_threads = 0;
  // While a router layer attends and the next one routes, speculatively fetch the next router
  // layer's content of the documents this layer selected (layers mostly agree on documents).
  bool prefetch_next_layer = true;

  // Defaults as the reference engine reads a checkpoint config (msa-reference §6.3, §13, §14).
  static MsaOptions from_config(const ModelConfig& cfg);
  // Paper variant: cosine routing and query positions starting at doc_top_k.
  void use_paper_variant();
};

// In-memory memory bank: per router layer the pooled chunk tensors, plus document bookkeeping.
// (The tiered storage issue puts this behind a storage interface; the layout stays the same.)
struct MemoryBank {
  std::vector<int> router_layers;                 // model layer index of each slot
  std::vector<torch::Tensor> k, v, router_k;      // per slot [Hkv, C, D], model dtype
  std::vector<int64_t> chunk_doc;                 // [C] document index of every chunk
  std::vector<int64_t> doc_first_chunk, doc_chunks;  // per document
  std::vector<torch::Tensor> template_k, template_v;  // per layer [Hkv, T_tpl, D]
  // Optional scan layout of the router keys (routing_kernel.h), one per slot; when set, routing
  // reads these (and router_k may be released). index_doc_end: exclusive end chunk per document.
  std::vector<std::shared_ptr<const RouterKeyIndex>> router_index;
  std::vector<int64_t> index_doc_end;
  // Content K/V memory-mapped from a persistent bank (tiered storage): per slot one [Hkv, C_s, D]
  // view per segment, k/v then undefined; part_first_chunk: first chunk of every segment.
  std::vector<std::vector<torch::Tensor>> k_parts, v_parts;
  std::vector<int64_t> part_first_chunk;
  // Set for memory-mapped content: evicts its pages from this process and the page cache, so the
  // next fetches read the disk (cold-cache measurements).
  std::function<void()> drop_cached_content;
  // Content keys (values: values = true) of the given chunks of one slot, [Hkv, n, D].
  torch::Tensor gather_content(bool values, int slot, const std::vector<int64_t>& chunks) const;
  int64_t num_docs() const { return static_cast<int64_t>(doc_chunks.size()); }
  int64_t num_chunks() const { return static_cast<int64_t>(chunk_doc.size()); }
  int64_t bytes() const;  // tensor payload
  int slot_of_layer(int layer) const;  // -1 if not a router layer
};

// Per-query routing outcome of one router layer (the reference's recall_topk).
struct LayerRouting {
  int layer = 0;
  std::vector<std::vector<int64_t>> doc_ids;   // [B][k'] best first
  std::vector<std::vector<double>> scores;     // [B][k']
};

// Per-layer decode cache with its own validity mask (router layers hold extra chunk entries).
struct MsaCache {
  std::vector<torch::Tensor> k, v;   // [B, Hkv, T_l, D]
  std::vector<torch::Tensor> valid;  // [B, T_l] bool
  torch::Tensor next_position;       // [B] int64
};

// Routing and content fetch of the router layers for prefill(); the default reads the MemoryBank
// given to prefill. Memory Parallel replaces it to route over a bank sharded across processes.
class RoutingProvider {
 public:
  virtual ~RoutingProvider() = default;
  virtual int64_t num_docs() const = 0;
  // Top-k' documents of every row for one bank slot, exactly as top_k_documents over the whole bank.
  virtual void route(int slot, const torch::Tensor& q_router, const torch::Tensor& routing_mask, int k,
                     LayerRouting& out) = 0;
  // Per row: content K and V [Hkv, n, D] of every chunk of its documents (ascending ids, chunk order);
  // undefined tensors for a row without documents.
  virtual std::vector<std::pair<torch::Tensor, torch::Tensor>> fetch(int slot,
                                                                     const std::vector<std::vector<int64_t>>& docs) = 0;
};

// Where a prefill's time went, summed over its layers (seconds, wall clock of the calling thread).
struct PrefillStats {
  double score_s = 0;   // routing scores (router query vs pooled router keys, reductions)
  double topk_s = 0;    // top-k documents (with a RoutingProvider: included in score_s)
  double fetch_s = 0;   // waiting for the selected documents' content K/V
  double attend_s = 0;  // attention over [template; fetched chunks; prompt], every layer
  int64_t fetched_docs = 0;    // (layer, document) content fetches the prefill used
  int64_t prefetch_hits = 0;   // ... of which were fetched speculatively while the previous layer ran
  int64_t prefetch_unused = 0; // speculative fetches no row needed
  PrefillStats& operator+=(const PrefillStats& o);
};

struct PromptTokens {
  std::vector<int64_t> ids;
  std::vector<int> roles;  // per token: 0 routing query, -1 active only, -2 template (msa-reference §4)
};

class MsaModel {
 public:
  MsaModel(Qwen3Model base, MsaOptions opt);
  static MsaModel load(const std::string& dir, torch::Dtype dtype = torch::kFloat32);

  // Stage 1. docs: token ids of each memory document (already wrapped in the document template);
  // template_ids: the template head (3 tokens for Qwen3: "<|im_start|>user\n").
  MemoryBank encode_memory(const std::vector<std::vector<int64_t>>& docs, const std::vector<int64_t>& template_ids,
                           const std::function<void(int64_t done_docs)>& progress = {}) const;
  // Stage-1 forward batches (document indices) for documents of these token lengths. Encoding the
  // documents of whole batches alone reproduces their pooled tensors bit for bit (Memory Parallel).
  std::vector<std::vector<size_t>> stage1_batches(const std::vector<int64_t>& doc_tokens) const;

  // Stage 2. Returns last-token logits [B, V]; fills cache and routing (one entry per router layer).
  // With `router`, routing and content come from it; bank supplies the template K/V and layers.
  torch::Tensor prefill(const MemoryBank& bank, const std::vector<PromptTokens>& prompts, MsaCache& cache,
                        std::vector<LayerRouting>* routing = nullptr, RoutingProvider* router = nullptr,
                        PrefillStats* stats = nullptr) const;
  // Stage 3. ids [B, n] appended at cache.next_position; step_valid [B, n] (false: frozen sample).
  torch::Tensor decode_step(const torch::Tensor& ids, MsaCache& cache, const torch::Tensor& step_valid = {}) const;

  // Routing core, exposed for tests and benchmarks. q_router [B, H, L, D]; routing_mask [B, L] bool;
  // router_k [Hkv, C, D]; chunk_doc [C] (int64, document of each chunk). Returns doc scores [B, N]
  // (fp32; documents without chunks get the lowest float).
  torch::Tensor document_scores(const torch::Tensor& q_router, const torch::Tensor& routing_mask,
                                const torch::Tensor& router_k, const torch::Tensor& chunk_doc, int64_t num_docs) const;
  // Document scores [B, N] of one bank slot: the bank's scan layout when it has one for the slot
  // (head mean), else document_scores over its router-key tensor.
  torch::Tensor bank_document_scores(const MemoryBank& bank, int slot, const torch::Tensor& q_router,
                                     const torch::Tensor& routing_mask) const;
  // Top-k' = min(k, N) per row, ties to the lower document id.
  static void top_k_documents(const torch::Tensor& doc_scores, int k, std::vector<std::vector<int64_t>>& ids,
                              std::vector<std::vector<double>>& scores);

  const Qwen3Model& base() const { return base_; }
  Qwen3Model& base() { return base_; }
  const MsaOptions& options() const { return opt_; }
  MsaOptions& options() { return opt_; }

 private:
  ThreadPool* fetch_pool() const;  // created on first use with opt_.fetch_threads workers

  Qwen3Model base_;
  MsaOptions opt_;
  mutable std::shared_ptr<ThreadPool> fetch_pool_;
};

// Additive fp32 attention bias [B, 1, Lq, prefix + Lq]: prefix keys allowed where prefix_valid,
// then causal attention within the block (bottom-right aligned: every query sees the prefix).
torch::Tensor prefix_causal_bias(const torch::Tensor& prefix_valid, const torch::Tensor& block_valid);

// Chunk means of x [B, H, L, D] for sequences of the given lengths (valid tokens are the first
// lengths[b] positions): returns [H, sum_b ceil(len_b/P), D] in fp32, chunks ordered by (b, chunk).
torch::Tensor pool_chunks(const torch::Tensor& x, const std::vector<int64_t>& lengths, int64_t P);

}  // namespace msabench
