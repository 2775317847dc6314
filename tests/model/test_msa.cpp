// MSA layers and the three inference stages against naive references written in the test.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/model/msa.h"
#include "core/model/safetensors.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {

ModelConfig msa_config(const std::string& router_layers, int P, int64_t layers = 3) {
  ModelConfig c;
  c.model_type = "msa";
  c.vocab_size = 89;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.rope_theta = 10000;
  c.tie_word_embeddings = true;
  c.torch_dtype = "float32";
  MsaConfig m;
  m.router_layer_idx = router_layers;
  if (router_layers == "all") {
    for (int i = 0; i < layers; ++i) m.router_layers.push_back(i);
  } else {
    for (size_t p = 0; p < router_layers.size();) {
      size_t q = router_layers.find(',', p);
      m.router_layers.push_back(std::stoi(router_layers.substr(p, q - p)));
      p = q == std::string::npos ? router_layers.size() : q + 1;
    }
  }
  m.decouple_router = true;
  m.pooling_kernel_size = P;
  c.msa = m;
  return c;
}

std::vector<std::vector<int64_t>> random_docs(int n, int min_len, int max_len, uint64_t seed, int64_t vocab) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int64_t>> docs(n);
  for (auto& d : docs) {
    int len = min_len + static_cast<int>(rng() % (max_len - min_len + 1));
    for (int i = 0; i < len; ++i) d.push_back(static_cast<int64_t>(rng() % vocab));
  }
  return docs;
}

PromptTokens prompt_of(const std::vector<int64_t>& ids, int routing_tokens) {
  PromptTokens p;
  p.ids = ids;
  for (size_t i = 0; i < ids.size(); ++i) p.roles.push_back(static_cast<int>(i) < routing_tokens ? 0 : -1);
  return p;
}

// Dense reference: one sequence [template; doc_1..doc_N; prompt] with an explicit mask. Template
// and documents attend causally within themselves; prompt tokens attend to the template, to every
// document token (router layers only), and causally to the prompt. Returns last-token logits.
torch::Tensor dense_reference(const Qwen3Model& m, const std::vector<int64_t>& tpl,
                              const std::vector<std::vector<int64_t>>& docs, const std::vector<int64_t>& prompt,
                              int64_t start, const std::vector<int>& router_layers) {
  std::vector<int64_t> ids, pos, seg;
  auto add = [&](const std::vector<int64_t>& t, int64_t p0, int64_t s) {
    for (size_t i = 0; i < t.size(); ++i) {
      ids.push_back(t[i]);
      pos.push_back(p0 + static_cast<int64_t>(i));
      seg.push_back(s);
    }
  };
  add(tpl, 0, 0);
  for (size_t d = 0; d < docs.size(); ++d) add(docs[d], 0, static_cast<int64_t>(d) + 1);
  add(prompt, start, -1);
  const int64_t N = static_cast<int64_t>(ids.size());
  auto mask_with_docs = torch::zeros({N, N}, torch::kBool), mask_no_docs = torch::zeros({N, N}, torch::kBool);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      bool same = seg[i] == seg[j];
      bool prompt_row = seg[i] == -1;
      mask_with_docs[i][j] = same || (prompt_row && true);
      mask_no_docs[i][j] = same || (prompt_row && seg[j] == 0);
    }
  auto bias_of = [&](const torch::Tensor& allowed) {
    auto b = torch::zeros({1, 1, N, N});
    return b.masked_fill(allowed.logical_not().view({1, 1, N, N}), std::numeric_limits<float>::lowest());
  };
  auto with_docs = bias_of(mask_with_docs), no_docs = bias_of(mask_no_docs);
  auto idt = torch::tensor(ids, torch::kInt64).unsqueeze(0), pt = torch::tensor(pos, torch::kInt64).unsqueeze(0);
  auto h = torch::embedding(m.embed_tokens, idt);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const auto& L = m.layers[l];
    bool router = std::find(router_layers.begin(), router_layers.end(), static_cast<int>(l)) != router_layers.end();
    auto x = m.rms_norm(h, L.input_norm);
    auto qkv = m.project_qkv(L, x, pt);
    h = h + torch::linear(m.attend(qkv.q, qkv.k, qkv.v, router ? with_docs : no_docs), L.o_proj);
    h = h + m.mlp(L, m.rms_norm(h, L.post_norm));
  }
  return m.hidden_to_logits(h.select(1, N - 1));
}

}  // namespace

