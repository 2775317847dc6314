// RULER semantics of the needle-haystack subtasks and the streaming path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "core/tokenizer.h"
#include "datasets/dataset_writer.h"
#include "datasets/niah.h"

using namespace msabench;
namespace fs = std::filesystem;

namespace {
NiahConfig cfg(const std::string& task, int64_t tokens, int samples = 2) {
  NiahConfig c;
  c.task = task;
  c.target_tokens = tokens;
  c.samples = samples;
  c.doc_tokens = 256;
  return c;
}
const std::regex kNeedle(R"(One of the special magic (numbers|uuids) for (\S+) is: (\S+)\.)");
const std::string kUuid = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

// Every needle sentence of the corpus: (key, value, doc id).
struct Found {
  std::string key, value, doc;
};
std::vector<Found> needles(const MemoryCorpus& c) {
  std::vector<Found> out;
  for (const auto& d : c.documents)
    for (std::sregex_iterator it(d.text.begin(), d.text.end(), kNeedle), end; it != end; ++it)
      out.push_back({(*it)[2], (*it)[3], d.id});
  return out;
}
}  // namespace

TEST(NiahTasks, AllEightRulerSubtasksExist) {
  std::set<std::string> names;
  for (const auto& t : niah_tasks()) names.insert(t.name);
  EXPECT_EQ(names, (std::set<std::string>{"niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                                          "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery"}));
  EXPECT_EQ(find_niah_task("niah_multikey_2").haystack, "needle");
  EXPECT_EQ(find_niah_task("niah_multikey_3").key_type, "uuids");
  EXPECT_EQ(find_niah_task("niah_multikey_3").value_type, "uuids");
}

TEST(NiahTasks, Multikey2HaystackIsDistractorNeedles) {
  WhitespaceWordCounter counter;
  MemoryCorpus c = NiahGenerator(cfg("niah_multikey_2", 8192), counter).sample(0);
  ASSERT_EQ(c.queries.size(), 1u);
  const Query& q = c.queries[0];
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      q.text, m, std::regex("What is the special magic number for ([a-z]+-[a-z]+) mentioned in the provided text\\?")));
  const std::string key = m[1];
  ASSERT_EQ(q.answers.size(), 1u);
  EXPECT_TRUE(std::regex_match(q.answers[0], std::regex("[1-9][0-9]{6}")));
  // the haystack is nothing but needles: every sentence of every document is one
  size_t sentences = 0;
  for (const auto& d : c.documents)
    for (size_t p = d.text.find(". "); p != std::string::npos; p = d.text.find(". ", p + 1)) ++sentences;
  auto all = needles(c);
  EXPECT_EQ(all.size(), sentences + c.documents.size());
  EXPECT_GT(all.size(), 500u);  // ~10 words per needle in 8K words
  // the queried key occurs exactly once, with the gold value, in the gold document
  int hits = 0;
  std::set<std::string> keys;
  for (const auto& n : all) {
    keys.insert(n.key);
    EXPECT_TRUE(std::regex_match(n.key, std::regex("[a-z]+-[a-z]+")));
    EXPECT_TRUE(std::regex_match(n.value, std::regex("[1-9][0-9]{6}")));
    if (n.key == key) {
      ++hits;
      EXPECT_EQ(n.value, q.answers[0]);
      EXPECT_EQ(std::vector<std::string>{n.doc}, q.gold_doc_ids);
    }
  }
  EXPECT_EQ(hits, 1);
  EXPECT_GT(keys.size(), 100u);  // distractor keys are random, not one repeated line
  EXPECT_EQ(q.meta["haystack"], "needle");
  EXPECT_EQ(q.meta["haystack_sentences"].get<size_t>(), all.size() - 1);
  EXPECT_LE(c.tokens, 8192);
  EXPECT_GE(c.tokens, 8192 - 12);
}

TEST(NiahTasks, Multikey3UsesUuidKeysAndValues) {
  WhitespaceWordCounter counter;
  MemoryCorpus c = NiahGenerator(cfg("niah_multikey_3", 8192), counter).sample(1);
  const Query& q = c.queries[0];
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      q.text, m, std::regex("What is the special magic uuid for (" + kUuid + ") mentioned in the provided text\\?")));
  ASSERT_EQ(q.answers.size(), 1u);
  EXPECT_TRUE(std::regex_match(q.answers[0], std::regex(kUuid)));
  auto all = needles(c);
  EXPECT_GT(all.size(), 400u);
  int hits = 0;
  for (const auto& n : all) {
    EXPECT_TRUE(std::regex_match(n.key, std::regex(kUuid))) << n.key;
    EXPECT_TRUE(std::regex_match(n.value, std::regex(kUuid))) << n.value;
    if (n.key == m[1].str()) {
      ++hits;
      EXPECT_EQ(n.value, q.answers[0]);
      EXPECT_EQ(q.gold_doc_ids, std::vector<std::string>{n.doc});
    }
  }
  EXPECT_EQ(hits, 1);
  EXPECT_EQ(q.meta["answer_prefix"], "The special magic uuid for " + m[1].str() + " mentioned in the provided text is");
}

