#include "core/tokenizer/byte_tokenizer.h"

#include <charconv>

#include "core/error.h"

namespace msabench {

ByteTokenizer::ByteTokenizer(int32_t id_tokens) : id_tokens_(id_tokens) {
  if (id_tokens < 0 || id_tokens > kMaxIdTokens)
    throw Error("bytes tokenizer: id token count " + std::to_string(id_tokens) + " outside [0, " +
                std::to_string(kMaxIdTokens) + "]");
}

ByteTokenizer ByteTokenizer::split_ids() {
  ByteTokenizer t(kSplitWholeIds);
  t.split_ = true;
  return t;
}

std::unique_ptr<ByteTokenizer> ByteTokenizer::from_spec(std::string_view spec) {
  if (spec == "bytes+splitids") return std::make_unique<ByteTokenizer>(split_ids());
  if (auto n = parse_spec(spec)) return std::make_unique<ByteTokenizer>(*n);
  return nullptr;
}

std::optional<int32_t> ByteTokenizer::parse_spec(std::string_view spec) {
  if (spec == "bytes") return 0;
  constexpr std::string_view prefix = "bytes+ids:";
  if (spec.substr(0, prefix.size()) != prefix) return std::nullopt;
  const std::string_view num = spec.substr(prefix.size());
  int32_t n = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (ec != std::errc() || end != num.data() + num.size() || num.empty() || n < 1 || n > kMaxIdTokens)
    throw Error("tokenizer spec '" + std::string(spec) + "': expected bytes+ids:N with 1 <= N <= " +
                std::to_string(kMaxIdTokens));
  return n;
}

std::string ByteTokenizer::name() const {
  if (split_) return "bytes+splitids";
  return id_tokens_ ? "bytes+ids:" + std::to_string(id_tokens_) : "bytes";
}

size_t ByteTokenizer::match_id(std::string_view text, size_t pos, int32_t& id) const {
  size_t j = pos + 1;
  int64_t v = 0;
  while (j < text.size() && j - pos <= 8 && text[j] >= '0' && text[j] <= '9') v = v * 10 + (text[j++] - '0');
  const size_t digits = j - pos - 1;
  if (digits == 0 || j >= text.size() || text[j] != ']') return 0;
  if (digits > 1 && text[pos + 1] == '0') return 0;  // "[07]" is text, not id 7
  if (v >= (split_ ? kSplitMaxId : id_tokens_)) return 0;
  id = static_cast<int32_t>(v);
  return j + 1 - pos;
}

void ByteTokenizer::out_of_range(int32_t id) const {
  throw Error(name() + " tokenizer: token id " + std::to_string(id) + " out of range [0, " +
              std::to_string(vocab_size()) + ")");
}

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
    if (allow_special && id_tokens_ && text[i] == '[') {
      int32_t id = 0;
      if (const size_t n = match_id(text, i, id)) {
        if (id < id_tokens_) {
          sink(kFirstIdToken + id);
        } else {  // split layout: "[h" then "dd]"
          sink(first_high() + id / 100 - 1);
          sink(first_low() + id % 100);
        }
        i += n;
        continue;
      }
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
    } else if (id >= kFirstIdToken && id < vocab_size()) {
      out += token_text(id);
    } else {
      out_of_range(id);
    }
  }
  return out;
}

std::optional<int32_t> ByteTokenizer::token_id(std::string_view token) const {
  if (token.size() == 1) return static_cast<int32_t>(static_cast<unsigned char>(token[0]));
  for (size_t s = 0; s < kSpecialTokens.size(); ++s)
    if (token == kSpecialTokens[s]) return 256 + static_cast<int32_t>(s);
  int32_t id = 0;
  if (id_tokens_ && !token.empty() && token[0] == '[' && match_id(token, 0, id) == token.size() && id < id_tokens_)
    return kFirstIdToken + id;
  if (split_) {
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if ((token.size() == 2 || token.size() == 3) && token[0] == '[' && token[1] != '0' && digit(token[1]) &&
        digit(token.back()))
      return first_high() + std::stoi(std::string(token.substr(1))) - 1;
    if (token.size() == 3 && digit(token[0]) && digit(token[1]) && token[2] == ']')
      return first_low() + (token[0] - '0') * 10 + (token[1] - '0');
  }
  return std::nullopt;
}

std::string ByteTokenizer::token_text(int32_t id) const {
  if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
  if (is_special(id)) return kSpecialTokens[static_cast<size_t>(id - 256)];
  if (id >= kFirstIdToken && id < first_high()) return "[" + std::to_string(id - kFirstIdToken) + "]";
  if (split_ && id >= first_high() && id < first_low()) return "[" + std::to_string(id - first_high() + 1);
  if (split_ && id >= first_low() && id < vocab_size()) {
    const int32_t dd = id - first_low();
    return std::string{static_cast<char>('0' + dd / 10), static_cast<char>('0' + dd % 10), ']'};
  }
  out_of_range(id);
}

}  // namespace msabench
