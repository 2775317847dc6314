#include "core/tokenizer.h"

#include "core/error.h"

namespace msabench {

int64_t WhitespaceWordCounter::count(std::string_view text) const {
  int64_t n = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::unique_ptr<TokenCounter> make_token_counter(const std::string& label) {
  if (label == "whitespace-words" || label == "whitespace") return std::make_unique<WhitespaceWordCounter>();
  throw Error("unknown tokenizer '" + label + "' (available: whitespace-words)");
}

}  // namespace msabench
