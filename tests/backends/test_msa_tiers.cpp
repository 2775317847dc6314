// Tiered storage of the msa backend: content K/V memory-mapped from the bank files answer exactly
// as in RAM; budgets are checked before encoding; key_dtype=fp32 routes like the torch path.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "backends/builtin.h"
#include "backends/msa/bank_store.h"
#include "core/backend.h"
#include "core/tokenizer.h"
#include "core/error.h"
#include "core/text.h"
#include "core/io.h"
#include "datasets/niah.h"
#include "tests/model_configs.h"
#include "tests/niah_config.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {

struct TierFixture {
  fs::path root = fs::temp_directory_path() / ("msabench-tiers-" + std::to_string(::getpid()));
  std::string model = (root / "model").string();
  MemoryCorpus corpus;
  explicit TierFixture(bool two_router_layers = false) {
    ModelConfig cfg = msabench::testing::tiny_byte_model_config(true);
    if (two_router_layers) {  // so the next router layer's content can be prefetched
      cfg.msa->router_layers = {0, 1};
      cfg.msa->router_layer_idx = "0,1";
    }
    Qwen3Model::random_init(cfg, 5).save(model);
    write_json_atomic((root / "model" / "tokenizer_spec.json").string(), {{"tokenizer", "bytes"}});
    WhitespaceWordCounter counter;
    NiahGenerator gen(msabench::testing::small_niah_config(2048, 64, 2), counter);
    corpus = gen.sample(0);
    corpus.queries.push_back(gen.sample(1).queries[0]);
    register_builtin_backends();
  }
  ~TierFixture() { fs::remove_all(root); }
  std::vector<Answer> run(const std::string& extra) {
    auto b = BackendRegistry::instance().create("msa:model=" + model + ",max_tokens=16,max_rounds=2,topk=4" + extra);
    b->index(corpus);
    std::vector<Answer> out;
    for (const auto& q : corpus.queries) out.push_back(b->answer(q, 10));
    return out;
  }
};

void expect_same(const std::vector<Answer>& a, const std::vector<Answer>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].detail["response"], b[i].detail["response"]) << i;
    EXPECT_EQ(a[i].router_topk, b[i].router_topk) << i;
    EXPECT_EQ(a[i].text, b[i].text) << i;
  }
}

}  // namespace

