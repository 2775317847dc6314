#include "core/model/config.h"

#include <filesystem>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

int64_t get_int(const json& j, const char* key, const std::string& src, std::optional<int64_t> fallback = {}) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback) return *fallback;
    throw Error(src + ": missing \"" + key + "\"");
  }
  if (!j[key].is_number_integer()) throw Error(src + ": \"" + key + "\" must be an integer");
  return j[key].get<int64_t>();
}

double get_num(const json& j, const char* key, const std::string& src, std::optional<double> fallback = {}) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback) return *fallback;
    throw Error(src + ": missing \"" + key + "\"");
  }
  if (!j[key].is_number()) throw Error(src + ": \"" + key + "\" must be a number");
  return j[key].get<double>();
}

// The released converter writes some booleans as strings ("true"/"false").
bool get_bool(const json& j, const char* key, const std::string& src, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (j[key].is_boolean()) return j[key].get<bool>();
  if (j[key].is_string()) {
    std::string s = j[key].get<std::string>();
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "true") return true;
    if (s == "false") return false;
  }
  throw Error(src + ": \"" + key + "\" must be true or false");
}

std::string get_str(const json& j, const char* key, const std::string& src, const std::string& fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) throw Error(src + ": \"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

Reduce get_reduce(const json& j, const char* key, const std::string& src, Reduce fallback) {
  std::string s = get_str(j, key, src, fallback == Reduce::Mean ? "mean" : "max");
  if (s == "mean") return Reduce::Mean;
  if (s == "max") return Reduce::Max;
  throw Error(src + ": msa_config." + key + " must be \"mean\" or \"max\", got \"" + s + "\"");
}

std::vector<int> parse_layers(const std::string& spec, int64_t n_layers, const std::string& src) {
  std::vector<int> out;
  if (spec == "all") {
    for (int i = 0; i < n_layers; ++i) out.push_back(i);
    return out;
  }
  std::stringstream ss(spec);
  std::string item;
  std::set<int> seen;
  while (std::getline(ss, item, ',')) {
    size_t idx = 0;
    int v = -1;
    try {
      v = std::stoi(item, &idx);
    } catch (const std::exception&) {
      idx = 0;
    }
    if (idx == 0 || idx != item.size() || v < 0 || v >= n_layers)
      throw Error(src + ": msa_config.router_layer_idx entry '" + item + "' is not a layer index in 0.." +
                  std::to_string(n_layers - 1));
    if (seen.insert(v).second) out.push_back(v);
  }
  if (out.empty()) throw Error(src + ": msa_config.router_layer_idx is empty");
  return out;
}

const std::set<std::string> kMsaKeys = {
    "router_layer_idx", "decouple_router",  "top_k_docs",     "pooling_kernel_size", "head_reduce_method",
    "query_reduce_method", "chunk_reduce_method", "aux_loss_method", "infonce_loss_temp", "aux_loss",
    "lmloss_weigth",    "auxloss_weight",   "recloss_weight", "ansloss_weight",      "rewrite_position",
    "decouple_pooling_mode"};

const char* reduce_name(Reduce r) { return r == Reduce::Mean ? "mean" : "max"; }

}  // namespace

bool MsaConfig::is_router_layer(int layer) const {
  for (int l : router_layers)
    if (l == layer) return true;
  return false;
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) throw Error(src + ": config is not a JSON object");
  ModelConfig c;
  c.model_type = get_str(j, "model_type", src, "");
  if (c.model_type != "qwen3" && c.model_type != "msa")
    throw Error(src + ": model_type \"" + c.model_type + "\" is not supported (qwen3, msa)");
  c.vocab_size = get_int(j, "vocab_size", src);
  c.hidden_size = get_int(j, "hidden_size", src);
  c.intermediate_size = get_int(j, "intermediate_size", src);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", src);
  c.num_attention_heads = get_int(j, "num_attention_heads", src);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", src, c.num_attention_heads);
  c.head_dim = get_int(j, "head_dim", src, c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.rms_norm_eps = get_num(j, "rms_norm_eps", src, 1e-6);
  c.rope_theta = get_num(j, "rope_theta", src, 1e6);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", src, false);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", src, 40960);
  c.bos_token_id = get_int(j, "bos_token_id", src, -1);
  c.eos_token_id = j.contains("eos_token_id") && j["eos_token_id"].is_array() && !j["eos_token_id"].empty()
                       ? j["eos_token_id"][0].get<int64_t>()
                       : get_int(j, "eos_token_id", src, -1);
  c.torch_dtype = get_str(j, "torch_dtype", src, "bfloat16");
  if (get_str(j, "hidden_act", src, "silu") != "silu") throw Error(src + ": hidden_act must be \"silu\" for Qwen3");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    throw Error(src + ": rope_scaling is not supported (Qwen3/MSA use plain RoPE)");
  if (get_bool(j, "attention_bias", src, false)) throw Error(src + ": attention_bias=true is not supported");
  if (get_bool(j, "use_sliding_window", src, false)) throw Error(src + ": sliding-window attention is not supported");
  if (c.model_type == "msa") {
    if (!j.contains("msa_config") || !j["msa_config"].is_object())
      throw Error(src + ": model_type \"msa\" needs an \"msa_config\" object");
    const json& m = j["msa_config"];
    require_known_keys(m, kMsaKeys, src + " msa_config");
    MsaConfig mc;
    mc.router_layer_idx = m.contains("router_layer_idx") && m["router_layer_idx"].is_array()
                              ? [&] {
                                  std::string s;
                                  for (const auto& v : m["router_layer_idx"])
                                    s += (s.empty() ? "" : ",") + std::to_string(v.get<int>());
                                  return s;
                                }()
                              : get_str(m, "router_layer_idx", src, "all");
    mc.router_layers = parse_layers(mc.router_layer_idx, c.num_hidden_layers, src);
    mc.decouple_router = get_bool(m, "decouple_router", src, false);
    mc.top_k_docs = static_cast<int>(get_int(m, "top_k_docs", src, 16));
    mc.pooling_kernel_size = static_cast<int>(get_int(m, "pooling_kernel_size", src, 64));
    mc.head_reduce = get_reduce(m, "head_reduce_method", src, Reduce::Mean);
    mc.query_reduce = get_reduce(m, "query_reduce_method", src, Reduce::Max);
    mc.chunk_reduce = get_reduce(m, "chunk_reduce_method", src, Reduce::Max);
    mc.aux_loss_method = get_str(m, "aux_loss_method", src, "INFONCE_DECOUPLE");
    mc.infonce_loss_temp = get_num(m, "infonce_loss_temp", src, 0.1);
    mc.aux_loss = get_bool(m, "aux_loss", src, false);
    mc.lm_loss_weight = get_num(m, "lmloss_weigth", src, 1.0);
    mc.aux_loss_weight = get_num(m, "auxloss_weight", src, 0.1);
    mc.rec_loss_weight = get_num(m, "recloss_weight", src, 0.0);
    mc.ans_loss_weight = get_num(m, "ansloss_weight", src, 1.0);
    mc.rewrite_position = get_bool(m, "rewrite_position", src, false);
    mc.decouple_pooling_mode = get_str(m, "decouple_pooling_mode", src, "mean");
    const std::set<std::string> methods = {"INFONCE", "INFONCE_DECOUPLE", "BCE"};
    if (!methods.count(mc.aux_loss_method))
      throw Error(src + ": msa_config.aux_loss_method \"" + mc.aux_loss_method + "\" is not INFONCE, INFONCE_DECOUPLE or BCE");
    c.msa = mc;
  }
  c.validate(src);
  return c;
}

