// Qwen3 decoder in LibTorch (device-agnostic tensor code; CPU today). The layer building blocks
// (norms, QKV projection with QK-norm and RoPE, GQA attention, SwiGLU MLP) are public so the
// MSA model can reuse them with its own attention routing.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "core/model/config.h"

namespace msabench {

struct Qwen3Layer {
  torch::Tensor input_norm, post_norm;            // [hidden]
  torch::Tensor q_proj, k_proj, v_proj, o_proj;   // [out, in]
  torch::Tensor q_norm, k_norm;                   // [head_dim]
  torch::Tensor gate_proj, up_proj, down_proj;    // [out, in]
  torch::Tensor router_q_proj, router_k_proj;     // MSA router layers with decouple_router only
};

// Pre-allocated per-layer K/V (post-RoPE) plus the validity of every cached position.
struct KVCache {
  std::vector<torch::Tensor> k, v;  // [B, Hkv, capacity, D]
  torch::Tensor valid;              // [B, capacity] bool
  int64_t length = 0;
  void clear() { k.clear(); v.clear(); valid = torch::Tensor(); length = 0; }
};

class Qwen3Model {
 public:
  // Loads config.json + safetensors (single file or sharded) from a Hugging Face layout
  // directory. Strict: missing, unexpected or mis-shaped tensors are Errors naming the key.
  static Qwen3Model load(const std::string& dir, torch::Dtype dtype = torch::kFloat32,
                         torch::Device device = torch::kCPU);
  // Random weights (normal std 0.02; norm weights near 1) for tests and small models.
  static Qwen3Model random_init(const ModelConfig& cfg, uint64_t seed, torch::Dtype dtype = torch::kFloat32);
  // Writes config.json and model.safetensors atomically, in the config's torch_dtype or in
  // `torch_dtype` ("bfloat16", "float16", "float32") when given (recorded in config.json too).
  void save(const std::string& dir, const std::string& torch_dtype = "") const;

  // ids [B, L] int64; positions [B, L] int64; valid [B, L] bool (false = left padding) or undefined.
  // With a cache, attends to the cached prefix too and appends this step. Returns logits [B, L, V] fp32.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& positions, KVCache* cache = nullptr,
                        const torch::Tensor& valid = {});
  // Same pass, returning the last layer's output before the final norm [B, L, hidden].
  torch::Tensor final_hidden(const torch::Tensor& ids, const torch::Tensor& positions, KVCache* cache = nullptr,
                             const torch::Tensor& valid = {});
  torch::Tensor hidden_to_logits(const torch::Tensor& hidden) const;

  // ---- building blocks (x: [B, L, hidden])
  torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w) const;
  torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& positions) const;  // x [B, H, L, D]
  struct QKV {
    torch::Tensor q, k, v;  // [B, H, L, D], [B, Hkv, L, D], [B, Hkv, L, D]; q/k normed and rotated
  };
  QKV project_qkv(const Qwen3Layer& layer, const torch::Tensor& x, const torch::Tensor& positions) const;
  // Softmax attention with GQA; bias: additive [B, 1, Lq, Lk] (fp32) or undefined. Returns [B, Lq, H*D].
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& bias) const;
  torch::Tensor mlp(const Qwen3Layer& layer, const torch::Tensor& x) const;

  const ModelConfig& config() const { return cfg_; }
  torch::Dtype dtype() const { return dtype_; }
  torch::Device device() const { return device_; }
  int64_t parameter_count() const;

  torch::Tensor embed_tokens, final_norm, lm_head;  // lm_head aliases embed_tokens when tied
  std::vector<Qwen3Layer> layers;

 private:
  ModelConfig cfg_;
  torch::Dtype dtype_ = torch::kFloat32;
  torch::Device device_ = torch::kCPU;
  torch::Tensor inv_freq_;  // [D/2] fp32
  void init_rope();
};

struct SamplingOptions {
  int max_new_tokens = 64;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<int64_t> stop_token_ids;
  int64_t pad_token_id = 0;
};

struct GenerationResult {
  std::vector<std::vector<int64_t>> tokens;   // generated ids per prompt (stop token excluded)
  std::vector<std::string> finish_reason;     // "stop_token" | "stop_check" | "length"
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// Batched prefill (left padding) then step-wise decode with a KV cache. stop_check(i, generated)
// lets callers stop on strings (decode with their tokenizer); return true to stop sequence i.
GenerationResult generate(Qwen3Model& model, const std::vector<std::vector<int64_t>>& prompts,
                          const SamplingOptions& opt,
                          const std::function<bool(size_t, const std::vector<int64_t>&)>& stop_check = {});

// Sets LibTorch's intra-op threads and keeps OpenBLAS's own pool to one thread (two spinning
// pools on the same cores cost more than they give for this engine's small GEMMs).
void set_compute_threads(int threads);

// LibTorch's CPU tensors are plain malloc blocks. Above glibc's mmap threshold (32 MB at most) each
// one is a fresh mmap that the kernel zeroes page by page and unmaps on free; stage-1 encoding spent
// about 40% of its CPU time there (results/benchmarks/encode-malloc.md). This keeps blocks up to
// 256 MB in the heap for reuse. A user's MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ win.
void keep_freed_memory_in_heap();

// Picks the next token from logits [B, V] (fp32): greedy or temperature + top-p with `gen`.
torch::Tensor sample_next(const torch::Tensor& logits, double temperature, double top_p, torch::Generator& gen);

}  // namespace msabench
