#include "core/model/msa.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/model/routing_kernel.h"
#include "core/thread_pool.h"

namespace msabench {

namespace {

constexpr float kLowest = std::numeric_limits<float>::lowest();
constexpr double kValidScore = -1e9;  // documents scoring at or below this are never selected

// scatter_reduce is marked "beta" in LibTorch 1.13 and says so on every first use; the API is
// stable for the calls made here, so that one notice is dropped and every other warning kept.
class QuietBetaNotices : public c10::WarningHandler {
 public:
  explicit QuietBetaNotices(c10::WarningHandler* next) : next_(next) {}
  void process(const c10::SourceLocation& loc, const std::string& msg, const bool verbatim) override {
    if (msg.find("is in beta") != std::string::npos) return;
    next_->process(loc, msg, verbatim);
  }

 private:
  c10::WarningHandler* next_;
};
const bool kQuietBeta = [] {
  static QuietBetaNotices handler(c10::Warning::get_warning_handler());
  c10::Warning::set_warning_handler(&handler);
  return true;
}();

torch::Tensor bool_opts_ones(int64_t b, int64_t n, torch::Device d) {
  return torch::ones({b, n}, torch::TensorOptions().dtype(torch::kBool).device(d));
}


using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

using ContentKV = std::pair<torch::Tensor, torch::Tensor>;

// Content K/V of one document in one router slot, copied out of the bank (RAM or a mapping; for a
// mapping the copy is where the page faults, i.e. the disk reads, happen).
ContentKV fetch_document(const MemoryBank& bank, int slot, int64_t doc) {
  std::vector<int64_t> chunks(static_cast<size_t>(bank.doc_chunks[doc]));
  std::iota(chunks.begin(), chunks.end(), bank.doc_first_chunk[doc]);
  if (chunks.empty()) return {};
  return {bank.gather_content(false, slot, chunks), bank.gather_content(true, slot, chunks)};
}

// Fetches content per (router slot, document), once per batch however many rows selected it.
// With a pool the copies run on its threads (FIFO: what a layer needs is queued before any
// speculative fetch for the next layer) and the caller waits only when it assembles a row.
class ContentFetcher {
 public:
  ContentFetcher(const MemoryBank& bank, ThreadPool* pool) : bank_(bank), pool_(pool) {}
  ~ContentFetcher() { drain(); }  // pool jobs read the bank: never outlive the caller's frame
  ContentFetcher(const ContentFetcher&) = delete;
  ContentFetcher& operator=(const ContentFetcher&) = delete;

  void request_layer(int slot, const std::vector<std::vector<int64_t>>& rows) {
    for (const auto& r : rows)
      for (auto d : r) want(slot, d, false);
  }
  void prefetch(int slot, const std::vector<std::vector<int64_t>>& rows) {
    if (!pool_) return;  // speculation only pays when it runs beside the caller
    for (const auto& r : rows)
      for (auto d : r) want(slot, d, true);
  }
  // Documents in the given order, chunks concatenated; undefined tensors when there are none.
  ContentKV row(int slot, const std::vector<int64_t>& docs) {
    std::vector<torch::Tensor> ks, vs;
    for (auto d : docs) {
      Entry& e = entries_.at({slot, d});
      e.used = true;
      const ContentKV& kv = e.future.get();
      if (!kv.first.defined()) continue;
      ks.push_back(kv.first);
      vs.push_back(kv.second);
    }
    if (ks.empty()) return {};
    return {torch::cat(ks, 1), torch::cat(vs, 1)};
  }
  void finish(PrefillStats& st) {
    drain();
    for (const auto& [key, e] : entries_) {
      st.fetched_docs += e.used;
      st.prefetch_hits += e.speculative && e.used;
      st.prefetch_unused += e.speculative && !e.used;
    }
  }

 private:
  struct Entry {
    std::shared_future<ContentKV> future;
    bool speculative = false, used = false;
  };
  void want(int slot, int64_t doc, bool speculative) {
    auto [it, fresh] = entries_.try_emplace({slot, doc});
    if (!fresh) return;
    it->second.speculative = speculative;
    const MemoryBank* bank = &bank_;
    if (pool_) {
      it->second.future = pool_->submit([bank, slot, doc] { return fetch_document(*bank, slot, doc); }).share();
    } else {
      std::promise<ContentKV> done;
      done.set_value(fetch_document(*bank, slot, doc));
      it->second.future = done.get_future().share();
    }
  }
  void drain() {
    for (auto& [key, e] : entries_)
      if (e.future.valid()) e.future.wait();
  }

