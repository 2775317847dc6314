// Memory Parallel routing (msa-reference §8.6): the memory bank is sharded by documents over
// worker processes; each scores only its own documents, keeps its local top-k, and an all-gather
// of (score, global id) pairs gives every worker the same global top-k. Ties go to the lower
// global id, exactly as unsharded routing orders them. Transport: c10d ProcessGroupGloo (CPU);
// the same calls run on ProcessGroupNCCL in a CUDA build.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <functional>
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
  // Rendezvous through a c10d TCPStore served by rank 0 at host:port (rank 0 may pass port 0 for
  // any free port). Rank 0 calls on_listening(bound port) before waiting for the others, and
  // poll() while waiting (it throws to give up, e.g. when a launched worker has exited). Joining
  // fails after `join_timeout`; collectives after `op_timeout`.
  static ShardGroup gloo_tcp(const std::string& host, int port, int rank, int world,
                             std::chrono::milliseconds join_timeout, std::chrono::milliseconds op_timeout,
                             const std::function<void(int)>& on_listening = {},
                             const std::function<void()>& poll = {});
  int rank() const { return rank_; }
  int world() const { return world_; }

  // local_scores [B, n_local] (fp32, lowest float = no chunk); local_ids: global id of each local
  // document. Fills ids/scores [B][<=k], best first, identical on every rank.
  void global_top_k(const torch::Tensor& local_scores, const std::vector<int64_t>& local_ids, int k,
                    std::vector<std::vector<int64_t>>& ids, std::vector<std::vector<double>>& scores);

  // Thin wrappers over the process group (contiguous CPU tensors; errors become msabench::Error).
  void broadcast(torch::Tensor& t, int root = 0);
  void send(torch::Tensor& t, int dst, int tag);
  void recv(torch::Tensor& t, int src, int tag);
  // Every rank's int64 status (0 = ok); the same vector on every rank.
  std::vector<int64_t> gather_status(int64_t mine);

 private:
  void point_to_point(bool send, torch::Tensor& t, int peer, int tag);
  int rank_ = 0, world_ = 1;
  std::shared_ptr<void> holder_;  // keeps the store and process group alive
  c10d::ProcessGroup* pg_ = nullptr;
};

}  // namespace msabench
