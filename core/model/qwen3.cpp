#include "core/model/qwen3.h"

#include <dlfcn.h>
#include <malloc.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "core/model/safetensors.h"

namespace fs = std::filesystem;

namespace msabench {

namespace {

torch::Dtype to_torch(DType t, const std::string& where) {
  switch (t) {
    case DType::BF16: return torch::kBFloat16;
    case DType::F16: return torch::kFloat16;
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
    default: throw Error(where + ": tensor dtype " + dtype_name(t) + " is not a floating-point weight type");
  }
}

DType from_torch(torch::Dtype t) {
  if (t == torch::kBFloat16) return DType::BF16;
  if (t == torch::kFloat16) return DType::F16;
  if (t == torch::kFloat32) return DType::F32;
  throw Error("cannot save tensors of this dtype");
}

torch::Dtype config_dtype(const std::string& s) {
  if (s == "float32") return torch::kFloat32;
  if (s == "float16") return torch::kFloat16;
  return torch::kBFloat16;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

struct Named {
  std::string name;
  torch::Tensor* tensor;
  std::vector<int64_t> shape;
};

// Every weight of the model with its HF key and expected shape (single source of truth for
// load, save and random init).
std::vector<Named> weight_table(Qwen3Model& m) {
  const auto& c = m.config();
  const int64_t H = c.num_attention_heads, Hk = c.num_key_value_heads, D = c.head_dim, E = c.hidden_size,
                I = c.intermediate_size;
  std::vector<Named> t;
  t.push_back({"model.embed_tokens.weight", &m.embed_tokens, {c.vocab_size, E}});
  t.push_back({"model.norm.weight", &m.final_norm, {E}});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", &m.lm_head, {c.vocab_size, E}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    auto& L = m.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.push_back({p + "input_layernorm.weight", &L.input_norm, {E}});
    t.push_back({p + "post_attention_layernorm.weight", &L.post_norm, {E}});
    t.push_back({p + "self_attn.q_proj.weight", &L.q_proj, {H * D, E}});
    t.push_back({p + "self_attn.k_proj.weight", &L.k_proj, {Hk * D, E}});
    t.push_back({p + "self_attn.v_proj.weight", &L.v_proj, {Hk * D, E}});
    t.push_back({p + "self_attn.o_proj.weight", &L.o_proj, {E, H * D}});
    t.push_back({p + "self_attn.q_norm.weight", &L.q_norm, {D}});
    t.push_back({p + "self_attn.k_norm.weight", &L.k_norm, {D}});
    t.push_back({p + "mlp.gate_proj.weight", &L.gate_proj, {I, E}});
    t.push_back({p + "mlp.up_proj.weight", &L.up_proj, {I, E}});
    t.push_back({p + "mlp.down_proj.weight", &L.down_proj, {E, I}});
    if (c.msa && c.msa->decouple_router && c.msa->is_router_layer(static_cast<int>(i))) {
      t.push_back({p + "self_attn.router_q_proj.0.weight", &L.router_q_proj, {H * D, E}});
      t.push_back({p + "self_attn.router_k_proj.0.weight", &L.router_k_proj, {Hk * D, E}});
    }
  }
  return t;
}

bool ignorable_key(const std::string& k, const ModelConfig& c) {
  if (k == "lm_head.weight" && c.tie_word_embeddings) return true;  // tied: embed is authoritative
  if (k.size() > 19 && k.compare(k.size() - 19, 19, "rotary_emb.inv_freq") == 0) return true;  // old buffers
  if (c.msa && (k == "temperature" || k == "b")) return true;  // aux-loss scalars (training only)
  return false;
}

}  // namespace

void Qwen3Model::init_rope() {
  const int64_t D = cfg_.head_dim;
  auto idx = torch::arange(0, D, 2, torch::TensorOptions().dtype(torch::kFloat32));
  inv_freq_ = torch::pow(static_cast<double>(cfg_.rope_theta), -idx / static_cast<double>(D)).to(device_);
}

Qwen3Model Qwen3Model::load(const std::string& dir, torch::Dtype dtype, torch::Device device) {
  Qwen3Model m;
  m.cfg_ = ModelConfig::load(dir);
  m.dtype_ = dtype;
  m.device_ = device;
  m.layers.resize(m.cfg_.num_hidden_layers);
  Checkpoint ck(dir);
  auto table = weight_table(m);
  std::set<std::string> expected;
  for (auto& w : table) {
    expected.insert(w.name);
    if (!ck.contains(w.name)) throw Error(dir + ": checkpoint is missing tensor '" + w.name + "'");
    const TensorView& v = ck.get(w.name);
    if (v.shape != w.shape)
      throw Error(dir + ": tensor '" + w.name + "' has shape " + shape_str(v.shape) + ", config expects " +
                  shape_str(w.shape));
    auto src = torch::from_blob(const_cast<uint8_t*>(v.data), v.shape,
                                torch::TensorOptions().dtype(to_torch(v.dtype, dir + ": '" + w.name + "'")));
    *w.tensor = src.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
  }
  for (const auto& n : ck.names())
    if (!expected.count(n) && !ignorable_key(n, m.cfg_))
      throw Error(dir + ": unexpected tensor '" + n + "' (not part of a " + m.cfg_.model_type + " model with this config)");
  if (m.cfg_.tie_word_embeddings) m.lm_head = m.embed_tokens;
  m.init_rope();
  return m;
}

Qwen3Model Qwen3Model::random_init(const ModelConfig& cfg, uint64_t seed, torch::Dtype dtype) {
  cfg.validate("random_init config");
  Qwen3Model m;
  m.cfg_ = cfg;
  m.dtype_ = dtype;
  m.layers.resize(cfg.num_hidden_layers);
  auto gen = at::detail::createCPUGenerator(seed);
  auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  for (auto& w : weight_table(m)) {
    torch::Tensor t;
    if (w.shape.size() == 1) t = 1.0 + 0.1 * at::randn(w.shape, gen, opts);  // norm weights
    else t = 0.02 * at::randn(w.shape, gen, opts);
    *w.tensor = t.to(dtype);
  }
  if (cfg.tie_word_embeddings) m.lm_head = m.embed_tokens;
  m.init_rope();
  return m;
}

void Qwen3Model::save(const std::string& dir, const std::string& torch_dtype) const {
  fs::create_directories(dir);
  auto& self = const_cast<Qwen3Model&>(*this);
  ModelConfig cfg = cfg_;
  if (!torch_dtype.empty()) cfg.torch_dtype = torch_dtype;
  cfg.validate(dir + "/config.json");
  const torch::Dtype out = config_dtype(cfg.torch_dtype);
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> tensors;
  for (auto& w : weight_table(self)) {
    keep.push_back(w.tensor->to(torch::kCPU, out).contiguous());
    const auto& t = keep.back();
    tensors.push_back({w.name, from_torch(out), w.shape, t.data_ptr(), static_cast<size_t>(t.nbytes())});
  }
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_json_atomic((fs::path(dir) / "config.json").string(), cfg.to_json());
}

int64_t Qwen3Model::parameter_count() const {
  int64_t n = 0;
  for (auto& w : weight_table(const_cast<Qwen3Model&>(*this))) n += w.tensor->numel();
  return n;
}

torch::Tensor Qwen3Model::rms_norm(const torch::Tensor& x, const torch::Tensor& w) const {
  // HF Qwen3RMSNorm: normalise in fp32, cast back, then scale in the model dtype.
  auto xf = x.to(torch::kFloat32);
  auto var = xf.pow(2).mean(-1, true);
  return w * (xf * torch::rsqrt(var + cfg_.rms_norm_eps)).to(x.scalar_type());
}

torch::Tensor Qwen3Model::rope(const torch::Tensor& x, const torch::Tensor& positions) const {
  // angles [B, L, D/2] in fp32; cos/sin duplicated to D and cast to the model dtype (rotate-half).
  auto ang = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;
  auto emb = torch::cat({ang, ang}, -1);
  auto cos = emb.cos().to(x.scalar_type()).unsqueeze(1);
  auto sin = emb.sin().to(x.scalar_type()).unsqueeze(1);
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

Qwen3Model::QKV Qwen3Model::project_qkv(const Qwen3Layer& L, const torch::Tensor& x,
                                        const torch::Tensor& positions) const {
  const int64_t B = x.size(0), T = x.size(1), D = cfg_.head_dim;
  auto q = torch::linear(x, L.q_proj).view({B, T, -1, D});
  auto k = torch::linear(x, L.k_proj).view({B, T, -1, D});
  auto v = torch::linear(x, L.v_proj).view({B, T, -1, D}).transpose(1, 2);
  q = rms_norm(q, L.q_norm).transpose(1, 2);
  k = rms_norm(k, L.k_norm).transpose(1, 2);
  return {rope(q, positions), rope(k, positions), v};
}

torch::Tensor Qwen3Model::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& bias) const {
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3), Hk = k.size(1);
  const int64_t groups = H / Hk;
  auto ke = k.repeat_interleave(groups, 1);
  auto ve = v.repeat_interleave(groups, 1);
  auto scores = torch::matmul(q, ke.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(D)));
  auto s = scores.to(torch::kFloat32);
  if (bias.defined()) s = s + bias;
  auto p = torch::softmax(s, -1).to(q.scalar_type());
  auto out = torch::matmul(p, ve);  // [B, H, Lq, D]
  return out.transpose(1, 2).reshape({B, Lq, H * D});
}

