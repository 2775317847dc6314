// Memory-size scaling: gold documents always present, deterministic nested distractors,
// padding from the stated source, streaming inputs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "core/tokenizer.h"
#include "datasets/loaders.h"
#include "datasets/scaling.h"

using namespace msabench;
namespace fs = std::filesystem;

namespace {
const std::string kDir = MSABENCH_FIXTURES;

// 200 documents of 10 words each; queries 0..4 have gold documents g0..g4 (+ g5 for query 4).
Dataset synthetic() {
  Dataset ds;
  ds.name = "syn";
  ds.corpora.emplace_back();
  auto& c = ds.corpora[0];
  c.id = "all";
  for (int i = 0; i < 200; ++i) {
    std::string text;
    for (int w = 0; w < 10; ++w) text += "w" + std::to_string(i) + "_" + std::to_string(w) + " ";
    c.documents.push_back({(i < 6 ? "g" : "d") + std::to_string(i), text});
  }
  for (int q = 0; q < 5; ++q) {
    Query qq;
    qq.id = "q" + std::to_string(q);
    qq.text = "question " + std::to_string(q);
    qq.gold_doc_ids = {"g" + std::to_string(q)};
    if (q == 4) qq.gold_doc_ids.push_back("g5");
    c.queries.push_back(qq);
  }
  return ds;
}

struct TmpDir {
  fs::path path = fs::temp_directory_path() / ("msabench-scaling-" + std::to_string(::getpid()));
  TmpDir() { fs::remove_all(path); }
  ~TmpDir() { fs::remove_all(path); }
};

std::set<std::string> ids(const Dataset& ds) {
  std::set<std::string> out;
  for (const auto& d : ds.corpora.at(0).documents) out.insert(d.id);
  return out;
}
}  // namespace

TEST(Scaling, BanksHoldGoldPlusNestedDeterministicDistractors) {
  WhitespaceWordCounter counter;
  Dataset ds = synthetic();
  TmpDir tmp;
  ScalingConfig cfg;
  cfg.sizes = {500, 100, 1000};  // unsorted on purpose
  auto banks = build_memory_banks("syn", ds.corpora[0].queries, documents_of(ds), counter, cfg, tmp.path.string());
  ASSERT_EQ(banks.size(), 3u);
  EXPECT_EQ(banks[0].target_tokens, 100);
  std::vector<std::set<std::string>> sets;
  for (const auto& b : banks) {
    Dataset bank = load_dataset_dir(b.dir);
    EXPECT_EQ(bank.target_tokens, b.target_tokens);
    EXPECT_EQ(bank.corpora.size(), 1u);
    EXPECT_EQ(bank.corpora[0].id, "syn-" + std::to_string(b.target_tokens));
    EXPECT_EQ(bank.corpora[0].tokens, b.tokens);
    EXPECT_LE(b.tokens, b.target_tokens);
    EXPECT_GT(b.tokens, b.target_tokens - 10);  // one 10-word document of slack at most
    EXPECT_EQ(b.gold_documents, 6);
    EXPECT_EQ(b.pad_documents, 0);
    EXPECT_EQ(bank.num_queries(), 5u);
    auto s = ids(bank);
    for (int g = 0; g < 6; ++g) EXPECT_TRUE(s.count("g" + std::to_string(g))) << b.target_tokens;
    sets.push_back(s);
  }
  EXPECT_TRUE(std::includes(sets[1].begin(), sets[1].end(), sets[0].begin(), sets[0].end()));
  EXPECT_TRUE(std::includes(sets[2].begin(), sets[2].end(), sets[1].begin(), sets[1].end()));
  // distractors are not simply the first documents of the corpus
  EXPECT_FALSE(sets[0].count("d6") && sets[0].count("d7") && sets[0].count("d8") && sets[0].count("d9"));
  // same seed, same banks; another seed, other distractors
  TmpDir again;
  ScalingConfig other = cfg;
  other.sizes = {500};
  build_memory_banks("syn", ds.corpora[0].queries, documents_of(ds), counter, other, again.path.string());
  EXPECT_EQ(ids(load_dataset_dir((again.path / "500").string())), sets[1]);
  other.seed = 7;
  build_memory_banks("syn", ds.corpora[0].queries, documents_of(ds), counter, other, again.path.string());
  EXPECT_NE(ids(load_dataset_dir((again.path / "500").string())), sets[1]);
}

