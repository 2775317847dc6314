#include "core/model/memory_parallel.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace msabench {

namespace {
struct Holder {
  c10::intrusive_ptr<c10d::FileStore> store;
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