  const MemoryBank& bank_;
  ThreadPool* pool_;
  std::map<std::pair<int, int64_t>, Entry> entries_;
};

}  // namespace

torch::Tensor prefix_causal_bias(const torch::Tensor& prefix_valid, const torch::Tensor& block_valid) {
  const int64_t B = block_valid.size(0), Lq = block_valid.size(1), Tp = prefix_valid.size(1);
  auto dev = block_valid.device();
  auto qi = torch::arange(Lq, torch::TensorOptions().device(dev)).unsqueeze(1);
  auto kj = torch::arange(Lq, torch::TensorOptions().device(dev)).unsqueeze(0);
  auto causal = (kj <= qi).unsqueeze(0) & block_valid.unsqueeze(1);          // [B, Lq, Lq]
  auto pre = prefix_valid.unsqueeze(1).expand({B, Lq, Tp});                    // [B, Lq, Tp]
  auto allowed = torch::cat({pre, causal}, 2);
  auto bias = torch::zeros({B, 1, Lq, Tp + Lq}, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
  return bias.masked_fill_(allowed.logical_not().unsqueeze(1), kLowest);
}

MsaOptions MsaOptions::from_config(const ModelConfig& cfg) {
  MsaOptions o;
  if (!cfg.msa) return o;
  const auto& m = *cfg.msa;
  // The engine reads `doc_top_k` (absent from the converted config) and so uses its default 16.
  o.doc_top_k = 16;
  o.similarity = m.aux_loss_method == "INFONCE" ? RoutingSimilarity::Cosine : RoutingSimilarity::ScaledDot;
  o.head_reduce = m.head_reduce;
  o.query_reduce = m.query_reduce == Reduce::Mean ? QueryReduce::Mean : QueryReduce::Max;
  o.chunk_reduce = m.chunk_reduce;
  o.pooling_kernel_size = m.pooling_kernel_size;
  o.query_position_start = 3 + o.doc_top_k;
  return o;
}

void MsaOptions::use_paper_variant() {
  similarity = RoutingSimilarity::Cosine;
  query_position_start = doc_top_k;
}

int64_t MemoryBank::bytes() const {
  int64_t n = 0;
  for (const auto* set : {&k, &v, &router_k})
    for (const auto& t : *set) n += t.defined() ? static_cast<int64_t>(t.nbytes()) : 0;
  for (const auto* set : {&template_k, &template_v})
    for (const auto& t : *set) n += static_cast<int64_t>(t.nbytes());
  return n + static_cast<int64_t>(chunk_doc.size() * sizeof(int64_t));
}

torch::Tensor MemoryBank::gather_content(bool values, int slot, const std::vector<int64_t>& chunks) const {
  const auto& whole = values ? v : k;
  if (slot < static_cast<int>(whole.size()) && whole[slot].defined())
    return whole[slot].index_select(1, torch::tensor(chunks, torch::kInt64).to(whole[slot].device()));
  const auto& parts = (values ? v_parts : k_parts).at(slot);
  // Runs of chunks in one segment are copied out of its mapping together.
  std::vector<torch::Tensor> pieces;
  for (size_t i = 0; i < chunks.size();) {
    const int64_t part = std::upper_bound(part_first_chunk.begin(), part_first_chunk.end(), chunks[i]) -
                         part_first_chunk.begin() - 1;
    const int64_t end = part + 1 < static_cast<int64_t>(part_first_chunk.size()) ? part_first_chunk[part + 1] : num_chunks();
    std::vector<int64_t> local;
    for (; i < chunks.size() && chunks[i] >= part_first_chunk[part] && chunks[i] < end; ++i)
      local.push_back(chunks[i] - part_first_chunk[part]);
    pieces.push_back(parts[part].index_select(1, torch::tensor(local, torch::kInt64)));
  }
  return torch::cat(pieces, 1);
}

int MemoryBank::slot_of_layer(int layer) const {
  for (size_t i = 0; i < router_layers.size(); ++i)
    if (router_layers[i] == layer) return static_cast<int>(i);
  return -1;
}

torch::Tensor pool_chunks(const torch::Tensor& x, const std::vector<int64_t>& lengths, int64_t P) {
  const int64_t B = x.size(0), H = x.size(1), L = x.size(2), D = x.size(3);
  const int64_t nc = (L + P - 1) / P, Lp = nc * P;
  auto dev = x.device();
  auto len = torch::tensor(lengths, torch::kInt64).to(dev);
  auto mask = torch::arange(Lp, torch::TensorOptions().dtype(torch::kInt64).device(dev)).unsqueeze(0) < len.unsqueeze(1);
  auto xf = torch::constant_pad_nd(x.to(torch::kFloat32), {0, 0, 0, Lp - L});
  xf = xf * mask.unsqueeze(1).unsqueeze(-1).to(torch::kFloat32);
  auto sums = xf.view({B, H, nc, P, D}).sum(3);                     // [B, H, nc, D]
  auto counts = mask.view({B, nc, P}).sum(-1).to(torch::kFloat32);  // [B, nc]
  auto means = sums / counts.clamp_min(1).unsqueeze(1).unsqueeze(-1);
  std::vector<int64_t> keep;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < (lengths[b] + P - 1) / P; ++c) keep.push_back(b * nc + c);
  auto flat = means.permute({1, 0, 2, 3}).reshape({H, B * nc, D});
  return flat.index_select(1, torch::tensor(keep, torch::kInt64).to(dev));
}

MsaModel::MsaModel(Qwen3Model base, MsaOptions opt) : base_(std::move(base)), opt_(opt) {
  if (!base_.config().msa) throw Error("MSA needs a config with model_type \"msa\" and an msa_config");
  if (opt_.pooling_kernel_size < 1) throw Error("MSA: pooling kernel size must be >= 1");
  if (opt_.doc_top_k < 1) throw Error("MSA: doc_top_k must be >= 1");
}

PrefillStats& PrefillStats::operator+=(const PrefillStats& o) {
  score_s += o.score_s;
  topk_s += o.topk_s;
  fetch_s += o.fetch_s;
  attend_s += o.attend_s;
  fetched_docs += o.fetched_docs;
  prefetch_hits += o.prefetch_hits;
  prefetch_unused += o.prefetch_unused;
  return *this;
}

ThreadPool* MsaModel::fetch_pool() const {
  if (opt_.fetch_threads < 1) return nullptr;
  if (!fetch_pool_ || fetch_pool_->size() != opt_.fetch_threads) fetch_pool_ = std::make_shared<ThreadPool>(opt_.fetch_threads);
  return fetch_pool_.get();
}

MsaModel MsaModel::load(const std::string& dir, torch::Dtype dtype) {
  Qwen3Model base = Qwen3Model::load(dir, dtype);
  if (!base.config().msa) throw Error(dir + ": not an MSA checkpoint (config model_type is \"" + base.config().model_type + "\")");
  MsaOptions o = MsaOptions::from_config(base.config());
  return MsaModel(std::move(base), o);
}

MemoryBank MsaModel::encode_memory(const std::vector<std::vector<int64_t>>& docs, const std::vector<int64_t>& template_ids,
                                   const std::function<void(int64_t)>& progress) const {
  torch::NoGradGuard no_grad;
  const auto& cfg = base_.config();
  const auto& msa = *cfg.msa;
  const int64_t P = opt_.pooling_kernel_size;
  auto dev = base_.device();
  MemoryBank bank;
  bank.router_layers = msa.router_layers;
  std::sort(bank.router_layers.begin(), bank.router_layers.end());
  const int last_needed = bank.router_layers.back();
  const size_t S = bank.router_layers.size();
  for (const auto& d : docs) {
    if (d.empty()) throw Error("MSA stage 1: empty document");
    for (auto id : d)
      if (id < 0 || id >= cfg.vocab_size) throw Error("MSA stage 1: token id " + std::to_string(id) + " outside the vocabulary");
  }

  // Template prefix K/V for every layer (positions 0..T-1).
  {
    const int64_t T = static_cast<int64_t>(template_ids.size());
    if (T == 0) throw Error("MSA stage 1: empty template prefix");
    auto ids = torch::tensor(template_ids, torch::kInt64).unsqueeze(0).to(dev);
    auto pos = torch::arange(T, torch::kInt64).unsqueeze(0).to(dev);
    auto bias = prefix_causal_bias(torch::zeros({1, 0}, torch::TensorOptions().dtype(torch::kBool).device(dev)),
                                   bool_opts_ones(1, T, dev));
    auto h = torch::embedding(base_.embed_tokens, ids);
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
      const auto& L = base_.layers[l];
      auto x = base_.rms_norm(h, L.input_norm);
      auto qkv = base_.project_qkv(L, x, pos);
      bank.template_k.push_back(qkv.k[0].clone());
      bank.template_v.push_back(qkv.v[0].clone());
      h = h + torch::linear(base_.attend(qkv.q, qkv.k, qkv.v, bias), L.o_proj);
      h = h + base_.mlp(L, base_.rms_norm(h, L.post_norm));
    }
  }

