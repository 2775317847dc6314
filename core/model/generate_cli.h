// `msabench generate`: load a checkpoint and its tokenizer, generate, report tokens/s. Kept out of
// the CLI translation unit so the CLI needs no LibTorch headers.
#pragma once
#include <cstdint>
#include <string>

namespace msabench {

struct GenerateRequest {
  std::string model_dir, prompt;
  int max_tokens = 64;
  double temperature = 0, top_p = 1;
  uint64_t seed = 0;
  bool raw = false;  // no chat template
};

struct GenerateReport {
  std::string text, finish_reason;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0;
};

GenerateReport run_generate(const GenerateRequest& req);

}  // namespace msabench
