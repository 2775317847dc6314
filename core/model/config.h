// config.json for Qwen3 (model_type "qwen3") and MSA (model_type "msa" with an "msa_config"
// block; see ../shared/reference/msa-reference.md section 3.3). Parsing is strict: missing,
// inconsistent or unsupported values are Errors naming the file and the field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace msabench {

enum class Reduce { Mean, Max };

struct MsaConfig {
  std::vector<int> router_layers;     // parsed router_layer_idx ("all" -> every layer)
  std::string router_layer_idx = "all";  // as written
  bool decouple_router = false;       // router_q_proj / router_k_proj exist
  int top_k_docs = 16;                // training top-k (the engine has its own doc_top_k)
  int pooling_kernel_size = 64;       // P: tokens per pooled chunk
  Reduce head_reduce = Reduce::Mean;
  Reduce query_reduce = Reduce::Max;
  Reduce chunk_reduce = Reduce::Max;
  std::string aux_loss_method = "INFONCE_DECOUPLE";
  double infonce_loss_temp = 0.1;
  bool aux_loss = false;
  double lm_loss_weight = 1.0;        // key "lmloss_weigth" (sic) in the released config
  double aux_loss_weight = 0.1;
  double rec_loss_weight = 0.0;
  double ans_loss_weight = 1.0;
  bool rewrite_position = true;
  std::string decouple_pooling_mode = "mean";

  bool is_router_layer(int layer) const;
};

struct ModelConfig {
  std::string model_type = "qwen3";   // qwen3 | msa
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1e6;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 40960;
  int64_t bos_token_id = -1, eos_token_id = -1;
  std::string torch_dtype = "bfloat16";
  std::optional<MsaConfig> msa;       // present iff model_type == "msa"

  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  static ModelConfig load(const std::string& path_or_dir);  // config.json
  nlohmann::json to_json() const;
  void validate(const std::string& source) const;
};

}  // namespace msabench
