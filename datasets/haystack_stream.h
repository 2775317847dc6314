// Builds a memory corpus from a haystack sentence stream with inserted sentences (needles, facts):
// documents of at most doc_tokens tokens, cut at sentence boundaries, ids "<corpus>-dNNNNN".
// Shared by the NIAH and synthetic multi-hop generators.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/tokenizer.h"
#include "datasets/haystack.h"

namespace msabench {

struct PlacedSentence {
  std::string sentence;
  int64_t offset = 0;   // haystack token offset where it is inserted
  std::string doc_id;   // filled while the documents are built
  int64_t doc_index = -1;  // the document's position in the corpus, filled likewise
};

// Streams haystack sentences until `budget` haystack tokens, inserting every placed sentence
// (sorted by offset) when the haystack reaches its offset; the rest follow at the end. Documents
// go to on_document as soon as they are complete; corpus.tokens is advanced. Returns the number
// of haystack sentences used.
int64_t stream_documents(SentenceSource& source, const std::vector<PlacedSentence*>& by_offset, int64_t budget,
                         int64_t doc_tokens, const TokenCounter& counter, MemoryCorpus& corpus,
                         const std::function<void(Document&&)>& on_document);

// A generator's whole memory in RAM (the generators' sample()): runs generate with a sink that keeps
// every document and returns the corpus with them.
MemoryCorpus collect_documents(const std::function<MemoryCorpus(const std::function<void(Document&&)>&)>& generate);

}  // namespace msabench
