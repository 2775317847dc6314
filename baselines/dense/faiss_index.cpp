#include "baselines/dense/faiss_index.h"

#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/AutoTune.h>

#include <filesystem>

#include "core/error.h"
#include "core/io.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

FaissIndex::FaissIndex(int dim, const std::string& factory) : dim_(dim), factory_(factory) {
  if (dim < 1) throw Error("faiss: embedding dimension must be >= 1");
  try {
    index_ = faiss::index_factory(dim, factory.c_str(), faiss::METRIC_INNER_PRODUCT);
  } catch (const faiss::FaissException& e) {
    throw Error("faiss: bad index factory string '" + factory + "': " + e.what());
  }
}

FaissIndex::~FaissIndex() { delete index_; }
FaissIndex::FaissIndex(FaissIndex&& o) noexcept : dim_(o.dim_), factory_(std::move(o.factory_)), index_(o.index_) {
  o.index_ = nullptr;
}
FaissIndex& FaissIndex::operator=(FaissIndex&& o) noexcept {
  if (this != &o) {
    delete index_;
    dim_ = o.dim_;
    factory_ = std::move(o.factory_);
    index_ = o.index_;
    o.index_ = nullptr;
  }
  return *this;
}

void FaissIndex::build(const float* x, int64_t n) {
  try {
    if (!index_->is_trained) {
      if (n < 1) throw Error("faiss: index '" + factory_ + "' needs training vectors");
      index_->train(n, x);
    }
    index_->add(n, x);
  } catch (const faiss::FaissException& e) {
    throw Error("faiss: building '" + factory_ + "' over " + std::to_string(n) + " vectors failed: " + e.what());
  }
}

void FaissIndex::search(const float* q, int64_t nq, int k, std::vector<int64_t>& ids, std::vector<float>& scores) const {
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(nq) * k);
  scores.assign(static_cast<size_t>(nq) * k, 0.f);
  try {
    index_->search(nq, q, k, scores.data(), labels.data());
  } catch (const faiss::FaissException& e) {
    throw Error(std::string("faiss: search failed: ") + e.what());
  }
  ids.assign(labels.begin(), labels.end());
}

int64_t FaissIndex::size() const { return index_->ntotal; }

void FaissIndex::set_search_param(const std::string& name, double value) {
  try {
    faiss::ParameterSpace().set_index_parameter(index_, name, value);
  } catch (const faiss::FaissException& e) {
    throw Error("faiss: index '" + factory_ + "' has no search parameter '" + name + "'");
  }
}

void FaissIndex::save(const std::string& dir, const json& manifest) const {
  fs::create_directories(dir);
  const std::string path = (fs::path(dir) / "index.faiss").string(), tmp = path + ".tmp";
  try {
    faiss::write_index(index_, tmp.c_str());
  } catch (const faiss::FaissException& e) {
    throw Error(path + ": cannot write index: " + e.what());
  }
  fs::rename(tmp, path);
  json m = manifest;
  m["factory"] = factory_;
  m["dim"] = dim_;
  m["ntotal"] = size();
  write_json_atomic((fs::path(dir) / "manifest.json").string(), m);
}

FaissIndex FaissIndex::load(const std::string& dir, const json& expect) {
  const std::string mpath = (fs::path(dir) / "manifest.json").string(), ipath = (fs::path(dir) / "index.faiss").string();
  if (!fs::exists(mpath)) throw Error(mpath + ": missing (no dense index here)");
  json m;
  try {
    m = json::parse(read_file(mpath));
  } catch (const json::parse_error& e) {
    throw Error(mpath + ": invalid JSON (" + e.what() + ")");
  }
  for (auto it = expect.begin(); it != expect.end(); ++it)
    if (!m.contains(it.key()) || m[it.key()] != *it)
      throw Error(mpath + ": index was built with " + it.key() + "=" + (m.contains(it.key()) ? m[it.key()].dump() : "?") +
                  ", expected " + it->dump());
  FaissIndex f;
  f.dim_ = m.value("dim", 0);
  f.factory_ = m.value("factory", std::string());
  try {
    f.index_ = faiss::read_index(ipath.c_str());
  } catch (const faiss::FaissException& e) {
    throw Error(ipath + ": cannot read index (missing or corrupt): " + e.what());
  }
  if (f.index_->d != f.dim_ || f.index_->ntotal != m.value("ntotal", int64_t{-1}))
    throw Error(ipath + ": index does not match its manifest (dim or size)");
  return f;
}

}  // namespace msabench
