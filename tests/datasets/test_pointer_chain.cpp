// synth_pointer: the first document answers the question only with a pointer "[j]" to the second,
// j is the second document's corpus position (what the interleave protocol names it by), the second
// shares no key with the question, both orders occur, and generation is deterministic.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/tokenizer.h"
#include "datasets/msa_training.h"
#include "datasets/pointer_chain.h"

using namespace msabench;

namespace {
// One token per byte, as the bytes tokenizers count: a tag's length then depends on its number.
struct ByteCounter : TokenCounter {
  std::string label() const override { return "test-bytes"; }
  int64_t count(std::string_view text) const override { return static_cast<int64_t>(text.size()); }
};

// Every invariant of one memory; returns whether the pointer document comes first.
bool check_memory(const MemoryCorpus& c, int64_t target_tokens) {
  EXPECT_EQ(c.queries.size(), 1u);
  EXPECT_LE(c.tokens, target_tokens);
  const Query& q = c.queries.at(0);
  const auto& hops = q.meta.at("hops");
  const int64_t first = hops[0].at("doc_index"), second = hops[1].at("doc_index");
  EXPECT_NE(first, second) << c.id;
  EXPECT_LT(std::max(first, second), static_cast<int64_t>(c.documents.size()));
  EXPECT_EQ(c.documents[first].id, hops[0].at("doc_id").get<std::string>());
  EXPECT_EQ(c.documents[second].id, hops[1].at("doc_id").get<std::string>());
  EXPECT_EQ(q.gold_doc_ids, (std::vector<std::string>{c.documents[first].id, c.documents[second].id}));
  const std::string& a = c.documents[first].text;
  // [j] is the target's corpus position: the id the interleave protocol names it by.
  EXPECT_NE(a.find("is kept in document " + interleave::document_tag(second) + " under code " + q.meta.at("code").get<std::string>() + "."),
            std::string::npos) << c.id << ": " << a;
  EXPECT_NE(c.documents[second].text.find(pointer_value_fact(q.answers.at(0))), std::string::npos) << c.id;
  // The key is in the question and the first document only.
  const std::string key = q.text.substr(q.text.find(" for ") + 5, q.text.find(" mentioned") - q.text.find(" for ") - 5);
  EXPECT_NE(a.find(key), std::string::npos);
  EXPECT_EQ(c.documents[second].text.find(key), std::string::npos);
  // Decoy records spread over the memory, each with another word, none in a fact's document.
  int records = 0, docs_with_records = 0;
  for (size_t k = 0; k < c.documents.size(); ++k) {
    const std::string& t = c.documents[k].text;
    if (static_cast<int64_t>(k) != second) EXPECT_EQ(t.find(q.answers.at(0)), std::string::npos);
    int here = 0;
    for (auto at = t.find("The word kept in this document is: "); at != std::string::npos; at = t.find("The word kept", at + 1))
      ++here;
    records += here;
    docs_with_records += here > 0;
    if (static_cast<int64_t>(k) == first) EXPECT_EQ(here, 0) << c.id << ": a decoy in the pointer's document";
    if (static_cast<int64_t>(k) == second) EXPECT_EQ(here, 1) << c.id << ": the target's document holds more than one word";
  }
  EXPECT_EQ(records, q.meta.at("decoys").get<int>() + 1);
  EXPECT_GT(docs_with_records, static_cast<int>(c.documents.size()) / 3);
  return first < second;
}
}  // namespace

TEST(PointerChain, TheFirstDocumentPointsAtTheSecondsCorpusPosition) {
  struct Setting {
    bool bytes;
    int64_t tokens, doc_tokens;
    int samples;
  };
  // Many memories per setting: long haystack sentences can cover both facts' offsets, and small
  // documents make decoy collisions common; every memory must still hold every invariant.
  for (const Setting& st : {Setting{false, 4000, 100, 300}, Setting{false, 1000, 20, 300}, Setting{true, 16384, 512, 300},
                            Setting{true, 8192, 100, 200}}) {
    std::unique_ptr<TokenCounter> counter;
    if (st.bytes) counter = std::make_unique<ByteCounter>();
    else counter = std::make_unique<WhitespaceWordCounter>();
    PointerChainConfig cfg;
    cfg.target_tokens = st.tokens;
    cfg.doc_tokens = st.doc_tokens;
    PointerChainGenerator gen(cfg, *counter);
    int pointer_first = 0;
    for (int i = 0; i < st.samples; ++i) {
      SCOPED_TRACE(std::to_string(st.tokens) + "/" + std::to_string(st.doc_tokens) + " sample " + std::to_string(i));
      MemoryCorpus c;
      ASSERT_NO_THROW(c = gen.sample(i));
      pointer_first += check_memory(c, st.tokens);
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_GT(pointer_first, st.samples / 4);  // both orders occur
    EXPECT_LT(pointer_first, st.samples * 3 / 4);
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
