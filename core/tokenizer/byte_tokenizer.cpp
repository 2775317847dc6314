#include "core/tokenizer/byte_tokenizer.h"

#include "core/error.h"

namespace msabench {

template <class Sink>
void ByteTokenizer::encode_into(std::string_view text, bool allow_special, Sink&& sink) const {
  for (size_t i = 0; i < text.size();) {
    if (allow_special && text[i] == '<') {
      bool matched = false;
      for (size_t s = 0; s < kSpecialTokens.size(); ++s) {
        std::string_view sp = kSpecialTokens[s];
        if (text.compare(i, sp.size(), sp) == 0) {
          sink(256 + static_cast<int32_t>(s));
          i += sp.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    sink(static_cast<int32_t>(static_cast<unsigned char>(text[i])));
    ++i;
  }
}

std::vector<int32_t> ByteTokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  encode_into(text, allow_special, [&](int32_t id) { ids.push_back(id); });
  return ids;
}

int64_t ByteTokenizer::count(std::string_view text, bool allow_special) const {
  if (!allow_special) return static_cast<int64_t>(text.size());
  int64_t n = 0;
  encode_into(text, allow_special, [&](int32_t) { ++n; });
  return n;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    if (id >= 0 && id < 256) {
      out.push_back(static_cast<char>(id));
    } else if (is_special(id)) {
      if (!skip_special) out += kSpecialTokens[static_cast<size_t>(id - 256)];
    } else {
      throw Error("bytes tokenizer: token id " + std::to_string(id) + " out of range [0, " +
                  std::to_string(kVocabSize) + ")");
    }
  }
  return out;
}

std::optional<int32_t> ByteTokenizer::token_id(std::string_view token) const {
  if (token.size() == 1) return static_cast<int32_t>(static_cast<unsigned char>(token[0]));
  for (size_t s = 0; s < kSpecialTokens.size(); ++s)
    if (token == kSpecialTokens[s]) return 256 + static_cast<int32_t>(s);
  return std::nullopt;
}

std::string ByteTokenizer::token_text(int32_t id) const {
  if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
  if (is_special(id)) return kSpecialTokens[static_cast<size_t>(id - 256)];
  throw Error("bytes tokenizer: token id " + std::to_string(id) + " out of range [0, " +
              std::to_string(kVocabSize) + ")");
}

}  // namespace msabench
