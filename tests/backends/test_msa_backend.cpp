// The msa backend on a random tiny MSA checkpoint: the interleave loop stays within its bounds and
// every record field is present. (Accuracy needs the trained model; see backends/msa/msa-small.)
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "backends/builtin.h"
#include "core/error.h"
#include "core/harness.h"
#include "core/io.h"
#include "core/model/qwen3.h"
#include "core/tokenizer.h"
#include "datasets/niah.h"
#include "metrics/metrics.h"
#include "tests/backends/tiny_msa_model.h"
#include "tests/model_configs.h"
#include "tests/niah_config.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {
fs::path tiny_model() {
  static fs::path dir = msabench::testing::write_tiny_msa_model("msa-backend", 3);
  return dir;
}
}  // namespace

TEST(MsaBackend, RandomModelLoopStaysWithinBoundsAndRecordsAreComplete) {
  register_builtin_backends();
  auto backend = BackendRegistry::instance().create("msa:model=" + tiny_model().string() + ",max_tokens=24,max_rounds=2,topk=4");
  EXPECT_TRUE(backend->generates_answers());
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(2048, 64, 2);
  NiahGenerator gen(cfg, counter);
  CorpusStream data{"niah_single_1", counter.label(), 2048, 2, [&](size_t i) { return gen.sample(static_cast<int>(i)); },
                    gen.describe()};
  auto metrics = default_metrics();
  CellOptions opt;
  auto result = run_cell(*backend, data, metrics, opt);
  ASSERT_EQ(result["records"].size(), 2u);
  for (const auto& r : result["records"]) {
    ASSERT_TRUE(r.contains("detail"));
    const auto& d = r["detail"];
    EXPECT_LE(d["rounds"].get<int>(), 2);
    // at most max_rounds + 1 calls of at most max_tokens each
    EXPECT_LE(d["generated_tokens"].get<int>(), 3 * 24);
    EXPECT_FALSE(d["stop_reason"].get<std::string>().empty());
    EXPECT_TRUE(d["response"].is_string());
    ASSERT_FALSE(d["calls"].empty());
    EXPECT_EQ(d["calls"][0]["routing"].size(), 1u);            // one router layer
    EXPECT_EQ(d["calls"][0]["routing"][0]["doc_ids"].size(), 4u);  // topk=4
    EXPECT_EQ(r["router_topk"].size(), 4u);
    EXPECT_FALSE(r["retrieval_only"].get<bool>());
    EXPECT_TRUE(r["metrics"].contains("router_recall"));
    EXPECT_TRUE(r["metrics"].contains("ruler_string_match_all"));
  }
  EXPECT_FALSE(result["aggregates"]["router_recall"].is_null());
}

TEST(MsaBackend, GreedyAnswersAreDeterministicAndBadSpecsAreErrors) {
  register_builtin_backends();
  const std::string spec = "msa:model=" + tiny_model().string() + ",max_tokens=16,max_rounds=1";
  auto a = BackendRegistry::instance().create(spec), b = BackendRegistry::instance().create(spec);
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(1024, 64);
  NiahGenerator gen(cfg, counter);
  auto corpus = gen.sample(0);
  a->index(corpus);
  b->index(corpus);
  auto ra = a->answer(corpus.queries[0], 10), rb = b->answer(corpus.queries[0], 10);
  EXPECT_EQ(ra.detail["response"], rb.detail["response"]);
  EXPECT_EQ(ra.router_topk, rb.router_topk);
  EXPECT_THROW(BackendRegistry::instance().create("msa:model=/nonexistent"), Error);
  EXPECT_THROW(BackendRegistry::instance().create(spec + ",routing=magic"), Error);
  EXPECT_THROW(BackendRegistry::instance().create(spec + ",topk=0"), Error);
}

// The first question position: 3 + k by default, query_position=N when given, and for a model that
// records the position it was trained at (msabench_inference.json), that one whatever k.
TEST(MsaBackend, QueryPositionComesFromTheSpecOrTheTrainedModel) {
  register_builtin_backends();
  auto& reg = BackendRegistry::instance();
  const std::string base = "msa:model=" + tiny_model().string() + ",max_tokens=8,max_rounds=1,topk=4";
  EXPECT_EQ(reg.create(base)->spec().find("query_position"), std::string::npos);
  EXPECT_EQ(reg.create(base + ",query_position=7")->spec(), reg.create(base)->spec());  // 3 + 4: the default
  EXPECT_NE(reg.create(base + ",query_position=19")->spec().find("query_position=19"), std::string::npos);
  EXPECT_THROW(reg.create(base + ",query_position=-1"), Error);
  const fs::path trained = fs::temp_directory_path() / ("msabench-qpos-" + std::to_string(::getpid()));
  fs::remove_all(trained);
  fs::copy(tiny_model(), trained, fs::copy_options::recursive);
  write_json_atomic((trained / "msabench_inference.json").string(), {{"query_position", 19}});
  const std::string t = "msa:model=" + trained.string() + ",max_tokens=8,max_rounds=1,topk=4";
  EXPECT_NE(reg.create(t)->spec().find("query_position=19"), std::string::npos);
  EXPECT_EQ(reg.create(t + ",positions=code")->spec().find("query_position"), std::string::npos);  // asked for 3 + k
  // the recorded top-k is the default; topk= in the spec wins
  write_json_atomic((trained / "msabench_inference.json").string(), {{"query_position", 19}, {"topk", 2}});
  const std::string no_k = "msa:model=" + trained.string() + ",max_tokens=8,max_rounds=1";
  EXPECT_NE(reg.create(no_k)->spec().find("topk=2"), std::string::npos);
  EXPECT_NE(reg.create(no_k + ",topk=3")->spec().find("topk=3"), std::string::npos);
  std::ofstream(trained / "msabench_inference.json") << "{ not json";
  EXPECT_THROW(reg.create(no_k), Error);
  std::ofstream(trained / "msabench_inference.json", std::ios::trunc) << R"({"topk": "one"})";
  try {
    reg.create(no_k);
    ADD_FAILURE() << "a string topk was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("msabench_inference.json"), std::string::npos) << e.what();
  }
  fs::remove_all(trained);
}

