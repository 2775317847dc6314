// A Dataset is a list of memory corpora, each with the queries asked over it.
// NIAH builds one corpus per sample (its own haystack); MS MARCO-style sets share one corpus.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace msabench {

struct Document {
  std::string id;    // stable across runs with the same seed / source file
  std::string text;
};

struct Query {
  std::string id;
  std::string text;
  std::vector<std::string> answers;        // gold answer strings (any / all, per metric)
  std::vector<std::string> gold_doc_ids;   // documents that contain the evidence
  nlohmann::json meta = nlohmann::json::object();  // e.g. needle depths
};

struct MemoryCorpus {
  std::string id;
  std::vector<Document> documents;
  std::vector<Query> queries;
  int64_t tokens = 0;  // memory size as counted by Dataset::tokenizer
};

struct Dataset {
  std::string name;                  // e.g. "niah_single_1"
  std::string tokenizer;             // label of the token counter used for sizes
  std::string tokenizer_spec;        // how to recreate it (make_token_counter); empty = the label
  int64_t target_tokens = 0;         // requested memory size per corpus (0: as loaded)
  nlohmann::json meta = nlohmann::json::object();  // generator parameters, source files
  std::vector<MemoryCorpus> corpora;

  size_t num_queries() const {
    size_t n = 0;
    for (const auto& c : corpora) n += c.queries.size();
    return n;
  }
  int64_t total_tokens() const {
    int64_t n = 0;
    for (const auto& c : corpora) n += c.tokens;
    return n;
  }
};

}  // namespace msabench
