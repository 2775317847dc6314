// "msa" backend: the MSA model answering with Memory Interleave over a memory bank of the corpus.
#pragma once
#include "core/backend.h"

namespace msabench {
void register_msa_backend(BackendRegistry& registry);
// The model the suite ships and trains itself (backends/msa/msa-small).
std::string default_msa_model_dir();
// "msa-small" (or empty) names the shipped model; anything else is a directory. Results record
// the shipped model as "msa-small" so they do not depend on where the repository was cloned.
std::string resolve_model_dir(const std::string& option);
std::string model_label(const std::string& dir);
// What a model directory holds, for results: {"model", "parameters"} plus, for suite-trained models
// (DIR/trainer_state.json), "trained_steps", "planned_steps" and "training": "partial"|"complete".
nlohmann::json model_training_info(const std::string& dir);
}  // namespace msabench
