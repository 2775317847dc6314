#include "backends/full/full_backend.h"

#include <chrono>
#include <filesystem>

#include "backends/msa/msa_backend.h"
#include "core/error.h"
#include "core/io.h"
#include "core/model/chat_template.h"
#include "core/model/qwen3.h"
#include "core/tokenizer/text_tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

class FullContextBackend : public Backend {
 public:
  explicit FullContextBackend(const BackendSpec& spec) {
    spec.check_known({"model", "max_context", "max_tokens", "threads"});
    dir_ = resolve_model_dir(spec.get_string("model", ""));
    if (!fs::exists(fs::path(dir_) / "config.json")) throw Error("full: model directory '" + dir_ + "' has no config.json");
    set_compute_threads(static_cast<int>(spec.get_int("threads", 2)));
    model_ = std::make_unique<Qwen3Model>(Qwen3Model::load(dir_));
    tok_ = load_tokenizer(model_tokenizer_spec(dir_));
    max_context_ = spec.get_int("max_context", model_->config().max_position_embeddings);
    max_tokens_ = static_cast<int>(spec.get_int("max_tokens", 64));
    if (max_context_ < 16 || max_tokens_ < 1) throw Error("full: max_context must be >= 16 and max_tokens >= 1");
    for (const char* s : {"<|im_end|>", "<|endoftext|>"})
      if (auto id = tok_->token_id(s)) stop_.push_back(*id);
    spec_ = BackendSpec{"full", {{"model", model_label(dir_)}, {"max_context", std::to_string(max_context_)},
                                 {"max_tokens", std::to_string(max_tokens_)}}}
                .to_string();
  }
  std::string spec() const override { return spec_; }
  bool generates_answers() const override { return true; }
  nlohmann::json info() const override { return model_training_info(dir_); }

  IndexStats index(const MemoryCorpus& corpus) override {
    auto t0 = std::chrono::steady_clock::now();
    context_.clear();
    for (size_t i = 0; i < corpus.documents.size(); ++i)
      context_ += "[" + std::to_string(i) + "]. " + corpus.documents[i].text + "\n";
    IndexStats st;
    st.documents = static_cast<int64_t>(corpus.documents.size());
    st.tokens = tok_->count(context_, false);
    if (st.tokens + 256 > max_context_)
      throw Error("full: memory of " + std::to_string(st.tokens) + " tokens does not fit the context limit of " +
                  std::to_string(max_context_) + " tokens (model " + dir_ + "); use smaller sizes or max_context=");
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
  }

  Answer answer(const Query& q, int) override {
    const std::string prompt = qwen3_chat_prompt(context_ + "\n" + q.text);
    auto ids32 = tok_->encode(prompt, true);
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    if (static_cast<int64_t>(ids.size()) + max_tokens_ > max_context_)
      throw Error("full: prompt of " + std::to_string(ids.size()) + " tokens exceeds the context limit");
    SamplingOptions opt;
    opt.max_new_tokens = max_tokens_;
    opt.stop_token_ids = stop_;
    auto r = generate(*model_, {ids}, opt);
    Answer a;
    std::vector<int32_t> out(r.tokens[0].begin(), r.tokens[0].end());
    a.text = tok_->decode(out, true);
    a.stage_seconds = {{"prefill", r.prefill_seconds}, {"decode", r.decode_seconds}};
    a.detail = {{"prompt_tokens", ids.size()}, {"generated_tokens", r.generated_tokens},
                {"finish_reason", r.finish_reason[0]}};
    return a;
  }

 private:
  std::string dir_, spec_, context_;
  std::unique_ptr<Qwen3Model> model_;
  std::unique_ptr<TextTokenizer> tok_;
  int64_t max_context_ = 0;
  int max_tokens_ = 64;
  std::vector<int64_t> stop_;
};

}  // namespace

void register_full_backend(BackendRegistry& registry) {
  registry.add({"full", "plain Qwen3 with every document in its context (full-context baseline)",
                "model=DIR (default: the shipped model's backbone), max_context=config max_position_embeddings, "
                "max_tokens=64, threads=2",
                [](const BackendSpec& s) { return std::make_unique<FullContextBackend>(s); }});
}

}  // namespace msabench
