// Byte-level tokenizer for the suite's own small models: ids 0..255 are the raw bytes, then a
// fixed list of special tokens (never change the order: ids are baked into trained models).
//   256 <|endoftext|>   257 <|im_start|>   258 <|im_end|>
//   259 <|object_ref_start|>   260 <|object_ref_end|>   261 <End-of-Retrieve>   (MSA interleave markers)
// encode/decode round-trips any byte string exactly (no UTF-8 requirement).
//
// "bytes+ids:N" adds N document-id tokens after the specials: id 262+i is the text "[i]" for
// i < N. MSA models name memory documents as "[i]" (msa-reference.md §9); one token per id lets a
// small model copy a document's id as one vector instead of spelling digits it must first order
// (see backends/msa/msa-small/README.md). Like the specials, id tokens match only with
// allow_special=true; "[i]" is matched when i is written without leading zeros and i < N.
//
// "bytes+splitids" keeps one token for ids below 100 ("[0]".."[99]", ids 262..361) and writes
// ids 100..9999 as two: "[h" (h = id / 100, ids 362..460) then "dd]" (dd = id % 100 as two digits,
// ids 461..560); decoding concatenates the texts back to "[id]". A model then copies an id from
// 299 tokens that each occur often in training, instead of one of thousands it may never have
// seen (backends/msa/msa-small/README.md, session 13).
#pragma once
#include <array>
#include <memory>

#include "core/tokenizer/text_tokenizer.h"

namespace msabench {

class ByteTokenizer : public TextTokenizer {
 public:
  static constexpr int32_t kEndOfText = 256;
  static constexpr int32_t kImStart = 257;
  static constexpr int32_t kImEnd = 258;
  static constexpr int32_t kObjectRefStart = 259;
  static constexpr int32_t kObjectRefEnd = 260;
  static constexpr int32_t kEndOfRetrieve = 261;
  static constexpr std::array<const char*, 6> kSpecialTokens = {"<|endoftext|>",       "<|im_start|>",
                                                                "<|im_end|>",          "<|object_ref_start|>",
                                                                "<|object_ref_end|>", "<End-of-Retrieve>"};
  static constexpr int32_t kVocabSize = 256 + static_cast<int32_t>(kSpecialTokens.size());
  static constexpr int32_t kFirstIdToken = kVocabSize;
  static constexpr int32_t kMaxIdTokens = 1 << 20;
  static constexpr int32_t kSplitWholeIds = 100;   // "bytes+splitids": ids below this are one token
  static constexpr int32_t kSplitMaxId = 10000;    // ... and ids below this two

  // id_tokens: N of "bytes+ids:N" (0 = plain "bytes"). split: the "bytes+splitids" layout.
  explicit ByteTokenizer(int32_t id_tokens = 0);
  static ByteTokenizer split_ids();
  // "bytes" or "bytes+ids:N" -> N (0 for "bytes"); nullopt when spec is neither.
  static std::optional<int32_t> parse_spec(std::string_view spec);
  // Any byte tokenizer spec ("bytes", "bytes+ids:N", "bytes+splitids"); nullptr for other specs.
  static std::unique_ptr<ByteTokenizer> from_spec(std::string_view spec);

  std::string name() const override;
  int32_t id_tokens() const { return id_tokens_; }
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const override;
  int64_t count(std::string_view text, bool allow_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return kVocabSize + id_tokens_ + (split_ ? kSplitTokens : 0); }
  // Single bytes are addressed by their one-byte string; specials by their text.
  std::optional<int32_t> token_id(std::string_view token) const override;
  std::string token_text(int32_t id) const override;
  bool is_special(int32_t id) const override { return id >= 256 && id < kVocabSize; }

 private:
  template <class Sink>
  void encode_into(std::string_view text, bool allow_special, Sink&& sink) const;
  static constexpr int32_t kSplitTokens = 99 + 100;  // "[1".."[99", "00]".."99]"
  // Length of a tokenized id "[i]" at text[pos] (and i), or 0.
  size_t match_id(std::string_view text, size_t pos, int32_t& id) const;
  int32_t first_high() const { return kVocabSize + id_tokens_; }  // "[1" (split layout)
  int32_t first_low() const { return first_high() + 99; }          // "00]"
  [[noreturn]] void out_of_range(int32_t id) const;

  int32_t id_tokens_ = 0;
  bool split_ = false;
};

}  // namespace msabench
