// Synthetic two-hop QA over a memory ("synth_twohop"): for each query two facts are hidden in the
// haystack, "<A> works with <B>." and "<B> lives in <city>.", and the question asks "In which city
// does the colleague of <A> live?". Answering needs both documents, and the second can only be
// found after reading the first (the name B is not in the question): the case Memory Interleave
// exists for. Several queries share one memory, so batching applies. The same sentence forms are
// used by the training data (datasets/msa_training.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/dataset.h"
#include "core/tokenizer.h"

namespace msabench {

inline constexpr const char* kTwoHopTask = "synth_twohop";

// Sentence forms and name draws (r: a random number).
std::string twohop_person(uint64_t r);
std::string twohop_city(uint64_t r);
std::string twohop_colleague_fact(const std::string& a, const std::string& b);
std::string twohop_city_fact(const std::string& b, const std::string& city);
std::string twohop_question(const std::string& a);

struct TwoHopConfig {
  int64_t target_tokens = 16384;  // memory size per sample (TokenCounter units)
  int samples = 10;
  int queries = 8;                // questions (fact pairs) per memory
  uint64_t seed = 42;
  int64_t doc_tokens = 512;
  std::string haystack = "essay";  // essay | noise
};

class TwoHopGenerator {
 public:
  TwoHopGenerator(TwoHopConfig cfg, const TokenCounter& counter);
  MemoryCorpus sample(int index) const;  // deterministic in (seed, target_tokens, index)
  MemoryCorpus generate(int index, const std::function<void(Document&&)>& on_document) const;
  nlohmann::json describe() const;

 private:
  TwoHopConfig cfg_;
  const TokenCounter& counter_;
};

}  // namespace msabench