void ModelConfig::validate(const std::string& src) const {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) throw Error(src + ": \"" + std::string(name) + "\" must be positive (got " + std::to_string(v) + ")");
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  if (num_attention_heads % num_key_value_heads != 0)
    throw Error(src + ": num_attention_heads (" + std::to_string(num_attention_heads) +
                ") is not a multiple of num_key_value_heads (" + std::to_string(num_key_value_heads) + ")");
  if (head_dim % 2 != 0) throw Error(src + ": head_dim must be even for RoPE");
  if (!(rms_norm_eps > 0)) throw Error(src + ": rms_norm_eps must be positive");
  if (!(rope_theta > 1)) throw Error(src + ": rope_theta must be > 1");
  if (msa) {
    if (msa->pooling_kernel_size < 1) throw Error(src + ": msa_config.pooling_kernel_size must be >= 1");
    if (msa->top_k_docs < 1) throw Error(src + ": msa_config.top_k_docs must be >= 1");
    for (int l : msa->router_layers)
      if (l < 0 || l >= num_hidden_layers) throw Error(src + ": router layer " + std::to_string(l) + " out of range");
  }
  if (torch_dtype != "bfloat16" && torch_dtype != "float32" && torch_dtype != "float16")
    throw Error(src + ": torch_dtype \"" + torch_dtype + "\" is not bfloat16, float16 or float32");
}

ModelConfig ModelConfig::load(const std::string& path_or_dir) {
  fs::path p(path_or_dir);
  if (!fs::exists(p)) throw Error(path_or_dir + ": no such model directory or config.json");
  if (fs::is_directory(p)) p /= "config.json";
  if (!fs::exists(p)) throw Error(path_or_dir + ": model directory has no config.json");
  json j;
  try {
    j = json::parse(read_file(p.string()));
  } catch (const json::exception& e) {
    throw Error(p.string() + ": invalid JSON (" + e.what() + ")");
  }
  return from_json(j, p.string());
}

json ModelConfig::to_json() const {
  json j = {{"architectures", {model_type == "msa" ? "MSAForCausalLM" : "Qwen3ForCausalLM"}},
            {"model_type", model_type},
            {"vocab_size", vocab_size},
            {"hidden_size", hidden_size},
            {"intermediate_size", intermediate_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"head_dim", head_dim},
            {"hidden_act", "silu"},
            {"rms_norm_eps", rms_norm_eps},
            {"rope_theta", rope_theta},
            {"rope_scaling", nullptr},
            {"attention_bias", false},
            {"tie_word_embeddings", tie_word_embeddings},
            {"max_position_embeddings", max_position_embeddings},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_id},
            {"torch_dtype", torch_dtype}};
  if (msa) {
    j["msa_config"] = {{"router_layer_idx", msa->router_layer_idx},
                       {"decouple_router", msa->decouple_router},
                       {"top_k_docs", msa->top_k_docs},
                       {"pooling_kernel_size", msa->pooling_kernel_size},
                       {"head_reduce_method", reduce_name(msa->head_reduce)},
                       {"query_reduce_method", reduce_name(msa->query_reduce)},
                       {"chunk_reduce_method", reduce_name(msa->chunk_reduce)},
                       {"aux_loss_method", msa->aux_loss_method},
                       {"infonce_loss_temp", msa->infonce_loss_temp},
                       {"aux_loss", msa->aux_loss},
                       {"lmloss_weigth", msa->lm_loss_weight},
                       {"auxloss_weight", msa->aux_loss_weight},
                       {"recloss_weight", msa->rec_loss_weight},
                       {"ansloss_weight", msa->ans_loss_weight},
                       {"rewrite_position", msa->rewrite_position},
                       {"decouple_pooling_mode", msa->decouple_pooling_mode}};
  }
  return j;
}

}  // namespace msabench
