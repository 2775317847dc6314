// synth_pointer: the first document answers the question only with a pointer "[j]" to the second,
// j is the second document's corpus position (what the interleave protocol names it by), the second
// shares no key with the question, both orders occur, and generation is deterministic.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/tokenizer.h"
#include "datasets/pointer_chain.h"

using namespace msabench;

namespace {
// One token per byte, as the bytes tokenizers count: a tag's length then depends on its number.
struct ByteCounter : TokenCounter {
  std::string label() const override { return "test-bytes"; }
  int64_t count(std::string_view text) const override { return static_cast<int64_t>(text.size()); }
};
}  // namespace

TEST(PointerChain, TheFirstDocumentPointsAtTheSecondsCorpusPosition) {
  for (const bool bytes : {false, true}) {
    std::unique_ptr<TokenCounter> counter;
    if (bytes) counter = std::make_unique<ByteCounter>();
    else counter = std::make_unique<WhitespaceWordCounter>();
    PointerChainConfig cfg;
    cfg.target_tokens = bytes ? 16384 : 4000;
    cfg.doc_tokens = bytes ? 512 : 100;
    PointerChainGenerator gen(cfg, *counter);
    int pointer_first = 0;
    for (int i = 0; i < 12; ++i) {
      const MemoryCorpus c = gen.sample(i);
      ASSERT_EQ(c.queries.size(), 1u);
      EXPECT_LE(c.tokens, cfg.target_tokens);
      const Query& q = c.queries[0];
      const auto& hops = q.meta.at("hops");
      const int64_t first = hops[0].at("doc_index"), second = hops[1].at("doc_index");
      ASSERT_NE(first, second);
      ASSERT_LT(second, static_cast<int64_t>(c.documents.size()));
      EXPECT_EQ(c.documents[first].id, hops[0].at("doc_id").get<std::string>());
      EXPECT_EQ(c.documents[second].id, hops[1].at("doc_id").get<std::string>());
      EXPECT_EQ(q.gold_doc_ids, (std::vector<std::string>{c.documents[first].id, c.documents[second].id}));
      const std::string& a = c.documents[first].text;
      EXPECT_NE(a.find("is kept in document " + pointer_memory_tag(second) + " under code " + q.meta.at("code").get<std::string>() + "."), std::string::npos) << a;
      EXPECT_NE(c.documents[second].text.find(pointer_value_fact(q.answers.at(0))), std::string::npos);
      EXPECT_EQ(a.find(q.answers.at(0)), std::string::npos);
      // The key is in the question and the first document only.
      const std::string key = q.text.substr(q.text.find(" for ") + 5, q.text.find(" mentioned") - q.text.find(" for ") - 5);
      EXPECT_NE(a.find(key), std::string::npos);
      EXPECT_EQ(c.documents[second].text.find(key), std::string::npos);
      // Decoy records spread over the memory, each with another value: only the pointer finds the target.
      int records = 0, docs_with_records = 0;
      for (size_t k = 0; k < c.documents.size(); ++k) {
        const std::string& t = c.documents[k].text;
        if (static_cast<int64_t>(k) != second) EXPECT_EQ(t.find(q.answers.at(0)), std::string::npos);
        int here = 0;
        for (auto at = t.find("The word kept in this document is: "); at != std::string::npos; at = t.find("The word kept", at + 1))
          ++here;
        records += here;
        if (static_cast<int64_t>(k) == first) EXPECT_EQ(here, 0) << "no decoy in the pointer's document";
        if (static_cast<int64_t>(k) == second) EXPECT_EQ(here, 1) << "the target's document holds one word";
        docs_with_records += here > 0;
      }
      EXPECT_EQ(records, q.meta.at("decoys").get<int>() + 1);
      EXPECT_GT(docs_with_records, static_cast<int>(c.documents.size()) / 3);
      pointer_first += first < second;
    }
    EXPECT_GT(pointer_first, 0);
    EXPECT_LT(pointer_first, 12);
    const MemoryCorpus c = gen.sample(3), again = gen.sample(3);
    ASSERT_EQ(again.documents.size(), c.documents.size());
    for (size_t i = 0; i < c.documents.size(); ++i) EXPECT_EQ(again.documents[i].text, c.documents[i].text);
  }
}

TEST(PointerChain, ImpossibleConfigurationsAreErrors) {
  WhitespaceWordCounter counter;
  PointerChainConfig cfg;
  cfg.target_tokens = 150;
  cfg.doc_tokens = 100;
  EXPECT_THROW(PointerChainGenerator(cfg, counter).sample(0), Error);  // no room for two fact documents
  cfg.doc_tokens = 4;
  EXPECT_THROW(PointerChainGenerator(cfg, counter), Error);
  cfg.doc_tokens = 100;
  cfg.haystack = "needle";
  EXPECT_THROW(PointerChainGenerator(cfg, counter), Error);
}
