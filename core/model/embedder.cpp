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
    // Batch by length (left padding, so the last column is every row's last token).
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() < ids[b].size(); });
    std::vector<float> out(static_cast<size_t>(n) * dim());
    auto& m = const_cast<Qwen3Model&>(model_);
    for (int64_t s = 0; s < n; s += opt_.batch) {
      const int64_t B = std::min<int64_t>(opt_.batch, n - s);
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
      auto e = m.rms_norm(h, m.final_norm).to(torch::kFloat32);
      e = e / e.norm(2, -1, true).clamp_min(1e-12);
      e = e.contiguous();
      for (int64_t b = 0; b < B; ++b)
        std::copy(e[b].data_ptr<float>(), e[b].data_ptr<float>() + dim(), out.begin() + order[s + b] * dim());
    }
    return out;
  }

 private:
  Qwen3Model model_;
  EmbedderOptions opt_;
  std::string name_;
  std::unique_ptr<TextTokenizer> tok_;
  std::optional<int32_t> eos_;
};

}  // namespace

std::unique_ptr<Embedder> load_qwen3_embedder(const std::string& dir, const EmbedderOptions& opt) {
  return std::make_unique<Qwen3Embedder>(dir, opt);
}

}  // namespace msabench
