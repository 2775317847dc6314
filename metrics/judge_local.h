// A judge ChatModel on the suite's own engine: a local Qwen3 (instruct) checkpoint answers the
// rubric prompt greedily. Requests are serialised (one model, no batching).
#pragma once
#include <memory>
#include <string>

#include "metrics/judge.h"

namespace msabench {
std::unique_ptr<ChatModel> make_local_chat_model(const std::string& model_dir, int max_tokens = 16);
}
