// BM25 over Lucene++ against an independent in-memory BM25 on the same analyzer output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "backends/builtin.h"
#include "baselines/bm25/lucene_bm25.h"
#include "core/error.h"
#include "core/text.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {

struct Corpus {
  std::vector<Document> docs;
  std::vector<std::string> queries;
};

Corpus make_corpus(int ndocs, int nqueries, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> vocab;
  for (int i = 0; i < 400; ++i) vocab.push_back("w" + std::to_string(i));
  // Zipf-like: word i drawn with weight 1/(i+1)
  std::vector<double> w;
  for (int i = 0; i < 400; ++i) w.push_back(1.0 / (i + 1));
  std::discrete_distribution<int> pick(w.begin(), w.end());
  Corpus c;
  for (int d = 0; d < ndocs; ++d) {
    int len = 3 + static_cast<int>(rng() % 120);
    std::string text;
    for (int t = 0; t < len; ++t) {
      std::string word = vocab[pick(rng)];
      if (rng() % 7 == 0) word[0] = 'W';  // case folding must match
      text += word + (rng() % 9 == 0 ? ", " : " ");
    }
    c.docs.push_back({"doc" + std::to_string(d), text});
  }
  for (int q = 0; q < nqueries; ++q) {
    int len = 1 + static_cast<int>(rng() % 6);
    std::string text;
    for (int t = 0; t < len; ++t) text += vocab[rng() % 400] + " ";
    c.queries.push_back(text);
  }
  return c;
}

// The reference: plain maps, no Lucene.
std::vector<ScoredDoc> reference_bm25(const Corpus& c, const std::string& query, int k, double k1, double b) {
  std::vector<std::map<std::string, int>> tf(c.docs.size());
  std::vector<double> len(c.docs.size());
  std::map<std::string, int> df;
  double total = 0;
  for (size_t i = 0; i < c.docs.size(); ++i) {
    auto toks = analyze(c.docs[i].text);
    len[i] = static_cast<double>(toks.size());
    total += len[i];
    for (auto& t : toks) ++tf[i][t];
    for (auto& [t, n] : tf[i]) ++df[t];
  }
  const double N = static_cast<double>(c.docs.size()), avgdl = total / N;
  std::vector<std::pair<double, size_t>> scored;
  auto qt = analyze(query);
  for (size_t i = 0; i < c.docs.size(); ++i) {
    double s = 0;
    bool any = false;
    for (const auto& t : qt) {
      auto it = tf[i].find(t);
      if (it == tf[i].end()) continue;
      any = true;
      double n = df[t], f = it->second;
      double idf = std::log(1 + (N - n + 0.5) / (n + 0.5));
      s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len[i] / avgdl));
    }
    if (any) scored.emplace_back(s, i);
  }
  std::sort(scored.begin(), scored.end(),
            [](auto& x, auto& y) { return x.first != y.first ? x.first > y.first : x.second < y.second; });
  std::vector<ScoredDoc> out;
  for (size_t i = 0; i < scored.size() && static_cast<int>(i) < k; ++i)
    out.push_back({c.docs[scored[i].second].id, scored[i].first});
  return out;
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("msabench-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

}  // namespace

// Both write modes (fsynced for reuse, unsynced scratch) give the same index.
TEST(Bm25, MatchesIndependentReference) {
  Corpus c = make_corpus(1500, 40, 7);
  for (auto mode : {LuceneBm25Index::Write::Durable, LuceneBm25Index::Write::Scratch}) {
    SCOPED_TRACE(mode == LuceneBm25Index::Write::Durable ? "durable" : "scratch");
    fs::path dir = temp_dir("bm25ref");
    IndexStats st = LuceneBm25Index::build(dir.string(), c.docs, mode);
    EXPECT_EQ(st.documents, 1500);
    LuceneBm25Index index(dir.string());
    for (double k1 : {0.9, 1.2}) {
      for (double b : {0.4, 0.75}) {
        for (const auto& q : c.queries) {
          auto got = index.search(q, 10, {k1, b});
          auto want = reference_bm25(c, q, 10, k1, b);
          ASSERT_EQ(got.size(), want.size()) << q;
          for (size_t i = 0; i < got.size(); ++i) {
            EXPECT_EQ(got[i].id, want[i].id) << "query '" << q << "' rank " << i;
            EXPECT_NEAR(got[i].score, want[i].score, 1e-5);
          }
        }
      }
    }
    fs::remove_all(dir);
  }
}

TEST(Bm25, UnknownTermsAndEmptyQuery) {
  Corpus c = make_corpus(50, 0, 3);
  fs::path dir = temp_dir("bm25empty");
  LuceneBm25Index::build(dir.string(), c.docs);
  LuceneBm25Index index(dir.string());
  EXPECT_TRUE(index.search("zzzz qqqq", 10, {}).empty());
  EXPECT_TRUE(index.search("   ", 10, {}).empty());
  fs::remove_all(dir);
}

TEST(Bm25, MissingIndexIsAClearError) {
  try {
    LuceneBm25Index index("/nonexistent/msabench-index");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/msabench-index"), std::string::npos);
  }
}

TEST(Bm25, BackendReusesOnDiskIndex) {
  register_builtin_backends();
  fs::path dir = temp_dir("bm25reuse");
  Corpus c = make_corpus(200, 1, 11);
  MemoryCorpus mc;
  mc.id = "m";
  mc.documents = c.docs;
  auto b1 = BackendRegistry::instance().create("bm25:index_dir=" + dir.string());
  IndexStats s1 = b1->index(mc);
  EXPECT_FALSE(s1.reused);
  Query q{"q", c.queries[0], {}, {}, {}};
  auto a1 = b1->answer(q, 5);
  auto b2 = BackendRegistry::instance().create("bm25:index_dir=" + dir.string());
  IndexStats s2 = b2->index(mc);
  EXPECT_TRUE(s2.reused);
  auto a2 = b2->answer(q, 5);
  ASSERT_EQ(a1.retrieved.size(), a2.retrieved.size());
  for (size_t i = 0; i < a1.retrieved.size(); ++i) EXPECT_EQ(a1.retrieved[i].id, a2.retrieved[i].id);
  EXPECT_TRUE(a1.retrieval_only);
  EXPECT_TRUE(a1.text.empty());
  // A changed corpus gets a new index.
  mc.documents[0].text += " extra words";
  auto b3 = BackendRegistry::instance().create("bm25:index_dir=" + dir.string());
  EXPECT_FALSE(b3->index(mc).reused);
  fs::remove_all(dir);
}

TEST(Bm25, SpecValidation) {
  register_builtin_backends();
  EXPECT_THROW(BackendRegistry::instance().create("bm25:k1=abc"), Error);
  EXPECT_THROW(BackendRegistry::instance().create("bm25:b=2"), Error);
  EXPECT_THROW(BackendRegistry::instance().create("bm25:bogus=1"), Error);
  EXPECT_THROW(BackendRegistry::instance().create("nosuch"), Error);
  EXPECT_EQ(BackendRegistry::instance().create("bm25")->spec(), "bm25:b=0.4,k1=0.9");
}
