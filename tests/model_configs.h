// Small model configurations shared by tests and benchmarks.
#pragma once
#include <cstdint>

#include "core/model/config.h"

namespace msabench::testing {

// One-layer MSA config whose only use is routing (document_scores): the geometry is what counts.
inline ModelConfig routing_only_config(int64_t heads, int64_t kv_heads, int64_t head_dim) {
  ModelConfig c;
  c.model_type = "msa";
  c.vocab_size = 16;
  c.hidden_size = 32;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = head_dim;
  c.torch_dtype = "float32";
  MsaConfig m;
  m.router_layers = {0};
  m.router_layer_idx = "0";
  m.decouple_router = true;
  c.msa = m;
  return c;
}

// Two-layer byte-vocabulary model (262 ids), fp32; `msa` adds a router layer 1 with P = 16.
inline ModelConfig tiny_byte_model_config(bool msa) {
  ModelConfig c;
  c.model_type = msa ? "msa" : "qwen3";
  c.vocab_size = 262;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.rope_theta = 10000;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 4096;
  c.torch_dtype = "float32";
  if (msa) {
    MsaConfig m;
    m.router_layers = {1};
    m.router_layer_idx = "1";
    m.decouple_router = true;
    m.pooling_kernel_size = 16;
    c.msa = m;
  }
  return c;
}

}  // namespace msabench::testing