  std::vector<int64_t> doc_tokens;
  for (const auto& d : docs) doc_tokens.push_back(static_cast<int64_t>(d.size()));
  const auto batches = stage1_batches(doc_tokens);
  std::vector<size_t> order;
  for (const auto& batch : batches) order.insert(order.end(), batch.begin(), batch.end());
  std::vector<std::vector<torch::Tensor>> pk(S), pv(S), pr(S);  // pieces in batch order
  std::vector<int64_t> piece_doc;                                 // document of each pooled chunk, batch order
  int64_t done = 0;
  for (const auto& batch : batches) {
    const size_t start = static_cast<size_t>(done), end = start + batch.size();
    const int64_t Lmax = static_cast<int64_t>(docs[order[start]].size());
    const int64_t B = static_cast<int64_t>(end - start);
    auto ids = torch::zeros({B, Lmax}, torch::kInt64);
    std::vector<int64_t> lengths;
    for (int64_t b = 0; b < B; ++b) {
      const auto& d = docs[order[start + b]];
      lengths.push_back(static_cast<int64_t>(d.size()));
      ids[b].narrow(0, 0, d.size()).copy_(torch::tensor(d, torch::kInt64));
      for (int64_t c = 0; c < (lengths[b] + P - 1) / P; ++c) piece_doc.push_back(static_cast<int64_t>(order[start + b]));
    }
    ids = ids.to(dev);
    auto pos = torch::arange(Lmax, torch::kInt64).unsqueeze(0).expand({B, Lmax}).to(dev);
    auto valid = torch::arange(Lmax, torch::kInt64).unsqueeze(0) < torch::tensor(lengths, torch::kInt64).unsqueeze(1);
    valid = valid.to(dev);
    auto bias = prefix_causal_bias(torch::zeros({B, 0}, torch::TensorOptions().dtype(torch::kBool).device(dev)), valid);
    auto h = torch::embedding(base_.embed_tokens, ids);
    for (int l = 0; l <= last_needed; ++l) {
      const auto& L = base_.layers[l];
      auto x = base_.rms_norm(h, L.input_norm);
      auto qkv = base_.project_qkv(L, x, pos);
      const int slot = bank.slot_of_layer(l);
      if (slot >= 0) {
        const auto dt = base_.dtype();
        pk[slot].push_back(pool_chunks(qkv.k, lengths, P).to(dt));
        pv[slot].push_back(pool_chunks(qkv.v, lengths, P).to(dt));
        if (msa.decouple_router) {
          auto kr = torch::linear(x, L.router_k_proj).view({B, Lmax, -1, cfg.head_dim}).transpose(1, 2);
          pr[slot].push_back(pool_chunks(kr, lengths, P).to(dt));
        }
      }
      if (l == last_needed) break;  // later layers store nothing
      h = h + torch::linear(base_.attend(qkv.q, qkv.k, qkv.v, bias), L.o_proj);
      h = h + base_.mlp(L, base_.rms_norm(h, L.post_norm));
    }
    done += B;
    if (progress) progress(done);
  }

