// A Faiss index chosen by factory string ("Flat", "HNSW32", "IVF256,Flat", "IVF4096,PQ64", ...) over
// L2-normalised embeddings (inner product), persisted next to a manifest that names the embedder,
// the corpus fingerprint and the index string, so a stale index is never reused by mistake.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace faiss {
struct Index;
}

namespace msabench {

class FaissIndex {
 public:
  FaissIndex(int dim, const std::string& factory);  // throws Error for a bad factory string
  ~FaissIndex();
  FaissIndex(FaissIndex&&) noexcept;
  FaissIndex& operator=(FaissIndex&&) noexcept;

  // Trains (if the index needs it) and adds n vectors of `dim` floats.
  void build(const float* x, int64_t n);
  // Top-k ids (0-based insertion order) and scores per query; -1 ids mean "fewer than k".
  void search(const float* q, int64_t nq, int k, std::vector<int64_t>& ids, std::vector<float>& scores) const;
  int64_t size() const;
  int dim() const { return dim_; }
  const std::string& factory() const { return factory_; }
  void set_search_param(const std::string& name, double value);  // e.g. nprobe, efSearch

  // dir/index.faiss + dir/manifest.json (written atomically, manifest last).
  void save(const std::string& dir, const nlohmann::json& manifest) const;
  // Throws Error naming the file if missing/corrupt; `expect` keys must match the manifest.
  static FaissIndex load(const std::string& dir, const nlohmann::json& expect);

 private:
  FaissIndex() = default;
  int dim_ = 0;
  std::string factory_;
  faiss::Index* index_ = nullptr;
};

}  // namespace msabench
