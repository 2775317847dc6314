#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tests/test_util.h"
#include "core/io.h"
#include "core/model/config.h"
#include "core/model/safetensors.h"

namespace fs = std::filesystem;
using namespace msabench;
using msabench::testing::error_of;

namespace {
fs::path tmpdir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("msabench-mio-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
// A raw safetensors file with the given header and data size.
std::string raw_file(const fs::path& p, const std::string& header, size_t data_bytes) {
  std::string s;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  s += header;
  s.append(data_bytes, '\0');
  std::ofstream(p, std::ios::binary) << s;
  return p.string();
}
}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
  fs::path d = tmpdir("rt");
  std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x4040};
  std::vector<uint16_t> f16 = {0x3c00, 0x4000};
  write_safetensors((d / "a.safetensors").string(),
                    {{"w.f32", DType::F32, {2, 3}, f32.data(), f32.size() * 4},
                     {"w.bf16", DType::BF16, {3}, bf16.data(), bf16.size() * 2},
                     {"w.f16", DType::F16, {1, 2}, f16.data(), f16.size() * 2},
                     {"empty", DType::F32, {0}, nullptr, 0}},
                    {{"format", "pt"}});
  SafetensorsFile f((d / "a.safetensors").string());
  EXPECT_EQ(f.names().size(), 4u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const auto& v = f.get("w.f32");
  EXPECT_EQ(v.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(v.data, f32.data(), 24), 0);
  EXPECT_EQ(f.get("w.bf16").dtype, DType::BF16);
  EXPECT_EQ(std::memcmp(f.get("w.f16").data, f16.data(), 4), 0);
  EXPECT_EQ(f.get("empty").numel(), 0);
  EXPECT_NE(error_of([&] { f.get("nope"); }).find("no tensor named 'nope'"), std::string::npos);
  fs::remove_all(d);
}

TEST(Safetensors, StrictValidation) {
  fs::path d = tmpdir("bad");
  auto err = [&](const std::string& header, size_t data) {
    auto p = raw_file(d / "x.safetensors", header, data);
    return error_of([&] { SafetensorsFile f(p); });
  };
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4).find("outside the data region"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8).find("needing 12"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8).find("unsupported tensor dtype"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)
                .find("duplicate tensor name 'a'"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(err("{not json", 0).find("not valid JSON"), std::string::npos);
  // header length beyond the file
  std::string p = (d / "y.safetensors").string();
  std::ofstream(p, std::ios::binary) << std::string("\xff\xff\x00\x00\x00\x00\x00\x00{}", 10);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("exceeds the file"), std::string::npos);
  EXPECT_NE(error_of([&] { SafetensorsFile f((d / "missing").string()); }).find("cannot open"), std::string::npos);
  fs::remove_all(d);
}

TEST(Safetensors, ShardedCheckpoint) {
  fs::path d = tmpdir("shard");
  float a = 1, b = 2;
  write_safetensors((d / "model-00001-of-00002.safetensors").string(), {{"a", DType::F32, {1}, &a, 4}});
  write_safetensors((d / "model-00002-of-00002.safetensors").string(), {{"b", DType::F32, {1}, &b, 4}});
  write_json_atomic((d / "model.safetensors.index.json").string(),
                    {{"metadata", {{"total_size", 8}}},
                     {"weight_map", {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}}}});
  Checkpoint ck(d.string());
  EXPECT_EQ(*reinterpret_cast<const float*>(ck.get("b").data), 2.0f);
  EXPECT_EQ(ck.names().size(), 2u);
  write_json_atomic((d / "model.safetensors.index.json").string(),
                    {{"weight_map", {{"a", "model-00002-of-00002.safetensors"}}}});
  EXPECT_NE(error_of([&] { Checkpoint c(d.string()); }).find("is mapped to model-00002-of-00002.safetensors but is not in it"),
            std::string::npos);
  fs::remove_all(d);
  EXPECT_NE(error_of([&] { Checkpoint c(d.string()); }).find("does not exist"), std::string::npos);
}