TEST(Msa, P1AllDocsSelectedEqualsDenseMaskedAttention) {
  for (std::string routers : {"0,1,2", "1"}) {
    auto cfg = msa_config(routers, 1);
    MsaOptions opt = MsaOptions::from_config(cfg);
    opt.doc_top_k = 50;  // >= number of documents: every document is selected
    opt.query_position_start = 3 + opt.doc_top_k;
    MsaModel m(Qwen3Model::random_init(cfg, 3), opt);
    auto docs = random_docs(6, 2, 9, 1, cfg.vocab_size);
    std::vector<int64_t> tpl = {1, 2, 3}, prompt = {10, 11, 12, 13, 14};
    auto bank = m.encode_memory(docs, tpl);
    MsaCache cache;
    std::vector<LayerRouting> routing;
    auto got = m.prefill(bank, {prompt_of(prompt, 4)}, cache, &routing);
    auto want = dense_reference(m.base(), tpl, docs, prompt, opt.query_position_start, cfg.msa->router_layers);
    EXPECT_LT((got[0] - want[0]).abs().max().item<double>(), 1e-4) << "router layers " << routers;
    ASSERT_EQ(routing.size(), cfg.msa->router_layers.size());
    EXPECT_EQ(routing[0].doc_ids[0].size(), docs.size());
  }
}

TEST(Msa, ChunkPoolingEqualsNaiveMeansWithPartialLastChunk) {
  const int64_t P = 3, B = 3, H = 2, L = 8, D = 4;
  auto x = torch::randn({B, H, L, D});
  std::vector<int64_t> lengths = {5, 8, 1};
  auto pooled = pool_chunks(x, lengths, P);
  int64_t c = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t start = 0; start < lengths[b]; start += P, ++c) {
      const int64_t end = std::min(start + P, lengths[b]);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) {
          double s = 0;
          for (int64_t t = start; t < end; ++t) s += x[b][h][t][d].item<double>();
          EXPECT_NEAR(pooled[h][c][d].item<double>(), s / (end - start), 1e-6);
        }
    }
  EXPECT_EQ(pooled.size(1), c);  // 2 + 3 + 1 chunks
  EXPECT_EQ(c, 6);
}

