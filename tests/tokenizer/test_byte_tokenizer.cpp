#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "core/tokenizer/byte_tokenizer.h"

using namespace msabench;

TEST(ByteTokenizer, FixedSpecialIds) {
  ByteTokenizer t;
  EXPECT_EQ(t.name(), "bytes");
  EXPECT_EQ(t.vocab_size(), 262);
  EXPECT_EQ(t.encode("[3]<|object_ref_end|><End-of-Retrieve>"), (std::vector<int32_t>{'[', '3', ']', 260, 261}));
  EXPECT_EQ(t.token_id("<|endoftext|>"), 256);
  EXPECT_EQ(t.token_id("<|im_start|>"), 257);
  EXPECT_EQ(t.token_id("<|im_end|>"), 258);
  EXPECT_EQ(t.token_id("A"), 65);
  EXPECT_EQ(t.token_id("AB"), std::nullopt);
  EXPECT_EQ(t.token_text(258), "<|im_end|>");
  EXPECT_EQ(t.token_text(0), std::string(1, '\0'));
  EXPECT_TRUE(t.is_special(256));
  EXPECT_FALSE(t.is_special(255));
  EXPECT_THROW(t.token_text(262), Error);
}

TEST(ByteTokenizer, EncodesBytesAndSpecials) {
  ByteTokenizer t;
  std::vector<int32_t> want = {257, 'h', 'i', 0xC3, 0xA9, 258, 256};
  EXPECT_EQ(t.encode("<|im_start|>hi\xC3\xA9<|im_end|><|endoftext|>"), want);
  // without specials the markers are plain bytes
  std::string text = "<|im_end|>";
  auto ids = t.encode(text, false);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < text.size(); ++i) EXPECT_EQ(ids[i], static_cast<unsigned char>(text[i]));
  EXPECT_EQ(t.count(text, false), 10);
  EXPECT_EQ(t.count(text, true), 1);
  EXPECT_EQ(t.encode("<|im_start"), t.encode("<|im_start", false));  // incomplete marker
  EXPECT_TRUE(t.encode("").empty());
}

