// Okapi BM25 over a Lucene++ index. Lucene++ (a port of Lucene 3.0) only scores classic
// TF-IDF, and its 1-byte length norms are lossy, so Lucene++ stores the postings, the document
// ids and the exact analyzer token counts, and the scoring here reads postings via TermDocs:
//   score(d, q) = sum over query tokens t of idf(t) * tf*(k1+1) / (tf + k1*(1 - b + b*dl/avgdl))
//   idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))              (Anserini / Lucene 8 idf)
// A term repeated in the query counts once per occurrence (bag-of-words BooleanQuery).
// Ties: higher score first, then earlier document in the corpus.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/dataset.h"

namespace msabench {

struct Bm25Params {
  double k1 = 0.9;
  double b = 0.4;
};

class LuceneBm25Index {
 public:
  // How build() writes: Durable fsyncs every file on commit (an index kept for reuse); Scratch
  // skips the fsyncs (a per-run index deleted afterwards, where they only add disk stalls: up to
  // seconds per commit on the development VM, 35x the indexing time of a 4K memory).
  enum class Write { Durable, Scratch };
  // Builds a fresh index in `dir` (removed first if present). Documents are analyzed with
  // msabench::analyze(); returns documents/tokens/seconds.
  static IndexStats build(const std::string& dir, const std::vector<Document>& docs, Write mode = Write::Durable);
  // Opens an existing index; throws Error naming `dir` if it is missing or corrupt.
  explicit LuceneBm25Index(const std::string& dir);
  ~LuceneBm25Index();
  LuceneBm25Index(const LuceneBm25Index&) = delete;
  LuceneBm25Index& operator=(const LuceneBm25Index&) = delete;

  std::vector<ScoredDoc> search(const std::string& query, int k, const Bm25Params& p) const;

  int64_t num_docs() const;
  double avg_doc_length() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace msabench
