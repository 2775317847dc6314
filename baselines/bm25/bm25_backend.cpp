#include "baselines/bm25/bm25_backend.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "baselines/bm25/lucene_bm25.h"
#include "core/error.h"
#include "core/io.h"
#include "core/text.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

constexpr const char* kAnalyzerVersion = "msabench-analyze/1";

uint64_t corpus_fingerprint(const MemoryCorpus& c) {
  uint64_t h = fnv1a64(kAnalyzerVersion);
  for (const auto& d : c.documents) {
    h = fnv1a64(d.id, h);
    h = fnv1a64(std::string_view("\0", 1), h);
    h = fnv1a64(d.text, h);
    h = fnv1a64(std::string_view("\1", 1), h);
  }
  return h;
}

class Bm25Backend : public Backend {
 public:
  explicit Bm25Backend(const BackendSpec& spec) {
    spec.check_known({"k1", "b", "index_dir"});
    params_.k1 = spec.get_double("k1", 0.9);
    params_.b = spec.get_double("b", 0.4);
    index_dir_ = spec.get_string("index_dir", "");
    if (!(params_.k1 >= 0)) throw Error("bm25: k1 must be >= 0");
    if (!(params_.b >= 0 && params_.b <= 1)) throw Error("bm25: b must be in [0, 1]");
  }
  ~Bm25Backend() override {
    index_.reset();
    if (!scratch_.empty()) {
      std::error_code ec;
      fs::remove_all(scratch_, ec);
    }
  }

  std::string spec() const override {
    BackendSpec s{"bm25", {{"k1", fmt(params_.k1)}, {"b", fmt(params_.b)}}};
    if (!index_dir_.empty()) s.options["index_dir"] = index_dir_;
    return s.to_string();
  }
  bool generates_answers() const override { return false; }

  IndexStats index(const MemoryCorpus& corpus) override {
    auto t0 = std::chrono::steady_clock::now();
    index_.reset();
    const std::string fp = hex64(corpus_fingerprint(corpus));
    std::string dir;
    IndexStats stats;
    if (!index_dir_.empty()) {
      // Persistent: one sub-directory per corpus fingerprint; reuse a complete one.
      dir = (fs::path(index_dir_) / ("bm25-" + fp)).string();
      const std::string marker = (fs::path(dir) / "msabench-index.json").string();
      if (fs::exists(marker)) {
        try {
          json m = json::parse(read_file(marker));
          if (m.value("fingerprint", "") == fp) {
            index_ = std::make_unique<LuceneBm25Index>(dir);
            stats.documents = m.value("documents", int64_t{0});
            stats.tokens = m.value("tokens", int64_t{0});
            stats.reused = true;
          }
        } catch (const std::exception&) {
          index_.reset();  // corrupt marker or index: rebuild below
        }
      }
      if (!index_) {
        const std::string tmp = dir + ".building-" + std::to_string(::getpid());
        IndexStats built = LuceneBm25Index::build(tmp, corpus.documents);
        std::error_code ec;
        fs::remove_all(dir, ec);
        fs::rename(tmp, dir, ec);
        if (ec) throw Error(dir + ": cannot move finished index into place: " + ec.message());
        write_json_atomic(marker, {{"fingerprint", fp}, {"documents", built.documents}, {"tokens", built.tokens},
                                   {"analyzer", kAnalyzerVersion}, {"corpus", corpus.id}});
        stats = built;
        index_ = std::make_unique<LuceneBm25Index>(dir);
      }
    } else {
      if (scratch_.empty()) {
        std::string tmpl = (fs::temp_directory_path() / "msabench-bm25-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw Error(tmpl + ": cannot create temporary index directory");
        scratch_ = tmpl;
      }
      dir = (fs::path(scratch_) / "index").string();
      stats = LuceneBm25Index::build(dir, corpus.documents, LuceneBm25Index::Write::Scratch);
      index_ = std::make_unique<LuceneBm25Index>(dir);
    }
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats.stage_seconds["index"] = stats.seconds;
    return stats;
  }

  Answer answer(const Query& query, int k) override {
    if (!index_) throw Error("bm25: answer() called before index()");
    auto t0 = std::chrono::steady_clock::now();
    Answer a;
    a.retrieval_only = true;
    a.retrieved = index_->search(query.text, k, params_);
    a.stage_seconds["retrieve"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return a;
  }

 private:
  static std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }
  Bm25Params params_;
  std::string index_dir_, scratch_;
  std::unique_ptr<LuceneBm25Index> index_;
};

}  // namespace

void register_bm25_backend(BackendRegistry& registry) {
  registry.add({"bm25", "Okapi BM25 over a Lucene++ index (retrieval only)",
                "k1=0.9 (term saturation), b=0.4 (length normalisation), index_dir=DIR (keep indexes on disk "
                "and reuse them by corpus fingerprint; default: temporary)",
                [](const BackendSpec& s) { return std::make_unique<Bm25Backend>(s); }});
}

}  // namespace msabench
