// One Memory Parallel worker: routes a deterministic synthetic bank sharded over `world` ranks and
// checks that the global top-k equals unsharded routing of the whole bank (ids and scores, exact).
//   shard_worker RANK WORLD STORE_FILE      (exit 0: equal on every query)
#include <cstdio>
#include <random>

#include "core/error.h"
#include "core/model/memory_parallel.h"
#include "core/model/msa.h"
#include "tests/model_configs.h"

using namespace msabench;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: shard_worker RANK WORLD STORE_FILE\n");
    return 2;
  }
  const int rank = std::atoi(argv[1]), world = std::atoi(argv[2]);
  try {
    ModelConfig c = msabench::testing::routing_only_config(4, 2, 16);
    MsaOptions o;
    o.score_tile_chunks = 7;
    MsaModel model(Qwen3Model::random_init(c, 1), o);
    // Bank: 97 documents of 1..5 chunks; duplicated keys create exact ties across shards.
    std::mt19937_64 rng(42);
    const int64_t N = 97;
    std::vector<int64_t> chunks_of(N), chunk_doc;
    for (int64_t d = 0; d < N; ++d) {
      chunks_of[d] = 1 + static_cast<int64_t>(rng() % 5);
      for (int64_t j = 0; j < chunks_of[d]; ++j) chunk_doc.push_back(d);
    }
    const int64_t C = static_cast<int64_t>(chunk_doc.size());
    torch::manual_seed(123);
    auto rk = torch::randn({2, C, 16});
    rk.narrow(1, C - 3, 3).copy_(rk.narrow(1, 0, 3));  // ties between the first and last documents
    auto q = torch::randn({3, 4, 6, 16});
    auto mask = torch::ones({3, 6}, torch::kBool);
    mask[1][0] = false;
    mask[2].narrow(0, 3, 3).fill_(false);
    const int k = 16;
    auto full = model.document_scores(q, mask, rk, torch::tensor(chunk_doc), N);
    std::vector<std::vector<int64_t>> want_ids;
    std::vector<std::vector<double>> want_sc;
    MsaModel::top_k_documents(full, k, want_ids, want_sc);
    // Partition like the reference engine: each document to the rank with the fewest chunks so far.
    std::vector<int64_t> load(world, 0), mine, local_chunk_doc, local_chunks;
    int64_t first = 0;
    for (int64_t d = 0; d < N; ++d) {
      int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
      load[r] += chunks_of[d];
      if (r == rank) {
        for (int64_t j = 0; j < chunks_of[d]; ++j) {
          local_chunks.push_back(first + j);
          local_chunk_doc.push_back(static_cast<int64_t>(mine.size()));
        }
        mine.push_back(d);
      }
      first += chunks_of[d];
    }
    auto local_rk = rk.index_select(1, torch::tensor(local_chunks));
    auto local = model.document_scores(q, mask, local_rk, torch::tensor(local_chunk_doc), static_cast<int64_t>(mine.size()));
    ShardGroup g = ShardGroup::gloo_file(argv[3], rank, world);
    std::vector<std::vector<int64_t>> ids;
    std::vector<std::vector<double>> sc;
    g.global_top_k(local, mine, k, ids, sc);
    for (size_t b = 0; b < ids.size(); ++b) {
      if (ids[b] != want_ids[b] || sc[b] != want_sc[b]) {
        std::fprintf(stderr, "rank %d: query %zu differs from unsharded routing\n", rank, b);
        return 1;
      }
    }
    std::printf("rank %d/%d: %zu queries, global top-%d equals unsharded\n", rank, world, ids.size(), k);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: error: %s\n", rank, e.what());
    return 1;
  }
}
