// `msabench encode` and `msabench bank info`: build (or resume) a persistent memory bank for a
// JSONL corpus with an MSA checkpoint, and describe one. LibTorch stays out of the CLI TU.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace msabench {
// Returns a summary (documents, chunks, tokens, seconds, tokens/s, bytes).
nlohmann::json encode_corpus_bank(const std::string& model_dir, const std::string& corpus_jsonl, const std::string& out,
                                  int64_t segment_docs, bool quiet);
nlohmann::json describe_bank(const std::string& dir, bool verify);
}  // namespace msabench
