// Memory Parallel in the msa backend: with the bank sharded over 2 or 4 worker processes (launched
// from this binary, see main below), answers, routing ids and scores equal the unsharded backend,
// also with key_dtype routing keys; with bank_dir every rank persists and reuses its own sub-bank.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>

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

// A memory of ~67 (target 4096) or ~100 (6144) documents in 3 or 4 stage-1 batches, so every
// shard of 2, or of 4, holds some; and 4 questions of different lengths over it.
MemoryCorpus corpus_with_queries(int64_t target_tokens) {
  WhitespaceWordCounter counter;
  NiahConfig cfg = msabench::testing::small_niah_config(target_tokens, 64, 4);
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

const std::string& base_spec() {
  // threads=1: rank 0 and up to 3 workers share the test machine's cores.
  static const std::string s = "msa:model=" + tiny_model().string() + ",max_tokens=16,max_rounds=1,topk=4,threads=1";
  return s;
}

const MemoryCorpus& corpus(int64_t target_tokens = 4096) {
  static std::map<int64_t, MemoryCorpus> cache;
  auto it = cache.find(target_tokens);
  if (it == cache.end()) it = cache.emplace(target_tokens, corpus_with_queries(target_tokens)).first;
  return it->second;
}

// One backend's index and answers: every query as one batch, and the first alone (batch 1 routes
// its own way: routing tokens only). The backend (and its workers) is gone on return.
struct BackendRun {
  std::string spec;
  IndexStats stats;
  std::vector<Answer> batch;
  Answer single;
};

BackendRun run_backend(const std::string& spec, int64_t corpus_tokens = 4096) {
  register_builtin_backends();
  const MemoryCorpus& c = corpus(corpus_tokens);
  std::vector<const Query*> all;
  for (const auto& q : c.queries) all.push_back(&q);
  auto b = BackendRegistry::instance().create(spec);
  BackendRun r;
  r.spec = b->spec();
  r.stats = b->index(c);
  r.batch = b->answer_batch(all, 10);
  r.single = b->answer(*all[0], 10);
  return r;
}

// Unsharded runs, shared by the tests (of one process) that compare against them.
const BackendRun& unsharded(const std::string& options, int64_t corpus_tokens = 4096) {
  static std::map<std::pair<std::string, int64_t>, BackendRun> cache;
  const auto key = std::make_pair(options, corpus_tokens);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, run_backend(base_spec() + options, corpus_tokens)).first;
  return it->second;
}

// An answer's results: every call's prompt length and per-layer routing ids and scores, rounds,
// response, named ids. Per-call fetch counters are left out: they describe how content was
// fetched (local fetcher or shard owners), not what was fetched.
nlohmann::json results(const nlohmann::json& detail) {
  nlohmann::json out = detail;
  out["calls"] = nlohmann::json::array();
  for (const auto& call : detail.at("calls"))
    out["calls"].push_back({{"prompt_tokens", call.at("prompt_tokens")}, {"routing", call.at("routing")}});
  return out;
}

void expect_same(const BackendRun& got, const BackendRun& want, const std::string& what) {
  ASSERT_EQ(got.batch.size(), want.batch.size()) << what;
  for (size_t i = 0; i < got.batch.size(); ++i) {
    EXPECT_EQ(got.batch[i].router_topk, want.batch[i].router_topk) << what << ", query " << i;
    EXPECT_EQ(got.batch[i].text, want.batch[i].text) << what << ", query " << i;
    // Routing ids and scores compare as exact doubles.
    EXPECT_EQ(results(got.batch[i].detail), results(want.batch[i].detail)) << what << ", query " << i;
  }
  EXPECT_EQ(results(got.single.detail), results(want.single.detail)) << what << ", batch 1";
}

void expect_sharded_equals_unsharded(int shards, const std::string& options, int64_t corpus_tokens = 4096) {
  const BackendRun& want = unsharded(options, corpus_tokens);
  const BackendRun got = run_backend(base_spec() + options + ",shards=" + std::to_string(shards), corpus_tokens);
  EXPECT_NE(got.spec.find("shards=" + std::to_string(shards)), std::string::npos) << got.spec;
  expect_same(got, want, std::to_string(shards) + " shards" + options);
  EXPECT_TRUE(no_children_left()) << "workers still running after the backend was destroyed";
}

// A fresh directory under the temp dir, removed with the object.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("msabench-" + tag + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// The one corpus bank directory (bank-<corpus>) under a bank_dir.
fs::path corpus_bank(const fs::path& bank_dir) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(bank_dir)) found.push_back(e.path());
  if (found.size() != 1) throw Error(bank_dir.string() + ": expected one corpus bank directory");
  return found[0];
}

}  // namespace

TEST(MsaShards, TwoShardsEqualUnsharded) { expect_sharded_equals_unsharded(2, ""); }

// A larger corpus: its 4 stage-1 batches give each of the 4 ranks some documents.
TEST(MsaShards, FourShardsEqualUnsharded) { expect_sharded_equals_unsharded(4, "", 6144); }

TEST(MsaShards, Int8KeysTwoShardsEqualUnshardedInt8) {
  expect_sharded_equals_unsharded(2, ",key_dtype=int8");
  // int8 keys score differently from the fp32 tensors, so equal scores above came from the scan.
  EXPECT_NE(results(unsharded(",key_dtype=int8").batch[0].detail), results(unsharded("").batch[0].detail));
}

