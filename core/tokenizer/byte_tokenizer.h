// Byte-level tokenizer for the suite's own small models: ids 0..255 are the raw bytes, then a
// fixed list of special tokens (never change the order: ids are baked into trained models).
//   256 <|endoftext|>   257 <|im_start|>   258 <|im_end|>
//   259 <|object_ref_start|>   260 <|object_ref_end|>   261 <End-of-Retrieve>   (MSA interleave markers)
// encode/decode round-trips any byte string exactly (no UTF-8 requirement).
#pragma once
#include <array>

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

  std::string name() const override { return "bytes"; }
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const override;
  int64_t count(std::string_view text, bool allow_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return kVocabSize; }
  // Single bytes are addressed by their one-byte string; specials by their text.
  std::optional<int32_t> token_id(std::string_view token) const override;
  std::string token_text(int32_t id) const override;
  bool is_special(int32_t id) const override { return id >= 256 && id < kVocabSize; }

 private:
  template <class Sink>
  void encode_into(std::string_view text, bool allow_special, Sink&& sink) const;
};

}  // namespace msabench
