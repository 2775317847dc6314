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

namespace {
std::function<std::unique_ptr<TokenCounter>(const std::string&)>& model_factory() {
  static std::function<std::unique_ptr<TokenCounter>(const std::string&)> f;
  return f;
}
}  // namespace

void set_model_token_counter_factory(std::function<std::unique_ptr<TokenCounter>(const std::string&)> factory) {
  model_factory() = std::move(factory);
}

std::unique_ptr<TokenCounter> make_token_counter(const std::string& spec) {
  if (spec == "whitespace-words" || spec == "whitespace") return std::make_unique<WhitespaceWordCounter>();
  if (model_factory()) return model_factory()(spec);
  throw Error("unknown tokenizer '" + spec + "' (available: whitespace-words)");
}

}  // namespace msabench