TEST(MsaShards, BankDirShardsReuseAndResumeTheirSubBanks) {
  TempDir tmp("shard-banks");
  // Small segments, so an interrupted sub-bank has complete segments to resume from.
  const std::string spec = base_spec() + ",shards=2,segment_docs=8,bank_dir=" + tmp.path.string();
  const BackendRun first = run_backend(spec);
  EXPECT_FALSE(first.stats.reused);
  const fs::path bank = corpus_bank(tmp.path);
  int64_t docs = 0;
  for (int r = 0; r < 2; ++r) {
    const auto info = bank_info(shard_bank_dir(bank.string(), r, 2));
    EXPECT_TRUE(info.value("complete", false)) << "rank " << r;
    EXPECT_NE(info.value("shard", std::string()).find("rank " + std::to_string(r) + " of 2"), std::string::npos);
    EXPECT_GT(info.value("segments_done", 0), 1) << "rank " << r;
    docs += info.value("documents", int64_t{0});
  }
  EXPECT_EQ(docs, static_cast<int64_t>(corpus().documents.size()));
  // Second run: every rank loads its sub-bank.
  const BackendRun again = run_backend(spec);
  EXPECT_TRUE(again.stats.reused);
  expect_same(again, first, "reused sub-banks");
  // Rank 1's encode "killed" after its first segments: the next run resumes it to the same bank.
  const fs::path manifest = fs::path(shard_bank_dir(bank.string(), 1, 2)) / "manifest.json";
  auto m = nlohmann::json::parse(read_file(manifest.string()));
  m["complete"] = false;
  while (m["segments"].size() > 1) {
    fs::remove(manifest.parent_path() / m["segments"].back().at("file").get<std::string>());
    m["segments"].erase(m["segments"].size() - 1);
  }
  write_json_atomic(manifest.string(), m);
  const BackendRun resumed = run_backend(spec);
  EXPECT_FALSE(resumed.stats.reused);
  EXPECT_TRUE(bank_info(manifest.parent_path().string()).value("complete", false));
  expect_same(resumed, first, "resumed sub-bank");
  // content=mmap: the workers map their content K/V from the sub-bank files.
  const BackendRun mapped = run_backend(spec + ",content=mmap");
  EXPECT_TRUE(mapped.stats.reused);
  expect_same(mapped, first, "reused sub-banks, content=mmap");
  EXPECT_TRUE(no_children_left());
}

TEST(MsaShards, SubBanksEqualUnshardedAndBadOnesAreRefused) {
  TempDir tmp("shard-layout");
  // One segment per shard: each sub-bank is encoded in the unsharded stage-1 batches.
  const BackendRun built = run_backend(base_spec() + ",shards=2,bank_dir=" + tmp.path.string());
  expect_same(built, unsharded(""), "2 shards with bank_dir");
  // Rank 0 of 4 finds a complete sub-bank built as rank 0 of 2 (other documents): a clear error.
  const fs::path bank = corpus_bank(tmp.path);
  fs::copy(shard_bank_dir(bank.string(), 0, 2), shard_bank_dir(bank.string(), 0, 4), fs::copy_options::recursive);
  try {
    run_backend(base_spec() + ",shards=4,bank_dir=" + tmp.path.string());
    ADD_FAILURE() << "a sub-bank of another shard layout was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("shard-0-of-4/manifest.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 0 of 2"), std::string::npos) << msg;
  }
  // A worker's corrupt sub-bank: its message (file and problem) reaches rank 0.
  const fs::path seg = fs::path(shard_bank_dir(bank.string(), 1, 2)) / "seg-00000.bin";
  std::string bytes = read_file(seg.string());
  bytes[bytes.size() / 2] ^= 0x5a;
  write_file_atomic(seg.string(), bytes);
  try {
    run_backend(base_spec() + ",shards=2,bank_dir=" + tmp.path.string());
    ADD_FAILURE() << "a corrupt sub-bank was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 1: " + seg.string() + ": checksum mismatch"), std::string::npos) << msg;
  }
  EXPECT_TRUE(no_children_left());
}

TEST(MsaShards, EveryRankHoldsPartOfTheBank) {
  auto model = MsaModel::load(tiny_model().string());
  std::vector<std::vector<int64_t>> docs;
  for (int d = 0; d < 80; ++d) docs.push_back(std::vector<int64_t>(300 + 7 * d, 65 + d % 26));
  for (int world : {2, 4}) {
    ShardOptions o;
    o.world = world;
    o.model_dir = tiny_model().string();
    o.threads = 1;  // 2 cores: more threads per worker only oversubscribe them
    {
      ShardedBank sb(model, o);
      const MemoryBank& mine = sb.index(docs, {1, 2, 3});
      EXPECT_EQ(sb.num_docs(), 80);
      const auto per_rank = sb.documents_per_rank();
      ASSERT_EQ(per_rank.size(), static_cast<size_t>(world));
      EXPECT_EQ(per_rank[0], mine.num_docs());
      int64_t sum = 0;
      for (int r = 0; r < world; ++r) {
        EXPECT_GT(per_rank[r], 0) << "rank " << r << " of " << world;
        sum += per_rank[r];
      }
      EXPECT_EQ(sum, 80);
    }
    EXPECT_TRUE(no_children_left());
  }
}

TEST(MsaShards, BadOptionsAndBusyPortAreClearErrors) {
  register_builtin_backends();
  const std::string spec = "msa:model=" + tiny_model().string();
  EXPECT_THROW(BackendRegistry::instance().create(spec + ",shards=0"), Error);
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
  const int rc = RUN_ALL_TESTS();
  fs::remove_all(fs::temp_directory_path() / ("msabench-shard-backend-" + std::to_string(::getpid())));  // tiny_model()
  return rc;
}
