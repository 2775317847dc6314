// The LibTorch Qwen3 engine against an independent naive reference written with plain loops.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/model/qwen3.h"
#include "core/model/safetensors.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {

ModelConfig tiny_config(bool tied, int64_t head_dim) {
  ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 80;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = head_dim;  // != hidden/heads on purpose in one config (Qwen3-4B: 32*128 != 2560)
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000;
  c.tie_word_embeddings = tied;
  c.torch_dtype = "float32";
  return c;
}

using Mat = std::vector<std::vector<double>>;

Mat to_mat(const torch::Tensor& t) {
  auto f = t.to(torch::kFloat64).contiguous();
  Mat m(f.size(0), std::vector<double>(f.size(1)));
  auto a = f.accessor<double, 2>();
  for (int64_t i = 0; i < f.size(0); ++i)
    for (int64_t j = 0; j < f.size(1); ++j) m[i][j] = a[i][j];
  return m;
}
std::vector<double> to_vec(const torch::Tensor& t) {
  auto f = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(f.data_ptr<double>(), f.data_ptr<double>() + f.numel());
}
std::vector<double> matvec(const Mat& w, const std::vector<double>& x) {  // w [out, in]
  std::vector<double> y(w.size(), 0.0);
  for (size_t o = 0; o < w.size(); ++o)
    for (size_t i = 0; i < x.size(); ++i) y[o] += w[o][i] * x[i];
  return y;
}
std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<double>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  double r = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w[i];
  return y;
}
void rope_inplace(double* v, int64_t D, int64_t pos, double theta) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < half; ++i) {
    double ang = pos * std::pow(theta, -2.0 * i / D);
    double c = std::cos(ang), s = std::sin(ang);
    double a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

// Full causal forward of one sequence, positions 0..L-1. Returns logits [L][V].
Mat naive_forward(const Qwen3Model& m, const std::vector<int64_t>& ids) {
  const auto& c = m.config();
  const int64_t L = ids.size(), E = c.hidden_size, H = c.num_attention_heads, Hk = c.num_key_value_heads,
                D = c.head_dim;
  Mat emb = to_mat(m.embed_tokens);
  Mat h(L);
  for (int64_t t = 0; t < L; ++t) h[t] = emb[ids[t]];
  for (const auto& layer : m.layers) {
    Mat wq = to_mat(layer.q_proj), wk = to_mat(layer.k_proj), wv = to_mat(layer.v_proj), wo = to_mat(layer.o_proj);
    Mat wg = to_mat(layer.gate_proj), wu = to_mat(layer.up_proj), wd = to_mat(layer.down_proj);
    auto in_n = to_vec(layer.input_norm), post_n = to_vec(layer.post_norm);
    auto qn = to_vec(layer.q_norm), kn = to_vec(layer.k_norm);
    Mat Q(L), K(L), V(L);
    for (int64_t t = 0; t < L; ++t) {
      auto x = rmsnorm(h[t], in_n, c.rms_norm_eps);
      Q[t] = matvec(wq, x);
      K[t] = matvec(wk, x);
      V[t] = matvec(wv, x);
      for (int64_t hh = 0; hh < H; ++hh) {
        std::vector<double> seg(Q[t].begin() + hh * D, Q[t].begin() + (hh + 1) * D);
        seg = rmsnorm(seg, qn, c.rms_norm_eps);
        rope_inplace(seg.data(), D, t, c.rope_theta);
        std::copy(seg.begin(), seg.end(), Q[t].begin() + hh * D);
      }
      for (int64_t hh = 0; hh < Hk; ++hh) {
        std::vector<double> seg(K[t].begin() + hh * D, K[t].begin() + (hh + 1) * D);
        seg = rmsnorm(seg, kn, c.rms_norm_eps);
        rope_inplace(seg.data(), D, t, c.rope_theta);
        std::copy(seg.begin(), seg.end(), K[t].begin() + hh * D);
      }
    }
    for (int64_t t = 0; t < L; ++t) {
      std::vector<double> attn(H * D, 0.0);
      for (int64_t hh = 0; hh < H; ++hh) {
        const int64_t kvh = hh / (H / Hk);
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < D; ++i) d += Q[t][hh * D + i] * K[j][kvh * D + i];
          s[j] = d / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < D; ++i) attn[hh * D + i] += s[j] / z * V[j][kvh * D + i];
      }
      auto o = matvec(wo, attn);
      for (int64_t i = 0; i < E; ++i) h[t][i] += o[i];
      auto y = rmsnorm(h[t], post_n, c.rms_norm_eps);
      auto g = matvec(wg, y), u = matvec(wu, y);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      auto dn = matvec(wd, g);
      for (int64_t i = 0; i < E; ++i) h[t][i] += dn[i];
    }
  }
  Mat head = to_mat(m.lm_head);
  auto fn = to_vec(m.final_norm);
  Mat logits(L);
  for (int64_t t = 0; t < L; ++t) logits[t] = matvec(head, rmsnorm(h[t], fn, c.rms_norm_eps));
  return logits;
}

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kInt64).unsqueeze(0);
}
torch::Tensor pos_tensor(int64_t from, int64_t n) { return torch::arange(from, from + n, torch::kInt64).unsqueeze(0); }

