// Token counter used to size memory corpora. Until the Qwen3 tokenizer lands, the only one is
// "whitespace-words": whitespace-separated words, labelled as such in every result.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace msabench {

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  virtual std::string label() const = 0;  // written into datasets and results
  virtual int64_t count(std::string_view text) const = 0;
};

class WhitespaceWordCounter : public TokenCounter {
 public:
  std::string label() const override { return "whitespace-words"; }
  int64_t count(std::string_view text) const override;
};

// Known labels: "whitespace-words". Throws Error for others.
std::unique_ptr<TokenCounter> make_token_counter(const std::string& label);

}  // namespace msabench
