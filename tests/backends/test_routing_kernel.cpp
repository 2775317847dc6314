// The blocked routing scan (core/model/routing_kernel.h) against MsaModel::document_scores, the
// torch path the msa backend uses without key_dtype: equal scores (fp32 rounding) and equal top-k.
#include <gtest/gtest.h>

#include <random>

#include "core/model/routing_kernel.h"
#include "tests/model_configs.h"

using namespace msabench;

namespace {

struct Bank {
  torch::Tensor rk;  // [Hk, C, D]
  std::vector<int64_t> chunk_doc, doc_end;
  int64_t docs = 0;
};

// Documents of 1..7 chunks (C not a multiple of the 16-chunk block), one document with none.
Bank random_bank(int64_t Hk, int64_t D, int64_t docs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bank b;
  b.docs = docs;
  for (int64_t d = 0; d < docs; ++d) {
    const int64_t n = d == 3 ? 0 : 1 + static_cast<int64_t>(rng() % 7);
    for (int64_t j = 0; j < n; ++j) b.chunk_doc.push_back(d);
    b.doc_end.push_back(static_cast<int64_t>(b.chunk_doc.size()));
  }
  torch::manual_seed(static_cast<uint64_t>(seed));
  b.rk = torch::randn({Hk, static_cast<int64_t>(b.chunk_doc.size()), D});
  return b;
}

std::vector<std::vector<int64_t>> top(const torch::Tensor& s, int k) {
  std::vector<std::vector<int64_t>> ids;
  std::vector<std::vector<double>> sc;
  MsaModel::top_k_documents(s, k, ids, sc);
  return ids;
}

}  // namespace

TEST(RoutingKernel, Fp32IndexEqualsDocumentScoresForEveryVariant) {
  const int64_t H = 4, Hk = 2, D = 16, B = 3, L = 11;
  Bank bank = random_bank(Hk, D, 157, 7);
  torch::manual_seed(9);
  auto q = torch::randn({B, H, L, D});
  auto mask = torch::ones({B, L}, torch::kBool);
  mask[1].narrow(0, 0, 4).fill_(false);
  mask[2].fill_(false);  // a query without routing tokens: every document at the lowest score
  ModelConfig c = msabench::testing::routing_only_config(H, Hk, D);
  for (auto sim : {RoutingSimilarity::ScaledDot, RoutingSimilarity::Cosine})
    for (auto qr : {QueryReduce::Max, QueryReduce::Mean, QueryReduce::Last})
      for (auto cr : {Reduce::Max, Reduce::Mean}) {
        MsaOptions o;
        o.similarity = sim;
        o.query_reduce = qr;
        o.chunk_reduce = cr;
        o.score_tile_chunks = 64;
        MsaModel m(Qwen3Model::random_init(c, 1), o);
        auto want = m.document_scores(q, mask, bank.rk, torch::tensor(bank.chunk_doc), bank.docs);
        auto ix = RouterKeyIndex::from_tensor(bank.rk, sim == RoutingSimilarity::Cosine, KeyDtype::F32);
        for (int threads : {1, 2, 3}) {
          auto got = index_document_scores(o, q, mask, ix, bank.doc_end, threads);
          ASSERT_EQ(got.sizes(), want.sizes());
          EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << (got - want).abs().max().item<float>();
          EXPECT_EQ(top(got, 16), top(want, 16));
        }
      }
}

TEST(RoutingKernel, ManyThreadsSplitOnDocumentBoundaries) {
  const int64_t H = 2, Hk = 1, D = 8;
  Bank bank = random_bank(Hk, D, 2000, 3);  // ~8000 chunks: the scan really uses several threads
  torch::manual_seed(1);
  auto q = torch::randn({2, H, 5, D});
  auto mask = torch::ones({2, 5}, torch::kBool);
  MsaOptions o;
  MsaModel m(Qwen3Model::random_init(msabench::testing::routing_only_config(H, Hk, D), 1), o);
  auto want = m.document_scores(q, mask, bank.rk, torch::tensor(bank.chunk_doc), bank.docs);
  auto ix = RouterKeyIndex::from_tensor(bank.rk, false, KeyDtype::F32);
  for (int threads : {2, 4, 7}) {
    auto got = index_document_scores(o, q, mask, ix, bank.doc_end, threads);
    EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5));
    EXPECT_EQ(top(got, 16), top(want, 16));
  }
}