TEST(NiahTasks, NeedleHaystackDepthIsNotOnTheGridAndFixedDepthsWork) {
  WhitespaceWordCounter counter;
  NiahGenerator gen(cfg("niah_multikey_2", 4096, 12), counter);
  std::set<double> grid;
  for (int i = 0; i < 40; ++i) grid.insert(std::round(100.0 * i / 39.0));
  int off_grid = 0;
  for (int i = 0; i < 12; ++i) {
    double d = gen.sample(i).queries[0].meta["needles"][0]["depth"];
    EXPECT_GE(d, 0.0);
    EXPECT_LE(d, 100.0);
    off_grid += grid.count(d) == 0;
  }
  EXPECT_GT(off_grid, 6);  // RULER: uniformly random line, not the 40-point essay grid
  NiahConfig c = cfg("niah_multikey_3", 4096);
  c.depths = {100};
  MemoryCorpus last = NiahGenerator(c, counter).sample(0);
  EXPECT_EQ(last.queries[0].gold_doc_ids[0], last.documents.back().id);
}

TEST(NiahTasks, StreamingMatchesSampleForEveryTask) {
  WhitespaceWordCounter counter;
  for (const auto& t : niah_tasks()) {
    NiahGenerator gen(cfg(t.name, 3000), counter);
    MemoryCorpus whole = gen.sample(1);
    std::vector<Document> streamed;
    MemoryCorpus head = gen.generate(1, [&](Document&& d) { streamed.push_back(std::move(d)); });
    EXPECT_TRUE(head.documents.empty()) << t.name;
    ASSERT_EQ(streamed.size(), whole.documents.size()) << t.name;
    for (size_t i = 0; i < streamed.size(); ++i) {
      EXPECT_EQ(streamed[i].id, whole.documents[i].id);
      EXPECT_EQ(streamed[i].text, whole.documents[i].text);
    }
    EXPECT_EQ(head.tokens, whole.tokens);
    EXPECT_EQ(head.queries[0].gold_doc_ids, whole.queries[0].gold_doc_ids);
    EXPECT_EQ(head.queries[0].answers, whole.queries[0].answers);
  }
}

TEST(NiahTasks, WriteNiahDirRoundTripsThroughTheHarnessLoader) {
  WhitespaceWordCounter counter;
  const fs::path dir = fs::temp_directory_path() / ("msabench-niah-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  NiahGenerator gen(cfg("niah_multikey_3", 2048, 3), counter);
  int64_t last = 0, calls = 0;
  WrittenDataset w = write_niah_dir(gen, dir.string(), [&](int64_t t) {
    EXPECT_GE(t, last);
    last = t;
    ++calls;
  });
  EXPECT_EQ(w.corpora, 3u);
  EXPECT_EQ(w.queries, 3);
  EXPECT_EQ(calls, w.documents);
  Dataset back = load_dataset_dir(dir.string());
  ASSERT_EQ(back.corpora.size(), 3u);
  EXPECT_EQ(back.name, "niah_multikey_3");
  EXPECT_EQ(back.target_tokens, 2048);
  for (int i = 0; i < 3; ++i) {
    MemoryCorpus ref = gen.sample(i);
    const MemoryCorpus& got = back.corpora[i];
    EXPECT_EQ(got.id, gen.corpus_id(i));
    ASSERT_EQ(got.documents.size(), ref.documents.size());
    EXPECT_EQ(got.documents.back().text, ref.documents.back().text);
    EXPECT_EQ(got.tokens, ref.tokens);
    EXPECT_EQ(got.queries[0].gold_doc_ids, ref.queries[0].gold_doc_ids);
  }
  DatasetDirStats st = inspect_dataset_dir(dir.string(), 1);
  EXPECT_EQ(st.documents, w.documents);
  EXPECT_EQ(st.tokens, w.tokens);
  EXPECT_EQ(st.gold_ids_missing, 0);
  ASSERT_EQ(st.sample_queries.size(), 1u);
  ASSERT_EQ(st.sample_documents.size(), 1u);
  EXPECT_NE(st.sample_documents[0].text.find(st.sample_queries[0].answers[0]), std::string::npos);
  fs::remove_all(dir);
}

TEST(NiahTasks, UnfinishedWriterLeavesNoMetaFile) {
  const fs::path dir = fs::temp_directory_path() / ("msabench-unfinished-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    DatasetDirWriter w(dir.string());
    w.document("g", Document{"d1", "text"}, 1);
  }  // destroyed without finish(): an interrupted write
  EXPECT_FALSE(fs::exists(dir / "meta.json"));
  EXPECT_THROW(load_dataset_dir(dir.string()), Error);
  DatasetDirWriter empty(dir.string());
  EXPECT_THROW(empty.finish("x", "whitespace-words", "", 0, nlohmann::json::object()), Error);  // no documents
  fs::remove_all(dir);
}