  // Reorder chunks from batch order into document order.
  std::vector<int64_t> perm(piece_doc.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return piece_doc[a] < piece_doc[b]; });
  auto perm_t = torch::tensor(perm, torch::kInt64).to(dev);
  bank.chunk_doc.resize(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) bank.chunk_doc[i] = piece_doc[perm[i]];
  bank.doc_first_chunk.assign(docs.size(), 0);
  bank.doc_chunks.assign(docs.size(), 0);
  for (size_t i = 0; i < bank.chunk_doc.size(); ++i) {
    const int64_t d = bank.chunk_doc[i];
    if (bank.doc_chunks[d]++ == 0) bank.doc_first_chunk[d] = static_cast<int64_t>(i);
  }
  for (size_t s = 0; s < S; ++s) {
    if (docs.empty()) break;
    bank.k.push_back(torch::cat(pk[s], 1).index_select(1, perm_t).contiguous());
    bank.v.push_back(torch::cat(pv[s], 1).index_select(1, perm_t).contiguous());
    // Without decoupled router keys the content keys route (msa-reference §8.4).
    bank.router_k.push_back(msa.decouple_router ? torch::cat(pr[s], 1).index_select(1, perm_t).contiguous()
                                                : bank.k.back());
  }
  return bank;
}

std::vector<std::vector<size_t>> MsaModel::stage1_batches(const std::vector<int64_t>& doc_tokens) const {
  // Documents are independent, so batch them by length (longest first) under a padded-token budget.
  std::vector<size_t> order(doc_tokens.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return doc_tokens[a] > doc_tokens[b]; });
  std::vector<std::vector<size_t>> batches;
  for (size_t start = 0; start < order.size();) {
    const int64_t Lmax = doc_tokens[order[start]];
    size_t end = start + 1;
    while (end < order.size() && static_cast<int64_t>(end - start + 1) * Lmax <= opt_.stage1_token_budget) ++end;
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start), order.begin() + static_cast<std::ptrdiff_t>(end));
    start = end;
  }
  return batches;
}

