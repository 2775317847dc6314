// Text tokenizers that map text to model token ids and back.
//  - "bytes": ByteTokenizer, ids 0..255 are raw bytes followed by a fixed list of special tokens
//    (for the suite's own small models); "bytes+ids:N" adds one token per document id "[i]", i < N;
//    "bytes+splitids" writes ids below 100 as one token and ids below 10000 as two.
//  - a Hugging Face tokenizer.json (file, or a model directory containing one): byte-level BPE as
//    used by Qwen2/Qwen2.5/Qwen3 and GPT-2 style models (see bpe_tokenizer.h for what is supported).
// All methods are const and safe to call concurrently from several threads.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer.h"

namespace msabench {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // Identifies the tokenizer in datasets and results, e.g. "bytes", "qwen3-bpe:151669".
  virtual std::string name() const = 0;
  // allow_special=false encodes special tokens (special=true in tokenizer.json) that occur in the
  // text as plain text, like Hugging Face's encode_special_tokens. Input must be valid UTF-8 for
  // BPE tokenizers (Error otherwise); the byte tokenizer accepts any bytes.
  virtual std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const = 0;
  // Number of ids encode() would return, without materialising them.
  virtual int64_t count(std::string_view text, bool allow_special = true) const {
    return static_cast<int64_t>(encode(text, allow_special).size());
  }
  // Throws Error for ids outside the vocabulary.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // One past the largest id (ids may have holes in unusual tokenizer.json files).
  virtual int32_t vocab_size() const = 0;
  // Id of a token by its vocabulary string (the byte-level form for BPE, e.g. "Ġthe").
  virtual std::optional<int32_t> token_id(std::string_view token) const = 0;
  // Vocabulary string of an id (Error if unknown).
  virtual std::string token_text(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
};

// spec: "bytes", "bytes+ids:N", "bytes+splitids", a tokenizer.json path, or a directory containing tokenizer.json.
std::unique_ptr<TextTokenizer> load_tokenizer(const std::string& spec);

// The tokenizer spec of a model directory: tokenizer_spec.json ({"tokenizer": SPEC}, the suite's
// own models) or tokenizer.json (Hugging Face checkpoints). Error naming the directory otherwise.
std::string model_tokenizer_spec(const std::string& model_dir);

// TokenCounter over a TextTokenizer; counts with allow_special=false (corpus text is plain text).
class TextTokenCounter : public TokenCounter {
 public:
  explicit TextTokenCounter(std::shared_ptr<const TextTokenizer> tok, std::string spec = "")
      : tok_(std::move(tok)), spec_(std::move(spec)) {}
  std::string label() const override { return tok_->name(); }
  std::string spec() const override { return spec_.empty() ? label() : spec_; }
  int64_t count(std::string_view text) const override { return tok_->count(text, false); }
  const TextTokenizer& tokenizer() const { return *tok_; }

 private:
  std::shared_ptr<const TextTokenizer> tok_;
  std::string spec_;
};

// spec as for load_tokenizer.
std::unique_ptr<TokenCounter> make_model_token_counter(const std::string& spec);

}  // namespace msabench
