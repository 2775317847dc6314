// Haystack sources for NIAH: an endless, deterministic stream of sentences.
//  noise: the RULER filler ("The grass is green. ...") repeated.
//  needle: distractor needles with random keys and values (RULER niah_multikey_2/3).
//  essay: prose from Ambrose Bierce's "The Devil's Dictionary" (1911, public domain), read from
//         Debian's dict-devil package (/usr/share/dictd/devil.dict.dz), cycled when exhausted.
//         RULER uses Paul Graham essays, which are not redistributable; see datasets/README.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace msabench {

class SentenceSource {
 public:
  virtual ~SentenceSource() = default;
  virtual std::string name() const = 0;
  virtual const std::string& next() = 0;  // never ends; cycles
};

// Loads and sentence-splits the essay corpus once per process (cached).
// Path override: env MSABENCH_ESSAY_FILE (plain text or gzip). Throws Error if missing.
const std::vector<std::string>& essay_sentences();
std::string essay_source_path();

std::unique_ptr<SentenceSource> make_sentence_source(const std::string& kind, size_t start_offset);

// RULER's "needle" haystack: an endless stream of distractor needles
// "One of the special magic {value_type} for {key} is: {value}." with random keys
// (words | uuids) and values (numbers | uuids), deterministic in seed. Keys in `exclude`
// are never emitted.
std::unique_ptr<SentenceSource> make_needle_source(const std::string& key_type, const std::string& value_type,
                                                   uint64_t seed, std::set<std::string> exclude);

// Splits prose into sentences at . ! ? followed by whitespace and an upper-case letter,
// after collapsing whitespace. Exposed for tests.
std::vector<std::string> split_sentences(const std::string& text);

}  // namespace msabench