TEST(Scaling, PadsFromTheStatedSourceWhenTheCorpusIsTooSmall) {
  WhitespaceWordCounter counter;
  Dataset ds = synthetic();
  TmpDir tmp;
  ScalingConfig cfg;
  cfg.sizes = {1000, 4096};  // the corpus has 2000 tokens
  cfg.pad = "noise";
  cfg.pad_doc_tokens = 64;
  auto banks = build_memory_banks("syn", ds.corpora[0].queries, documents_of(ds), counter, cfg, tmp.path.string());
  EXPECT_EQ(banks[0].pad_documents, 0);
  EXPECT_EQ(banks[1].documents, 200 + banks[1].pad_documents);
  EXPECT_EQ(banks[1].pad_tokens, banks[1].tokens - 2000);
  EXPECT_LE(banks[1].tokens, 4096);
  EXPECT_GT(banks[1].tokens, 4096 - 64);
  Dataset bank = load_dataset_dir(banks[1].dir);
  const auto& last = bank.corpora[0].documents.back();
  EXPECT_EQ(last.id.rfind("pad-noise-", 0), 0u);
  EXPECT_NE(last.text.find("The grass is green."), std::string::npos);
  EXPECT_EQ(bank.meta["padding"]["source"], "noise");
  EXPECT_EQ(bank.meta["padding"]["documents"], banks[1].pad_documents);
  cfg.pad = "none";
  EXPECT_THROW(build_memory_banks("syn", ds.corpora[0].queries, documents_of(ds), counter, cfg, tmp.path.string()),
               Error);
}

TEST(Scaling, ErrorsAndQuerySampling) {
  WhitespaceWordCounter counter;
  Dataset ds = synthetic();
  TmpDir tmp;
  ScalingConfig cfg;
  cfg.sizes = {50};  // 6 gold documents = 60 tokens
  try {
    build_memory_banks("syn", ds.corpora[0].queries, documents_of(ds), counter, cfg, tmp.path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gold documents alone have 60 tokens"), std::string::npos) << e.what();
  }
  cfg.max_queries = 2;
  auto banks = build_memory_banks("syn", ds.corpora[0].queries, documents_of(ds), counter, cfg, tmp.path.string());
  Dataset bank = load_dataset_dir(banks[0].dir);
  EXPECT_EQ(bank.num_queries(), 2u);
  std::set<std::string> gold;
  for (const auto& q : bank.corpora[0].queries)
    for (const auto& g : q.gold_doc_ids) gold.insert(g);
  auto s = ids(bank);
  for (const auto& g : gold) EXPECT_TRUE(s.count(g));
  auto qs = ds.corpora[0].queries;
  qs[0].gold_doc_ids = {"missing"};
  cfg.max_queries = 0;
  cfg.sizes = {1000};
  try {
    build_memory_banks("syn", qs, documents_of(ds), counter, cfg, tmp.path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gold document 'missing' of query 'q0' is not in the corpus"),
              std::string::npos);
  }
  cfg.pad = "essays";
  EXPECT_THROW(build_memory_banks("syn", qs, documents_of(ds), counter, cfg, tmp.path.string()), Error);
}

TEST(Scaling, StreamsMsMarcoCollectionAndDatasetDirs) {
  WhitespaceWordCounter counter;
  TmpDir tmp;
  auto queries = load_msmarco_passage_queries(kDir + "/msmarco_queries.tsv", kDir + "/msmarco_qrels.tsv");
  ScalingConfig cfg;
  cfg.sizes = {30, 44};
  cfg.pad = "none";
  auto banks =
      build_memory_banks("msmarco_passage", queries, documents_of_msmarco_tsv(kDir + "/msmarco_collection.tsv"),
                         counter, cfg, (tmp.path / "a").string());
  EXPECT_EQ(banks[0].gold_documents, 2);
  EXPECT_EQ(banks[1].tokens, 44);  // the whole collection
  EXPECT_EQ(banks[1].documents, 4);
  // a bank is itself a dataset directory and can be re-scaled from disk
  ScalingConfig small;
  small.sizes = {25};
  auto again = build_memory_banks("msmarco_passage", queries,
                                  documents_of_jsonl((tmp.path / "a" / "44" / "corpus.jsonl").string()), counter, small,
                                  (tmp.path / "b").string());
  EXPECT_EQ(again[0].gold_documents, 2);
  EXPECT_EQ(again[0].tokens, 25);  // gold 17 + 8
  EXPECT_THROW(documents_of_msmarco_tsv(kDir + "/msmarco_collection_bad.tsv")([](const Document&) {}), Error);
}
