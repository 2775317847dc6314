#include <gtest/gtest.h>

#include <regex>

#include "core/error.h"
#include "core/tokenizer.h"
#include "datasets/haystack.h"
#include "datasets/niah.h"

using namespace msabench;

namespace {
NiahConfig cfg(const std::string& task, int64_t tokens) {
  NiahConfig c;
  c.task = task;
  c.target_tokens = tokens;
  c.samples = 3;
  c.doc_tokens = 256;
  return c;
}
const Document* find_doc(const MemoryCorpus& c, const std::string& id) {
  for (const auto& d : c.documents)
    if (d.id == id) return &d;
  return nullptr;
}
}  // namespace

TEST(Niah, SingleNoiseSemantics) {
  WhitespaceWordCounter counter;
  NiahGenerator gen(cfg("niah_single_1", 16384), counter);
  MemoryCorpus c = gen.sample(0);
  ASSERT_EQ(c.queries.size(), 1u);
  const Query& q = c.queries[0];
  ASSERT_EQ(q.answers.size(), 1u);
  EXPECT_TRUE(std::regex_match(q.answers[0], std::regex("[1-9][0-9]{6}")));
  ASSERT_EQ(q.gold_doc_ids.size(), 1u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(q.text, m, std::regex("for ([a-z]+-[a-z]+) mentioned")));
  const Document* gold = find_doc(c, q.gold_doc_ids[0]);
  ASSERT_NE(gold, nullptr);
  EXPECT_NE(gold->text.find("One of the special magic numbers for " + m[1].str() + " is: " + q.answers[0] + "."),
            std::string::npos);
  EXPECT_NE(gold->text.find("The grass is green."), std::string::npos);
  EXPECT_EQ(q.text, "What is the special magic number for " + m[1].str() + " mentioned in the provided text?");
  // Size: within one haystack sentence of the target, never above it.
  EXPECT_LE(c.tokens, 16384);
  EXPECT_GE(c.tokens, 16384 - 8);
  int64_t sum = 0;
  for (const auto& d : c.documents) {
    EXPECT_LE(counter.count(d.text), 256);
    sum += counter.count(d.text);
  }
  EXPECT_EQ(sum, c.tokens);
}

TEST(Niah, MultikeyHasDistractorsAndOneQuery) {
  WhitespaceWordCounter counter;
  NiahGenerator gen(cfg("niah_multikey_1", 20000), counter);
  MemoryCorpus c = gen.sample(1);
  const Query& q = c.queries[0];
  ASSERT_EQ(q.answers.size(), 1u);
  EXPECT_EQ(q.meta["distractor_needles"], 3);
  int needles = 0;
  for (const auto& d : c.documents) {
    size_t pos = 0;
    while ((pos = d.text.find("One of the special magic numbers for ", pos)) != std::string::npos) {
      ++needles;
      ++pos;
    }
  }
  EXPECT_EQ(needles, 4);
}

TEST(Niah, DeterministicAndSeedSensitive) {
  WhitespaceWordCounter counter;
  NiahGenerator a(cfg("niah_single_1", 4096), counter), b(cfg("niah_single_1", 4096), counter);
  auto ca = a.sample(2), cb = b.sample(2);
  ASSERT_EQ(ca.documents.size(), cb.documents.size());
  for (size_t i = 0; i < ca.documents.size(); ++i) EXPECT_EQ(ca.documents[i].text, cb.documents[i].text);
  EXPECT_EQ(ca.queries[0].answers, cb.queries[0].answers);
  NiahConfig other = cfg("niah_single_1", 4096);
  other.seed = 43;
  NiahGenerator c(other, counter);
  EXPECT_NE(c.sample(2).queries[0].answers, ca.queries[0].answers);
  EXPECT_NE(a.sample(1).queries[0].answers, ca.queries[0].answers);
}

TEST(Niah, FixedDepthsPlaceTheNeedle) {
  WhitespaceWordCounter counter;
  NiahConfig c = cfg("niah_single_1", 32768);
  c.depths = {0, 100};
  NiahGenerator gen(c, counter);
  auto first = gen.sample(0), last = gen.sample(1);
  EXPECT_EQ(first.queries[0].gold_doc_ids[0], first.documents.front().id);
  EXPECT_EQ(last.queries[0].gold_doc_ids[0], last.documents.back().id);
  EXPECT_EQ(first.queries[0].meta["needles"][0]["depth"], 0.0);
}

TEST(Niah, MultiValueAndMultiQueryAnswers) {
  WhitespaceWordCounter counter;
  auto mv = NiahGenerator(cfg("niah_multivalue", 8192), counter).sample(0);
  EXPECT_EQ(mv.queries[0].answers.size(), 4u);
  EXPECT_EQ(mv.queries[0].text.rfind("What are all the special magic numbers for ", 0), 0u);
  auto mq = NiahGenerator(cfg("niah_multiquery", 8192), counter).sample(0);
  EXPECT_EQ(mq.queries[0].answers.size(), 4u);
  EXPECT_NE(mq.queries[0].text.find(", and "), std::string::npos);
  auto s3 = NiahGenerator(cfg("niah_single_3", 8192), counter).sample(0);
  EXPECT_TRUE(std::regex_match(s3.queries[0].answers[0],
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
}

TEST(Niah, BadConfigsAreErrors) {
  WhitespaceWordCounter counter;
  EXPECT_THROW(NiahGenerator(cfg("niah_nope", 4096), counter), Error);
  EXPECT_THROW(NiahGenerator(cfg("niah_single_1", 10), counter), Error);
  NiahConfig c = cfg("niah_single_1", 4096);
  c.depths = {150};
  EXPECT_THROW(NiahGenerator(c, counter), Error);
}

TEST(Haystack, SentenceSplitter) {
  auto s = split_sentences("One two.  Three\nfour! Five? six. Seven");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0], "One two.");
  EXPECT_EQ(s[1], "Three four!");
  EXPECT_EQ(s[2], "Five? six.");
  EXPECT_EQ(s[3], "Seven");
}
