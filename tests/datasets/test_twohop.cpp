// synth_twohop: each question's two facts sit in its gold documents, the bridge name is not in the
// question, sizes hold, and generation is deterministic.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "core/tokenizer.h"
#include "datasets/twohop.h"

using namespace msabench;

TEST(TwoHop, FactsAreInTheGoldDocumentsAndTheBridgeIsHidden) {
  WhitespaceWordCounter counter;
  TwoHopConfig cfg;
  cfg.target_tokens = 4000;
  cfg.doc_tokens = 100;
  cfg.queries = 8;
  TwoHopGenerator gen(cfg, counter);
  MemoryCorpus c = gen.sample(0);
  ASSERT_EQ(c.queries.size(), 8u);
  EXPECT_LE(c.tokens, cfg.target_tokens);
  EXPECT_GT(c.tokens, cfg.target_tokens - 200);
  std::map<std::string, std::string> text;
  for (const auto& d : c.documents) {
    text[d.id] = d.text;
  }
  std::set<std::string> people;
  for (const auto& q : c.queries) {
    const auto& hops = q.meta.at("hops");
    ASSERT_EQ(hops.size(), 2u);
    for (const auto& h : hops) {
      const std::string doc = h.at("doc_id"), fact = h.at("fact");
      ASSERT_TRUE(text.count(doc)) << doc;
      EXPECT_NE(text[doc].find(fact), std::string::npos) << fact;
      EXPECT_NE(std::find(q.gold_doc_ids.begin(), q.gold_doc_ids.end(), doc), q.gold_doc_ids.end());
    }
    const std::string bridge = q.meta.at("bridge");
    EXPECT_EQ(q.text.find(bridge), std::string::npos);
    EXPECT_NE(hops[1].at("fact").get<std::string>().find(q.answers.at(0)), std::string::npos);
    EXPECT_TRUE(people.insert(bridge).second) << "names are unique within a memory";
  }
  MemoryCorpus again = gen.sample(0);
  ASSERT_EQ(again.documents.size(), c.documents.size());
  for (size_t i = 0; i < c.documents.size(); ++i) EXPECT_EQ(again.documents[i].text, c.documents[i].text);
  EXPECT_NE(gen.sample(1).queries[0].text + gen.sample(1).documents[0].text, c.queries[0].text + c.documents[0].text);
}

TEST(TwoHop, ImpossibleConfigurationsAreErrors) {
  WhitespaceWordCounter counter;
  TwoHopConfig cfg;
  cfg.target_tokens = 20;
  EXPECT_THROW(TwoHopGenerator(cfg, counter).sample(0), Error);  // too small for the facts
  cfg.target_tokens = 4000;
  cfg.queries = 0;
  EXPECT_THROW(TwoHopGenerator(cfg, counter), Error);
  cfg.queries = 4;
  cfg.haystack = "needle";
  EXPECT_THROW(TwoHopGenerator(cfg, counter), Error);
}
