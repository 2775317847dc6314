// Tests on the committed tiny tokenizer (fixtures/tiny_pairs.json and tiny_strings.json: the same
// tokenizer with merges as [["a","b"]] pairs and as "a b" strings). Byte b has id b; merges:
//   256 Ġt  257 he  258 Ġthe  259 ll  260 ell  261 hell  262 hello  263 Ġhello  264 aa  265 é(Ã©)
//   266 ca  267 caf  268 café(bytes)
// added: 269 <|endoftext|> (special)  270 <mask> (special, lstrip, rstrip)  271 [W] (single_word)
//        272 café (normalized=true); normalizer NFC; Qwen2 split regex.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
#include "core/tokenizer/bpe_tokenizer.h"

using namespace msabench;
using nlohmann::json;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

namespace {

const std::string kPairs = std::string(TOKENIZER_FIXTURES_DIR) + "/tiny_pairs.json";
const std::string kStrings = std::string(TOKENIZER_FIXTURES_DIR) + "/tiny_strings.json";

Ids bytes_of(const std::string& s) {
  Ids v;
  for (unsigned char c : s) v.push_back(c);
  return v;
}
Ids cat(std::initializer_list<Ids> parts) {
  Ids v;
  for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
  return v;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("msabench-tok-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                         "-" + std::to_string(counter_++) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name, const std::string& content) const {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

}  // namespace

TEST(BpeFixture, MergesApplyInRankOrder) {
  auto t = BpeTokenizer::load(kPairs);
  EXPECT_EQ(t->vocab_size(), 273);
  // "h e" (rank 1) wins over "l l" (rank 3), so the later "hell"/"hello" merges never fire here
  EXPECT_EQ(t->encode("hello"), (Ids{257, 259, 'o'}));
  EXPECT_EQ(t->encode("ello"), (Ids{260, 'o'}));
  EXPECT_EQ(t->encode(" the"), (Ids{258}));
  EXPECT_EQ(t->encode("the"), (Ids{'t', 257}));
  EXPECT_EQ(t->encode("hello the"), (Ids{257, 259, 'o', 258}));
  // equal-rank pairs merge leftmost first
  EXPECT_EQ(t->encode("aaa"), (Ids{264, 'a'}));
  EXPECT_EQ(t->encode("aaaa"), (Ids{264, 264}));
  EXPECT_EQ(t->encode("aaaaa"), (Ids{264, 264, 'a'}));
  EXPECT_TRUE(t->encode("").empty());
}

TEST(BpeFixture, BothMergeFormsAreTheSameTokenizer) {
  auto a = BpeTokenizer::load(kPairs);
  auto b = BpeTokenizer::load(kStrings);
  EXPECT_EQ(a->fingerprint(), b->fingerprint());
  EXPECT_EQ(a->name(), b->name());
  EXPECT_EQ(a->name(), "bpe:273:" + a->fingerprint().substr(0, 8));
  for (std::string s : {"hello the", "aaaaa", "café", "x [W] y", "<mask>", "e\xCC\x81", " hello hello"})
    EXPECT_EQ(a->encode(s), b->encode(s)) << s;
}

TEST(BpeFixture, NfcNormalisationBeforeBpe) {
  auto t = BpeTokenizer::load(kPairs);
  EXPECT_EQ(t->encode("\xC3\xA9"), (Ids{265}));   // é precomposed
  EXPECT_EQ(t->encode("e\xCC\x81"), (Ids{265}));  // e + U+0301 composes to é
  EXPECT_EQ(t->decode(t->encode("e\xCC\x81")), "\xC3\xA9");
}

TEST(BpeFixture, AddedTokens) {
  auto t = BpeTokenizer::load(kPairs);
  EXPECT_EQ(t->encode("<|endoftext|>hello"), (Ids{269, 257, 259, 'o'}));
  // special tokens as plain text when not allowed
  EXPECT_EQ(t->encode("<|endoftext|>hello", false),
            cat({bytes_of("<|"), bytes_of("endoftext"), bytes_of("|>"), Ids{257, 259, 'o'}}));
  // lstrip/rstrip take the surrounding whitespace into the token
  EXPECT_EQ(t->encode("a <mask> b"), (Ids{'a', 270, 'b'}));
  EXPECT_EQ(t->encode("a\t\xE3\x80\x80<mask>\n b"), (Ids{'a', 270, 'b'}));
  // single_word: only between non-alphanumerics
  EXPECT_EQ(t->encode("x [W] y"), (Ids{'x', ' ', 271, ' ', 'y'}));
  EXPECT_EQ(t->encode("x[W]y"), (Ids{'x', '[', 'W', ']', 'y'}));
  EXPECT_EQ(t->encode("[W]"), (Ids{271}));
  // normalized=true tokens match after NFC, also across a decomposed input
  EXPECT_EQ(t->encode("caf\xC3\xA9"), (Ids{272}));
  EXPECT_EQ(t->encode("cafe\xCC\x81s"), (Ids{272, 's'}));
  EXPECT_EQ(t->token_id("<mask>"), 270);
  EXPECT_EQ(t->token_id("\xC4\xA0the"), 258);  // "Ġthe"
  EXPECT_EQ(t->token_id("nope"), std::nullopt);
  EXPECT_EQ(t->token_text(258), "\xC4\xA0the");
  EXPECT_EQ(t->token_text(269), "<|endoftext|>");
  EXPECT_TRUE(t->is_special(270));
  EXPECT_FALSE(t->is_special(271));
  EXPECT_FALSE(t->is_special(258));
}

TEST(BpeFixture, Decode) {
  auto t = BpeTokenizer::load(kPairs);
  EXPECT_EQ(t->decode({257, 259, 'o', 258}), "hello the");
  EXPECT_EQ(t->decode({0xC3, 0xA9}), "\xC3\xA9");
  EXPECT_EQ(t->decode({0xC3}), "\xEF\xBF\xBD");                     // truncated sequence
  EXPECT_EQ(t->decode({0xE4, 0xBD, 'x'}), "\xEF\xBF\xBDx");         // one U+FFFD per maximal subpart
  EXPECT_EQ(t->decode({0x80, 0x80}), "\xEF\xBF\xBD\xEF\xBF\xBD");  // lone continuation bytes
  EXPECT_EQ(t->decode({0xED, 0xA0, 0x80}), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(t->decode({269, 257}, false), "<|endoftext|>he");
  EXPECT_EQ(t->decode({269, 257}, true), "he");
  EXPECT_EQ(t->decode({271}, true), "[W]");  // not special: kept
  // the ByteLevel decoder maps 'é' (U+00E9, in the byte alphabet) to byte 0xE9, as Hugging Face does
  EXPECT_EQ(t->decode({272}), "caf\xEF\xBF\xBD");
  EXPECT_THROW(t->decode({273}), Error);
  EXPECT_THROW(t->decode({-1}), Error);
  EXPECT_THROW(t->token_text(273), Error);
}

TEST(BpeFixture, RoundTripAndCacheInvariance) {
  auto cached = BpeTokenizer::load(kPairs);
  BpeOptions none;
  none.cache_entries = 0;
  BpeOptions tiny;
  tiny.cache_entries = 64;  // one entry per shard: constant eviction
  auto uncached = BpeTokenizer::load(kPairs, none);
  auto evicting = BpeTokenizer::load(kPairs, tiny);
  std::vector<std::string> frags = {"hello", " the", "aaa", "\xC3\xA9", "ca", "<mask>", "[W]", " ", "\n\n", "ello",
                                    "\xE4\xBD\xA0\xE5\xA5\xBD", "123", "it's", "\xF0\x9F\x98\x80", "hellohellohello"};
  std::mt19937 rng(3);
  for (int n = 0; n < 300; ++n) {
    std::string s;
    for (int k = rng() % 10; k > 0; --k) s += frags[rng() % frags.size()];
    Ids ids = cached->encode(s);
    EXPECT_EQ(uncached->encode(s), ids) << s;
    EXPECT_EQ(evicting->encode(s), ids) << s;
    EXPECT_EQ(cached->count(s), static_cast<int64_t>(ids.size()));
    // all fragments are NFC; <mask> would swallow whitespace, so round-trip with specials as text
    EXPECT_EQ(cached->decode(cached->encode(s, false)), s);
    EXPECT_EQ(uncached->encode(s, false), cached->encode(s, false)) << s;
  }
  EXPECT_GT(cached->cache_stats().hits, 0u);
}

TEST(BpeFixture, ConcurrentEncodeIsConsistent) {
  BpeOptions small;
  small.cache_entries = 256;
  auto t = BpeTokenizer::load(kPairs, small);
  std::vector<std::string> texts;
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (int k = 0; k < 30; ++k) s += std::string(1 + rng() % 6, static_cast<char>('a' + rng() % 8)) + " ";
    texts.push_back(s);
  }
  std::vector<Ids> want;
  {
    BpeOptions none;
    none.cache_entries = 0;
    auto ref = BpeTokenizer::load(kPairs, none);
    for (const auto& s : texts) want.push_back(ref->encode(s));
  }
  std::atomic<int> bad{0};
  std::vector<std::thread> th;
  for (int w = 0; w < 4; ++w)
    th.emplace_back([&, w] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          if (t->encode(texts[(i + w * 37) % texts.size()]) != want[(i + w * 37) % texts.size()]) ++bad;
    });
  for (auto& x : th) x.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(BpeFixture, VeryLongInputs) {
  auto t = BpeTokenizer::load(kPairs);
  Ids ids = t->encode(std::string(200000, 'a'));
  ASSERT_EQ(ids.size(), 100000u);
  EXPECT_EQ(ids.front(), 264);
  EXPECT_EQ(ids.back(), 264);
  EXPECT_EQ(t->count(std::string(1 << 20, ' ')), 1 << 20);
  std::string mixed;
  for (int i = 0; i < 20000; ++i) mixed += "hello \t\n";
  EXPECT_EQ(t->decode(t->encode(mixed)), mixed);
}

TEST(BpeFixture, InvalidUtf8InputIsAnError) {
  auto t = BpeTokenizer::load(kPairs);
  try {
    t->encode("ok\xC3(");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(kPairs), std::string::npos) << e.what();
  }
}

TEST(BpeFixture, LoadTokenizerFromDirectoryAndCounter) {
  TempDir d;
  d.file("tokenizer.json", read_file(kPairs));
  auto t = load_tokenizer(d.path());
  EXPECT_EQ(t->encode("hello the"), (Ids{257, 259, 'o', 258}));
  auto c = make_model_token_counter(d.path() + "/tokenizer.json");
  EXPECT_EQ(c->label(), t->name());
  EXPECT_EQ(c->count("hello the"), 4);
  EXPECT_EQ(c->count("<|endoftext|>"), 13);  // counters read corpus text as plain text: <| endoftext |>
  TempDir empty;
  EXPECT_THROW(load_tokenizer(empty.path()), Error);
  EXPECT_THROW(load_tokenizer(empty.path() + "/missing.json"), Error);
}

// ---------------------------------------------------------------- malformed files

namespace {

// Writes a mutated fixture and returns the Error message of loading it ("" if it loaded).
std::string load_error(const TempDir& d, const std::string& name, const std::string& content) {
  std::string p = d.file(name, content);
  try {
    load_tokenizer(p);
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(p), std::string::npos) << "message does not name the file: " << msg;
    return msg;
  }
  return "";
}

std::string mutated(const std::function<void(json&)>& f) {
  json j = json::parse(read_file(kPairs));
  f(j);
  return j.dump();
}

}  // namespace

