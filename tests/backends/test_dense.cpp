// Faiss indexes against brute force, persistence, and the dense / rag backends on a tiny model.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "backends/builtin.h"
#include "baselines/dense/faiss_index.h"
#include "core/error.h"
#include "core/harness.h"
#include "core/io.h"
#include "core/model/embedder.h"
#include "core/model/qwen3.h"
#include "datasets/niah.h"
#include "metrics/metrics.h"
#include "tests/model_configs.h"
#include "tests/niah_config.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {
std::vector<float> unit_vectors(int64_t n, int d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> x(n * d);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += (x[i * d + j] = g(rng)) * x[i * d + j];
    for (int j = 0; j < d; ++j) x[i * d + j] /= std::sqrt(s);
  }
  return x;
}
std::vector<int64_t> brute_force(const std::vector<float>& x, const float* q, int d, int k, std::vector<float>& sc) {
  const int64_t n = static_cast<int64_t>(x.size()) / d;
  std::vector<std::pair<float, int64_t>> all;
  for (int64_t i = 0; i < n; ++i) {
    float s = 0;
    for (int j = 0; j < d; ++j) s += x[i * d + j] * q[j];
    all.emplace_back(s, i);
  }
  std::partial_sort(all.begin(), all.begin() + k, all.end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::vector<int64_t> ids;
  sc.clear();
  for (int i = 0; i < k; ++i) {
    ids.push_back(all[i].second);
    sc.push_back(all[i].first);
  }
  return ids;
}
}  // namespace

TEST(Faiss, FlatEqualsBruteForceAndApproximateRecallIsReported) {
  const int d = 32, k = 10;
  auto x = unit_vectors(3000, d, 1), q = unit_vectors(50, d, 2);
  FaissIndex flat(d, "Flat");
  flat.build(x.data(), 3000);
  std::vector<int64_t> ids;
  std::vector<float> sc;
  flat.search(q.data(), 50, k, ids, sc);
  for (int i = 0; i < 50; ++i) {
    std::vector<float> want_sc;
    auto want = brute_force(x, q.data() + i * d, d, k, want_sc);
    for (int j = 0; j < k; ++j) {
      EXPECT_EQ(ids[i * k + j], want[j]);
      EXPECT_NEAR(sc[i * k + j], want_sc[j], 1e-5);
    }
  }
  for (const std::string f : {"HNSW32", "IVF32,Flat"}) {
    FaissIndex ann(d, f);
    ann.build(x.data(), 3000);
    if (f[0] == 'I') ann.set_search_param("nprobe", 8);
    std::vector<int64_t> aids;
    std::vector<float> asc;
    ann.search(q.data(), 50, k, aids, asc);
    int hits = 0;
    for (int i = 0; i < 50; ++i)
      for (int j = 0; j < k; ++j)
        hits += std::find(ids.begin() + i * k, ids.begin() + (i + 1) * k, aids[i * k + j]) != ids.begin() + (i + 1) * k;
    const double recall = hits / (50.0 * k);
    std::printf("recall@10 of %s vs Flat (3000 x 32-d random unit vectors): %.3f\n", f.c_str(), recall);
    EXPECT_GT(recall, 0.5) << f;
  }
  EXPECT_THROW(FaissIndex(d, "NotAnIndex"), Error);
}

