// `msabench encode` and `msabench bank info`: build (or resume) a persistent memory bank for a
// JSONL corpus with an MSA checkpoint, and describe one. LibTorch stays out of the CLI TU.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace msabench {
// Returns a summary (documents, chunks, tokens, seconds, tokens/s, bytes, bytes by tier). Budgets
// ("8G", "512M"; "0" = none) are checked against the bank's tiers before encoding (bank_store.h plan_tiers).
nlohmann::json encode_corpus_bank(const std::string& model_dir, const std::string& corpus_jsonl, const std::string& out,
                                  int64_t segment_docs, bool quiet, const std::string& ram_budget = "0",
                                  const std::string& gpu_budget = "0");
nlohmann::json describe_bank(const std::string& dir, bool verify);
}  // namespace msabench
