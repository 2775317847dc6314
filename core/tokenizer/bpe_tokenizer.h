// Hugging Face byte-level BPE tokenizer loaded from tokenizer.json (Qwen2/Qwen2.5/Qwen3, GPT-2 style).
//
// Supported tokenizer.json configurations (anything else is an Error naming the file):
//  normalizer    null, NFC, NFD, NFKC, NFKD, or a Sequence of these (utf8proc)
//  pre_tokenizer ByteLevel, or a Sequence of Split steps (Regex or String pattern, behavior
//                Isolated or Removed, invert) ending in exactly one ByteLevel. Regexes run on
//                PCRE2 (UTF + UCP, JIT), with \s and \S spelled out as Unicode White_Space as in
//                the Oniguruma engine Hugging Face uses (PCRE2's own \s also matches U+180E).
//  model         BPE with vocab and merges (["a b", ...] or [["a","b"], ...]), every byte's
//                GPT-2 byte-to-unicode symbol in the vocab, no dropout, no subword prefix/suffix
//  decoder       ByteLevel
//  added_tokens  matched leftmost-longest before normalisation (normalized=false) or after it
//                (normalized=true), honouring lstrip, rstrip and single_word like Hugging Face
//  post_processor is not applied: encode() never adds BOS/EOS or templates.
// Decoding drops nothing silently: unknown ids are an Error; invalid UTF-8 in the decoded bytes
// becomes U+FFFD per maximal invalid subpart (Rust's String::from_utf8_lossy).
#pragma once
#include <memory>
#include <string>

#include "core/tokenizer/text_tokenizer.h"

namespace msabench {

struct BpeOptions {
  // Bound on cached BPE results (one per distinct pre-token word of 3..64 bytes); 0 disables.
  size_t cache_entries = size_t{1} << 18;
};

class BpeTokenizer : public TextTokenizer {
 public:
  static std::unique_ptr<BpeTokenizer> load(const std::string& path, const BpeOptions& opts = {});
  // source names the origin in error messages (normally the file path).
  static std::unique_ptr<BpeTokenizer> from_json_text(const std::string& json_text, const std::string& source,
                                                      const BpeOptions& opts = {});
  ~BpeTokenizer() override;

  // "qwen3-bpe:<vocab size>" for the official Qwen3 tokenizer, else "bpe:<vocab size>:<fingerprint8>".
  std::string name() const override;
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const override;
  int64_t count(std::string_view text, bool allow_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t vocab_size() const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  std::string token_text(int32_t id) const override;
  bool is_special(int32_t id) const override;

  // 16 hex digits over vocab, merges, added tokens and the normalizer/pre_tokenizer/decoder
  // sections; independent of JSON formatting and of the merges form.
  std::string fingerprint() const;
  const std::string& source() const;

  struct CacheStats {
    uint64_t hits = 0, misses = 0;
  };
  CacheStats cache_stats() const;

  struct Impl;

 private:
  explicit BpeTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace msabench
