#include "backends/msa/msa_backend.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "backends/msa/bank_store.h"
#include "backends/msa/interleave.h"
#include "backends/msa/memory_shards.h"
#include "core/error.h"
#include "core/text.h"
#include "core/io.h"
#include "core/model/msa.h"
#include "core/model/safetensors.h"
#include "core/model/routing_kernel.h"
#include "core/tokenizer/text_tokenizer.h"
#include "datasets/msa_training.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

std::string default_msa_model_dir() { return std::string(MSABENCH_SOURCE_DIR) + "/backends/msa/msa-small/model"; }

std::string resolve_model_dir(const std::string& option) {
  return option.empty() || option == "msa-small" ? default_msa_model_dir() : option;
}

std::string model_label(const std::string& dir) { return dir == default_msa_model_dir() ? "msa-small" : dir; }

json model_training_info(const std::string& dir) {
  json info = {{"model", model_label(dir)}};
  int64_t parameters = 0;  // from the safetensors headers (tied heads are stored once)
  Checkpoint ckpt(dir);
  for (const auto& name : ckpt.names()) parameters += ckpt.get(name).numel();
  info["parameters"] = parameters;
  const fs::path state = fs::path(dir) / "trainer_state.json";
  if (!fs::exists(state)) return info;
  const json st = json::parse(read_file(state.string()));
  const int64_t step = st.value("step", int64_t{0});
  const int64_t planned = st.value("train_config", json::object()).value("steps", step);
  info["trained_steps"] = step;
  info["planned_steps"] = planned;
  info["training"] = step < planned ? "partial" : "complete";
  return info;
}

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class MsaBackend : public Backend {
 public:
  explicit MsaBackend(const BackendSpec& spec) {
    spec.check_known({"model", "topk", "interleave", "inject", "max_rounds", "max_tokens", "routing", "positions",
                      "threads", "bank_dir", "segment_docs", "key_dtype", "ram_budget",
                      "gpu_budget", "content", "shards", "master_addr", "master_port", "launch", "fetch_threads",
                      "prefetch", "cold_content", "naming", "query_position"});
    bank_dir_ = spec.get_string("bank_dir", "");
    segment_docs_ = spec.get_int("segment_docs", 256);
    if (spec.options.count("key_dtype")) key_dtype_ = parse_key_dtype(spec.get_string("key_dtype", "fp32"));
    ram_budget_ = parse_byte_size(spec.get_string("ram_budget", "0"));
    gpu_budget_ = parse_byte_size(spec.get_string("gpu_budget", "0"));
    content_tier_ = spec.get_string("content", "auto");
    if (content_tier_ != "auto" && content_tier_ != "ram" && content_tier_ != "mmap")
      throw Error("msa: content must be auto, ram or mmap");
    model_dir_ = resolve_model_dir(spec.get_string("model", ""));
    if (!fs::exists(fs::path(model_dir_) / "config.json"))
      throw Error("msa: model directory '" + model_dir_ + "' has no config.json" +
                  (spec.options.count("model") ? "" : " (the shipped model is trained with `msabench train`, see README)"));
    threads_ = spec.get_int("threads", 2);
    shard_opt_.world = static_cast<int>(spec.get_int("shards", 1));
    shard_opt_.master_addr = spec.get_string("master_addr", "127.0.0.1");
    shard_opt_.master_port = static_cast<int>(spec.get_int("master_port", 0));
    shard_opt_.launch = spec.get_int("launch", 1) != 0;
    if (shard_opt_.world < 1) throw Error("msa: shards must be >= 1");
    if (!shard_opt_.launch && shard_opt_.master_port == 0)
      throw Error("msa: launch=0 (workers started by hand) needs master_port");
    set_compute_threads(static_cast<int>(threads_));
    model_ = std::make_unique<MsaModel>(MsaModel::load(model_dir_));
    auto& o = model_->options();
    // Suite-trained models say how they were trained to route (msabench_inference.json).
    std::string routing_default = "engine";
    int64_t trained_query_position = -1;  // the first question position the model was trained with, if recorded
    const fs::path hints = fs::path(model_dir_) / "msabench_inference.json";
    if (fs::exists(hints)) {
      try {  // a parse error or a field of the wrong type both name the file
        const json h = json::parse(read_file(hints.string()));
        routing_default = h.value("routing", routing_default);
        trained_query_position = h.value("query_position", trained_query_position);
        // the top-k it was trained to read (the engine's own default is 16 whatever the config says)
        o.doc_top_k = h.value("topk", o.doc_top_k);
      } catch (const json::exception& e) {
        throw Error(hints.string() + ": invalid (" + e.what() + ")");
      }
    }
    o.doc_top_k = static_cast<int>(spec.get_int("topk", o.doc_top_k));
    o.fetch_threads = static_cast<int>(spec.get_int("fetch_threads", o.fetch_threads));
    o.prefetch_next_layer = spec.get_int("prefetch", 1) != 0;
    cold_content_ = spec.get_int("cold_content", 0) != 0;
    if (cold_content_ && (bank_dir_.empty() || content_tier_ != "mmap" || shard_opt_.world > 1))
      throw Error("msa: cold_content=1 measures fetches from disk; it needs bank_dir and content=mmap, without shards");
    if (o.fetch_threads < 0 || o.fetch_threads > 64) throw Error("msa: fetch_threads must be 0..64");
    const std::string routing = spec.get_string("routing", routing_default);
    if (routing == "cosine") o.similarity = RoutingSimilarity::Cosine;
    else if (routing != "engine") throw Error("msa: routing must be engine (config default) or cosine");
    const std::string positions = spec.get_string("positions", "code");
    if (positions == "paper") o.query_position_start = o.doc_top_k;
    else if (positions != "code") throw Error("msa: positions must be code (3 + k) or paper (k)");
    if (positions == "code") o.query_position_start = 3 + o.doc_top_k;
    // A suite-trained model saw its questions at one fixed position whatever k (the trainer's 3 + 16);
    // 3 + k with another k would move the question against the memory's RoPE positions.
    if (trained_query_position >= 0 && !spec.options.count("positions")) o.query_position_start = trained_query_position;
    o.query_position_start = spec.get_int("query_position", o.query_position_start);
    if (o.query_position_start < 0) throw Error("msa: query_position must be >= 0");
    iopt_.interleave = spec.get_int("interleave", 1) != 0;
    iopt_.inject_text = spec.get_int("inject", 1) != 0;
    iopt_.max_rounds = static_cast<int>(spec.get_int("max_rounds", iopt_.max_rounds));
    iopt_.max_call_tokens = static_cast<int>(spec.get_int("max_tokens", iopt_.max_call_tokens));
    const std::string naming = spec.get_string("naming", "model");
    if (naming != "model" && naming != "router") throw Error("msa: naming must be model or router");
    router_names_ = naming == "router";
    if (o.doc_top_k < 1 || iopt_.max_rounds < 1 || iopt_.max_call_tokens < 1)
      throw Error("msa: topk, max_rounds and max_tokens must be >= 1");
    tok_ = load_tokenizer(model_tokenizer_spec(model_dir_));
    if (tok_->vocab_size() > model_->base().config().vocab_size)
      throw Error("msa: tokenizer has more ids than the model's vocabulary");
    for (const char* s : {"<|im_end|>", "<|endoftext|>"})
      if (auto id = tok_->token_id(s)) stop_ids_.push_back(*id);
    if (router_names_) {
      auto eor = tok_->token_id(interleave::kEndOfRetrieve);
      if (!eor) throw Error("msa: naming=router needs a tokenizer with a <End-of-Retrieve> token");
      end_of_retrieve_id_ = *eor;
    }
    BackendSpec spec_obj{"msa",
                        {{"model", model_label(model_dir_)},
                         {"topk", std::to_string(o.doc_top_k)},
                         {"interleave", iopt_.interleave ? "1" : "0"},
                         {"inject", iopt_.inject_text ? "1" : "0"},
                         {"max_rounds", std::to_string(iopt_.max_rounds)},
                         {"max_tokens", std::to_string(iopt_.max_call_tokens)},
                         {"routing", routing},
                         {"positions", positions}}};
    // Only named when set, so specs (and result cells) without it stay as they were.
    if (key_dtype_) spec_obj.options["key_dtype"] = key_dtype_name(*key_dtype_);
    if (shard_opt_.world > 1) spec_obj.options["shards"] = std::to_string(shard_opt_.world);
    // Fetch settings change timings, never answers; named only when not the default.
    if (o.fetch_threads != MsaOptions{}.fetch_threads) spec_obj.options["fetch_threads"] = std::to_string(o.fetch_threads);
    if (!o.prefetch_next_layer) spec_obj.options["prefetch"] = "0";
    if (cold_content_) spec_obj.options["cold_content"] = "1";
    if (router_names_) spec_obj.options["naming"] = "router";
    if (o.query_position_start != (positions == "paper" ? 0 : 3) + o.doc_top_k)
      spec_obj.options["query_position"] = std::to_string(o.query_position_start);
    shard_opt_.model_dir = model_dir_;
    shard_opt_.threads = static_cast<int>(threads_);
    spec_ = spec_obj.to_string();
  }

  std::string spec() const override { return spec_; }
  bool generates_answers() const override { return true; }
  json info() const override { return model_training_info(model_dir_); }

  IndexStats index(const MemoryCorpus& corpus) override {
    auto t0 = std::chrono::steady_clock::now();
    doc_ids_.clear();
    doc_text_.clear();
    std::vector<std::vector<int64_t>> docs;
    IndexStats st;
    for (size_t i = 0; i < corpus.documents.size(); ++i) {
      const auto& d = corpus.documents[i];
      doc_ids_.push_back(d.id);
      doc_text_[static_cast<int64_t>(i)] = d.text;
      auto ids = tok_->encode(interleave::memory_document(static_cast<int64_t>(i), d.text), true);
      docs.emplace_back(ids.begin(), ids.end());
      st.tokens += static_cast<int64_t>(ids.size());
    }
    template_ = to64(tok_->encode(interleave::kTemplateHead, true));
    // Tiers and budgets from the token counts, before any encoding.
    std::vector<int64_t> doc_tokens;
    int64_t text_bytes = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
      doc_tokens.push_back(static_cast<int64_t>(docs[i].size()));
      text_bytes += static_cast<int64_t>(corpus.documents[i].text.size());
    }
    const auto tier_bytes = bank_tier_bytes(
        bank_geometry(model_->base().config(), model_->options().pooling_kernel_size,
                      static_cast<int64_t>(template_.size()), model_->base().dtype()),
        doc_tokens, text_bytes, key_dtype_);
    const TierPlan plan = plan_tiers(tier_bytes, ram_budget_, gpu_budget_, content_tier_, !bank_dir_.empty());
    if (shard_opt_.world > 1) {
      // Workers start with the first corpus (not when a spec is only validated) and stay up.
      if (!shards_) shards_ = std::make_unique<ShardedBank>(*model_, shard_opt_);
      // Every rank applies the bank options to its own shard: scan-layout keys, and with bank_dir
      // its own sub-bank of this corpus's bank directory (reused, resumed or encoded).
      ShardBankOptions sb;
      sb.key_dtype = key_dtype_;
      if (!bank_dir_.empty()) {
        sb.fp = {model_fingerprint(model_dir_), tok_->name(), corpus_fingerprint(corpus.documents)};
        sb.corpus_dir = (fs::path(bank_dir_) / ("bank-" + sb.fp.corpus)).string();
        sb.segment_docs = segment_docs_;
        sb.content_mmap = plan.content_mmap;
      }
      bank_ = shards_->index(docs, template_, sb);
      st.reused = shards_->reused();
    } else if (bank_dir_.empty()) {
      bank_ = model_->encode_memory(docs, template_);
    } else {
      // Persistent bank per corpus: reused when complete, resumed when an encode was interrupted.
      BankFingerprint fp{model_fingerprint(model_dir_), tok_->name(), corpus_fingerprint(corpus.documents)};
      const std::string dir = (fs::path(bank_dir_) / ("bank-" + fp.corpus)).string();
      bool loaded = false;
      if (fs::exists(fs::path(dir) / "manifest.json") && bank_info(dir).value("complete", false)) {
        bank_ = load_bank(dir, fp, plan.content_mmap);
        loaded = true;
        st.reused = true;
      }
      if (!loaded) bank_ = encode_bank(*model_, docs, template_, fp, dir, segment_docs_, {}, plan.content_mmap);
    }
    if (key_dtype_ && shard_opt_.world == 1) use_scan_layout(bank_, *model_, *key_dtype_);  // shards: per rank
    st.documents = static_cast<int64_t>(docs.size());
    st.seconds = since(t0);
    st.stage_seconds["encode"] = st.seconds;
    return st;
  }

  Answer answer(const Query& query, int k) override { return answer_batch({&query}, k).front(); }

  // Queries of one batch run their engine calls together: every call round prefills the prompts of
  // all unfinished queries as one left-padded batch, then decodes them in lock step (a query whose
  // call ended is frozen). Batch 1 is the same code path.
  std::vector<Answer> answer_batch(const std::vector<const Query*>& queries, int k) override {
    auto t0 = std::chrono::steady_clock::now();
    struct Item {
      explicit Item(InterleaveSession s) : session(std::move(s)) {}
      InterleaveSession session;
      json calls = json::array();
      double prefill_s = 0, decode_s = 0;
      PrefillStats stages;  // this query's share of its prefills' stage times
      int64_t generated = 0;
      int router_named = 0;  // retrieval steps written for the model (naming=router)
      bool done = false;
      std::vector<int64_t> first_routing;  // last router layer's top-k of the first call
    };
    std::vector<Item> items;
    items.reserve(queries.size());
    for (const Query* q : queries) items.emplace_back(InterleaveSession(q->text, &doc_text_, iopt_));
    while (true) {
      std::vector<size_t> group;
      for (size_t i = 0; i < items.size(); ++i)
        if (!items[i].done) group.push_back(i);
      if (group.empty()) break;
      std::vector<PromptTokens> prompts;
      for (size_t i : group) prompts.push_back(build_prompt(items[i].session));
      MsaCache cache;
      std::vector<LayerRouting> routing;
      auto tp = std::chrono::steady_clock::now();
      if (cold_content_ && bank_.drop_cached_content) bank_.drop_cached_content();
      PrefillStats ps;
      auto logits = model_->prefill(bank_, prompts, cache, &routing, shards_.get(), &ps);
      const double prefill_share = since(tp) / static_cast<double>(group.size());
      std::vector<bool> in_call(group.size(), true);
      std::vector<int> call_tokens(group.size(), 0);
      for (size_t g = 0; g < group.size(); ++g) {
        Item& it = items[group[g]];
        it.prefill_s += prefill_share;
        const double n = static_cast<double>(group.size());
        it.stages.score_s += ps.score_s / n;
        it.stages.topk_s += ps.topk_s / n;
        it.stages.fetch_s += ps.fetch_s / n;
        it.stages.attend_s += ps.attend_s / n;
        if (it.first_routing.empty() && !routing.empty()) it.first_routing = routing.back().doc_ids[g];
        // Fetch counters are for the whole batch of this call (documents are fetched once per batch).
        it.calls.push_back({{"prompt_tokens", prompts[g].ids.size()},
                            {"routing", routing_json(routing, g)},
                            {"batch_fetch", {{"documents", ps.fetched_docs},
                                             {"prefetch_hits", ps.prefetch_hits},
                                             {"prefetch_unused", ps.prefetch_unused}}}});
        it.session.start_call();
      }
      while (true) {
        auto td = std::chrono::steady_clock::now();
        auto next_ids = logits.argmax(1).to(torch::kCPU);
        std::vector<std::vector<int64_t>> feeds(group.size());
        size_t running = 0;
        for (size_t g = 0; g < group.size(); ++g) {
          if (!in_call[g]) continue;
          Item& it = items[group[g]];
          const int64_t next = next_ids[g].item<int64_t>();
          ++call_tokens[g];
          ++it.generated;
          // naming=router: a retrieval step's first token decides only whether to retrieve at all;
          // which document is named is the router's choice (its best not yet named document).
          if (router_names_ && !routing.empty() && call_tokens[g] == 1 && !it.session.answering() &&
              next != end_of_retrieve_id_) {
            if (auto doc = first_unnamed(routing.back().doc_ids[g], it.session.named_ids())) {
              const auto act = it.session.on_text(interleave::document_tag(*doc) +
                                                  interleave::kObjectRefEnd);
              ++it.router_named;
              in_call[g] = false;  // the step ended the round (finish_round): re-prefill
              it.done = act == InterleaveSession::Action::Done;
              continue;
            }
          }
          const auto act = next_action(it.session, next, call_tokens[g]);
          if (act == InterleaveSession::Action::Done || act == InterleaveSession::Action::NewRound) {
            in_call[g] = false;
            it.done = act == InterleaveSession::Action::Done;
            continue;
          }
          feeds[g] = {next};
          if (act == InterleaveSession::Action::Inject) {
            auto inj = to64(tok_->encode(it.session.injection(), true));
            feeds[g].insert(feeds[g].end(), inj.begin(), inj.end());
          }
          ++running;
        }
        if (running == 0) break;
        // Left-padded so every running query's last fed token is the last column.
        size_t width = 0;
        for (const auto& f : feeds) width = std::max(width, f.size());
        std::vector<int64_t> flat_ids(group.size() * width, 0);
        std::vector<uint8_t> flat_valid(group.size() * width, 0);
        for (size_t g = 0; g < group.size(); ++g) {
          const size_t off = g * width + (width - feeds[g].size());
          std::copy(feeds[g].begin(), feeds[g].end(), flat_ids.begin() + static_cast<std::ptrdiff_t>(off));
          std::fill_n(flat_valid.begin() + static_cast<std::ptrdiff_t>(off), feeds[g].size(), uint8_t{1});
        }
        const std::vector<int64_t> shape = {static_cast<int64_t>(group.size()), static_cast<int64_t>(width)};
        logits = model_->decode_step(torch::tensor(flat_ids, torch::kInt64).view(shape), cache,
                                     torch::tensor(flat_valid, torch::kUInt8).view(shape).to(torch::kBool));
        const double share = since(td) / static_cast<double>(running);
        for (size_t g = 0; g < group.size(); ++g)
          if (!feeds[g].empty()) items[group[g]].decode_s += share;
      }
    }
    const double total_share = since(t0) / static_cast<double>(queries.size());
    std::vector<Answer> out;
    for (Item& it : items) out.push_back(make_answer(it.session, it.calls, it.first_routing, it.generated, it.router_named, k,
                                                     {{"prefill", it.prefill_s}, {"decode", it.decode_s},
                                                      {"total", total_share},
                                                      {"prefill.score", it.stages.score_s},
                                                      {"prefill.topk", it.stages.topk_s},
                                                      {"prefill.fetch", it.stages.fetch_s},
                                                      {"prefill.attend", it.stages.attend_s}}));
    return out;
  }

 private:
  static std::vector<int64_t> to64(const std::vector<int32_t>& v) { return std::vector<int64_t>(v.begin(), v.end()); }

  // One generated token through the interleave state machine (stop tokens, per-call limit).
  InterleaveSession::Action next_action(InterleaveSession& session, int64_t next, int call_tokens) const {
    if (std::find(stop_ids_.begin(), stop_ids_.end(), next) != stop_ids_.end() &&
        tok_->token_text(static_cast<int32_t>(next)) == "<|endoftext|>")
      return InterleaveSession::Action::Done;
    auto act = session.on_text(tok_->decode({static_cast<int32_t>(next)}));
    if (act == InterleaveSession::Action::Continue && call_tokens >= iopt_.max_call_tokens)
      act = session.on_call_limit();
    return act;
  }

  static std::optional<int64_t> first_unnamed(const std::vector<int64_t>& routed, const std::vector<int64_t>& named) {
    for (auto id : routed)
      if (std::find(named.begin(), named.end(), id) == named.end()) return id;
    return std::nullopt;
  }

  Answer make_answer(const InterleaveSession& session, const json& calls, const std::vector<int64_t>& first_routing,
                     int64_t generated, int router_named, int k, std::map<std::string, double> stages) const {
    Answer a;
    a.text = session.answer();
    int rank = 0;
    for (auto id : session.named_ids())
      if (id >= 0 && id < static_cast<int64_t>(doc_ids_.size())) a.retrieved.push_back({doc_ids_[id], 1.0 / (++rank)});
    if (static_cast<int>(a.retrieved.size()) > k) a.retrieved.resize(k);
    for (auto id : first_routing) a.router_topk.push_back(doc_ids_[id]);
    a.stage_seconds = std::move(stages);
    std::vector<std::string> predicted;
    for (auto id : session.predicted_ids())
      if (id >= 0 && id < static_cast<int64_t>(doc_ids_.size())) predicted.push_back(doc_ids_[id]);
    a.detail = {{"rounds", session.rounds()},
                {"stop_reason", session.stop_reason()},
                {"retrieval_end", session.retrieval_end()},
                {"generated_tokens", generated},
                {"response", session.response()},
                {"named_doc_ids", a.retrieved.size()},
                {"predicted_doc_ids", predicted},
                {"calls", calls}};
    if (router_names_) a.detail["router_named_steps"] = router_named;
    return a;
  }

  // First call: A (routing) B (template tail) C (response head). Later calls: the same plus the
  // transcript; the latest injected documents route too (msa-reference §9.3).
  PromptTokens build_prompt(const InterleaveSession& s) const {
    PromptTokens p;
    auto add = [&](const std::string& text, int role) {
      for (auto id : tok_->encode(text, true)) {
        p.ids.push_back(id);
        p.roles.push_back(role);
      }
    };
    add(s.routing_text(), 0);
    add(interleave::kTemplateTail, -2);
    add(interleave::kResponseHead, -1);
    const std::string& tr = s.transcript();
    if (!tr.empty()) {
      auto [b, e] = s.routing_region();
      add(tr.substr(0, b), -1);
      add(tr.substr(b, e - b), 0);
      add(tr.substr(e), -1);
    }
    return p;
  }

  json routing_json(const std::vector<LayerRouting>& routing, size_t row) const {
    json out = json::array();
    for (const auto& r : routing) {
      json ids = json::array();
      for (auto id : r.doc_ids[row]) ids.push_back(doc_ids_[id]);
      out.push_back({{"layer", r.layer}, {"doc_ids", ids}, {"scores", r.scores[row]}});
    }
    return out;
  }

  std::string model_dir_, spec_, bank_dir_;
  bool cold_content_ = false;  // evict the mapped content before every prefill
  bool router_names_ = false;  // naming=router (diagnostic, not the paper's protocol)
  int64_t end_of_retrieve_id_ = -1;
  int64_t segment_docs_ = 256;
  std::optional<KeyDtype> key_dtype_;
  int64_t ram_budget_ = 0, gpu_budget_ = 0;
  std::string content_tier_ = "auto";
  int64_t threads_ = 2;
  std::unique_ptr<MsaModel> model_;
  ShardOptions shard_opt_;
  std::unique_ptr<ShardedBank> shards_;  // declared after model_: stops its workers first
  std::unique_ptr<TextTokenizer> tok_;
  InterleaveOptions iopt_;
  std::vector<int64_t> stop_ids_, template_;
  MemoryBank bank_;
  std::vector<std::string> doc_ids_;
  std::map<int64_t, std::string> doc_text_;
};

}  // namespace