TEST(Faiss, PersistedIndexRoundTripsAndRefusesMismatches) {
  const int d = 16;
  auto x = unit_vectors(200, d, 3);
  FaissIndex flat(d, "Flat");
  flat.build(x.data(), 200);
  fs::path dir = fs::temp_directory_path() / ("msabench-faiss-" + std::to_string(::getpid()));
  nlohmann::json manifest = {{"embedder", "e"}, {"corpus", "c1"}};
  flat.save(dir.string(), manifest);
  auto back = FaissIndex::load(dir.string(), manifest);
  std::vector<int64_t> a, b;
  std::vector<float> sa, sb;
  flat.search(x.data(), 3, 5, a, sa);
  back.search(x.data(), 3, 5, b, sb);
  EXPECT_EQ(a, b);
  try {
    FaissIndex::load(dir.string(), {{"corpus", "c2"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("corpus"), std::string::npos);
  }
  std::ofstream((dir / "index.faiss").string(), std::ios::trunc) << "garbage";
  EXPECT_THROW(FaissIndex::load(dir.string(), manifest), Error);
  fs::remove_all(dir);
}

TEST(DenseAndRag, BackendsRunOnATinyModel) {
  register_builtin_backends();
  ModelConfig c = msabench::testing::tiny_byte_model_config(false);
  fs::path dir = fs::temp_directory_path() / ("msabench-dense-model-" + std::to_string(::getpid()));
  Qwen3Model::random_init(c, 5).save(dir.string());
  write_json_atomic((dir / "tokenizer_spec.json").string(), {{"tokenizer", "bytes"}});
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(400, 40, 2);
  NiahGenerator gen(cfg, counter);
  CorpusStream data{"niah_single_1", counter.label(), 400, 2, [&](size_t i) { return gen.sample(static_cast<int>(i)); },
                    gen.describe()};
  auto metrics = default_metrics();
  for (std::string spec : {"dense:embedder=" + dir.string(),
                           "rag:retriever=dense,k=2,max_tokens=6,generator=" + dir.string(),
                           "rag:retriever=bm25,k=2,max_tokens=6,generator=" + dir.string()}) {
    auto b = BackendRegistry::instance().create(spec);
    auto r = run_cell(*b, data, metrics, CellOptions{});
    ASSERT_EQ(r["records"].size(), 2u) << spec;
    for (const auto& rec : r["records"]) {
      EXPECT_FALSE(rec["retrieved"].empty()) << spec;
      if (spec[0] == 'r') {
        EXPECT_FALSE(rec["retrieval_only"].get<bool>());
        EXPECT_LE(rec["detail"]["generated_tokens"].get<int>(), 6);
      }
    }
  }

  // Reranking: scores are probabilities, independent of batching and of the other documents, and
  // the rag backend orders its candidates by them.
  RerankerOptions ro;
  ro.max_length = 400;
  ro.batch = 1;
  auto one = load_qwen3_reranker(dir.string(), ro);
  ro.batch = 8;
  auto eight = load_qwen3_reranker(dir.string(), ro);
  const std::vector<std::string> docs = {"The grass is green.", std::string(500, 'x'), "Magic number 42.", ""};
  auto s1 = one->score("what is the magic number?", docs), s8 = eight->score("what is the magic number?", docs);
  ASSERT_EQ(s1.size(), docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_GT(s1[i], 0.0);
    EXPECT_LT(s1[i], 1.0);
    EXPECT_NEAR(s1[i], s8[i], 1e-5);
  }
  EXPECT_NEAR(eight->score("what is the magic number?", {docs[2]})[0], s1[2], 1e-5);
  auto rag = BackendRegistry::instance().create("rag:retriever=bm25,k=2,max_tokens=4,rerank_candidates=5,generator=" +
                                                dir.string() + ",reranker=" + dir.string());
  auto corpus = gen.sample(0);
  rag->index(corpus);
  auto a = rag->answer(corpus.queries[0], 10);
  ASSERT_GE(a.retrieved.size(), 5u);
  for (size_t i = 1; i < 5; ++i) EXPECT_GE(a.retrieved[i - 1].score, a.retrieved[i].score);
  EXPECT_TRUE(a.stage_seconds.count("rerank"));
  EXPECT_NE(rag->spec().find("reranker="), std::string::npos);
  EXPECT_THROW(BackendRegistry::instance().create("rag:k=5,rerank_candidates=2,reranker=" + dir.string() +
                                                  ",generator=" + dir.string()),
               Error);
  fs::remove_all(dir);
}
