// "full" backend: the plain Qwen3 model with the whole memory in its context (the paper's
// full-context backbone rows). Refuses memories longer than its context limit.
#pragma once
#include "core/backend.h"

namespace msabench {
void register_full_backend(BackendRegistry& registry);
}
