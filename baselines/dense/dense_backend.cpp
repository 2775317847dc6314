#include "baselines/dense/dense_backend.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "backends/msa/msa_backend.h"
#include "baselines/dense/faiss_index.h"
#include "core/error.h"
#include "core/io.h"
#include "core/model/chat_template.h"
#include "core/model/embedder.h"
#include "core/model/qwen3.h"
#include "core/progress.h"
#include "core/text.h"
#include "core/tokenizer/text_tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t corpus_hash(const MemoryCorpus& c) {
  uint64_t h = fnv1a64("dense/1");
  for (const auto& d : c.documents) h = fnv1a64(d.text, fnv1a64(d.id, h));
  return h;
}

class DenseBackend : public Backend {
 public:
  explicit DenseBackend(const BackendSpec& spec) {
    spec.check_known({"embedder", "index", "index_dir", "batch", "max_length", "nprobe", "efSearch"});
    embedder_dir_ = resolve_model_dir(spec.get_string("embedder", ""));
    if (!fs::exists(fs::path(embedder_dir_) / "config.json"))
      throw Error("dense: embedder directory '" + embedder_dir_ + "' has no config.json");
    factory_ = spec.get_string("index", "Flat");
    index_dir_ = spec.get_string("index_dir", "");
    EmbedderOptions eo;
    eo.batch = static_cast<int>(spec.get_int("batch", eo.batch));
    eo.max_length = static_cast<int>(spec.get_int("max_length", eo.max_length));
    nprobe_ = spec.get_double("nprobe", 0);
    ef_ = spec.get_double("efSearch", 0);
    embedder_ = load_qwen3_embedder(embedder_dir_, eo);
    FaissIndex probe(embedder_->dim(), factory_);  // validates the factory string now
    BackendSpec s{"dense", {{"embedder", model_label(embedder_dir_)}, {"index", factory_}}};
    if (!index_dir_.empty()) s.options["index_dir"] = index_dir_;
    spec_ = s.to_string();
  }
  std::string spec() const override { return spec_; }
  bool generates_answers() const override { return false; }
  json info() const override { return {{"embedder", model_training_info(embedder_dir_)}}; }

  IndexStats index(const MemoryCorpus& corpus) override {
    auto t0 = std::chrono::steady_clock::now();
    IndexStats st;
    ids_.clear();
    for (const auto& d : corpus.documents) ids_.push_back(d.id);
    const json expect = {{"embedder", embedder_->name()}, {"corpus", hex64(corpus_hash(corpus))}, {"factory", factory_}};
    const std::string dir = index_dir_.empty() ? "" : (fs::path(index_dir_) / ("dense-" + hex64(corpus_hash(corpus)))).string();
    if (!dir.empty() && fs::exists(fs::path(dir) / "manifest.json")) {
      index_ = std::make_unique<FaissIndex>(FaissIndex::load(dir, expect));
      st.reused = true;
    } else {
      std::vector<std::string> texts;
      for (const auto& d : corpus.documents) texts.push_back(d.text);
      // Slices so that long corpora show progress (docs/s, ETA) while they embed.
      std::vector<float> emb;
      emb.reserve(texts.size() * static_cast<size_t>(embedder_->dim()));
      Progress progress("embed", static_cast<int64_t>(texts.size()), "docs", texts.size() >= 2048);
      constexpr size_t kSlice = 1024;
      for (size_t first = 0; first < texts.size(); first += kSlice) {
        std::vector<std::string> slice(texts.begin() + static_cast<std::ptrdiff_t>(first),
                                       texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), first + kSlice)));
        auto e = embedder_->embed(slice, false);
        emb.insert(emb.end(), e.begin(), e.end());
        progress.advance(static_cast<int64_t>(slice.size()));
      }
      progress.finish();
      st.stage_seconds["embed"] = since(t0);
      index_ = std::make_unique<FaissIndex>(embedder_->dim(), factory_);
      index_->build(emb.data(), static_cast<int64_t>(texts.size()));
      if (!dir.empty()) index_->save(dir, expect);
    }
    if (nprobe_ > 0) index_->set_search_param("nprobe", nprobe_);
    if (ef_ > 0) index_->set_search_param("efSearch", ef_);
    st.documents = static_cast<int64_t>(corpus.documents.size());
    st.seconds = since(t0);
    st.stage_seconds["index"] = st.seconds;
    return st;
  }

  Answer answer(const Query& q, int k) override {
    if (!index_) throw Error("dense: answer() called before index()");
    auto t0 = std::chrono::steady_clock::now();
    auto e = embedder_->embed({q.text}, true);
    const double embed_s = since(t0);
    std::vector<int64_t> ids;
    std::vector<float> sc;
    index_->search(e.data(), 1, k, ids, sc);
    Answer a;
    a.retrieval_only = true;
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= 0) a.retrieved.push_back({ids_[ids[i]], sc[i]});
    a.stage_seconds = {{"embed_query", embed_s}, {"retrieve", since(t0) - embed_s}};
    return a;
  }

 private:
  std::string embedder_dir_, factory_, index_dir_, spec_;
  double nprobe_ = 0, ef_ = 0;
  std::unique_ptr<Embedder> embedder_;
  std::unique_ptr<FaissIndex> index_;
  std::vector<std::string> ids_;
};