void register_msa_backend(BackendRegistry& registry) {
  registry.add({"msa", "MSA model with Memory Interleave over a memory bank of the corpus",
                "model=DIR (default: the shipped backends/msa/msa-small/model), topk=K (default: the topk a "
                "suite-trained model records in msabench_inference.json, 1 for the shipped model; else 16), interleave=1, inject=1, "
                "max_rounds=6, max_tokens=256 (per call), routing=engine|cosine, positions=code|paper, "
                "query_position=N (first question position; default from positions, or the trained one that a "
                "suite-trained model records in msabench_inference.json, as it records its topk), threads=2, "
                "bank_dir=DIR (persistent memory bank per corpus; default: in memory), "
                "segment_docs=256 (documents per bank segment), "
                "key_dtype=fp32|bf16|int8 (routing keys in the blocked scan layout; int8 with per-chunk scales), "
                "ram_budget=SIZE (e.g. 8G; refused before encoding when the routing keys cannot fit; content K/V "
                "memory-mapped from bank_dir when they do not), gpu_budget=SIZE (GPU builds only), content=auto|ram|mmap, "
                "fetch_threads=0 (N > 0: a pool of N threads copies selected documents' K/V), "
                "prefetch=1 (with a pool: fetch the next layer's content while this one attends), "
                "cold_content=0 (1: evict mapped content from the page cache before every prefill), "
                "shards=N (Memory Parallel: bank sharded over N processes; see README), master_addr=HOST, "
                "master_port=PORT, launch=1|0, naming=model|router (router: the backend writes each retrieval step's "
                "document id, the router's best not yet named document, and the model only decides whether to "
                "retrieve; a diagnostic that separates routing and reading from naming, not the paper's protocol)",
                [](const BackendSpec& s) { return std::make_unique<MsaBackend>(s); }});
}

}  // namespace msabench
