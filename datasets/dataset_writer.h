// Streaming dataset directories: the format of core/io.h's save_dataset_dir (corpus.jsonl,
// queries.jsonl, meta.json written last), produced document by document so memories of any
// size (100M tokens) need RAM for one document, not for the corpus.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "datasets/niah.h"

namespace msabench {

class DatasetDirWriter {
 public:
  explicit DatasetDirWriter(std::string dir);  // creates DIR; files are truncated
  ~DatasetDirWriter();
  DatasetDirWriter(const DatasetDirWriter&) = delete;
  DatasetDirWriter& operator=(const DatasetDirWriter&) = delete;

  // `tokens`: the document's size under the dataset's counter (summed into meta.json).
  void document(const std::string& group, const Document& d, int64_t tokens);
  void query(const std::string& group, const Query& q);
  // Flushes and checks both JSONL files, then writes meta.json (which marks the set complete).
  // tokenizer_spec: how to recreate the counter (TokenCounter::spec()); empty = the label.
  void finish(const std::string& name, const std::string& tokenizer, const std::string& tokenizer_spec, int64_t target_tokens,
              const nlohmann::json& generator);

  int64_t documents() const { return documents_; }
  int64_t queries() const { return queries_; }
  int64_t tokens() const { return tokens_; }
  size_t corpora() const { return groups_.size(); }

 private:
  void put(std::FILE* f, const std::string& path, const std::string& line);
  std::string dir_, corpus_path_, queries_path_;
  std::FILE* corpus_f_ = nullptr;
  std::FILE* queries_f_ = nullptr;
  std::vector<char> buf_;  // stdio buffer of corpus_f_; outlives it (closed first)
  std::set<std::string> groups_;
  int64_t documents_ = 0, queries_ = 0, tokens_ = 0;
};

// Writes every sample of `gen` to DIR through generate(): bounded RAM at any size.
// progress(tokens_written_so_far) is called after each document when given.
struct WrittenDataset {
  std::string name;
  size_t corpora = 0;
  int64_t documents = 0, queries = 0, tokens = 0;
};
WrittenDataset write_niah_dir(const NiahGenerator& gen, const std::string& dir,
                              const std::function<void(int64_t)>& progress = {});

// Statistics of a dataset directory read line by line (no corpus in RAM).
struct DatasetDirStats {
  nlohmann::json meta;
  std::string tokenizer;
  size_t corpora = 0;
  int64_t documents = 0, tokens = 0, min_doc_tokens = 0, max_doc_tokens = 0;
  int64_t queries = 0, queries_with_gold = 0, gold_ids_missing = 0;
  std::vector<Query> sample_queries;       // the first `show` queries
  std::vector<Document> sample_documents;  // gold documents of the sample queries (when found)
};
// Gold ids are checked against the corpus ids of the same group; for that one id set per
// group is kept (ids only, no text). Throws Error naming FILE:LINE on malformed lines.
DatasetDirStats inspect_dataset_dir(const std::string& dir, int show);

}  // namespace msabench
