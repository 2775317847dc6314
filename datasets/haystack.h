// Haystack sources for NIAH: an endless, deterministic stream of sentences.
//  noise: the RULER filler ("The grass is green. ...") repeated.
//  essay: prose from Ambrose Bierce's "The Devil's Dictionary" (1911, public domain), read from
//         Debian's dict-devil package (/usr/share/dictd/devil.dict.dz), cycled when exhausted.
//         RULER uses Paul Graham essays, which are not redistributable; see datasets/README.md.
#pragma once
#include <cstddef>
#include <memory>
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

// Splits prose into sentences at . ! ? followed by whitespace and an upper-case letter,
// after collapsing whitespace. Exposed for tests.
std::vector<std::string> split_sentences(const std::string& text);

}  // namespace msabench