torch::Tensor Qwen3Model::mlp(const Qwen3Layer& L, const torch::Tensor& x) const {
  return torch::linear(torch::silu(torch::linear(x, L.gate_proj)) * torch::linear(x, L.up_proj), L.down_proj);
}

torch::Tensor Qwen3Model::hidden_to_logits(const torch::Tensor& hidden) const {
  return torch::linear(rms_norm(hidden, final_norm), lm_head).to(torch::kFloat32);
}

torch::Tensor Qwen3Model::forward(const torch::Tensor& ids, const torch::Tensor& positions, KVCache* cache,
                                  const torch::Tensor& valid) {
  return hidden_to_logits(final_hidden(ids, positions, cache, valid));
}

torch::Tensor Qwen3Model::final_hidden(const torch::Tensor& ids, const torch::Tensor& positions, KVCache* cache,
                                       const torch::Tensor& valid_in) {
  torch::NoGradGuard no_grad;
  const int64_t B = ids.size(0), Lq = ids.size(1);
  const int64_t Hk = cfg_.num_key_value_heads, D = cfg_.head_dim;
  auto valid = valid_in.defined() ? valid_in.to(torch::kBool)
                                  : torch::ones({B, Lq}, torch::TensorOptions().dtype(torch::kBool).device(device_));
  const int64_t past = cache ? cache->length : 0;
  if (cache) {
    const int64_t need = past + Lq;
    const int64_t cap = cache->k.empty() ? 0 : cache->k[0].size(2);
    if (!cache->k.empty() && cache->k[0].size(0) != B) throw Error("KV cache batch size does not match the input");
    if (need > cap) {
      const int64_t new_cap = std::max<int64_t>(need, std::max<int64_t>(64, cap * 2));
      auto opts = torch::TensorOptions().dtype(dtype_).device(device_);
      for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
        auto nk = torch::zeros({B, Hk, new_cap, D}, opts), nv = torch::zeros({B, Hk, new_cap, D}, opts);
        if (cap > 0) {
          nk.narrow(2, 0, past).copy_(cache->k[l].narrow(2, 0, past));
          nv.narrow(2, 0, past).copy_(cache->v[l].narrow(2, 0, past));
        }
        if (static_cast<int64_t>(cache->k.size()) <= l) {
          cache->k.push_back(nk);
          cache->v.push_back(nv);
        } else {
          cache->k[l] = nk;
          cache->v[l] = nv;
        }
      }
      auto nvalid = torch::zeros({B, new_cap}, torch::TensorOptions().dtype(torch::kBool).device(device_));
      if (cap > 0) nvalid.narrow(1, 0, past).copy_(cache->valid.narrow(1, 0, past));
      cache->valid = nvalid;
    }
    cache->valid.narrow(1, past, Lq).copy_(valid);
  }
  const int64_t Tk = past + Lq;
  // bias[b, 0, i, j] = 0 if key j is valid and j <= past + i, else the most negative float
  auto key_valid = cache ? cache->valid.narrow(1, 0, Tk) : valid;
  auto qi = torch::arange(Lq, torch::TensorOptions().device(device_)).unsqueeze(1) + past;
  auto kj = torch::arange(Tk, torch::TensorOptions().device(device_)).unsqueeze(0);
  auto allowed = (kj <= qi).unsqueeze(0) & key_valid.unsqueeze(1);  // [B, Lq, Tk]
  auto bias = torch::zeros({B, 1, Lq, Tk}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  bias.masked_fill_(allowed.logical_not().unsqueeze(1), std::numeric_limits<float>::lowest());

  auto h = torch::embedding(embed_tokens, ids);
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const auto& L = layers[l];
    auto x = rms_norm(h, L.input_norm);
    auto qkv = project_qkv(L, x, positions);
    torch::Tensor k = qkv.k, v = qkv.v;
    if (cache) {
      cache->k[l].narrow(2, past, Lq).copy_(qkv.k);
      cache->v[l].narrow(2, past, Lq).copy_(qkv.v);
      k = cache->k[l].narrow(2, 0, Tk);
      v = cache->v[l].narrow(2, 0, Tk);
    }
    h = h + torch::linear(attend(qkv.q, k, v, bias), L.o_proj);
    h = h + mlp(L, rms_norm(h, L.post_norm));
  }
  if (cache) cache->length = Tk;
  return h;
}

