// Memory-size scaling (the paper's MS MARCO 16K -> 100M curve): from one corpus and its
// queries, build memory banks of given token sizes that always hold every gold document plus
// deterministic distractors. Distractors are the corpus's other documents in a seeded hash
// order; each bank takes the longest prefix of that order that fits, so a smaller bank is a
// subset of every larger one. When the corpus runs out, banks are padded with documents cut
// from a stated source (the essay or noise haystack), also in a fixed order.
// Streaming: the corpus is read twice (select, then write) and never held in RAM; per
// distractor only a hash, a token count and one byte are kept.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/tokenizer.h"

namespace msabench {

// A re-readable sequence of documents: calling it visits every document in a fixed order.
using DocumentVisitor = std::function<void(const Document&)>;
using DocumentStream = std::function<void(const DocumentVisitor&)>;

DocumentStream documents_of(const Dataset& ds);  // every corpus's documents, in order (ds must outlive it)
DocumentStream documents_of_jsonl(const std::string& corpus_jsonl);          // {"id","text"} lines
DocumentStream documents_of_msmarco_tsv(const std::string& collection_tsv);  // pid \t passage

struct ScalingConfig {
  std::vector<int64_t> sizes;  // bank sizes in tokens (e.g. 16K ... 100M)
  uint64_t seed = 42;
  std::string pad = "essay";     // essay | noise | none (none: a too-small corpus is an Error)
  int64_t pad_doc_tokens = 512;  // size of padding documents (cut at sentence boundaries)
  size_t max_queries = 0;        // 0: all queries; else a seeded sample of this many
};

struct ScalingBank {
  int64_t target_tokens = 0, tokens = 0;
  int64_t documents = 0, gold_documents = 0, pad_documents = 0, pad_tokens = 0;
  std::string dir;
};

// Writes out_dir/<size>/ (corpus.jsonl, queries.jsonl, meta.json; see dataset_writer.h) for each
// size. Errors: a gold id missing from the corpus, gold documents larger than a bank, a corpus
// too small with pad "none".
std::vector<ScalingBank> build_memory_banks(const std::string& name, const std::vector<Query>& queries,
                                            const DocumentStream& docs, const TokenCounter& counter,
                                            const ScalingConfig& cfg, const std::string& out_dir);

}  // namespace msabench
