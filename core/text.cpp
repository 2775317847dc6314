#include "core/text.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "core/error.h"

namespace msabench {

namespace {
inline bool token_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
}  // namespace

std::vector<std::string> analyze(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    if (token_byte(static_cast<unsigned char>(ch))) {
      cur.push_back(lower(ch));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string to_lower_ascii(std::string_view text) {
  std::string s(text);
  for (auto& c : s) c = lower(c);
  return s;
}

std::vector<std::string> squad_tokens(std::string_view text) {
  // string.punctuation in Python: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
  static const std::string_view punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  std::string cleaned;
  cleaned.reserve(text.size());
  for (char c : text) {
    if (punct.find(c) != std::string_view::npos) continue;
    cleaned.push_back(lower(c));
  }
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty() && cur != "a" && cur != "an" && cur != "the") words.push_back(cur);
    cur.clear();
  };
  for (char c : cleaned) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') flush();
    else cur.push_back(c);
  }
  flush();
  return words;
}

std::string squad_normalize(std::string_view text) {
  std::string out;
  for (const auto& w : squad_tokens(text)) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

namespace {
// "12.5K" -> (12.5, 1024): a number and an optional binary suffix (K, M, G, T, any case);
// nullopt for anything else. Shared by token counts and byte sizes.
std::optional<std::pair<double, double>> number_with_binary_suffix(const std::string& text) {
  size_t idx = 0;
  double v = 0;
  try {
    v = std::stod(text, &idx);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (idx == text.size()) return std::make_pair(v, 1.0);
  if (idx + 1 != text.size()) return std::nullopt;
  static const std::string kSuffixes = "KMGT";
  const size_t at = kSuffixes.find(static_cast<char>(std::toupper(static_cast<unsigned char>(text[idx]))));
  if (at == std::string::npos) return std::nullopt;
  return std::make_pair(v, std::pow(1024.0, static_cast<double>(at + 1)));
}
}  // namespace

int64_t parse_token_count(const std::string& text) {
  if (text.empty()) throw Error("empty token count");
  const auto n = number_with_binary_suffix(text);
  if (!n) throw Error("'" + text + "' is not a token count (examples: 16K, 1M, 4096)");
  if (std::toupper(static_cast<unsigned char>(text.back())) == 'T')
    throw Error("'" + text + "' is not a token count (suffix must be K, M or G)");
  const double t = n->first * n->second;
  if (!(t >= 1) || t > 1e12) throw Error("token count '" + text + "' is out of range");
  return static_cast<int64_t>(std::llround(t));
}

int64_t parse_byte_size(const std::string& text) {
  std::string t = text;
  if (t.size() > 1 && (t.back() == 'B' || t.back() == 'b') && !std::isdigit(static_cast<unsigned char>(t[t.size() - 2])))
    t.pop_back();  // "8GB" reads as "8G"
  const auto n = number_with_binary_suffix(t);
  if (!n) throw Error("'" + text + "' is not a byte size (e.g. 512M, 8G; suffixes K, M, G, T)");
  if (n->first < 0) throw Error("'" + text + "': a budget cannot be negative");
  return static_cast<int64_t>(n->first * n->second);
}

std::string format_token_count(int64_t tokens) {
  const int64_t K = 1024, M = K * K, G = M * K;
  if (tokens >= G && tokens % G == 0) return std::to_string(tokens / G) + "G";
  if (tokens >= M && tokens % M == 0) return std::to_string(tokens / M) + "M";
  if (tokens >= K && tokens % K == 0) return std::to_string(tokens / K) + "K";
  return std::to_string(tokens);
}

uint64_t fnv1a64(std::string_view data, uint64_t h) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// RFC 3629 (what JSON writers accept): no overlong forms, surrogates or code points > U+10FFFF.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    const unsigned char c1 = s[i + 1];
    if (c1 < lo || c1 > hi) return false;
    for (size_t j = 2; j <= n; ++j)
      if ((static_cast<unsigned char>(s[i + j]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace msabench