TEST(MsaTiers, MmapContentAnswersEqualRamContentAndBudgetsAreCheckedFirst) {
  TierFixture f;
  const std::string banks = ",bank_dir=" + (f.root / "banks").string();
  auto ram = f.run(banks + ",content=ram");
  auto mapped = f.run(banks + ",content=mmap");
  expect_same(ram, mapped);
  // The layout function predicts the segment files' exact size.
  for (const auto& e : fs::directory_iterator(f.root / "banks")) {
    auto info = bank_info(e.path().string());
    const int64_t C = info["total_chunks"], N = info["documents"], P = info["pooling"];
    std::vector<int64_t> doc_tokens(static_cast<size_t>(N), P);
    doc_tokens.back() = (C - N + 1) * P;
    BankGeometry g = bank_geometry(msabench::testing::tiny_byte_model_config(true), P, 3, torch::kFloat32);
    EXPECT_EQ(bank_tier_bytes(g, doc_tokens, 0, std::nullopt).segment_files, info["segment_bytes"].get<int64_t>());
  }
  // A budget the routing keys fit but the content K/V do not: memory-mapped automatically.
  auto budgeted = f.run(banks + ",ram_budget=100K");
  expect_same(ram, budgeted);
  // The fast scan (fp32 keys) picks the same documents as the torch routing path.
  expect_same(ram, f.run(banks + ",key_dtype=fp32"));
  // Routing keys that fit no budget: refused before anything is encoded.
  const std::string fresh = ",bank_dir=" + (f.root / "fresh").string();
  try {
    f.run(fresh + ",ram_budget=1K,gpu_budget=1G");
    FAIL() << "expected a budget error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("routing keys"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("RAM budget is 0 MiB (1024 bytes)"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(f.root / "fresh"));
  // Content K/V over budget without bank files to map: a clear error too.
  EXPECT_THROW(f.run(",ram_budget=100K"), Error);
}

TEST(MsaTiers, PooledFetchAndPrefetchAnswerExactlyAsTheCallingThreadAndReportStages) {
  TierFixture f(/*two_router_layers=*/true);
  const std::string banks = ",bank_dir=" + (f.root / "banks").string() + ",content=mmap";
  auto sync = f.run(banks + ",fetch_threads=0");
  auto pooled = f.run(banks + ",fetch_threads=3");
  auto cold = f.run(banks + ",fetch_threads=2,cold_content=1");
  auto no_prefetch = f.run(banks + ",fetch_threads=2,prefetch=0");
  expect_same(sync, pooled);
  expect_same(sync, cold);
  expect_same(sync, no_prefetch);
  for (const auto* set : {&sync, &pooled, &cold, &no_prefetch})
    for (const auto& a : *set) {
      for (const char* stage : {"prefill.score", "prefill.topk", "prefill.fetch", "prefill.attend"})
        ASSERT_TRUE(a.stage_seconds.count(stage)) << stage;
      EXPECT_LE(a.stage_seconds.at("prefill.score") + a.stage_seconds.at("prefill.fetch") +
                    a.stage_seconds.at("prefill.attend"),
                a.stage_seconds.at("prefill") + 1e-9);
    }
  // Two router layers, top-4 of a small corpus: every call fetches 1..8 (layer, document) pairs;
  // speculation happens only with a pool and prefetch on, and hits + unused = what was speculated.
  auto counters = [](const Answer& a) { return a.detail["calls"][0]["batch_fetch"]; };
  for (const auto& a : sync) {
    EXPECT_GE(counters(a)["documents"].get<int64_t>(), 2);
    EXPECT_LE(counters(a)["documents"].get<int64_t>(), 8);
    EXPECT_EQ(counters(a)["prefetch_hits"].get<int64_t>() + counters(a)["prefetch_unused"].get<int64_t>(), 0);
  }
  for (const auto& a : no_prefetch) EXPECT_EQ(counters(a)["prefetch_unused"].get<int64_t>(), 0);
  for (const auto& a : pooled) {
    EXPECT_EQ(counters(a)["documents"], counters(sync[&a - &pooled[0]])["documents"]);
    const int64_t speculated = counters(a)["prefetch_hits"].get<int64_t>() + counters(a)["prefetch_unused"].get<int64_t>();
    EXPECT_GE(speculated, 1);  // the first router layer selected at least one document
    EXPECT_LE(counters(a)["prefetch_hits"].get<int64_t>(), 4);
  }
  // Cold-cache measurements need mapped content.
  EXPECT_THROW(f.run(",cold_content=1"), Error);
  EXPECT_THROW(f.run(banks + ",fetch_threads=-1"), Error);
}

TEST(MsaTiers, ByteSizesAndTierBytesFollowTheBankLayout) {
  EXPECT_EQ(parse_byte_size("8G"), 8LL << 30);
  EXPECT_EQ(parse_byte_size("1.5K"), 1536);
  EXPECT_EQ(parse_byte_size("100"), 100);
  EXPECT_THROW(parse_byte_size("8Q"), Error);
  BankGeometry g;
  g.layers = 4;
  g.router_layers = 2;
  g.kv_heads = 2;
  g.head_dim = 32;
  g.pooling = 32;
  g.template_tokens = 3;
  auto t = bank_tier_bytes(g, {512, 100}, 600, std::nullopt);
  EXPECT_EQ(t.chunks, 16 + 4);
  EXPECT_EQ(t.routing_keys_ram, 2 * 20 * 64 * 4);
  EXPECT_EQ(t.content_kv, 2 * 2 * 20 * 64 * 4);
  EXPECT_EQ(t.segment_files, 2 * 8 + 3 * 2 * 20 * 64 * 4);
  auto i8 = bank_tier_bytes(g, {512, 100}, 600, KeyDtype::I8);
  EXPECT_EQ(i8.routing_keys_ram, 2 * 32 * (64 + 4));  // 20 chunks padded to 2 blocks of 16
}
