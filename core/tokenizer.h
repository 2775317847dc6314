// Token counter used to size memory corpora. Until the Qwen3 tokenizer lands, the only one is
// "whitespace-words": whitespace-separated words, labelled as such in every result.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace msabench {

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  virtual std::string label() const = 0;  // written into datasets and results
  virtual std::string spec() const { return label(); }  // recreates it via make_token_counter
  virtual int64_t count(std::string_view text) const = 0;
};

class WhitespaceWordCounter : public TokenCounter {
 public:
  std::string label() const override { return "whitespace-words"; }
  int64_t count(std::string_view text) const override;
};

// "whitespace-words"; other specs ("bytes", a tokenizer.json path, a model directory) go to the
// factory installed with set_model_token_counter_factory (the tokenizer library sits above core).
// Throws Error for unknown specs.
std::unique_ptr<TokenCounter> make_token_counter(const std::string& spec);
void set_model_token_counter_factory(std::function<std::unique_ptr<TokenCounter>(const std::string&)> factory);

}  // namespace msabench