TEST(ByteTokenizer, ExactRoundTripOfArbitraryBytes) {
  ByteTokenizer t;
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(t.decode(t.encode(all)), all);
  std::mt19937 rng(7);
  for (int n = 0; n < 200; ++n) {
    std::string s(rng() % 300, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    if (n % 3 == 0) s += "<|im_start|>x<|im_end|>";
    EXPECT_EQ(t.decode(t.encode(s, true)), s);
    EXPECT_EQ(t.decode(t.encode(s, false)), s);
    EXPECT_EQ(t.count(s), static_cast<int64_t>(t.encode(s).size()));
  }
}

TEST(ByteTokenizer, DecodeSkipsSpecialsAndRejectsUnknownIds) {
  ByteTokenizer t;
  EXPECT_EQ(t.decode({257, 'o', 'k', 258}, true), "ok");
  EXPECT_EQ(t.decode({257, 'o', 'k', 258}, false), "<|im_start|>ok<|im_end|>");
  EXPECT_THROW(t.decode({262}), Error);
  EXPECT_THROW(t.decode({-1}), Error);
}

TEST(ByteTokenizer, CounterFactory) {
  auto c = make_model_token_counter("bytes");
  EXPECT_EQ(c->label(), "bytes");
  EXPECT_EQ(c->count("abc<|im_end|>"), 13);  // counters treat corpus text as plain text
  auto t = load_tokenizer("bytes");
  EXPECT_EQ(t->name(), "bytes");
}

TEST(ByteTokenizer, DocumentIdTokens) {
  ByteTokenizer t(100);
  EXPECT_EQ(t.name(), "bytes+ids:100");
  EXPECT_EQ(t.vocab_size(), 362);
  // "[i]" with i < 100 is one token; out of range, leading zeros, and non-digits stay bytes
  EXPECT_EQ(t.encode("[0][42]<|object_ref_end|>"), (std::vector<int32_t>{262, 304, 260}));
  EXPECT_EQ(t.encode("[100]"), (std::vector<int32_t>{'[', '1', '0', '0', ']'}));
  EXPECT_EQ(t.encode("[07]"), (std::vector<int32_t>{'[', '0', '7', ']'}));
  EXPECT_EQ(t.encode("[a][]["), (std::vector<int32_t>{'[', 'a', ']', '[', ']', '['}));
  EXPECT_EQ(t.encode("[5]", false), (std::vector<int32_t>{'[', '5', ']'}));  // like specials: plain text
  EXPECT_EQ(t.count("x[5]. y[5]"), 6);
  EXPECT_EQ(t.decode({257, 267, '.', 258}), "<|im_start|>[5].<|im_end|>");
  EXPECT_EQ(t.token_id("[99]"), 361);
  EXPECT_EQ(t.token_id("[99]x"), std::nullopt);
  EXPECT_EQ(t.token_text(361), "[99]");
  EXPECT_FALSE(t.is_special(300));
  EXPECT_THROW(t.decode({362}), Error);
  const std::string doc = "<|im_start|>[12]. text [3] and [123456789][12]<|im_end|>";
  EXPECT_EQ(t.decode(t.encode(doc)), doc);
  // specs
  EXPECT_EQ(ByteTokenizer::parse_spec("bytes"), 0);
  EXPECT_EQ(ByteTokenizer::parse_spec("bytes+ids:4096"), 4096);
  EXPECT_EQ(ByteTokenizer::parse_spec("qwen3"), std::nullopt);
  EXPECT_THROW(ByteTokenizer::parse_spec("bytes+ids:"), Error);
  EXPECT_THROW(ByteTokenizer::parse_spec("bytes+ids:0"), Error);
  EXPECT_THROW(ByteTokenizer::parse_spec("bytes+ids:12x"), Error);
}

TEST(ByteTokenizer, SplitDocumentIds) {
  auto t = load_tokenizer("bytes+splitids");
  EXPECT_EQ(t->name(), "bytes+splitids");
  EXPECT_EQ(t->vocab_size(), 561);
  // below 100: one token, as bytes+ids:100; 100..9999: "[h" then "dd]"
  EXPECT_EQ(t->encode("[0][99]"), (std::vector<int32_t>{262, 361}));
  EXPECT_EQ(t->encode("[100]"), (std::vector<int32_t>{362, 461}));
  EXPECT_EQ(t->encode("[1234]"), (std::vector<int32_t>{362 + 11, 461 + 34}));
  EXPECT_EQ(t->encode("[9999]"), (std::vector<int32_t>{460, 560}));
  EXPECT_EQ(t->encode("[10000]"), (std::vector<int32_t>{'[', '1', '0', '0', '0', '0', ']'}));
  EXPECT_EQ(t->encode("[0123]"), (std::vector<int32_t>{'[', '0', '1', '2', '3', ']'}));
  EXPECT_EQ(t->encode("[123]", false), (std::vector<int32_t>{'[', '1', '2', '3', ']'}));
  EXPECT_EQ(t->token_text(373), "[12");
  EXPECT_EQ(t->token_text(495), "34]");
  EXPECT_EQ(t->token_text(461), "00]");
  EXPECT_EQ(t->token_id("[12"), 373);
  EXPECT_EQ(t->token_id("[1"), 362);
  EXPECT_EQ(t->token_id("05]"), 466);
  EXPECT_EQ(t->token_id("[7]"), 269);
  EXPECT_EQ(t->token_id("[0"), std::nullopt);
  EXPECT_EQ(t->token_id("[123]"), std::nullopt);  // two tokens, not one
  EXPECT_EQ(t->decode({373, 495}), "[1234]");
  EXPECT_EQ(t->decode({362, 466}), "[105]");
  EXPECT_THROW(t->decode({561}), Error);
  const std::string doc = "<|im_start|>[2057]. text [3], [100] and [123456789][2057]<|im_end|>";
  EXPECT_EQ(t->decode(t->encode(doc)), doc);
  EXPECT_EQ(t->count(doc), static_cast<int64_t>(t->encode(doc).size()));
  // round trip of random text full of bracketed digits
  std::mt19937 rng(11);
  static constexpr char kChars[] = "[]0123456789x<|>";
  for (int n = 0; n < 300; ++n) {
    std::string s(rng() % 60, '\0');
    for (auto& c : s) c = kChars[rng() % (sizeof(kChars) - 1)];
    EXPECT_EQ(t->decode(t->encode(s, true)), s);
    EXPECT_EQ(t->count(s), static_cast<int64_t>(t->encode(s).size()));
  }
}

