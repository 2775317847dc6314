// Memory Parallel routing (msa-reference §8.6): the memory bank is sharded by documents over
// worker processes; each scores only its own documents, keeps its local top-k, and an all-gather
// of (score, global id) pairs gives every worker the same global top-k. Ties go to the lower
// global id, exactly as unsharded routing orders them. Transport: c10d ProcessGroupGloo (CPU);
// the same calls run on ProcessGroupNCCL in a CUDA build.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace c10d {
class ProcessGroup;
}

namespace msabench {

class ShardGroup {
 public:
  // Rendezvous through a file store shared by all workers (one machine); see README for TCP.
  static ShardGroup gloo_file(const std::string& store_path, int rank, int world);
  int rank() const { return rank_; }
  int world() const { return world_; }

  // local_scores [B, n_local] (fp32, lowest float = no chunk); local_ids: global id of each local
  // document. Fills ids/scores [B][<=k], best first, identical on every rank.
  void global_top_k(const torch::Tensor& local_scores, const std::vector<int64_t>& local_ids, int k,
                    std::vector<std::vector<int64_t>>& ids, std::vector<std::vector<double>>& scores);

 private:
  int rank_ = 0, world_ = 1;
  std::shared_ptr<void> holder_;  // keeps the store and process group alive
  c10d::ProcessGroup* pg_ = nullptr;
};

}  // namespace msabench
