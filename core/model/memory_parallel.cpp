#include "core/model/memory_parallel.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <numeric>
#include <thread>

#include "core/error.h"

namespace msabench {

namespace {
struct Holder {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};
constexpr double kInvalid = -1e9;  // as in unsharded routing: such documents are never selected
}  // namespace

ShardGroup ShardGroup::gloo_file(const std::string& store_path, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world) throw Error("shards: rank must be in [0, world)");
  ShardGroup g;
  g.rank_ = rank;
  g.world_ = world;
  auto h = std::make_shared<Holder>();
  try {
    h->store = c10::make_intrusive<c10d::FileStore>(store_path, world);
    auto opts = c10d::ProcessGroupGloo::Options::create();
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    h->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(h->store, rank, world, opts);
  } catch (const std::exception& e) {
    throw Error("shards: cannot join the Gloo group through " + store_path + ": " + e.what());
  }
  g.pg_ = h->pg.get();
  g.holder_ = h;
  return g;
}

ShardGroup ShardGroup::gloo_tcp(const std::string& host, int port, int rank, int world,
                                std::chrono::milliseconds join_timeout, std::chrono::milliseconds op_timeout,
                                const std::function<void(int)>& on_listening, const std::function<void()>& poll) {
  if (world < 1 || rank < 0 || rank >= world) throw Error("shards: rank must be in [0, world)");
  if (port < 0 || port > 65535 || (rank > 0 && port == 0)) throw Error("shards: bad port " + std::to_string(port));
  ShardGroup g;
  g.rank_ = rank;
  g.world_ = world;
  auto h = std::make_shared<Holder>();
  const std::string where = host + ":" + std::to_string(port);
  c10::intrusive_ptr<c10d::TCPStore> store;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0;
    so.waitWorkers = false;
    so.timeout = join_timeout;
    store = c10::make_intrusive<c10d::TCPStore>(host, so);
  } catch (const std::exception& e) {
    throw Error("shards: cannot " + std::string(rank == 0 ? "listen on " : "reach rank 0 at ") + where +
                " (port busy or no rank 0 there?): " + e.what());
  }
  if (rank == 0) {
    if (on_listening) on_listening(store->getPort());
    // Wait for every worker's arrival ourselves, so that a worker dying at startup ends the wait.
    const auto deadline = std::chrono::steady_clock::now() + join_timeout;
    for (int r = 1; r < world; ++r) {
      while (!store->check({"arrived/" + std::to_string(r)})) {
        if (poll) poll();
        if (std::chrono::steady_clock::now() > deadline)
          throw Error("shards: worker " + std::to_string(r) + " did not join within " +
                      std::to_string(join_timeout.count() / 1000) + " s");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  } else {
    store->set("arrived/" + std::to_string(rank), std::vector<uint8_t>{1});
  }
  try {
    auto opts = c10d::ProcessGroupGloo::Options::create(op_timeout);
    const bool loopback = host == "127.0.0.1" || host == "localhost";
    opts->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                     : c10d::ProcessGroupGloo::createDefaultDevice());
    store->setTimeout(join_timeout);
    h->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
  } catch (const std::exception& e) {
    throw Error("shards: cannot join the Gloo group at " + where + ": " + e.what());
  }
  h->store = store;
  g.pg_ = h->pg.get();
  g.holder_ = h;
  return g;
}

