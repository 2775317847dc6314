#include "core/model/embedder.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
#include "core/model/qwen3.h"
#include "core/tokenizer/text_tokenizer.h"

namespace fs = std::filesystem;

namespace msabench {

namespace {

// Last layer output (before the final norm) at each sequence's last token: [n, hidden]. Batched by
// length with left padding, so the last column is every row's last token.
torch::Tensor last_token_hidden(const Qwen3Model& model, const std::vector<std::vector<int64_t>>& ids, int batch) {
  torch::NoGradGuard ng;
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() < ids[b].size(); });
  auto out = torch::empty({n, model.config().hidden_size}, torch::TensorOptions().dtype(model.dtype()));
  auto& m = const_cast<Qwen3Model&>(model);
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t B = std::min<int64_t>(batch, n - s);
    int64_t L = 0;
    for (int64_t b = 0; b < B; ++b) L = std::max<int64_t>(L, ids[order[s + b]].size());
    auto t = torch::zeros({B, L}, torch::kInt64);
    auto valid = torch::zeros({B, L}, torch::kBool);
    for (int64_t b = 0; b < B; ++b) {
      const auto& v = ids[order[s + b]];
      const int64_t off = L - static_cast<int64_t>(v.size());
      t[b].narrow(0, off, v.size()).copy_(torch::tensor(v, torch::kInt64));
      valid[b].narrow(0, off, v.size()).fill_(true);
    }
    auto pos = (valid.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
    auto h = m.final_hidden(t, pos, nullptr, valid).select(1, L - 1);
    for (int64_t b = 0; b < B; ++b) out[order[s + b]].copy_(h[b]);
  }
  return out;
}

class Qwen3Embedder : public Embedder {
 public:
  Qwen3Embedder(const std::string& dir, const EmbedderOptions& opt)
      : model_(Qwen3Model::load(dir)), opt_(opt), name_("qwen3-last-token:" + fs::path(dir).filename().string()) {
    tok_ = load_tokenizer(model_tokenizer_spec(dir));
    eos_ = tok_->token_id("<|endoftext|>");
    if (opt_.max_length < 2 || opt_.batch < 1) throw Error("embedder: max_length must be >= 2 and batch >= 1");
  }
  std::string name() const override { return name_; }
  int dim() const override { return static_cast<int>(model_.config().hidden_size); }

  std::vector<float> embed(const std::vector<std::string>& texts, bool is_query) const override {
    torch::NoGradGuard ng;
    const int64_t n = static_cast<int64_t>(texts.size());
    std::vector<std::vector<int64_t>> ids(n);
    for (int64_t i = 0; i < n; ++i) {
      const std::string t = is_query ? "Instruct: " + opt_.task + "\nQuery:" + texts[i] : texts[i];
      auto v = tok_->encode(t, false);
      if (static_cast<int>(v.size()) > opt_.max_length - 1) v.resize(opt_.max_length - 1);
      ids[i].assign(v.begin(), v.end());
      if (eos_) ids[i].push_back(*eos_);
      if (ids[i].empty()) ids[i].push_back(0);
    }
    auto h = last_token_hidden(model_, ids, opt_.batch);
    auto e = model_.rms_norm(h, model_.final_norm).to(torch::kFloat32);
    e = (e / e.norm(2, -1, true).clamp_min(1e-12)).contiguous();
    return std::vector<float>(e.data_ptr<float>(), e.data_ptr<float>() + e.numel());
  }

 private:
  Qwen3Model model_;
  EmbedderOptions opt_;
  std::string name_;
  std::unique_ptr<TextTokenizer> tok_;
  std::optional<int32_t> eos_;
};

class Qwen3Reranker : public Reranker {
 public:
  Qwen3Reranker(const std::string& dir, const RerankerOptions& opt)
      : model_(Qwen3Model::load(dir)), opt_(opt), name_("qwen3-yes-no:" + fs::path(dir).filename().string()) {
    tok_ = load_tokenizer(model_tokenizer_spec(dir));
    if (opt_.max_length < 64 || opt_.batch < 1) throw Error("reranker: max_length must be >= 64 and batch >= 1");
    auto first = [&](const char* word) {
      auto v = tok_->encode(word, false);
      if (v.empty()) throw Error(std::string("reranker: the tokenizer cannot encode '") + word + "'");
      return static_cast<int64_t>(v[0]);
    };
    yes_ = first("yes");
    no_ = first("no");
    if (yes_ == no_) throw Error("reranker: 'yes' and 'no' start with the same token in this tokenizer");
    prefix_ = to64(tok_->encode(
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
        "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n",
        true));
    suffix_ = to64(tok_->encode("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", true));
  }
  std::string name() const override { return name_; }

  std::vector<double> score(const std::string& query, const std::vector<std::string>& docs) const override {
    torch::NoGradGuard ng;
    const auto head = to64(tok_->encode("<Instruct>: " + opt_.instruction + "\n<Query>: " + query + "\n<Document>: ", true));
    const int64_t fixed = static_cast<int64_t>(prefix_.size() + head.size() + suffix_.size());
    if (fixed >= opt_.max_length) throw Error("reranker: the query alone exceeds max_length " + std::to_string(opt_.max_length));
    std::vector<std::vector<int64_t>> ids;
    for (const auto& d : docs) {
      auto body = to64(tok_->encode(d, true));
      if (static_cast<int64_t>(body.size()) > opt_.max_length - fixed) body.resize(opt_.max_length - fixed);
      std::vector<int64_t> v = prefix_;
      v.insert(v.end(), head.begin(), head.end());
      v.insert(v.end(), body.begin(), body.end());
      v.insert(v.end(), suffix_.begin(), suffix_.end());
      ids.push_back(std::move(v));
    }
    std::vector<double> out;
    if (ids.empty()) return out;
    auto logits = model_.hidden_to_logits(last_token_hidden(model_, ids, opt_.batch));
    auto yn = torch::stack({logits.select(1, yes_), logits.select(1, no_)}, 1).log_softmax(1).select(1, 0).exp();
    for (int64_t i = 0; i < yn.size(0); ++i) out.push_back(yn[i].item<double>());
    return out;
  }

 private:
  static std::vector<int64_t> to64(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }
  Qwen3Model model_;
  RerankerOptions opt_;
  std::string name_;
  std::unique_ptr<TextTokenizer> tok_;
  int64_t yes_ = 0, no_ = 0;
  std::vector<int64_t> prefix_, suffix_;
};

}  // namespace

std::unique_ptr<Reranker> load_qwen3_reranker(const std::string& dir, const RerankerOptions& opt) {
  if (!fs::exists(fs::path(dir) / "config.json")) throw Error("reranker: '" + dir + "' has no config.json");
  return std::make_unique<Qwen3Reranker>(dir, opt);
}

std::unique_ptr<Embedder> load_qwen3_embedder(const std::string& dir, const EmbedderOptions& opt) {
  return std::make_unique<Qwen3Embedder>(dir, opt);
}

}  // namespace msabench
