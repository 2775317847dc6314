// Synthetic pointer-chain two-hop QA over a memory ("synth_pointer"). The question is NIAH's
// ("What is the special magic word for KEY mentioned in the provided text?"); the document that
// matches it holds no word, only where it is: "The special magic word for KEY is kept in document
// [j] under code NNNNNNN." Document j (by its memory id, the corpus position the interleave
// protocol names documents by) holds "The word kept in this document is: WORD.", and so does
// about every other document, each with its own word (decoys). Nothing in the question tells the
// target from the decoys, so one retrieval round finds it only by chance: the model has to read
// the first document and name the second, which is what Memory Interleave's later rounds are for.
// The code makes the first document a needle in NIAH's sense (a 7-digit number, which no other
// document has), so the first hop is the NIAH task, and it is the wrong answer a one-hop reader gives.
// One chain per memory (a second chain would make the first hop a multikey lookup). The training
// data's "pointer" task uses the same sentence forms (datasets/msa_training.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/dataset.h"
#include "core/tokenizer.h"

namespace msabench {

inline constexpr const char* kPointerTask = "synth_pointer";

// Sentence forms. tag: the second document's "[id]" (interleave::document_tag of its corpus position).
std::string pointer_fact(const std::string& key, const std::string& code, const std::string& tag);
std::string pointer_value_fact(const std::string& word);
std::string pointer_question(const std::string& key);

struct PointerChainConfig {
  int64_t target_tokens = 16384;  // memory size per sample (TokenCounter units)
  int samples = 10;
  uint64_t seed = 42;
  int64_t doc_tokens = 512;
  std::string haystack = "essay";  // essay | noise
};

class PointerChainGenerator {
 public:
  PointerChainGenerator(PointerChainConfig cfg, const TokenCounter& counter);
  MemoryCorpus sample(int index) const;  // deterministic in (seed, target_tokens, index)
  MemoryCorpus generate(int index, const std::function<void(Document&&)>& on_document) const;
  nlohmann::json describe() const;

 private:
  PointerChainConfig cfg_;
  const TokenCounter& counter_;
};

}  // namespace msabench
