#include "core/model/generate_cli.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
#include "core/model/chat_template.h"
#include "core/model/qwen3.h"
#include "core/tokenizer/text_tokenizer.h"

namespace fs = std::filesystem;

namespace msabench {

GenerateReport run_generate(const GenerateRequest& req) {
  if (req.max_tokens < 1) throw Error("generate: --max-tokens must be >= 1");
  set_compute_threads(2);
  Qwen3Model model = Qwen3Model::load(req.model_dir);
  auto tok = load_tokenizer(model_tokenizer_spec(req.model_dir));
  auto ids32 = tok->encode(req.raw ? req.prompt : qwen3_chat_prompt(req.prompt), true);
  std::vector<int64_t> ids(ids32.begin(), ids32.end());
  SamplingOptions opt;
  opt.max_new_tokens = req.max_tokens;
  opt.temperature = req.temperature;
  opt.top_p = req.top_p;
  opt.seed = req.seed;
  for (const char* s : {"<|im_end|>", "<|endoftext|>"})
    if (auto id = tok->token_id(s)) opt.stop_token_ids.push_back(*id);
  auto r = generate(model, {ids}, opt);
  GenerateReport rep;
  std::vector<int32_t> out(r.tokens[0].begin(), r.tokens[0].end());
  rep.text = tok->decode(out, false);
  rep.finish_reason = r.finish_reason[0];
  rep.prompt_tokens = r.prompt_tokens;
  rep.generated_tokens = r.generated_tokens;
  rep.prefill_tokens_per_s = r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0;
  rep.decode_tokens_per_s = r.decode_seconds > 0 ? r.generated_tokens / r.decode_seconds : 0;
  return rep;
}

}  // namespace msabench