TEST(Msa, RoutingScoresEqualNaiveLoopsForEveryVariant) {
  auto cfg = msa_config("0", 2, 1);
  const int64_t B = 2, H = 4, Hk = 2, L = 5, D = 8, C = 11, N = 5;
  torch::manual_seed(4);
  auto q = torch::randn({B, H, L, D}), kr = torch::randn({Hk, C, D});
  std::vector<int64_t> chunk_doc = {0, 0, 1, 1, 1, 3, 3, 4, 4, 4, 4};  // document 2 has no chunks
  auto mask = torch::tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0}, torch::kBool).view({B, L});
  for (auto sim : {RoutingSimilarity::ScaledDot, RoutingSimilarity::Cosine})
    for (auto hr : {Reduce::Mean, Reduce::Max})
      for (auto qr : {QueryReduce::Max, QueryReduce::Mean, QueryReduce::Last})
        for (auto cr : {Reduce::Max, Reduce::Mean}) {
          MsaOptions o;
          o.similarity = sim;
          o.head_reduce = hr;
          o.query_reduce = qr;
          o.chunk_reduce = cr;
          o.score_tile_chunks = 4;  // several tiles
          MsaModel m(Qwen3Model::random_init(cfg, 1), o);
          auto got = m.document_scores(q, mask, kr, torch::tensor(chunk_doc, torch::kInt64), N);
          for (int64_t b = 0; b < B; ++b) {
            std::vector<double> doc_best(N, -1e300), doc_sum(N, 0);
            std::vector<int> doc_n(N, 0);
            for (int64_t c = 0; c < C; ++c) {
              std::vector<double> tok;
              for (int64_t t = 0; t < L; ++t) {
                double agg = hr == Reduce::Max ? -1e300 : 0;
                for (int64_t h = 0; h < H; ++h) {
                  double dot = 0, nq = 0, nk = 0;
                  for (int64_t d = 0; d < D; ++d) {
                    double a = q[b][h][t][d].item<double>(), k = kr[h / 2][c][d].item<double>();
                    dot += a * k;
                    nq += a * a;
                    nk += k * k;
                  }
                  double s = sim == RoutingSimilarity::Cosine ? dot / std::sqrt(nq) / std::sqrt(nk) : dot / std::sqrt(8.0);
                  agg = hr == Reduce::Max ? std::max(agg, s) : agg + s / H;
                }
                tok.push_back(agg);
              }
              double cs = qr == QueryReduce::Max ? -1e300 : 0;
              int last = -1, cnt = 0;
              for (int64_t t = 0; t < L; ++t) {
                if (!mask[b][t].item<bool>()) continue;
                last = static_cast<int>(t);
                ++cnt;
                if (qr == QueryReduce::Max) cs = std::max(cs, tok[t]);
                if (qr == QueryReduce::Mean) cs += tok[t];
              }
              if (qr == QueryReduce::Mean) cs /= cnt;
              if (qr == QueryReduce::Last) cs = tok[last];
              const int64_t d = chunk_doc[c];
              doc_best[d] = std::max(doc_best[d], cs);
              doc_sum[d] += cs;
              doc_n[d] += 1;
            }
            for (int64_t d = 0; d < N; ++d) {
              double g = got[b][d].item<double>();
              if (doc_n[d] == 0) {
                EXPECT_LT(g, -1e30);
                continue;
              }
              double want = cr == Reduce::Max ? doc_best[d] : doc_sum[d] / doc_n[d];
              EXPECT_NEAR(g, want, 1e-4) << "variant " << int(sim) << int(hr) << int(qr) << int(cr) << " doc " << d;
            }
          }
        }
}

TEST(Msa, PlantedDocumentIsAlwaysSelectedAndTiesGoToLowerIds) {
  auto cfg = msa_config("0", 2, 1);
  for (int seed = 0; seed < 5; ++seed)
    for (auto sim : {RoutingSimilarity::ScaledDot, RoutingSimilarity::Cosine}) {
      torch::manual_seed(seed);
      const int64_t H = 4, Hk = 2, D = 8, C = 40, N = 20;
      auto u = torch::randn({Hk, D});
      auto q = u.repeat_interleave(2, 0).view({1, H, 1, D}).expand({1, H, 3, D}).contiguous();
      auto kr = torch::randn({Hk, C, D});
      std::vector<int64_t> chunk_doc;
      for (int64_t c = 0; c < C; ++c) chunk_doc.push_back(c / 2);
      const int64_t planted = 7;
      kr.select(1, 2 * planted).copy_(u * 10);  // the planted document's router key is the query
      MsaOptions o;
      o.similarity = sim;
      MsaModel m(Qwen3Model::random_init(cfg, 1), o);
      auto scores = m.document_scores(q, torch::ones({1, 3}, torch::kBool), kr, torch::tensor(chunk_doc), N);
      std::vector<std::vector<int64_t>> ids;
      std::vector<std::vector<double>> sc;
      MsaModel::top_k_documents(scores, 3, ids, sc);
      ASSERT_FALSE(ids[0].empty());
      EXPECT_EQ(ids[0][0], planted);
    }
  std::vector<std::vector<int64_t>> ids;
  std::vector<std::vector<double>> sc;
  MsaModel::top_k_documents(torch::tensor({0.5f, 0.9f, 0.5f, 0.9f, std::numeric_limits<float>::lowest()}).view({1, 5}),
                            5, ids, sc);
  EXPECT_EQ(ids[0], (std::vector<int64_t>{1, 3, 0, 2}));  // ties by lower id; invalid doc never selected
  // The single-pass selection equals a stable descending sort, rows of many ties included.
  torch::manual_seed(3);
  auto many = (torch::randint(0, 40, {3, 5000}).to(torch::kFloat32) / 8).contiguous();
  many[1].narrow(0, 100, 50).fill_(std::numeric_limits<float>::lowest());
  MsaModel::top_k_documents(many, 16, ids, sc);
  for (int64_t b = 0; b < 3; ++b) {
    auto order = std::get<1>(many[b].sort(/*stable=*/true, 0, /*descending=*/true));
    for (int64_t j = 0; j < 16; ++j) {
      EXPECT_EQ(ids[b][j], order[j].item<int64_t>()) << b << " " << j;
      EXPECT_EQ(sc[b][j], many[b][order[j]].item<float>());
    }
  }
}

