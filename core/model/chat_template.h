// Qwen3 instruct chat template as used by MSA (QWEN3_INSTRUCT_TEMPLATE, msa-reference.md 3.4).
#pragma once
#include <string>

namespace msabench {

// "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n": ready for generation.
inline std::string qwen3_chat_prompt(const std::string& user) {
  return "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
}

}  // namespace msabench
