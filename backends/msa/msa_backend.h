// "msa" backend: the MSA model answering with Memory Interleave over a memory bank of the corpus.
#pragma once
#include "core/backend.h"

namespace msabench {
void register_msa_backend(BackendRegistry& registry);
// The model the suite ships and trains itself (backends/msa/msa-small).
std::string default_msa_model_dir();
}  // namespace msabench