TEST(Msa, Msa4BLayoutCheckpointEndToEnd) {
  auto cfg = msa_config("2,3", 4, 4);
  cfg.torch_dtype = "bfloat16";
  auto base = Qwen3Model::random_init(cfg, 17);
  fs::path dir = fs::temp_directory_path() / ("msabench-msa4b-" + std::to_string(::getpid()));
  base.save(dir.string());
  {
    SafetensorsFile f((dir / "model.safetensors").string());
    EXPECT_TRUE(f.contains("model.layers.2.self_attn.router_q_proj.0.weight"));
    EXPECT_TRUE(f.contains("model.layers.3.self_attn.router_k_proj.0.weight"));
    EXPECT_FALSE(f.contains("model.layers.1.self_attn.router_q_proj.0.weight"));
    EXPECT_FALSE(f.contains("lm_head.weight"));  // tied, as in MSA-4B
    EXPECT_EQ(f.get("model.embed_tokens.weight").dtype, DType::BF16);
  }
  auto m = MsaModel::load(dir.string());
  EXPECT_EQ(m.options().query_position_start, 19);
  EXPECT_EQ(m.options().similarity, RoutingSimilarity::ScaledDot);
  auto docs = random_docs(1000, 6, 30, 5, cfg.vocab_size);
  int64_t last_progress = 0;
  auto bank = m.encode_memory(docs, {1, 2, 3}, [&](int64_t done) { last_progress = done; });
  EXPECT_EQ(last_progress, 1000);
  EXPECT_EQ(bank.num_docs(), 1000);
  int64_t expect_chunks = 0;
  for (const auto& d : docs) expect_chunks += (static_cast<int64_t>(d.size()) + 3) / 4;
  EXPECT_EQ(bank.num_chunks(), expect_chunks);
  MsaCache cache;
  std::vector<LayerRouting> routing;
  std::vector<PromptTokens> prompts = {prompt_of({5, 6, 7, 8, 9, 10}, 4), prompt_of({20, 21, 22}, 2)};
  auto logits = m.prefill(bank, prompts, cache, &routing);
  ASSERT_EQ(routing.size(), 2u);
  for (const auto& r : routing)
    for (const auto& row : r.doc_ids) {
      EXPECT_EQ(row.size(), 16u);
      for (auto id : row) EXPECT_LT(id, 1000);
    }
  // Stage 3: decoding a non-routing token equals a prefill of the extended prompt.
  auto next = logits.argmax(-1, true);
  auto step = m.decode_step(next, cache);
  auto ext = prompts;
  for (int64_t b = 0; b < 2; ++b) {
    ext[b].ids.push_back(next[b][0].item<int64_t>());
    ext[b].roles.push_back(-1);
  }
  MsaCache cache2;
  auto again = m.prefill(bank, ext, cache2);
  EXPECT_LT((step - again).abs().max().item<double>(), 1e-4);
  fs::remove_all(dir);
}

TEST(Msa, RejectsNonMsaCheckpoints) {
  ModelConfig c = msa_config("0", 2, 1);
  c.model_type = "qwen3";
  c.msa.reset();
  auto base = Qwen3Model::random_init(c, 1);
  fs::path dir = fs::temp_directory_path() / ("msabench-notmsa-" + std::to_string(::getpid()));
  base.save(dir.string());
  try {
    MsaModel::load(dir.string());
    FAIL() << "a qwen3 checkpoint was accepted as MSA";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an MSA checkpoint"), std::string::npos);
  }
  fs::remove_all(dir);
}