torch::Tensor MsaModel::document_scores(const torch::Tensor& q_router_in, const torch::Tensor& routing_mask_in,
                                        const torch::Tensor& router_k, const torch::Tensor& chunk_doc,
                                        int64_t num_docs) const {
  torch::NoGradGuard no_grad;
  // One query: keep only its routing tokens, so no score row is computed just to be masked.
  torch::Tensor q_router = q_router_in, routing_mask = routing_mask_in;
  if (q_router_in.size(0) == 1) {
    auto idx = routing_mask_in[0].to(torch::kBool).nonzero().squeeze(1);
    if (idx.numel() > 0 && idx.numel() < q_router_in.size(2)) {
      q_router = q_router_in.index_select(2, idx);
      routing_mask = torch::ones({1, idx.numel()}, routing_mask_in.options().dtype(torch::kBool));
    }
  }
  const int64_t B = q_router.size(0), H = q_router.size(1), L = q_router.size(2), D = q_router.size(3);
  const int64_t Hk = router_k.size(0), C = router_k.size(1), G = H / Hk;
  const bool cosine = opt_.similarity == RoutingSimilarity::Cosine;
  auto dev = q_router.device();
  auto fopts = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  auto q = q_router.to(torch::kFloat32);
  if (cosine) q = q / q.norm(2, -1, true).clamp_min(1e-12);
  const double scale = cosine ? 1.0 : 1.0 / std::sqrt(static_cast<double>(D));
  auto q5 = q.view({B, Hk, G, L, D});
  auto mask = routing_mask.to(torch::kBool);                  // [B, L]
  auto n_route = mask.sum(1).to(torch::kFloat32).clamp_min(1);  // [B]
  // Last routing token per row (rows without one are masked to the lowest score below).
  auto last_idx = (mask.to(torch::kInt64) * torch::arange(L, torch::TensorOptions().dtype(torch::kInt64).device(dev)))
                      .amax(1);
  auto has_route = mask.any(1);
  const bool all_route = mask.all().item<bool>();
  const bool doc_max = opt_.chunk_reduce == Reduce::Max;
  auto acc = doc_max ? torch::full({B, num_docs}, kLowest, fopts) : torch::zeros({B, num_docs}, fopts);
  auto cnt = torch::zeros({num_docs}, fopts);
  // Mean over heads commutes with the dot product: sum the query heads that share a KV head once,
  // then one [B*L, D] x [D, n] product per KV head replaces H of them (released config path).
  const bool fold_heads = opt_.head_reduce == Reduce::Mean;
  torch::Tensor q_fold;  // [Hk, B*L, D]
  if (fold_heads) q_fold = (q5.sum(2) * (scale / H)).permute({1, 0, 2, 3}).reshape({Hk, B * L, D}).contiguous();
  for (int64_t c0 = 0; c0 < C; c0 += opt_.score_tile_chunks) {
    const int64_t n = std::min(opt_.score_tile_chunks, C - c0);
    auto kt = router_k.narrow(1, c0, n).to(torch::kFloat32);                         // [Hk, n, D]
    if (cosine) kt = kt / kt.norm(2, -1, true).clamp_min(1e-12);
    torch::Tensor per_tok;                                                             // [B, L, n]
    if (fold_heads) {
      auto acc_s = torch::mm(q_fold[0], kt[0].t());
      for (int64_t g = 1; g < Hk; ++g) acc_s.addmm_(q_fold[g], kt[g].t());
      per_tok = acc_s.view({B, L, n});
    } else {
      auto s = torch::matmul(q5, kt.transpose(1, 2).unsqueeze(0).unsqueeze(2)) * scale;  // [B, Hk, G, L, n]
      per_tok = s.view({B, H, L, n}).amax(1);
    }
    torch::Tensor chunk;                                                               // [B, n]
    switch (opt_.query_reduce) {
      case QueryReduce::Max:
        chunk = all_route ? per_tok.amax(1) : per_tok.masked_fill(mask.logical_not().unsqueeze(-1), kLowest).amax(1);
        break;
      case QueryReduce::Mean:
        chunk = (per_tok * mask.unsqueeze(-1).to(torch::kFloat32)).sum(1) / n_route.unsqueeze(1);
        break;
      case QueryReduce::Last:
        chunk = per_tok.gather(1, last_idx.view({B, 1, 1}).expand({B, 1, n})).squeeze(1);
        break;
    }
    if (!all_route) chunk = chunk.masked_fill(has_route.logical_not().unsqueeze(1), kLowest);
    auto docs = chunk_doc.narrow(0, c0, n).to(dev);
    if (doc_max) {
      acc.scatter_reduce_(1, docs.unsqueeze(0).expand({B, n}), chunk, "amax", /*include_self=*/true);
    } else {
      acc.index_add_(1, docs, chunk);
      cnt.index_add_(0, docs, torch::ones({n}, fopts));
    }
  }
  if (!doc_max) {
    acc = acc / cnt.clamp_min(1).unsqueeze(0);
    acc = acc.masked_fill((cnt == 0).unsqueeze(0), kLowest);
  }
  return acc;
}