class RagBackend : public Backend {
 public:
  explicit RagBackend(const BackendSpec& spec) {
    spec.check_known({"retriever", "k", "generator", "embedder", "index", "max_tokens", "max_context", "reranker",
                      "rerank_candidates"});
    const std::string retr = spec.get_string("retriever", "bm25");
    k_ = static_cast<int>(spec.get_int("k", 5));
    gen_dir_ = resolve_model_dir(spec.get_string("generator", ""));
    max_tokens_ = static_cast<int>(spec.get_int("max_tokens", 64));
    if (k_ < 1 || max_tokens_ < 1) throw Error("rag: k and max_tokens must be >= 1");
    if (retr == "bm25") {
      retriever_ = BackendRegistry::instance().create("bm25");
    } else if (retr == "dense") {
      retriever_ = BackendRegistry::instance().create("dense:embedder=" + spec.get_string("embedder", model_label(gen_dir_)) +
                                                      ",index=" + spec.get_string("index", "Flat"));
    } else {
      throw Error("rag: retriever must be bm25 or dense");
    }
    if (!fs::exists(fs::path(gen_dir_) / "config.json")) throw Error("rag: generator directory '" + gen_dir_ + "' has no config.json");
    generator_ = std::make_unique<Qwen3Model>(Qwen3Model::load(gen_dir_));
    tok_ = load_tokenizer(model_tokenizer_spec(gen_dir_));
    max_context_ = spec.get_int("max_context", generator_->config().max_position_embeddings);
    for (const char* s : {"<|im_end|>", "<|endoftext|>"})
      if (auto id = tok_->token_id(s)) stop_.push_back(*id);
    BackendSpec canon{"rag", {{"retriever", retriever_->spec()}, {"k", std::to_string(k_)}, {"generator", model_label(gen_dir_)},
                              {"max_tokens", std::to_string(max_tokens_)}}};
    if (spec.options.count("reranker")) {
      // The paper's "RR" columns: Qwen3-Reranker yes/no scoring over the retriever's top candidates.
      rr_dir_ = resolve_model_dir(spec.get_string("reranker", ""));
      reranker_ = load_qwen3_reranker(rr_dir_);
      candidates_ = static_cast<int>(spec.get_int("rerank_candidates", 100));
      if (candidates_ < k_) throw Error("rag: rerank_candidates must be at least k");
      canon.options["reranker"] = model_label(rr_dir_);
      canon.options["rerank_candidates"] = std::to_string(candidates_);
    }
    spec_ = canon.to_string();
  }
  std::string spec() const override { return spec_; }
  bool generates_answers() const override { return true; }
  json info() const override {
    json i = {{"generator", model_training_info(gen_dir_)}, {"retriever", retriever_->info()}};
    if (reranker_) i["reranker"] = model_training_info(rr_dir_);
    return i;
  }

  IndexStats index(const MemoryCorpus& corpus) override {
    text_.clear();
    for (const auto& d : corpus.documents) text_[d.id] = d.text;
    return retriever_->index(corpus);
  }