// naming=router: each retrieval step names the router's best not yet named document of that call
// (last router layer), so the named ids follow the calls' routing whatever the model would write.
TEST(MsaBackend, RouterNamingNamesEachCallsBestUnnamedDocument) {
  register_builtin_backends();
  const std::string base = "msa:model=" + tiny_model().string() + ",max_tokens=12,max_rounds=3,topk=4";
  auto backend = BackendRegistry::instance().create(base + ",naming=router");
  EXPECT_NE(backend->spec().find("naming=router"), std::string::npos);
  EXPECT_EQ(BackendRegistry::instance().create(base)->spec().find("naming"), std::string::npos);
  EXPECT_THROW(BackendRegistry::instance().create(base + ",naming=oracle"), Error);
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(2048, 64, 4);
  NiahGenerator gen(cfg, counter);
  auto corpus = gen.sample(0);
  for (int i = 1; i < 4; ++i) corpus.queries.push_back(gen.sample(i).queries[0]);
  backend->index(corpus);
  int steps = 0;
  for (const auto& q : corpus.queries) {
    auto a = backend->answer(q, 10);
    const int named = a.detail["router_named_steps"].get<int>();
    steps += named;
    ASSERT_GE(a.retrieved.size(), static_cast<size_t>(named));
    EXPECT_LE(named, 3);
    std::vector<std::string> so_far;
    for (int c = 0; c < named; ++c) {
      std::string expect;
      for (const auto& id : a.detail["calls"][c]["routing"].back()["doc_ids"])
        if (std::find(so_far.begin(), so_far.end(), id.get<std::string>()) == so_far.end()) {
          expect = id.get<std::string>();
          break;
        }
      EXPECT_EQ(a.retrieved[c].id, expect) << q.id << " call " << c;
      so_far.push_back(a.retrieved[c].id);
    }
    if (named > 0) {
      EXPECT_EQ(a.retrieved[0].id, a.router_topk[0]);
    }
  }
  EXPECT_GT(steps, 0);  // the random model does retrieve; otherwise this test checks nothing
}

// Batched engine calls (left-padded prefill, lock-step decode with frozen rows) must not change
// any greedy output: batch 8 equals answering the 8 queries one by one.
TEST(MsaBackend, BatchOfEightEqualsOneByOne) {
  register_builtin_backends();
  auto backend = BackendRegistry::instance().create("msa:model=" + tiny_model().string() +
                                                    ",max_tokens=20,max_rounds=3,topk=4");
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(2048, 64, 8);
  NiahGenerator gen(cfg, counter);
  auto corpus = gen.sample(0);
  for (int i = 1; i < 8; ++i) {  // questions of different lengths over the same memory
    Query q = gen.sample(i).queries[0];
    q.text += std::string(static_cast<size_t>(i * 3), '?');
    corpus.queries.push_back(q);
  }
  backend->index(corpus);
  std::vector<const Query*> all;
  for (const auto& q : corpus.queries) all.push_back(&q);
  auto batched = backend->answer_batch(all, 10);
  ASSERT_EQ(batched.size(), 8u);
  std::set<std::string> distinct;
  for (size_t i = 0; i < all.size(); ++i) {
    auto one = backend->answer(*all[i], 10);
    EXPECT_EQ(batched[i].detail["response"], one.detail["response"]) << "query " << i;
    EXPECT_EQ(batched[i].detail["rounds"], one.detail["rounds"]) << "query " << i;
    EXPECT_EQ(batched[i].detail["calls"].size(), one.detail["calls"].size()) << "query " << i;
    EXPECT_EQ(batched[i].router_topk, one.router_topk) << "query " << i;
    EXPECT_EQ(batched[i].text, one.text) << "query " << i;
    distinct.insert(one.detail["response"].get<std::string>());
  }
  EXPECT_GT(distinct.size(), 1u);  // the queries really differ
}

TEST(FullContextBackend, AnswersSmallMemoriesAndRefusesLargeOnes) {
  register_builtin_backends();
  auto full = BackendRegistry::instance().create("full:model=" + tiny_model().string() + ",max_context=3000,max_tokens=8");
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(256, 64);
  NiahGenerator small(cfg, counter);
  auto corpus = small.sample(0);
  auto st = full->index(corpus);
  EXPECT_GT(st.tokens, 0);
  auto a = full->answer(corpus.queries[0], 10);
  EXPECT_LE(a.detail["generated_tokens"].get<int>(), 8);
  EXPECT_FALSE(a.retrieval_only);
  cfg.target_tokens = 4096;  // ~25K bytes: beyond max_context
  NiahGenerator big(cfg, counter);
  try {
    full->index(big.sample(0));
    FAIL() << "an over-long memory was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit the context limit of 3000"), std::string::npos) << e.what();
  }
}