namespace {

// Best k of one row in a single pass, best first; equal scores keep the lower id because ids are
// visited in ascending order and only a strictly greater score displaces. Scores at or below
// kValidScore (documents without chunks) and NaN are never selected.
template <class T>
void top_k_row(const T* row, int64_t n, int64_t k, std::vector<int64_t>& ids, std::vector<double>& scores) {
  std::vector<std::pair<T, int64_t>> best;  // sorted, best first
  best.reserve(static_cast<size_t>(k) + 1);
  for (int64_t i = 0; i < n; ++i) {
    const T x = row[i];
    if (!(x > static_cast<T>(kValidScore))) continue;
    if (static_cast<int64_t>(best.size()) == k && !(x > best.back().first)) continue;
    auto at = best.end();
    while (at != best.begin() && x > (at - 1)->first) --at;
    best.insert(at, {x, i});
    if (static_cast<int64_t>(best.size()) > k) best.pop_back();
  }
  for (const auto& [x, i] : best) {
    ids.push_back(i);
    scores.push_back(static_cast<double>(x));
  }
}

}  // namespace

void MsaModel::top_k_documents(const torch::Tensor& doc_scores, int k, std::vector<std::vector<int64_t>>& ids,
                               std::vector<std::vector<double>>& scores) {
  const bool wide = doc_scores.scalar_type() == torch::kFloat64;
  auto cpu = doc_scores.to(torch::kCPU, wide ? torch::kFloat64 : torch::kFloat32).contiguous();
  const int64_t B = cpu.size(0), N = cpu.size(1), kk = std::min<int64_t>(k, N);
  ids.assign(B, {});
  scores.assign(B, {});
  for (int64_t b = 0; b < B; ++b) {
    if (wide) top_k_row(cpu.data_ptr<double>() + b * N, N, kk, ids[b], scores[b]);
    else top_k_row(cpu.data_ptr<float>() + b * N, N, kk, ids[b], scores[b]);
  }
}

torch::Tensor MsaModel::bank_document_scores(const MemoryBank& bank, int slot, const torch::Tensor& q_router,
                                             const torch::Tensor& routing_mask) const {
  if (slot < static_cast<int>(bank.router_index.size()) && bank.router_index[slot] && opt_.head_reduce == Reduce::Mean)
    return index_document_scores(opt_, q_router, routing_mask, *bank.router_index[slot], bank.index_doc_end,
                                 at::get_num_threads());
  // A view of the bank's chunk -> document map (document_scores copies tiles of it to the device).
  auto chunk_doc = torch::from_blob(const_cast<int64_t*>(bank.chunk_doc.data()),
                                    {static_cast<int64_t>(bank.chunk_doc.size())}, torch::kInt64);
  return document_scores(q_router, routing_mask, bank.router_k.at(slot), chunk_doc, bank.num_docs());
}