const std::vector<int64_t> kPrompt = {3, 17, 42, 5, 96, 0, 33, 33, 8, 61, 12, 77};

}  // namespace

TEST(Qwen3, ForwardMatchesNaiveReferenceFp32) {
  for (auto [tied, hd] : {std::pair<bool, int64_t>{false, 12}, {true, 16}}) {
    auto m = Qwen3Model::random_init(tiny_config(tied, hd), 1234);
    auto got = m.forward(ids_tensor(kPrompt), pos_tensor(0, kPrompt.size()))[0];
    Mat want = naive_forward(m, kPrompt);
    double max_err = 0;
    for (size_t t = 0; t < kPrompt.size(); ++t)
      for (int64_t v = 0; v < m.config().vocab_size; ++v)
        max_err = std::max(max_err, std::abs(got[t][v].item<double>() - want[t][v]));
    EXPECT_LT(max_err, 1e-4) << "tied=" << tied << " head_dim=" << hd;
  }
}

TEST(Qwen3, KvCacheDecodeEqualsFullRecompute) {
  auto m = Qwen3Model::random_init(tiny_config(false, 12), 7);
  auto full = m.forward(ids_tensor(kPrompt), pos_tensor(0, kPrompt.size()))[0];
  KVCache cache;
  const int64_t pre = 7;
  std::vector<int64_t> head(kPrompt.begin(), kPrompt.begin() + pre);
  auto out = m.forward(ids_tensor(head), pos_tensor(0, pre), &cache)[0];
  double max_err = (out - full.narrow(0, 0, pre)).abs().max().item<double>();
  for (size_t t = pre; t < kPrompt.size(); ++t) {
    auto step = m.forward(ids_tensor({kPrompt[t]}), pos_tensor(t, 1), &cache)[0][0];
    max_err = std::max(max_err, (step - full[t]).abs().max().item<double>());
  }
  EXPECT_EQ(cache.length, static_cast<int64_t>(kPrompt.size()));
  EXPECT_LT(max_err, 1e-5);
}

TEST(Qwen3, LeftPaddedBatchEqualsSingleSequences) {
  auto m = Qwen3Model::random_init(tiny_config(true, 12), 9);
  SamplingOptions opt;
  opt.max_new_tokens = 6;
  std::vector<int64_t> a(kPrompt.begin(), kPrompt.begin() + 5), b = kPrompt;
  auto batch = generate(m, {a, b}, opt);
  auto solo_a = generate(m, {a}, opt), solo_b = generate(m, {b}, opt);
  EXPECT_EQ(batch.tokens[0], solo_a.tokens[0]);
  EXPECT_EQ(batch.tokens[1], solo_b.tokens[0]);
  // greedy equals a manual argmax loop without cache
  std::vector<int64_t> seq = a, manual;
  for (int i = 0; i < 6; ++i) {
    auto logits = m.forward(ids_tensor(seq), pos_tensor(0, seq.size()))[0][seq.size() - 1];
    int64_t next = logits.argmax().item<int64_t>();
    manual.push_back(next);
    seq.push_back(next);
  }
  EXPECT_EQ(solo_a.tokens[0], manual);
}