TEST(BpeMalformed, ErrorsNameTheFileAndTheProblem) {
  TempDir d;
  struct Case {
    std::string name, content, expect;
  };
  std::vector<Case> cases = {
      {"truncated.json", read_file(kPairs).substr(0, 200), "invalid JSON"},
      {"array.json", "[1, 2]", "not a JSON object"},
      {"no_model.json", mutated([](json& j) { j.erase("model"); }), "missing \"model\""},
      {"wordpiece.json", mutated([](json& j) { j["model"]["type"] = "WordPiece"; }), "unsupported model type \"WordPiece\""},
      {"no_vocab.json", mutated([](json& j) { j["model"].erase("vocab"); }), "model.vocab"},
      {"vocab_list.json", mutated([](json& j) { j["model"]["vocab"] = json::array({"a"}); }), "model.vocab"},
      {"no_merges.json", mutated([](json& j) { j["model"].erase("merges"); }), "model.merges"},
      {"vocab_str_id.json", mutated([](json& j) { j["model"]["vocab"]["a"] = "97"; }), "model.vocab[\"a\"]"},
      {"dup_id.json", mutated([](json& j) { j["model"]["vocab"]["zz"] = 5; }), "id 5"},
      {"merge_form.json", mutated([](json& j) { j["model"]["merges"][2] = "abc"; }), "model.merges[2]"},
      {"merge_ints.json", mutated([](json& j) { j["model"]["merges"][0] = json::array({1, 2}); }), "model.merges[0]"},
      {"merge_unknown.json", mutated([](json& j) { j["model"]["merges"][1] = json::array({"h", "q"}); }),
       "merged token \"hq\" is not in the vocab"},
      {"not_byte_level.json", mutated([](json& j) { j["model"]["vocab"].erase("a"); }), "byte 0x61"},
      {"dropout.json", mutated([](json& j) { j["model"]["dropout"] = 0.1; }), "dropout"},
      {"unknown_pretok.json",
       mutated([](json& j) { j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Whitespace"}}; }),
       "unsupported pre-tokenizer type \"Whitespace\""},
      {"split_behavior.json",
       mutated([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Contiguous"; }),
       "unsupported Split behavior \"Contiguous\""},
      {"bad_regex.json",
       mutated([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed"; }),
       "cannot compile regex"},
      {"no_bytelevel.json", mutated([](json& j) { j["pre_tokenizer"]["pretokenizers"].erase(1); }),
       "exactly one ByteLevel"},
      {"no_pretok.json", mutated([](json& j) { j["pre_tokenizer"] = nullptr; }), "pre_tokenizer is missing"},
      {"lowercase.json", mutated([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }),
       "unsupported normalizer type \"Lowercase\""},
      {"decoder.json", mutated([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }), "unsupported decoder type"},
      {"added_id.json", mutated([](json& j) { j["added_tokens"][0]["id"] = "269"; }), "added_tokens[0].id"},
      {"added_flag.json", mutated([](json& j) { j["added_tokens"][1]["lstrip"] = "yes"; }), "added_tokens[1].lstrip"},
      {"added_list.json", mutated([](json& j) { j["added_tokens"] = {{"content", "x"}}; }), "added_tokens"},
  };
  for (const auto& c : cases) {
    std::string msg = load_error(d, c.name, c.content);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": got \"" << msg << "\", want \"" << c.expect << "\"";
  }
  // the unmodified fixture loads (the mutations above are what breaks it)
  EXPECT_EQ(load_error(d, "ok.json", mutated([](json&) {})), "");
}
