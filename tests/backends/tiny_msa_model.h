// A random tiny MSA checkpoint (byte tokenizer) for backend tests, written under the temp dir.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/io.h"
#include "core/model/qwen3.h"
#include "tests/model_configs.h"

namespace msabench::testing {

inline std::filesystem::path write_tiny_msa_model(const std::string& tag, uint64_t seed) {
  ModelConfig c = tiny_byte_model_config(true);
  auto d = std::filesystem::temp_directory_path() / ("msabench-" + tag + "-" + std::to_string(::getpid()));
  Qwen3Model::random_init(c, seed).save(d.string());
  write_json_atomic((d / "tokenizer_spec.json").string(), {{"tokenizer", "bytes"}});
  return d;
}

}  // namespace msabench::testing