TEST(Qwen3, SamplingSeedsStopsAndTopP) {
  auto m = Qwen3Model::random_init(tiny_config(false, 12), 11);
  SamplingOptions opt;
  opt.max_new_tokens = 12;
  opt.temperature = 1.5;
  opt.seed = 5;
  auto r1 = generate(m, {kPrompt}, opt), r2 = generate(m, {kPrompt}, opt);
  EXPECT_EQ(r1.tokens, r2.tokens);
  opt.seed = 6;
  auto r3 = generate(m, {kPrompt}, opt);
  EXPECT_NE(r1.tokens, r3.tokens);
  // top_p -> 0 keeps only the most likely token: equals greedy
  opt.top_p = 1e-9;
  auto nucleus = generate(m, {kPrompt}, opt);
  SamplingOptions greedy;
  greedy.max_new_tokens = 12;
  EXPECT_EQ(nucleus.tokens, generate(m, {kPrompt}, greedy).tokens);
  // stop token: generation ends before emitting it
  auto g = generate(m, {kPrompt}, greedy).tokens[0];
  greedy.stop_token_ids = {g[3]};
  auto stopped = generate(m, {kPrompt}, greedy);
  EXPECT_EQ(stopped.finish_reason[0], "stop_token");
  EXPECT_LE(stopped.tokens[0].size(), 3u);
  // stop callback
  greedy.stop_token_ids.clear();
  auto cb = generate(m, {kPrompt}, greedy, [](size_t, const std::vector<int64_t>& t) { return t.size() == 2; });
  EXPECT_EQ(cb.tokens[0].size(), 2u);
  EXPECT_EQ(cb.finish_reason[0], "stop_check");
}

TEST(Qwen3, Bf16WithinTolerance) {
  auto m32 = Qwen3Model::random_init(tiny_config(false, 12), 21);
  fs::path dir = fs::temp_directory_path() / ("msabench-q3bf16-" + std::to_string(::getpid()));
  m32.save(dir.string());
  auto mbf = Qwen3Model::load(dir.string(), torch::kBFloat16);
  auto a = m32.forward(ids_tensor(kPrompt), pos_tensor(0, kPrompt.size()));
  auto b = mbf.forward(ids_tensor(kPrompt), pos_tensor(0, kPrompt.size()));
  // bf16 keeps 8 mantissa bits: logits of this model (|logit| < ~1) agree to a few 1e-2.
  double err = (a - b).abs().max().item<double>();
  EXPECT_LT(err, 3e-2);
  EXPECT_GT(err, 0.0);  // it really ran in bf16
  fs::remove_all(dir);
}

TEST(Qwen3, SaveLoadRoundTripAndStrictLoading) {
  auto m = Qwen3Model::random_init(tiny_config(false, 12), 31);
  fs::path dir = fs::temp_directory_path() / ("msabench-q3rt-" + std::to_string(::getpid()));
  m.save(dir.string());
  auto back = Qwen3Model::load(dir.string());
  auto a = m.forward(ids_tensor(kPrompt), pos_tensor(0, kPrompt.size()));
  auto b = back.forward(ids_tensor(kPrompt), pos_tensor(0, kPrompt.size()));
  EXPECT_EQ((a - b).abs().max().item<double>(), 0.0);
  // a checkpoint missing one tensor, and one with an extra tensor
  SafetensorsFile f((dir / "model.safetensors").string());
  std::vector<TensorToWrite> keep;
  for (const auto& n : f.names()) {
    if (n == "model.layers.1.mlp.up_proj.weight") continue;
    const auto& v = f.get(n);
    keep.push_back({n, v.dtype, v.shape, v.data, v.bytes});
  }
  fs::path bad = dir.string() + "-bad";
  fs::create_directories(bad);
  fs::copy_file(dir / "config.json", bad / "config.json");
  write_safetensors((bad / "model.safetensors").string(), keep);
  try {
    Qwen3Model::load(bad.string());
    FAIL() << "missing tensor accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
  }
  float extra = 1;
  keep.push_back({"model.layers.1.mlp.up_proj.weight", DType::F32, {1}, &extra, 4});
  write_safetensors((bad / "model.safetensors").string(), keep);
  try {
    Qwen3Model::load(bad.string());
    FAIL() << "mis-shaped tensor accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [1]"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
  fs::remove_all(bad);
}
