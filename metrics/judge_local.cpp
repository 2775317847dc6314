#include "metrics/judge_local.h"

#include <filesystem>
#include <mutex>

#include "core/io.h"
#include "core/model/chat_template.h"
#include "core/model/qwen3.h"
#include "core/tokenizer/text_tokenizer.h"

namespace fs = std::filesystem;

namespace msabench {

namespace {

class LocalChatModel : public ChatModel {
 public:
  LocalChatModel(const std::string& dir, int max_tokens)
      : dir_(dir), model_(Qwen3Model::load(dir)), max_tokens_(max_tokens) {
    tok_ = load_tokenizer(model_tokenizer_spec(dir));
    for (const char* s : {"<|im_end|>", "<|endoftext|>"})
      if (auto id = tok_->token_id(s)) stop_.push_back(*id);
  }
  std::string id() const override { return "local:" + fs::path(dir_).filename().string(); }
  std::string complete(const std::string& prompt) override {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      auto ids32 = tok_->encode(qwen3_chat_prompt(prompt), true);
      std::vector<int64_t> ids(ids32.begin(), ids32.end());
      SamplingOptions opt;
      opt.max_new_tokens = max_tokens_;
      opt.stop_token_ids = stop_;
      auto r = generate(model_, {ids}, opt);
      std::vector<int32_t> out(r.tokens[0].begin(), r.tokens[0].end());
      return tok_->decode(out, true);
    } catch (const std::exception& e) {
      throw JudgeError(id() + ": local judge failed: " + e.what());
    }
  }

 private:
  std::string dir_;
  Qwen3Model model_;
  int max_tokens_;
  std::unique_ptr<TextTokenizer> tok_;
  std::vector<int64_t> stop_;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<ChatModel> make_local_chat_model(const std::string& model_dir, int max_tokens) {
  return std::make_unique<LocalChatModel>(model_dir, max_tokens);
}

}  // namespace msabench