TEST(RoutingKernel, ReducedPrecisionKeysRoundTripWithinTheirStep) {
  torch::manual_seed(5);
  auto rk = torch::randn({2, 37, 8});
  auto f32 = RouterKeyIndex::from_tensor(rk, false, KeyDtype::F32);
  auto bf = RouterKeyIndex::from_tensor(rk, false, KeyDtype::BF16);
  auto i8 = RouterKeyIndex::from_tensor(rk, false, KeyDtype::I8);
  EXPECT_EQ(f32.bytes(), 48 * 16 * 4);  // 37 chunks padded to 3 blocks of 16
  EXPECT_EQ(bf.bytes(), 48 * 16 * 2);
  EXPECT_EQ(i8.bytes(), 48 * 16 + 48 * 4);
  for (int64_t c = 0; c < 37; ++c) {
    auto exact = f32.row(c), b = bf.row(c), i = i8.row(c);
    float amax = 0;
    for (float x : exact) amax = std::max(amax, std::fabs(x));
    for (size_t j = 0; j < exact.size(); ++j) {
      EXPECT_EQ(exact[j], rk[j / 8][c][j % 8].item<float>());
      EXPECT_EQ(b[j], rk[j / 8][c][j % 8].to(torch::kBFloat16).item<float>());  // torch's own rounding
      EXPECT_LE(std::fabs(i[j] - exact[j]), amax / 127 * 0.5001);
    }
  }
}

TEST(RoutingKernel, ReducedPrecisionScoresMatchDequantizedKeys) {
  const int64_t H = 4, Hk = 2, D = 16;
  Bank bank = random_bank(Hk, D, 90, 11);
  torch::manual_seed(2);
  auto q = torch::randn({2, H, 6, D});
  auto mask = torch::ones({2, 6}, torch::kBool);
  MsaOptions o;
  o.similarity = RoutingSimilarity::Cosine;
  MsaModel m(Qwen3Model::random_init(msabench::testing::routing_only_config(H, Hk, D), 1), o);
  for (auto dt : {KeyDtype::BF16, KeyDtype::I8}) {
    auto ix = RouterKeyIndex::from_tensor(bank.rk, true, dt);
    // The dequantized keys (already normalized) through the torch path, scale-free cosine off.
    const int64_t C = ix.chunks();
    auto deq = torch::empty({C, Hk * D});
    for (int64_t c = 0; c < C; ++c) deq[c].copy_(torch::tensor(ix.row(c)));
    auto deq_k = deq.view({C, Hk, D}).permute({1, 0, 2}).contiguous();
    MsaOptions od = o;
    od.similarity = RoutingSimilarity::ScaledDot;
    auto qn = q / q.norm(2, -1, true);
    MsaModel md(Qwen3Model::random_init(msabench::testing::routing_only_config(H, Hk, D), 1), od);
    auto want = md.document_scores(qn * std::sqrt(static_cast<double>(D)), mask, deq_k, torch::tensor(bank.chunk_doc), bank.docs);
    auto got = index_document_scores(o, q, mask, ix, bank.doc_end, 2);
    // int8 also quantizes the query (per token, step max|q| / 127): cosine scores move by < 1e-2.
    const double tol = dt == KeyDtype::I8 ? 1e-2 : 1e-5;
    EXPECT_LT((got - want).abs().max().item<double>(), tol) << key_dtype_name(dt);
    // The portable kernels give the same scores (int8: the same integer sums).
    use_portable_routing_kernels(true);
    auto portable = index_document_scores(o, q, mask, ix, bank.doc_end, 2);
    use_portable_routing_kernels(false);
    if (dt == KeyDtype::I8) EXPECT_TRUE(torch::equal(portable, got));
    else EXPECT_TRUE(torch::allclose(portable, got, 1e-5, 1e-6));
  }
}

TEST(RoutingKernel, PortableFp32KernelEqualsDocumentScores) {
  Bank bank = random_bank(2, 8, 60, 21);
  torch::manual_seed(8);
  auto q = torch::randn({2, 4, 9, 8});
  auto mask = torch::ones({2, 9}, torch::kBool);
  MsaOptions o;
  MsaModel m(Qwen3Model::random_init(msabench::testing::routing_only_config(4, 2, 8), 1), o);
  auto want = m.document_scores(q, mask, bank.rk, torch::tensor(bank.chunk_doc), bank.docs);
  use_portable_routing_kernels(true);
  auto got = index_document_scores(o, q, mask, RouterKeyIndex::from_tensor(bank.rk, false, KeyDtype::F32), bank.doc_end, 2);
  use_portable_routing_kernels(false);
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5));
}

TEST(RoutingKernel, KeyDtypeNamesAndBandwidthProbe) {
  EXPECT_EQ(parse_key_dtype("int8"), KeyDtype::I8);
  EXPECT_EQ(key_dtype_name(parse_key_dtype("bf16")), "bf16");
  EXPECT_THROW(parse_key_dtype("fp8"), std::exception);
  EXPECT_EQ(router_key_bytes_per_chunk(KeyDtype::I8, 64), 68);
  EXPECT_GT(memory_read_bandwidth(8 << 20, 2, 2), 1e8);
}