void keep_freed_memory_in_heap() {
#ifdef __GLIBC__
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 256 << 20);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

void set_compute_threads(int threads) {
  torch::set_num_threads(std::max(1, threads));
  if (auto* set_blas = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set_blas(1);
}

torch::Tensor sample_next(const torch::Tensor& logits, double temperature, double top_p, torch::Generator& gen) {
  if (temperature <= 0) return logits.argmax(-1);
  auto probs = torch::softmax(logits / temperature, -1);
  if (top_p < 1.0) {
    auto sorted = probs.sort(-1, /*descending=*/true);
    auto p = std::get<0>(sorted), idx = std::get<1>(sorted);
    auto cum = p.cumsum(-1);
    auto drop = (cum - p) > top_p;  // keep the smallest prefix whose mass reaches top_p
    p = p.masked_fill(drop, 0.0);
    probs = torch::zeros_like(probs).scatter(-1, idx, p);
    probs = probs / probs.sum(-1, true);
  }
  return torch::multinomial(probs, 1, false, gen).squeeze(-1);
}

GenerationResult generate(Qwen3Model& model, const std::vector<std::vector<int64_t>>& prompts,
                          const SamplingOptions& opt,
                          const std::function<bool(size_t, const std::vector<int64_t>&)>& stop_check) {
  torch::NoGradGuard no_grad;
  GenerationResult res;
  const int64_t B = static_cast<int64_t>(prompts.size());
  if (B == 0) return res;
  int64_t maxlen = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw Error("generate: empty prompt");
    maxlen = std::max<int64_t>(maxlen, p.size());
    res.prompt_tokens += static_cast<int64_t>(p.size());
  }
  for (const auto& p : prompts)
    for (auto id : p)
      if (id < 0 || id >= model.config().vocab_size)
        throw Error("generate: token id " + std::to_string(id) + " outside the vocabulary");
  auto dev = model.device();
  auto ids = torch::full({B, maxlen}, opt.pad_token_id, torch::kInt64);
  auto valid = torch::zeros({B, maxlen}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t off = maxlen - static_cast<int64_t>(prompts[b].size());
    for (size_t i = 0; i < prompts[b].size(); ++i) ids[b][off + i] = prompts[b][i];
    valid[b].narrow(0, off, maxlen - off).fill_(true);
  }
  auto positions = (valid.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
  ids = ids.to(dev);
  valid = valid.to(dev);
  positions = positions.to(dev);
  KVCache cache;
  auto gen = at::detail::createCPUGenerator(opt.seed);
  res.tokens.assign(B, {});
  res.finish_reason.assign(B, "length");
  std::vector<bool> done(B, false);
  auto t0 = std::chrono::steady_clock::now();
  auto logits = model.forward(ids, positions, &cache, valid).select(1, maxlen - 1);
  res.prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto next_pos = positions.select(1, maxlen - 1) + 1;
  auto t1 = std::chrono::steady_clock::now();
  for (int step = 0; step < opt.max_new_tokens; ++step) {
    auto next = sample_next(logits.to(torch::kCPU), opt.temperature, opt.top_p, gen);
    auto acc = next.accessor<int64_t, 1>();
    int64_t alive = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      const int64_t tok = acc[b];
      if (std::find(opt.stop_token_ids.begin(), opt.stop_token_ids.end(), tok) != opt.stop_token_ids.end()) {
        done[b] = true;
        res.finish_reason[b] = "stop_token";
        continue;
      }
      res.tokens[b].push_back(tok);
      ++res.generated_tokens;
      if (stop_check && stop_check(static_cast<size_t>(b), res.tokens[b])) {
        done[b] = true;
        res.finish_reason[b] = "stop_check";
        continue;
      }
      ++alive;
    }
    if (alive == 0 || step + 1 == opt.max_new_tokens) break;
    auto step_valid = torch::ones({B, 1}, torch::TensorOptions().dtype(torch::kBool).device(dev));
    logits = model.forward(next.to(dev).unsqueeze(1), next_pos.unsqueeze(1), &cache, step_valid).select(1, 0);
    next_pos = next_pos + 1;
  }
  res.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  return res;
}

}  // namespace msabench
