// RULER-style needle-in-a-haystack generator that builds a *memory corpus* per sample:
// the haystack (plus needles) is split at sentence boundaries into documents of about
// `doc_tokens` tokens, so each query has gold document ids as well as gold values.
// Semantics follow RULER's niah.py (see ../shared/reference/anchors.md section 1).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/tokenizer.h"

namespace msabench {

struct NiahTask {
  std::string name;
  std::string haystack;    // noise | essay | needle
  std::string key_type;    // words | uuids
  std::string value_type;  // numbers | uuids
  int num_keys = 1;        // needles with distinct keys (distractors included)
  int num_values = 1;      // values per key
  int num_queries = 1;     // keys asked in the query
};

// RULER's 8 NIAH subtasks. haystack "needle" (niah_multikey_2/3): every haystack sentence is a
// distractor needle with a fresh random key and value of the task's key/value types.
const std::vector<NiahTask>& niah_tasks();
const NiahTask& find_niah_task(const std::string& name);  // throws Error listing known names

struct NiahConfig {
  std::string task = "niah_single_1";
  int64_t target_tokens = 16384;  // memory size per sample, counted by the TokenCounter
  int samples = 10;
  uint64_t seed = 42;
  int64_t doc_tokens = 512;       // document size (documents end at sentence boundaries)
  // Depths (0..100 %) for the first queried needle, cycled over samples. Empty: every needle's
  // depth is drawn without replacement from RULER's 40-point grid round(linspace(0,100,40)).
  std::vector<double> depths;
};

class NiahGenerator {
 public:
  NiahGenerator(NiahConfig cfg, const TokenCounter& counter);
  // Deterministic: depends only on (seed, task, target_tokens, doc_tokens, depths, index).
  MemoryCorpus sample(int index) const;
  // Same sample, streamed: each document goes to on_document as soon as it is complete and is
  // not kept; the returned corpus has id, tokens and queries but no documents. RAM stays
  // bounded by one document plus the needles, whatever target_tokens is.
  MemoryCorpus generate(int index, const std::function<void(Document&&)>& on_document) const;
  Dataset all() const;  // every sample, in order
  nlohmann::json describe() const;  // generator parameters for dataset/result metadata
  const NiahConfig& config() const { return cfg_; }
  const TokenCounter& counter() const { return counter_; }
  std::string corpus_id(int index) const;  // "<task>-<size>-s<index>", the group of sample index

 private:
  NiahConfig cfg_;
  const NiahTask& task_;
  const TokenCounter& counter_;
};

// Key/value generators (exposed for tests).
std::string niah_word_key(uint64_t r);      // adjective-noun
// RULER's needle "One of the special magic VALUES for KEY is: VALUE." (value_type plural, e.g. "numbers").
std::string niah_needle_sentence(const std::string& value_type, const std::string& key, const std::string& value);
// RULER's single-value question "What is the special magic VALUE for KEY mentioned in the provided text?"
// (value_type singular, e.g. "number").
std::string niah_single_question(const std::string& value_type, const std::string& key);
std::string niah_uuid(uint64_t hi, uint64_t lo);
// A UUID from two draws in a fixed order (argument evaluation order is unspecified in C++;
// this is the order GCC used when the committed results were generated: low half first).
template <class Rng>
std::string niah_uuid_from(Rng& rng) {
  const uint64_t lo = rng();
  const uint64_t hi = rng();
  return niah_uuid(hi, lo);
}

}  // namespace msabench