torch::Tensor MsaModel::prefill(const MemoryBank& bank, const std::vector<PromptTokens>& prompts, MsaCache& cache,
                                std::vector<LayerRouting>* routing, RoutingProvider* router,
                                PrefillStats* stats) const {
  torch::NoGradGuard no_grad;
  const auto& cfg = base_.config();
  auto dev = base_.device();
  const int64_t B = static_cast<int64_t>(prompts.size()), Hk = cfg.num_key_value_heads, D = cfg.head_dim;
  if (B == 0) throw Error("MSA prefill: no prompts");
  if (bank.template_k.size() != static_cast<size_t>(cfg.num_hidden_layers))
    throw Error("MSA prefill: memory bank was encoded with a different model (template layers)");
  int64_t Lmax = 0;
  for (const auto& p : prompts) {
    if (p.ids.empty() || p.ids.size() != p.roles.size()) throw Error("MSA prefill: prompt ids/roles empty or mismatched");
    Lmax = std::max<int64_t>(Lmax, p.ids.size());
  }
  auto ids = torch::zeros({B, Lmax}, torch::kInt64);
  auto roles = torch::full({B, Lmax}, -1, torch::kInt64);
  auto valid = torch::zeros({B, Lmax}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(prompts[b].ids.size()), off = Lmax - n;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t id = prompts[b].ids[i];
      if (id < 0 || id >= cfg.vocab_size) throw Error("MSA prefill: token id " + std::to_string(id) + " outside the vocabulary");
      ids[b][off + i] = id;
      roles[b][off + i] = prompts[b].roles[i];
    }
    valid[b].narrow(0, off, n).fill_(true);
  }
  // Left pads copy the first prompt position (msa-reference §5).
  auto positions = opt_.query_position_start + (valid.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
  auto routing_mask = (valid & (roles == 0)).to(dev);
  ids = ids.to(dev);
  valid = valid.to(dev);
  positions = positions.to(dev);

  cache.k.assign(cfg.num_hidden_layers, {});
  cache.v.assign(cfg.num_hidden_layers, {});
  cache.valid.assign(cfg.num_hidden_layers, {});
  if (routing) routing->clear();
  PrefillStats st;
  ContentFetcher fetcher(bank, router ? nullptr : fetch_pool());
  auto next_router_slot = [&](int64_t layer) {
    for (int64_t n = layer + 1; n < cfg.num_hidden_layers; ++n)
      if (int s = bank.slot_of_layer(static_cast<int>(n)); s >= 0) return s;
    return -1;
  };
  auto h = torch::embedding(base_.embed_tokens, ids);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    const auto& L = base_.layers[l];
    auto x = base_.rms_norm(h, L.input_norm);
    auto qkv = base_.project_qkv(L, x, positions);
    const int64_t T = bank.template_k[l].size(1);
    std::vector<torch::Tensor> keys = {bank.template_k[l].unsqueeze(0).expand({B, Hk, T, D})};
    std::vector<torch::Tensor> vals = {bank.template_v[l].unsqueeze(0).expand({B, Hk, T, D})};
    std::vector<torch::Tensor> kvalid = {bool_opts_ones(B, T, dev)};
    const int slot = bank.slot_of_layer(static_cast<int>(l));
    if (slot >= 0 && (router ? router->num_docs() : bank.num_docs()) > 0) {
      auto q_router = cfg.msa->decouple_router
                          ? torch::linear(x, L.router_q_proj).view({B, Lmax, -1, D}).transpose(1, 2)
                          : qkv.q;
      LayerRouting lr;
      lr.layer = static_cast<int>(l);
      auto t_route = Clock::now();
      if (router) {
        router->route(slot, q_router, routing_mask, opt_.doc_top_k, lr);
        st.score_s += since(t_route);
      } else {
        auto scores = bank_document_scores(bank, slot, q_router, routing_mask);
        st.score_s += since(t_route);
        auto t_topk = Clock::now();
        top_k_documents(scores, opt_.doc_top_k, lr.doc_ids, lr.scores);
        st.topk_s += since(t_topk);
      }
      // Every chunk of every selected document, documents in ascending id order.
      std::vector<std::vector<int64_t>> sel(B);
      for (int64_t b = 0; b < B; ++b) {
        sel[b] = lr.doc_ids[b];
        std::sort(sel[b].begin(), sel[b].end());
      }
      auto t_fetch = Clock::now();
      std::vector<std::pair<torch::Tensor, torch::Tensor>> content(B);
      if (router) {
        content = router->fetch(slot, sel);
        std::set<int64_t> distinct;
        for (const auto& r : sel) distinct.insert(r.begin(), r.end());
        st.fetched_docs += static_cast<int64_t>(distinct.size());
      } else {
        fetcher.request_layer(slot, sel);
        const int next_slot = next_router_slot(l);
        if (next_slot >= 0 && opt_.prefetch_next_layer) fetcher.prefetch(next_slot, sel);
        for (int64_t b = 0; b < B; ++b) content[b] = fetcher.row(slot, sel[b]);
      }
      st.fetch_s += since(t_fetch);
      int64_t nmax = 0;
      for (const auto& kv : content) nmax = std::max<int64_t>(nmax, kv.first.defined() ? kv.first.size(1) : 0);
      if (nmax > 0) {
        auto opts = torch::TensorOptions().dtype(base_.dtype()).device(dev);
        auto ck = torch::zeros({B, Hk, nmax, D}, opts), cv = torch::zeros({B, Hk, nmax, D}, opts);
        auto cvalid = torch::zeros({B, nmax}, torch::TensorOptions().dtype(torch::kBool).device(dev));
        for (int64_t b = 0; b < B; ++b) {
          if (!content[b].first.defined()) continue;
          const int64_t n = content[b].first.size(1);
          ck[b].narrow(1, 0, n).copy_(content[b].first);
          cv[b].narrow(1, 0, n).copy_(content[b].second);
          cvalid[b].narrow(0, 0, n).fill_(true);
        }
        keys.push_back(ck);
        vals.push_back(cv);
        kvalid.push_back(cvalid);
      }
      if (routing) routing->push_back(std::move(lr));
    }
    auto prefix_valid = torch::cat(kvalid, 1);
    keys.push_back(qkv.k);
    vals.push_back(qkv.v);
    auto K = torch::cat(keys, 2), V = torch::cat(vals, 2);
    auto bias = prefix_causal_bias(prefix_valid, valid);
    auto t_attend = Clock::now();
    auto attended = base_.attend(qkv.q, K, V, bias);
    st.attend_s += since(t_attend);
    h = h + torch::linear(attended, L.o_proj);
    h = h + base_.mlp(L, base_.rms_norm(h, L.post_norm));
    cache.k[l] = K;
    cache.v[l] = V;
    cache.valid[l] = torch::cat({prefix_valid, valid}, 1);
  }
  fetcher.finish(st);
  if (stats) *stats += st;
  cache.next_position = positions.select(1, Lmax - 1) + 1;
  return base_.hidden_to_logits(h.select(1, Lmax - 1));
}

