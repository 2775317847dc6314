// Memory Parallel in the msa backend: with the bank sharded over 2 or 3 worker processes (launched
// from this binary, see main below), answers, routing ids and scores equal the unsharded backend.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "backends/builtin.h"
#include "core/backend.h"
#include "backends/msa/memory_shards.h"
#include "core/error.h"
#include "core/io.h"
#include "core/model/qwen3.h"
#include "core/tokenizer.h"
#include "datasets/niah.h"
#include "tests/backends/tiny_msa_model.h"
#include "tests/model_configs.h"
#include "tests/niah_config.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {

fs::path tiny_model() {
  static fs::path dir = msabench::testing::write_tiny_msa_model("shard-backend", 5);
  return dir;
}

// A memory of ~60 documents (several stage-1 batches, so every shard of 2 holds some) and 4
// questions of different lengths over it.
MemoryCorpus corpus_with_queries() {
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(4096, 64, 4);
  NiahGenerator gen(cfg, counter);
  auto corpus = gen.sample(0);
  for (int i = 1; i < 4; ++i) {
    Query q = gen.sample(i).queries[0];
    q.text += std::string(static_cast<size_t>(i * 5), '?');
    corpus.queries.push_back(q);
  }
  return corpus;
}

bool no_children_left() { return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD; }

}  // namespace

TEST(MsaShards, ShardedAnswersAndRoutingEqualUnsharded) {
  register_builtin_backends();
  const std::string spec = "msa:model=" + tiny_model().string() + ",max_tokens=16,max_rounds=1,topk=4";
  auto corpus = corpus_with_queries();
  std::vector<const Query*> all;
  for (const auto& q : corpus.queries) all.push_back(&q);
  auto one = BackendRegistry::instance().create(spec);
  one->index(corpus);
  const auto want = one->answer_batch(all, 10);
  const auto want_single = one->answer(*all[0], 10);  // batch 1 routes its own way (routing tokens only)
  for (int shards : {2, 3}) {
    {
      auto sharded = BackendRegistry::instance().create(spec + ",shards=" + std::to_string(shards));
      EXPECT_NE(sharded->spec().find("shards=" + std::to_string(shards)), std::string::npos);
      sharded->index(corpus);
      const auto got = sharded->answer_batch(all, 10);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].router_topk, want[i].router_topk) << shards << " shards, query " << i;
        EXPECT_EQ(got[i].text, want[i].text) << shards << " shards, query " << i;
        // Every call's prompt, per-layer routing ids and scores (exact doubles), rounds, response.
        EXPECT_EQ(got[i].detail, want[i].detail) << shards << " shards, query " << i;
      }
      const auto single = sharded->answer(*all[0], 10);  // batch 1 through the same workers
      EXPECT_EQ(single.detail, want_single.detail);
    }
    EXPECT_TRUE(no_children_left()) << "workers still running after the backend was destroyed";
  }
}

TEST(MsaShards, EveryRankHoldsPartOfTheBank) {
  auto model = MsaModel::load(tiny_model().string());
  std::vector<std::vector<int64_t>> docs;
  for (int d = 0; d < 40; ++d) docs.push_back(std::vector<int64_t>(300 + 7 * d, 65 + d % 26));
  ShardOptions o;
  o.world = 2;
  o.model_dir = tiny_model().string();
  {
    ShardedBank sb(model, o);
    const MemoryBank& mine = sb.index(docs, {1, 2, 3});
    EXPECT_EQ(sb.num_docs(), 40);
    EXPECT_GT(mine.num_docs(), 0);
    EXPECT_LT(mine.num_docs(), 40);
  }
  EXPECT_TRUE(no_children_left());
}

TEST(MsaShards, BadOptionsAndBusyPortAreClearErrors) {
  register_builtin_backends();
  const std::string spec = "msa:model=" + tiny_model().string();
  EXPECT_THROW(BackendRegistry::instance().create(spec + ",shards=0"), Error);
  EXPECT_THROW(BackendRegistry::instance().create(spec + ",shards=2,key_dtype=int8"), Error);
  EXPECT_THROW(BackendRegistry::instance().create(spec + ",shards=2,launch=0"), Error);
  // Rank 0 cannot listen on a port that is taken: a clear error, no worker left behind.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto model = MsaModel::load(tiny_model().string());
  ShardOptions o;
  o.world = 2;
  o.model_dir = tiny_model().string();
  o.master_port = ntohs(addr.sin_port);
  try {
    ShardedBank sb(model, o);
    ADD_FAILURE() << "a busy port was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("port busy"), std::string::npos) << e.what();
  }
  ::close(fd);
  EXPECT_TRUE(no_children_left());
}

int main(int argc, char** argv) {
  // This binary doubles as the worker, since the backend launches /proc/self/exe shard-worker.
  if (argc > 1 && std::string(argv[1]) == "shard-worker") return shard_worker_main(argc - 1, argv + 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
