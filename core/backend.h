// Backend: indexes a memory corpus, answers queries over it and reports what it retrieved.
// Backends are created by name from spec strings ("bm25:k1=0.9,b=0.4") through a registry.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dataset.h"

namespace msabench {

struct ScoredDoc {
  std::string id;
  double score = 0.0;
};

struct Answer {
  std::string text;              // empty when retrieval_only
  bool retrieval_only = false;   // the backend has no generator: only `retrieved` is meaningful
  std::vector<ScoredDoc> retrieved;  // best first
  std::map<std::string, double> stage_seconds;  // e.g. {"retrieve": 0.002}
  std::vector<std::string> router_topk;  // MSA: documents the router selected (empty for others)
  nlohmann::json detail;                 // backend-specific record fields (full text, rounds, routing)
};

struct IndexStats {
  int64_t documents = 0;
  int64_t tokens = 0;           // analyzer tokens the backend indexed
  double seconds = 0.0;
  bool reused = false;          // an on-disk index was opened instead of built
  std::map<std::string, double> stage_seconds;
};

// Parsed "name:key=value,key=value".
struct BackendSpec {
  std::string name;
  std::map<std::string, std::string> options;

  static BackendSpec parse(const std::string& spec);
  std::string to_string() const;  // canonical: options sorted by key
  // Typed accessors; unknown keys are reported by Backend factories via check_known().
  double get_double(const std::string& key, double fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  void check_known(const std::vector<std::string>& known) const;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string spec() const = 0;   // canonical spec including defaults
  virtual bool generates_answers() const = 0;
  // What the backend runs beyond its spec (e.g. a model's training state), recorded in results.
  virtual nlohmann::json info() const { return nlohmann::json::object(); }
  // Replaces any previously indexed corpus.
  virtual IndexStats index(const MemoryCorpus& corpus) = 0;
  virtual Answer answer(const Query& query, int k) = 0;
  // Several queries over the same indexed corpus. Backends that batch (msa) override this and
  // must return exactly what answer() returns for each query; the default answers one by one.
  virtual std::vector<Answer> answer_batch(const std::vector<const Query*>& queries, int k) {
    std::vector<Answer> out;
    for (const Query* q : queries) out.push_back(answer(*q, k));
    return out;
  }
};

using BackendFactory = std::function<std::unique_ptr<Backend>(const BackendSpec&)>;

struct BackendInfo {
  std::string name;
  std::string summary;     // one line for --help / `msabench run --list`
  std::string options;     // "k1=0.9,b=0.4,index_dir=" with meaning
  BackendFactory factory;
};

class BackendRegistry {
 public:
  static BackendRegistry& instance();
  void add(BackendInfo info);
  std::unique_ptr<Backend> create(const std::string& spec) const;
  std::vector<BackendInfo> list() const;

 private:
  std::map<std::string, BackendInfo> backends_;
};

}  // namespace msabench