  Answer answer(const Query& q, int k) override {
    Answer r = retriever_->answer(q, std::max({k, k_, reranker_ ? candidates_ : 0}));
    if (reranker_) rerank(q, r);
    std::string ctx;
    for (int i = 0; i < k_ && i < static_cast<int>(r.retrieved.size()); ++i)
      ctx += "[" + std::to_string(i) + "]. " + text_[r.retrieved[i].id] + "\n";
    auto ids32 = tok_->encode(qwen3_chat_prompt(ctx + "\n" + q.text), true);
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    if (static_cast<int64_t>(ids.size()) + max_tokens_ > max_context_) {
      // keep the most recent context: the question sits at the end
      ids.erase(ids.begin(), ids.begin() + (static_cast<int64_t>(ids.size()) + max_tokens_ - max_context_));
    }
    SamplingOptions opt;
    opt.max_new_tokens = max_tokens_;
    opt.stop_token_ids = stop_;
    auto g = generate(*generator_, {ids}, opt);
    Answer a;
    a.retrieved = r.retrieved;
    std::vector<int32_t> out(g.tokens[0].begin(), g.tokens[0].end());
    a.text = tok_->decode(out, true);
    a.stage_seconds = r.stage_seconds;
    a.stage_seconds["prefill"] = g.prefill_seconds;
    a.stage_seconds["decode"] = g.decode_seconds;
    a.detail = {{"prompt_tokens", ids.size()}, {"generated_tokens", g.generated_tokens}, {"context_docs", std::min<int>(k_, r.retrieved.size())}};
    return a;
  }

 private:
  // Reorders the first candidates_ retrieved documents by reranker score (ties keep retriever order).
  void rerank(const Query& q, Answer& r) const {
    auto t0 = std::chrono::steady_clock::now();
    const size_t n = std::min<size_t>(r.retrieved.size(), static_cast<size_t>(candidates_));
    std::vector<std::string> docs;
    for (size_t i = 0; i < n; ++i) docs.push_back(text_.at(r.retrieved[i].id));
    const auto scores = reranker_->score(q.text, docs);
    std::vector<ScoredDoc> head(r.retrieved.begin(), r.retrieved.begin() + static_cast<std::ptrdiff_t>(n));
    for (size_t i = 0; i < n; ++i) head[i].score = scores[i];
    std::stable_sort(head.begin(), head.end(), [](const ScoredDoc& a, const ScoredDoc& b) { return a.score > b.score; });
    std::copy(head.begin(), head.end(), r.retrieved.begin());
    r.stage_seconds["rerank"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  int k_ = 5, max_tokens_ = 64, candidates_ = 0;
  std::unique_ptr<Reranker> reranker_;
  int64_t max_context_ = 0;
  std::string gen_dir_, rr_dir_, spec_;
  std::unique_ptr<Backend> retriever_;
  std::unique_ptr<Qwen3Model> generator_;
  std::unique_ptr<TextTokenizer> tok_;
  std::vector<int64_t> stop_;
  std::map<std::string, std::string> text_;
};

}  // namespace

void register_dense_backends(BackendRegistry& registry) {
  registry.add({"dense", "embedder + Faiss retrieval (retrieval only)",
                "embedder=DIR (Qwen3-Embedding or the shipped model's backbone), index=Flat|HNSW32|IVF256,Flat|..., "
                "index_dir=DIR (persist, reuse by corpus hash), batch=16, max_length=512, nprobe=, efSearch=",
                [](const BackendSpec& s) { return std::make_unique<DenseBackend>(s); }});
  registry.add({"rag", "retrieve top-k (bm25 or dense) then generate with a Qwen3 generator",
                "retriever=bm25|dense, k=5, generator=DIR (default: the shipped model), embedder=DIR, index=Flat, "
                "max_tokens=64, max_context=, reranker=DIR (Qwen3-Reranker; msa-small: the shipped model), "
                "rerank_candidates=100",
                [](const BackendSpec& s) { return std::make_unique<RagBackend>(s); }});
}

}  // namespace msabench