torch::Tensor MsaModel::decode_step(const torch::Tensor& ids_in, MsaCache& cache, const torch::Tensor& step_valid_in) const {
  torch::NoGradGuard no_grad;
  const auto& cfg = base_.config();
  auto dev = base_.device();
  auto ids = ids_in.to(dev);
  const int64_t B = ids.size(0), n = ids.size(1);
  if (cache.k.size() != static_cast<size_t>(cfg.num_hidden_layers) || cache.k[0].size(0) != B)
    throw Error("MSA decode: cache does not match the batch (run prefill first)");
  auto step_valid = step_valid_in.defined() ? step_valid_in.to(dev).to(torch::kBool) : bool_opts_ones(B, n, dev);
  // Frozen tokens (valid = false) do not advance the position.
  auto sv = step_valid.to(torch::kInt64);
  auto positions = cache.next_position.unsqueeze(1) + sv.cumsum(1) - sv;
  auto h = torch::embedding(base_.embed_tokens, ids);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    const auto& L = base_.layers[l];
    auto x = base_.rms_norm(h, L.input_norm);
    auto qkv = base_.project_qkv(L, x, positions);
    auto bias = prefix_causal_bias(cache.valid[l], step_valid);
    auto K = torch::cat({cache.k[l], qkv.k}, 2), V = torch::cat({cache.v[l], qkv.v}, 2);
    h = h + torch::linear(base_.attend(qkv.q, K, V, bias), L.o_proj);
    h = h + base_.mlp(L, base_.rms_norm(h, L.post_norm));
    cache.k[l] = K;
    cache.v[l] = V;
    cache.valid[l] = torch::cat({cache.valid[l], step_valid}, 1);
  }
  cache.next_position = cache.next_position + sv.sum(1);
  return base_.hidden_to_logits(h.select(1, n - 1));
}

}  // namespace msabench
