// Small NIAH configurations for backend tests (whitespace-word sizes).
#pragma once
#include <cstdint>

#include "datasets/niah.h"

namespace msabench::testing {

inline NiahConfig small_niah_config(int64_t target_tokens, int64_t doc_tokens, int samples = 1) {
  NiahConfig cfg;
  cfg.task = "niah_single_1";
  cfg.target_tokens = target_tokens;
  cfg.doc_tokens = doc_tokens;
  cfg.samples = samples;
  return cfg;
}

}  // namespace msabench::testing
