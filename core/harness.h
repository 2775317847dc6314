// The harness runs one backend over one dataset at one memory size (a "cell"): for every memory
// corpus it indexes, answers each query, scores it with every metric, and returns a result
// document (schema msabench.result/1, see result.h and results/README.md).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/backend.h"
#include "core/metric.h"
#include "core/progress.h"

namespace msabench {

// Corpora are produced on demand so large memories never all sit in RAM at once.
struct CorpusStream {
  std::string dataset;                       // e.g. "niah_single_1"
  std::string tokenizer;                     // label of the token counter
  int64_t memory_tokens = 0;                 // nominal memory size of each corpus
  size_t count = 0;                          // number of corpora
  std::function<MemoryCorpus(size_t)> make;  // deterministic
  nlohmann::json meta = nlohmann::json::object();
  double queries_per_corpus = 1;             // for progress totals (a mean for dataset directories)
};

struct CellOptions {
  std::string suite = "custom";
  int k = 10;               // documents retrieved per query
  int batch = 1;            // queries of one corpus answered together (Backend::answer_batch)
  Progress* progress = nullptr;  // advanced once per query
};

nlohmann::json run_cell(Backend& backend, const CorpusStream& data, const MetricList& metrics,
                        const CellOptions& opt);

}  // namespace msabench
