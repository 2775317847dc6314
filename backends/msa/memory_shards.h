// Memory Parallel for the msa backend (msa-reference §8.6): the memory bank is sharded over
// `world` processes. The backend process is rank 0; ranks 1..world-1 run `msabench shard-worker`
// (launched here on this machine, or started by hand on other machines). Every rank encodes only
// its documents; per router layer rank 0 broadcasts the routing query, every rank scores its
// shard, ShardGroup::global_top_k merges the per-shard top-k exactly, and rank 0 receives the
// selected documents' pooled K/V from their owners. The msa backend's bank options apply per
// shard: key_dtype builds each shard's scan-layout routing keys, bank_dir persists each shard as
// its own sub-bank (shard_bank_dir) on the machine of its rank.
#pragma once
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/msa/bank_store.h"
#include "core/model/msa.h"
#include "core/model/routing_kernel.h"

namespace msabench {

class ShardGroup;

struct ShardOptions {
  int world = 1;
  std::string model_dir;
  int threads = 2;                 // compute threads of every worker
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: any free port (workers launched here only)
  bool launch = true;   // false: ranks 1..world-1 are started by hand (other machines)
  int join_timeout_s = 60;
};

// How every rank stores its shard (sent by rank 0 with each corpus).
struct ShardBankOptions {
  std::optional<KeyDtype> key_dtype;  // routing keys in the scan layout of routing_kernel.h
  std::string corpus_dir;             // persistent bank of this corpus; "" keeps every shard in RAM
  BankFingerprint fp;                 // model, tokenizer, corpus (each rank adds its shard layout)
  int64_t segment_docs = 256;
  bool content_mmap = false;          // content K/V memory-mapped from the sub-bank's files
};

// Sub-bank of one rank under a corpus bank directory: DIR/shard-R-of-N.
std::string shard_bank_dir(const std::string& corpus_dir, int rank, int world);

class ShardedBank : public RoutingProvider {
 public:
  // Starts (or waits for) the workers; throws if one fails to start or join in time.
  ShardedBank(MsaModel& model, ShardOptions opt);
  ~ShardedBank() override;  // tells the workers to exit, then reaps (kills after a grace period)
  ShardedBank(const ShardedBank&) = delete;
  ShardedBank& operator=(const ShardedBank&) = delete;

  // Encodes the corpus over the group (or loads / resumes every rank's sub-bank); returns rank 0's
  // own shard (template K/V for prefill). Throws with the failing rank's message.
  const MemoryBank& index(const std::vector<std::vector<int64_t>>& docs, const std::vector<int64_t>& template_ids,
                          const ShardBankOptions& bank = {});
  // Every rank loaded a complete sub-bank at the last index() (nothing was encoded).
  bool reused() const;
  // Documents of every rank after index() (the partition), rank 0 first.
  std::vector<int64_t> documents_per_rank() const;

  int64_t num_docs() const override;
  void route(int slot, const torch::Tensor& q_router, const torch::Tensor& routing_mask, int k,
             LayerRouting& out) override;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> fetch(int slot,
                                                             const std::vector<std::vector<int64_t>>& docs) override;

  struct State;

 private:
  void stop_workers(bool polite);
  ShardOptions opt_;
  std::unique_ptr<State> st_;
  std::vector<pid_t> pids_;
};

// `msabench shard-worker --rank R --world N --master-addr A --master-port P --model DIR
// [--threads T] [--parent PID]`: serves one shard until rank 0 says stop (routing options come
// from rank 0).
int shard_worker_main(int argc, char** argv);

}  // namespace msabench