TEST(ModelConfig, ParsesMsa4BConfig) {
  auto j = nlohmann::json::parse(R"({
    "architectures": ["MSAForCausalLM"], "model_type": "msa", "hidden_size": 2560, "intermediate_size": 9728,
    "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
    "hidden_act": "silu", "rms_norm_eps": 1e-06, "rope_theta": 5000000, "rope_scaling": null,
    "max_position_embeddings": 262144, "attention_bias": false, "attention_dropout": 0.0,
    "tie_word_embeddings": true, "vocab_size": 151936, "bos_token_id": 151643, "eos_token_id": 151645,
    "torch_dtype": "bfloat16", "sliding_window": null, "use_sliding_window": false,
    "msa_config": {"router_layer_idx": "18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35",
      "decouple_router": true, "top_k_docs": 16, "pooling_kernel_size": 64, "head_reduce_method": "mean",
      "query_reduce_method": "max", "chunk_reduce_method": "max", "aux_loss_method": "INFONCE_DECOUPLE",
      "infonce_loss_temp": 0.1, "aux_loss": "false", "lmloss_weigth": 1.0, "auxloss_weight": 0.1,
      "recloss_weight": 0.0, "ansloss_weight": 1.0, "rewrite_position": "true", "decouple_pooling_mode": "mean"}})");
  ModelConfig c = ModelConfig::from_json(j, "config.json");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_TRUE(c.tie_word_embeddings);
  ASSERT_TRUE(c.msa.has_value());
  EXPECT_EQ(c.msa->router_layers.size(), 18u);
  EXPECT_EQ(c.msa->router_layers.front(), 18);
  EXPECT_TRUE(c.msa->is_router_layer(35));
  EXPECT_FALSE(c.msa->is_router_layer(17));
  EXPECT_TRUE(c.msa->rewrite_position);
  EXPECT_FALSE(c.msa->aux_loss);
  EXPECT_EQ(c.msa->head_reduce, Reduce::Mean);
  // round trip through to_json
  ModelConfig c2 = ModelConfig::from_json(c.to_json(), "roundtrip");
  EXPECT_EQ(c2.msa->router_layers, c.msa->router_layers);
  EXPECT_EQ(c2.rope_theta, 5000000);
}

TEST(ModelConfig, ClearErrors) {
  auto base = nlohmann::json::parse(R"({"model_type":"qwen3","vocab_size":100,"hidden_size":64,
    "intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16})");
  EXPECT_NO_THROW(ModelConfig::from_json(base, "c.json"));
  auto with = [&](const char* key, nlohmann::json v) {
    auto j = base;
    j[key] = v;
    return error_of([&] { ModelConfig::from_json(j, "c.json"); });
  };
  EXPECT_NE(with("num_key_value_heads", 3).find("not a multiple"), std::string::npos);
  EXPECT_NE(with("hidden_size", "64").find("\"hidden_size\" must be an integer"), std::string::npos);
  EXPECT_NE(with("model_type", "llama").find("not supported"), std::string::npos);
  EXPECT_NE(with("rope_scaling", {{"type", "yarn"}}).find("rope_scaling"), std::string::npos);
  // a missing model directory is named as such, not as an unreadable file
  EXPECT_EQ(error_of([] { ModelConfig::load("/nonexistent/model"); }),
            "/nonexistent/model: no such model directory or config.json");
  const auto empty = std::filesystem::temp_directory_path() / ("msabench-noconfig-" + std::to_string(::getpid()));
  std::filesystem::create_directories(empty);
  EXPECT_EQ(error_of([&] { ModelConfig::load(empty.string()); }), empty.string() + ": model directory has no config.json");
  // found by fuzz_safetensors: a number beyond double escaped as a bare nlohmann exception
  std::ofstream((empty / "config.json").string()) << R"({"vocab_size": 1e406})";
  EXPECT_NE(error_of([&] { ModelConfig::load(empty.string()); }).find("config.json: invalid JSON"), std::string::npos);
  std::filesystem::remove_all(empty);
  EXPECT_NE(with("hidden_act", "gelu").find("silu"), std::string::npos);
  EXPECT_NE(with("vocab_size", 0).find("must be positive"), std::string::npos);
  auto j = base;
  j["model_type"] = "msa";
  EXPECT_NE(error_of([&] { ModelConfig::from_json(j, "c.json"); }).find("needs an \"msa_config\""), std::string::npos);
  j["msa_config"] = {{"router_layer_idx", "1,7"}};
  EXPECT_NE(error_of([&] { ModelConfig::from_json(j, "c.json"); }).find("'7'"), std::string::npos);
  j["msa_config"] = {{"bogus", 1}};
  EXPECT_NE(error_of([&] { ModelConfig::from_json(j, "c.json"); }).find("unknown key \"bogus\" in c.json msa_config"),
            std::string::npos);
  j["msa_config"] = {{"head_reduce_method", "median"}};
  EXPECT_NE(error_of([&] { ModelConfig::from_json(j, "c.json"); }).find("head_reduce_method"), std::string::npos);
  EXPECT_NE(error_of([] { ModelConfig::load("/nonexistent/model"); }).find("/nonexistent/model"), std::string::npos);
}