void ShardGroup::broadcast(torch::Tensor& t, int root) {
  std::vector<at::Tensor> v = {t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  try {
    pg_->broadcast(v, o)->wait();
  } catch (const std::exception& e) {
    throw Error(std::string("shards: broadcast failed (a worker exited?): ") + e.what());
  }
}

void ShardGroup::send(torch::Tensor& t, int dst, int tag) { point_to_point(true, t, dst, tag); }
void ShardGroup::recv(torch::Tensor& t, int src, int tag) { point_to_point(false, t, src, tag); }

void ShardGroup::point_to_point(bool send, torch::Tensor& t, int peer, int tag) {
  std::vector<at::Tensor> v = {t};
  try {
    (send ? pg_->send(v, peer, tag) : pg_->recv(v, peer, tag))->wait();
  } catch (const std::exception& e) {
    throw Error(std::string("shards: ") + (send ? "send to" : "receive from") + " rank " + std::to_string(peer) +
                " failed: " + e.what());
  }
}

std::vector<int64_t> ShardGroup::gather_status(int64_t mine) {
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world_; ++r) out[0].push_back(torch::empty({1}, torch::kInt64));
  std::vector<at::Tensor> in = {torch::full({1}, mine, torch::kInt64)};
  try {
    pg_->allgather(out, in)->wait();
  } catch (const std::exception& e) {
    throw Error(std::string("shards: status exchange failed (a worker exited?): ") + e.what());
  }
  std::vector<int64_t> st;
  for (const auto& t : out[0]) st.push_back(t.item<int64_t>());
  return st;
}

void ShardGroup::global_top_k(const torch::Tensor& local_scores, const std::vector<int64_t>& local_ids, int k,
                              std::vector<std::vector<int64_t>>& ids, std::vector<std::vector<double>>& scores) {
  const int64_t B = local_scores.size(0), n = local_scores.size(1);
  if (static_cast<int64_t>(local_ids.size()) != n) throw Error("shards: local_ids size differs from the scores");
  // Local top-k in global-id order for ties, padded to k with invalid entries.
  auto s = local_scores.to(torch::kCPU, torch::kFloat64).contiguous();
  auto cand_s = torch::full({B, k}, -std::numeric_limits<double>::infinity(), torch::kFloat64);
  auto cand_i = torch::full({B, k}, int64_t{-1}, torch::kInt64);
  std::vector<int64_t> order(n);
  for (int64_t b = 0; b < B; ++b) {
    auto row_t = s[b];
    auto row = row_t.accessor<double, 1>();
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
      return row[x] != row[y] ? row[x] > row[y] : local_ids[x] < local_ids[y];
    });
    for (int64_t j = 0; j < std::min<int64_t>(k, n); ++j) {
      cand_s[b][j] = row[order[j]];
      cand_i[b][j] = local_ids[order[j]];
    }
  }
  std::vector<std::vector<at::Tensor>> out_s(1), out_i(1);
  for (int r = 0; r < world_; ++r) {
    out_s[0].push_back(torch::empty_like(cand_s));
    out_i[0].push_back(torch::empty_like(cand_i));
  }
  std::vector<at::Tensor> in_s = {cand_s}, in_i = {cand_i};
  try {
    pg_->allgather(out_s, in_s)->wait();
    pg_->allgather(out_i, in_i)->wait();
  } catch (const std::exception& e) {
    throw Error(std::string("shards: all-gather failed: ") + e.what());
  }
  auto all_s = torch::cat(out_s[0], 1), all_i = torch::cat(out_i[0], 1);  // [B, world*k]
  ids.assign(B, {});
  scores.assign(B, {});
  for (int64_t b = 0; b < B; ++b) {
    auto rs_t = all_s[b], ri_t = all_i[b];
    auto rs = rs_t.accessor<double, 1>();
    auto ri = ri_t.accessor<int64_t, 1>();
    std::vector<int64_t> idx(all_s.size(1));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return rs[x] != rs[y] ? rs[x] > rs[y] : ri[x] < ri[y]; });
    for (int64_t j = 0; j < static_cast<int64_t>(idx.size()) && static_cast<int>(ids[b].size()) < k; ++j) {
      if (ri[idx[j]] < 0 || rs[idx[j]] <= kInvalid) break;
      ids[b].push_back(ri[idx[j]]);
      scores[b].push_back(rs[idx[j]]);
    }
  }
}

}  // namespace msabench
