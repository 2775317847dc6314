#include <gtest/gtest.h>

#include "core/backend.h"
#include "core/error.h"
#include "core/text.h"
#include "core/tokenizer.h"

using namespace msabench;

TEST(Text, AnalyzerLowercasesAndSplits) {
  EXPECT_EQ(analyze("Hello, World! wobbly-hat 1234567."),
            (std::vector<std::string>{"hello", "world", "wobbly", "hat", "1234567"}));
  EXPECT_EQ(analyze("Ünïcode café"), (std::vector<std::string>{"Ünïcode", "café"}));
  EXPECT_TRUE(analyze(" ,.;").empty());
}

TEST(Text, SquadNormalize) {
  EXPECT_EQ(squad_normalize("The  Quick, brown fox!"), "quick brown fox");
  EXPECT_EQ(squad_normalize("an apple a day"), "apple day");
}

TEST(Text, TokenCounts) {
  EXPECT_EQ(parse_token_count("16K"), 16384);
  EXPECT_EQ(parse_token_count("1M"), 1048576);
  EXPECT_EQ(parse_token_count("100M"), 104857600);
  EXPECT_EQ(parse_token_count("2048"), 2048);
  EXPECT_THROW(parse_token_count("12Q"), Error);
  EXPECT_THROW(parse_token_count("abc"), Error);
  EXPECT_THROW(parse_token_count("0"), Error);
  EXPECT_THROW(parse_token_count("1T"), Error);   // token counts stop at G
  EXPECT_THROW(parse_token_count("16KK"), Error);
  EXPECT_EQ(parse_byte_size("8GB"), 8LL << 30);   // same suffixes, plus T and a trailing B
  EXPECT_EQ(parse_byte_size("1t"), 1LL << 40);
  EXPECT_THROW(parse_byte_size("-1G"), Error);
  EXPECT_EQ(format_token_count(16384), "16K");
  EXPECT_EQ(format_token_count(1048576), "1M");
  EXPECT_EQ(format_token_count(1000), "1000");
}

TEST(Text, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9"));
  EXPECT_FALSE(valid_utf8("caf\xc3"));
  EXPECT_FALSE(valid_utf8("\xff"));
  // found by fuzz_pickle: forms JSON writers reject must not pass (overlong, surrogate, > U+10FFFF)
  EXPECT_FALSE(valid_utf8("caf\xc1\xa9"));
  EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_TRUE(valid_utf8("\xed\x9f\xbf\xf4\x8f\xbf\xbf\xe0\xa0\x80"));
}

TEST(Text, WhitespaceCounter) {
  WhitespaceWordCounter c;
  EXPECT_EQ(c.count("  one two\tthree\nfour "), 4);
  EXPECT_EQ(c.count(""), 0);
  EXPECT_EQ(c.label(), "whitespace-words");
}

TEST(BackendSpec, Parse) {
  auto s = BackendSpec::parse("bm25:k1=0.9,b=0.4");
  EXPECT_EQ(s.name, "bm25");
  EXPECT_EQ(s.options.at("k1"), "0.9");
  EXPECT_DOUBLE_EQ(s.get_double("b", 0), 0.4);
  EXPECT_EQ(s.to_string(), "bm25:b=0.4,k1=0.9");
  EXPECT_EQ(BackendSpec::parse("bm25").options.size(), 0u);
  EXPECT_THROW(BackendSpec::parse("bm25:k1"), Error);
  EXPECT_THROW(BackendSpec::parse("bm25:k1=1,k1=2"), Error);
  EXPECT_THROW(BackendSpec::parse(":k1=1"), Error);
}
