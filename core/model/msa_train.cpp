#include "core/model/msa_train.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "core/model/msa.h"
#include "core/model/qwen3.h"
#include "core/progress.h"
#include "core/tokenizer/text_tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

constexpr float kLowest = std::numeric_limits<float>::lowest();

struct Tokenized {
  std::vector<std::vector<int64_t>> docs;
  std::vector<int64_t> active;   // template + prompt + response
  std::vector<int> roles;        // per active token
  std::vector<int64_t> labels;   // per active token: next-token target or -100
  std::vector<int64_t> context_labels;  // the same for system-written targets after the template (context LM)
  std::vector<uint8_t> id_target;  // per active token: its target is a token of a retrieval step "[i]..."
  std::vector<uint8_t> later_step;  // per active token: ... of a trained retrieval step after the first trained one
  std::vector<uint8_t> answer_target;  // per active token: its target is a token of the answer value
  std::vector<uint8_t> stop_target;  // per active token: its target is a trained <End-of-Retrieve> (the stop decision)
  int64_t template_len = 0;
  std::vector<int> positives;
  std::vector<std::vector<int64_t>> doc_tag;  // per memory document: the tokens of its "[id]"
  // Set by locate_keys (key_match_weight only): the routing row (index among the role-0 tokens)
  // of the question's last key token, and each needle's (document, position of its key's last
  // token), the asked needle first. -1 / empty otherwise.
  int64_t key_route_row = -1;
  std::vector<std::pair<int, int64_t>> needle_key_end;
};

std::vector<int64_t> enc(const TextTokenizer& tok, const std::string& s) {
  auto ids = tok.encode(s, true);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

// Where a sample's documents go: the memory (the "msa" objective), nowhere (the "lm" objective and
// the probe: the active sequence only), or inline after the template head, as a full-context model
// reads them (the "lm" objective's documents_in_context).
enum class Documents { Memory, None, InContext };

Tokenized tokenize(const TextTokenizer& tok, const TrainingSample& s, Documents where = Documents::Memory) {
  Tokenized t;
  if (where == Documents::Memory)
    for (size_t i = 0; i < s.documents.size(); ++i) {
      t.docs.push_back(enc(tok, interleave::memory_document(s.ids[i], s.documents[i])));
      const auto tag = enc(tok, interleave::document_tag(s.ids[i]));
      t.doc_tag.push_back(tag);
    }
  std::vector<uint8_t> in_id, in_answer, in_later, in_stop;
  std::vector<int64_t> context;
  int retrieval_steps = 0;
  using Kind = TrainingSegment::Kind;
  auto append = [&](const std::string& text, int role, bool trained, Kind kind = Kind::Text) {
    const bool id_step = trained && kind == Kind::RetrievalStep;
    const bool later = id_step && retrieval_steps++ > 0;
    const bool answer = trained && kind == Kind::Answer;
    const bool stop = trained && text == interleave::kEndOfRetrieve;
    // An answer is the protocol's "The answer to the question is: VALUE<|im_end|>" or a bare value
    // line (kv_direct); the value starts after the prefix and excludes the final token.
    const bool prefixed = answer && text.rfind(interleave::kAnswerPrefix, 0) == 0;
    const auto value_begin = static_cast<int64_t>(enc(tok, prefixed ? interleave::kAnswerPrefix : "").size());
    const auto ids = enc(tok, text);
    for (size_t k = 0; k < ids.size(); ++k) {
      t.active.push_back(ids[k]);
      t.roles.push_back(role);
      t.labels.push_back(trained ? ids[k] : -100);  // shifted below
      context.push_back(!trained && role != -2 ? ids[k] : -100);
      in_id.push_back(id_step);
      in_later.push_back(later);
      in_stop.push_back(stop);
      in_answer.push_back(answer && static_cast<int64_t>(k) >= value_begin && k + 1 < ids.size());  // not <|im_end|>
    }
  };
  append(interleave::kTemplateHead, -2, false);
  t.template_len = static_cast<int64_t>(t.active.size());
  if (where == Documents::InContext)
    for (size_t i = 0; i < s.documents.size(); ++i) {
      // The closing "[id]" is a target: a dense signal (one per document) for the head that tells
      // each token which document it is in, which naming the document from the key needs.
      const interleave::MemoryDocumentPieces doc = interleave::memory_document_pieces(s.ids[i], s.documents[i]);
      append(doc.head_and_text, -2, false);
      append(doc.closing_tag, -2, true);
      append(doc.end, -2, false);
    }
  append(interleave::routing_query(s.question), 0, false);
  append(interleave::kTemplateTail, -2, false);
  append(interleave::kResponseHead, -1, false);
  for (const auto& seg : s.response) append(seg.text, seg.routes ? 0 : -1, seg.trained, seg.kind);
  // label[t] = target of the prediction made at t, i.e. token t+1 when that token is trained.
  std::vector<int64_t> shifted(t.labels.size(), -100);
  t.context_labels.assign(t.labels.size(), -100);
  t.id_target.assign(t.labels.size(), 0);
  t.later_step.assign(t.labels.size(), 0);
  t.answer_target.assign(t.labels.size(), 0);
  t.stop_target.assign(t.labels.size(), 0);
  for (size_t i = 0; i + 1 < t.labels.size(); ++i) {
    shifted[i] = t.labels[i + 1];
    t.context_labels[i] = context[i + 1];
    t.id_target[i] = in_id[i + 1];
    t.later_step[i] = in_later[i + 1];
    t.answer_target[i] = in_answer[i + 1];
    t.stop_target[i] = in_stop[i + 1];
  }
  t.labels = std::move(shifted);
  t.positives = s.positives;
  return t;
}

// Rows whose target is a token of a memory document's "[id]" inside a trained retrieval step (what
// id_name_acc scores; those with t.later_step set are what id_name_acc_later scores).
std::vector<int64_t> naming_rows(const Tokenized& t) {
  std::set<int64_t> tag_tokens;
  for (const auto& tag : t.doc_tag) tag_tokens.insert(tag.begin(), tag.end());
  std::vector<int64_t> rows;
  for (size_t i = 0; i < t.labels.size(); ++i)
    if (t.id_target[i] && tag_tokens.count(t.labels[i])) rows.push_back(static_cast<int64_t>(i));
  return rows;
}

// For key_match_weight only (a per-sample cost the other objectives do not pay): where the
// question's last key token is among the routing rows, and where each needle's key ends in its
// memory document. Token counts of text prefixes up to a key's end stay right for any tokenizer
// that does not merge across the key's end (bytes, bytes+ids).
void locate_keys(const TextTokenizer& tok, const TrainingSample& s, Tokenized& t) {
  if (s.needle_keys.empty()) return;
  auto last_token_of = [&](const std::string& text, const std::string& needle_key) {
    const std::string before = "for ";  // niah_needle_sentence and niah_single_question: "for KEY "
    const auto at = text.find(before + needle_key);
    if (at == std::string::npos) throw Error("training sample: key '" + needle_key + "' not found in its text");
    return static_cast<int64_t>(enc(tok, text.substr(0, at + before.size() + needle_key.size())).size()) - 1;
  };
  // The routing query is the first role-0 text, so its token index is its routing row.
  t.key_route_row = last_token_of(interleave::routing_query(s.question), s.needle_keys[0].key);
  for (const auto& n : s.needle_keys)
    t.needle_key_end.emplace_back(n.document,
                                  last_token_of(interleave::memory_document(s.ids[n.document], s.documents[n.document]), n.key));
}

// A per-copy-row measurement's mean over all copy rows, over the id rows and over the answer rows
// (TrainConfig::copy_answer_rows); -1 where there are no such rows. Kept apart because answer rows
// copy a word the model reads anyway: mixed in, they hid a missing id copy (session 29: 0.91 in the
// log, 0 on id rows held out).
struct CopyRowMeans {
  double all = -1, ids = -1, answers = -1;
};

// per_row[i] over rows whose kind is_answer[i] gives.
CopyRowMeans copy_row_means(const std::vector<double>& per_row, const std::vector<uint8_t>& is_answer) {
  double sum[2] = {0, 0};
  int64_t n[2] = {0, 0};
  for (size_t i = 0; i < per_row.size(); ++i) {
    sum[is_answer[i] ? 1 : 0] += per_row[i];
    ++n[is_answer[i] ? 1 : 0];
  }
  CopyRowMeans r;
  if (n[0] + n[1] > 0) r.all = (sum[0] + sum[1]) / static_cast<double>(n[0] + n[1]);
  if (n[0] > 0) r.ids = sum[0] / static_cast<double>(n[0]);
  if (n[1] > 0) r.answers = sum[1] / static_cast<double>(n[1]);
  return r;
}

// log_copy_share's [H, rows] as each row's share (mean over heads).
std::vector<double> row_shares(const torch::Tensor& log_share) {
  auto per_row = log_share.detach().exp().mean(0).to(torch::kFloat64).contiguous();
  return std::vector<double>(per_row.data_ptr<double>(), per_row.data_ptr<double>() + per_row.numel());
}

struct SampleLoss {
  torch::Tensor lm, aux, context_lm, id_lm;  // id_lm: mean CE over the retrieval-step targets only
  torch::Tensor id_probe;  // mean CE of the last router layer's chunk values read out as their document's id
  torch::Tensor id_attention;  // -log of the memory's attention share at the id rows (TrainConfig::id_attention_weight)
  // -log of the copy layer's attention share on the earlier copies of the id a row must write
  // (TrainConfig::copy_attention_weight), and that share (-1: no such row in this sample).
  torch::Tensor copy_attention = torch::zeros({});
  CopyRowMeans copy_attention_share;
  // CE and accuracy of those rows' sources read as their targets (TrainConfig::copy_value_weight;
  // -1: not measured).
  torch::Tensor copy_value = torch::zeros({});
  CopyRowMeans copy_value_accuracy;
  // TrainConfig::copy_gate_weight: the gated head's share of the residual at the rows that must not
  // copy (mean), and the same at copy rows (-1: no such rows, or no gate).
  torch::Tensor copy_gate = torch::zeros({});
  double copy_gate_shut = -1, copy_gate_open = -1;
  double id_probe_accuracy = 0;
  // Key matching (TrainConfig::key_match_weight): mean over router layers of the InfoNCE of the
  // question's key token over the needles' key chunks, and how often the asked needle's chunk won.
  torch::Tensor key_match;
  double key_match_top1 = -1;  // -1: not measured (no key-match term in this sample)
  // Greedy accuracy on the rows whose target is a token of a memory document's "[id]" (no delimiter);
  // -1 when the sample has none or no id option is on.
  double id_name_accuracy = -1;
  double id_name_later_accuracy = -1;  // the same over trained retrieval steps after the first (-1: none)
  double id_name_first_accuracy = -1;  // ... over the first trained retrieval step only (-1: none)
  // Per router layer: softmax mass that the rows predicting a document id put on the gold document's
  // chunks (mean over heads and rows; 0 when the gold is not selected); empty when not measured.
  std::vector<double> id_memory_attention;
  double router_recall = 0;  // mean over router layers: top-1 document is a positive
  double id_accuracy = 0;    // greedy next-token accuracy on the retrieval-step tokens ("[12]<|object_ref_end|>")
  double answer_accuracy = 0;  // the same on the answer value's tokens
  // CE (TrainConfig::stop_weight) and greedy accuracy (-1: none) on the rows whose target is a trained
  // <End-of-Retrieve>: the decision, after an injected document, to stop naming documents and answer.
  torch::Tensor stop_lm = torch::zeros({});
  double stop_accuracy = -1;
  int64_t tokens = 0;
};

// Greedy accuracy (-1: no row) and, when with_ce, mean CE over the few rows mask selects, from those
// rows' logits alone: a full-width argmax or CE per sample for one or two rows is the hot path's cost.
struct RowScore {
  double accuracy = -1;
  torch::Tensor ce = torch::zeros({});
};
RowScore score_rows(const torch::Tensor& logits, const std::vector<int64_t>& labels, const std::vector<uint8_t>& mask,
                    bool with_ce) {
  std::vector<int64_t> rows, targets;
  for (size_t i = 0; i < mask.size(); ++i)
    if (mask[i]) {
      rows.push_back(static_cast<int64_t>(i));
      targets.push_back(labels[i]);
    }
  RowScore r;
  if (rows.empty()) return r;
  auto picked = logits.index_select(0, torch::tensor(rows, torch::kInt64));
  auto y = torch::tensor(targets, torch::kInt64);
  r.accuracy = (picked.detach().argmax(-1) == y).to(torch::kFloat64).mean().item<double>();
  if (with_ce) r.ce = torch::nn::functional::cross_entropy(picked, y);
  return r;
}

// Greedy next-token accuracy of logits [L, V] on the positions where mask is set (0 if none), from
// those rows alone.
double masked_accuracy(const torch::Tensor& logits, const std::vector<int64_t>& labels, const std::vector<uint8_t>& mask) {
  torch::NoGradGuard ng;
  return std::max(0.0, score_rows(logits, labels, mask, false).accuracy);
}

// Causal attention of each document within itself, one document at a time: the batched form pads
// every document to the longest, N x Ld^2 scores (0.6 GB per layer for 11 documents next to one of
// 1,858 tokens). Rows past a document's end are zero; nothing reads them. causal: the [1, 1, Ld, Ld]
// causal bias, made once per sample; each document uses its top-left corner.
torch::Tensor attend_within_documents(const Qwen3Model& m, const Qwen3Model::QKV& qd, const std::vector<int64_t>& lengths,
                                      const torch::Tensor& causal) {
  const int64_t Ld = qd.q.size(2), width = qd.q.size(1) * qd.q.size(3);
  std::vector<torch::Tensor> outs;
  for (size_t i = 0; i < lengths.size(); ++i) {
    const int64_t n = lengths[i], b = static_cast<int64_t>(i);
    auto o = m.attend(qd.q.narrow(0, b, 1).narrow(2, 0, n), qd.k.narrow(0, b, 1).narrow(2, 0, n),
                      qd.v.narrow(0, b, 1).narrow(2, 0, n), causal.narrow(2, 0, n).narrow(3, 0, n));
    outs.push_back(n == Ld ? o : torch::cat({o, torch::zeros({1, Ld - n, width}, o.options())}, 1));
  }
  return torch::cat(outs, 0);
}

// Positions 0..upto of tokens holding `target`: where a copy row at `upto` can copy it from.
std::vector<int64_t> earlier_occurrences(const int64_t* tokens, int64_t upto, int64_t target) {
  std::vector<int64_t> at;
  for (int64_t j = 0; j <= upto; ++j)
    if (tokens[j] == target) at.push_back(j);
  return at;
}

// Answer rows (answer[i]: row i's target is a value token) whose value stands verbatim among
// tokens[0..first row] (TrainConfig::copy_answer_rows): each row with the position of its token in
// the latest such occurrence. A value is a run of consecutive answer rows; labels are the targets.
void add_answer_copy_rows(const int64_t* tokens, const int64_t* labels, const uint8_t* answer, int64_t n,
                          std::vector<int64_t>& rows, std::vector<std::vector<int64_t>>& sources) {
  for (int64_t i0 = 0; i0 < n;) {
    if (!answer[i0]) {
      ++i0;
      continue;
    }
    int64_t len = 0;
    while (i0 + len < n && answer[i0 + len]) ++len;
    // The occurrence must end at or before i0, the row that writes the value's first token.
    for (int64_t j = i0 + 1 - len; j >= 0; --j) {
      if (!std::equal(labels + i0, labels + i0 + len, tokens + j)) continue;
      for (int64_t k = 0; k < len; ++k) {
        rows.push_back(i0 + k);
        sources.push_back({j + k});
      }
      break;
    }
    i0 += len;
  }
}

// Where copy rows look (TrainConfig::copy_attention_weight): for rows of q [1, H, L, D] over keys
// k [1, Hk, Lk, D] under bias [1, 1, L, Lk], the log of the attention share each head gives the
// row's source columns. Returns [H, rows]; the scores are attend()'s.
torch::Tensor log_copy_share(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& bias,
                             const std::vector<int64_t>& rows, const std::vector<std::vector<int64_t>>& source_cols) {
  const int64_t H = q.size(1), Hk = k.size(1), D = q.size(3), Lk = k.size(2), R = static_cast<int64_t>(rows.size());
  auto at = torch::tensor(rows, torch::kInt64);
  auto scores = torch::matmul(q.index_select(2, at), k.repeat_interleave(H / Hk, 1).transpose(-1, -2)).to(torch::kFloat32) /
                    std::sqrt(static_cast<double>(D)) + bias.index_select(2, at);
  std::vector<float> mask(R * Lk, kLowest);  // 0 on each row's source columns
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j : source_cols[r]) mask[r * Lk + j] = 0.0f;
  auto source = torch::tensor(mask).view({1, 1, R, Lk});
  return (torch::logsumexp(scores + source, -1) - torch::logsumexp(scores, -1))[0];
}

// The copy loss from log_copy_share's [H, rows]: -log of the share's mean over heads (one head
// copying is enough), mean over rows.
torch::Tensor copy_attention_loss(const torch::Tensor& log_share) {
  return -(torch::logsumexp(log_share, 0) - std::log(static_cast<double>(log_share.size(0)))).mean();
}

// What copy rows read (TrainConfig::copy_value_weight): the mean of each row's source values
// v [1, Hk, Lk, D], every head reading them at once, through layer L's o_proj and the LM head.
// Returns the CE against the rows' targets; appends each row's greedy hit (0 or 1) to hits.
torch::Tensor copy_value_loss(const Qwen3Model& m, const Qwen3Layer& L, const torch::Tensor& v, int64_t H,
                              const std::vector<std::vector<int64_t>>& source_cols, const std::vector<int64_t>& targets,
                              std::vector<double>& hits) {
  std::vector<torch::Tensor> read;
  for (const auto& cols : source_cols)
    read.push_back(v[0].index_select(1, torch::tensor(cols, torch::kInt64)).mean(1));  // [Hk, D]
  auto heads = torch::stack(read).repeat_interleave(H / v.size(1), 1);                // [R, H, D]
  auto logits = m.hidden_to_logits(torch::linear(heads.flatten(1), L.o_proj)).to(torch::kFloat32);
  auto y = torch::tensor(targets, torch::kInt64);
  auto hit = (logits.argmax(-1) == y).to(torch::kFloat64).contiguous();
  hits.insert(hits.end(), hit.data_ptr<double>(), hit.data_ptr<double>() + hit.numel());
  return torch::nn::functional::cross_entropy(logits, y);
}

// The layer whose attention copy_attention_weight trains: copy_attention_layer, or by default the
// last router layer.
int copy_layer_of(const TrainConfig& cfg, const ModelConfig& mc) {
  if (cfg.copy_attention_layer >= 0) return cfg.copy_attention_layer;
  return mc.msa ? *std::max_element(mc.msa->router_layers.begin(), mc.msa->router_layers.end())
                : static_cast<int>(mc.num_hidden_layers) - 1;
}

SampleLoss sample_loss(Qwen3Model& m, const MsaOptions& opt, const TrainConfig& cfg, const Tokenized& t) {
  const auto& c = m.config();
  const auto& msa = *c.msa;
  const int64_t N = static_cast<int64_t>(t.docs.size()), H = c.num_attention_heads, Hk = c.num_key_value_heads,
                D = c.head_dim, P = opt.pooling_kernel_size, T = t.template_len;
  const int64_t La = static_cast<int64_t>(t.active.size());
  // documents, right-padded
  int64_t Ld = 0;
  std::vector<int64_t> lengths;
  for (const auto& d : t.docs) {
    Ld = std::max<int64_t>(Ld, d.size());
    lengths.push_back(static_cast<int64_t>(d.size()));
  }
  auto dids = torch::zeros({N, Ld}, torch::kInt64);
  for (int64_t i = 0; i < N; ++i) dids[i].narrow(0, 0, lengths[i]).copy_(torch::tensor(t.docs[i], torch::kInt64));
  auto dpos = torch::arange(Ld, torch::kInt64).unsqueeze(0).expand({N, Ld});
  const bool padded = cfg.document_attention == "padded";
  torch::Tensor dbias;  // [N, 1, Ld, Ld] when padded, else the one [1, 1, Ld, Ld] causal bias
  if (padded) {
    auto dvalid = torch::arange(Ld, torch::kInt64).unsqueeze(0) < torch::tensor(lengths, torch::kInt64).unsqueeze(1);
    dbias = prefix_causal_bias(torch::zeros({N, 0}, torch::kBool), dvalid);
  } else {
    dbias = prefix_causal_bias(torch::zeros({1, 0}, torch::kBool), torch::ones({1, Ld}, torch::kBool));
  }
  std::vector<int64_t> chunk_doc;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < (lengths[i] + P - 1) / P; ++k) chunk_doc.push_back(i);
  const int64_t C = static_cast<int64_t>(chunk_doc.size());
  std::vector<int64_t> first_chunk(N, 0), nchunks(N, 0);
  for (int64_t k = 0; k < C; ++k)
    if (nchunks[chunk_doc[k]]++ == 0) first_chunk[chunk_doc[k]] = k;
  // Doc max over chunks through a padded [N, maxc] gather (differentiable).
  int64_t maxc = *std::max_element(nchunks.begin(), nchunks.end());
  std::vector<int64_t> gather_idx(N * maxc, 0);
  std::vector<uint8_t> gather_ok(N * maxc, 0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < maxc; ++k)
      if (k < nchunks[i]) {
        gather_idx[i * maxc + k] = first_chunk[i] + k;
        gather_ok[i * maxc + k] = 1;
      }
  auto gidx = torch::tensor(gather_idx, torch::kInt64);
  auto gok = torch::tensor(std::vector<int64_t>(gather_ok.begin(), gather_ok.end()), torch::kInt64).to(torch::kBool).view({N, maxc});

  // active sequence: template at 0..T-1, the rest from the query start position
  auto aids = torch::tensor(t.active, torch::kInt64).unsqueeze(0);
  std::vector<int64_t> apos(La);
  for (int64_t i = 0; i < La; ++i) apos[i] = i < T ? i : opt.query_position_start + (i - T);
  auto apos_t = torch::tensor(apos, torch::kInt64).unsqueeze(0);
  std::vector<int64_t> route_idx;
  for (int64_t i = 0; i < La; ++i)
    if (t.roles[i] == 0) route_idx.push_back(i);
  auto route_t = torch::tensor(route_idx, torch::kInt64);
  auto act_causal = prefix_causal_bias(torch::zeros({1, 0}, torch::kBool), torch::ones({1, La}, torch::kBool));

  std::vector<int> routers = msa.router_layers;
  std::sort(routers.begin(), routers.end());
  const int last_router = routers.back();
  auto hd = torch::embedding(m.embed_tokens, dids);
  auto ha = torch::embedding(m.embed_tokens, aids);
  std::vector<torch::Tensor> aux_terms, key_match_terms;
  double key_match_hits = 0;
  torch::Tensor id_probe = torch::zeros({});
  double id_probe_accuracy = 0;
  double recall_sum = 0;
  int router_count = 0;
  std::vector<int64_t> id_rows;  // rows whose target is a document id token (measured with the id options)
  if (cfg.id_lm_weight > 0 || cfg.id_probe_weight > 0 || cfg.id_attention_weight > 0 || cfg.copy_attention_weight > 0 ||
      cfg.copy_value_weight > 0)
    id_rows = naming_rows(t);
  // Later naming rows whose id is already in the active text, and where (copy_attention_weight).
  std::vector<int64_t> copy_rows;
  std::vector<std::vector<int64_t>> copy_sources;
  for (auto i : id_rows) {
    if (!t.later_step[i]) continue;
    auto at = earlier_occurrences(t.active.data(), i, t.labels[i]);
    if (at.empty()) continue;
    copy_rows.push_back(i);
    copy_sources.push_back(std::move(at));
  }
  const size_t id_copy_rows = copy_rows.size();
  if (cfg.copy_answer_rows && (cfg.copy_attention_weight > 0 || cfg.copy_value_weight > 0))
    add_answer_copy_rows(t.active.data(), t.labels.data(), t.answer_target.data(), La, copy_rows, copy_sources);
  std::vector<uint8_t> copy_row_is_answer(copy_rows.size(), 0);
  std::fill(copy_row_is_answer.begin() + static_cast<std::ptrdiff_t>(id_copy_rows), copy_row_is_answer.end(), 1);
  std::vector<uint8_t> is_copy_row(La, 0);
  for (auto i : copy_rows) is_copy_row[i] = 1;
  // The rows id_attention_weight pulls towards the memory (and id_memory_attention measures).
  std::vector<int64_t> memory_rows = id_rows;
  if (!cfg.id_attention_copy_rows)
    memory_rows.erase(std::remove_if(memory_rows.begin(), memory_rows.end(), [&](int64_t i) { return is_copy_row[i] != 0; }),
                      memory_rows.end());
  torch::Tensor copy_attention = torch::zeros({}), copy_value = torch::zeros({});
  CopyRowMeans copy_attention_share, copy_value_accuracy;
  const int copy_layer = copy_layer_of(cfg, c);
  // The copy rows' attention at copy_layer over keys K (values V) under bias, where keys past the
  // template are shifted by n memory chunks (0 outside the router layers).
  auto measure_copy = [&](const torch::Tensor& q, const torch::Tensor& K, const torch::Tensor& V, const torch::Tensor& bias,
                          int64_t n) {
    std::vector<std::vector<int64_t>> cols = copy_sources;
    for (auto& row : cols)
      for (auto& j : row) j = j < T ? j : j + n;
    {
      c10::AutoGradMode grad(cfg.copy_attention_weight > 0);
      auto log_share = log_copy_share(q, K, bias, copy_rows, cols);
      copy_attention_share = copy_row_means(row_shares(log_share), copy_row_is_answer);
      if (cfg.copy_attention_weight > 0) copy_attention = copy_attention_loss(log_share);
    }
    if (cfg.copy_value_weight > 0) {
      std::vector<int64_t> targets;
      for (auto i : copy_rows) targets.push_back(t.labels[i]);
      std::vector<double> hits;
      copy_value = copy_value_loss(m, m.layers[copy_layer], V, q.size(1), cols, targets, hits);
      copy_value_accuracy = copy_row_means(hits, copy_row_is_answer);
    }
  };
  // The gated head's write at copy_layer (TrainConfig::copy_gate_weight): its squared norm over the
  // residual's (detached, so the gate cannot be met by growing the residual), per row.
  torch::Tensor copy_gate = torch::zeros({});
  double copy_gate_shut = -1, copy_gate_open = -1;
  auto gate_copy_head = [&](const Qwen3Layer& L, const torch::Tensor& out, const torch::Tensor& h) {
    std::vector<int64_t> shut, open;
    for (int64_t i = T; i < La; ++i) {
      if (is_copy_row[i]) open.push_back(i);
      else if (t.labels[i] != -100) shut.push_back(i);
    }
    c10::AutoGradMode grad(cfg.copy_gate_weight > 0);
    auto head = out[0].narrow(-1, cfg.copy_gate_head * D, D);
    auto write = torch::linear(head, L.o_proj.narrow(1, cfg.copy_gate_head * D, D)).to(torch::kFloat32).pow(2).sum(-1);
    auto share = write / h[0].detach().to(torch::kFloat32).pow(2).sum(-1).clamp_min(1e-12);  // [La]
    if (!shut.empty()) {
      copy_gate = share.index_select(0, torch::tensor(shut, torch::kInt64)).mean();
      copy_gate_shut = copy_gate.detach().item<double>();
    }
    if (!open.empty()) copy_gate_open = share.detach().index_select(0, torch::tensor(open, torch::kInt64)).mean().item<double>();
  };
  std::vector<double> id_memory_attention;
  std::vector<torch::Tensor> id_attention_terms;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const auto& L = m.layers[l];
    const bool is_router = std::find(routers.begin(), routers.end(), static_cast<int>(l)) != routers.end();
    auto xa = m.rms_norm(ha, L.input_norm);
    auto qa = m.project_qkv(L, xa, apos_t);
    torch::Tensor out;
    if (l <= last_router) {
      auto xd = m.rms_norm(hd, L.input_norm);
      auto qd = m.project_qkv(L, xd, dpos);
      if (is_router) {
        auto Kc = pool_chunks(qd.k, lengths, P);  // [Hk, C, D] fp32
        auto Vc = pool_chunks(qd.v, lengths, P);
        if (cfg.id_probe_weight > 0 && l == last_router) {
          // What a query attending to chunk c alone (every head) would add to the residual, read
          // out by the LM head; the target is c's document id (TrainConfig::id_probe_weight).
          std::vector<int64_t> probe_labels(C);
          // A one-token id, or the last token ("dd]") of a bytes+splitids pair; ids spelt in bytes: none.
          for (int64_t k = 0; k < C; ++k) {
            const auto& tag = t.doc_tag[chunk_doc[k]];
            probe_labels[k] = tag.size() == 1 || tag.size() == 2 ? tag.back() : -100;
          }
          auto vin = Vc.repeat_interleave(H / Hk, 0).permute({1, 0, 2}).reshape({C, H * D}).to(m.dtype());
          auto plogits = m.hidden_to_logits(torch::linear(vin, L.o_proj));
          id_probe = torch::nn::functional::cross_entropy(
              plogits, torch::tensor(probe_labels, torch::kInt64),
              torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
          id_probe_accuracy = masked_accuracy(plogits, probe_labels, std::vector<uint8_t>(C, 1));
        }
        auto kr_tok = msa.decouple_router
                          ? torch::linear(xd, L.router_k_proj).view({N, Ld, Hk, D}).transpose(1, 2)
                          : qd.k;
        auto KR = pool_chunks(kr_tok, lengths, P);
        auto qr = msa.decouple_router ? torch::linear(xa, L.router_q_proj).view({1, La, H, D}).transpose(1, 2)
                                      : qa.q;
        qr = qr[0].index_select(1, route_t);  // [H, Lr, D]
        // cosine routing (training path): normalise, then reduce heads, routing tokens and chunks as
        // the config says (the engine reads the same keys, so training and inference score alike)
        auto qn = qr / qr.norm(2, -1, true).clamp_min(1e-6);
        auto kn = KR / KR.norm(2, -1, true).clamp_min(1e-6);
        torch::Tensor s_tok;  // [Lr, C]
        if (msa.head_reduce == Reduce::Mean) {
          auto qf = qn.view({Hk, H / Hk, -1, D}).sum(1) / static_cast<double>(H);  // [Hk, Lr, D]
          s_tok = torch::bmm(qf, kn.transpose(1, 2)).sum(0);
        } else {
          auto per_head = torch::matmul(qn.view({Hk, H / Hk, -1, D}), kn.unsqueeze(1).transpose(2, 3));  // [Hk, G, Lr, C]
          s_tok = per_head.reshape({H, per_head.size(2), per_head.size(3)}).amax(0);
        }
        auto s_chunk = msa.query_reduce == Reduce::Mean ? s_tok.mean(0) : s_tok.amax(0);  // [C]
        // soft max over routing tokens for the loss only (routing_token_temperature); selection
        // below stays on the hard max, as in the engine. The same routing tokens score every
        // chunk, so the soft max's count bias is one constant and cancels in the InfoNCE.
        auto s_chunk_loss = s_chunk;
        if (msa.query_reduce == Reduce::Max && cfg.routing_token_temperature > 0)
          s_chunk_loss = torch::logsumexp(s_tok / cfg.routing_token_temperature, 0) * cfg.routing_token_temperature;
        auto chunks_to_docs = [&](const torch::Tensor& sc) {
          auto per_doc = sc.index_select(0, gidx).view({N, maxc});
          return msa.chunk_reduce == Reduce::Mean
                     ? (per_doc * gok.to(torch::kFloat32)).sum(1) / gok.sum(1).to(torch::kFloat32).clamp_min(1)
                     : per_doc.masked_fill(gok.logical_not(), kLowest).amax(1);
        };
        auto s_doc = chunks_to_docs(s_chunk);
        auto s_doc_loss = s_chunk_loss.is_same(s_chunk) ? s_doc : chunks_to_docs(s_chunk_loss);
        if (cfg.key_match_weight > 0 && t.key_route_row >= 0) {
          // The asked needle's key chunk against the other needles' key chunks, scored by the
          // question's key token alone: a routing signal that only the key can carry (every
          // needle shares the template). Chunks holding the asked key are not negatives.
          const auto& ends = t.needle_key_end;
          const int64_t gold_chunk = first_chunk[ends[0].first] + ends[0].second / P;
          std::vector<int64_t> cols = {gold_chunk};
          for (size_t j = 1; j < ends.size(); ++j) {
            const int64_t col = first_chunk[ends[j].first] + ends[j].second / P;
            if (col != gold_chunk && std::find(cols.begin(), cols.end(), col) == cols.end()) cols.push_back(col);
          }
          if (cols.size() > 1) {
            auto row = s_tok[t.key_route_row].index_select(0, torch::tensor(cols, torch::kInt64)) / cfg.tau;
            key_match_terms.push_back(-torch::log_softmax(row, 0)[0]);
            key_match_hits += row.detach().argmax().item<int64_t>() == 0;
          }
        }
        // aux: InfoNCE-decoupled, positives vs all negatives
        if (cfg.aux_loss) {
          auto logits = s_doc_loss / cfg.tau;
          auto neg_mask = torch::ones({N}, torch::kBool);
          for (int p : t.positives) neg_mask[p] = false;
          auto mx = logits.max().detach();
          auto e = (logits - mx).exp();
          auto neg_sum = (e * neg_mask.to(torch::kFloat32)).sum();
          std::vector<torch::Tensor> terms;
          for (int p : t.positives) terms.push_back(-torch::log(e[p] / (e[p] + neg_sum) + 1e-10));
          aux_terms.push_back(torch::stack(terms).sum() / static_cast<double>(std::max<size_t>(1, t.positives.size())));
        }
        // hard top-k on detached scores, ties to the lower id
        auto sorted = s_doc.detach().sort(/*stable=*/true, 0, /*descending=*/true);
        auto order = std::get<1>(sorted);
        const int64_t k = std::min<int64_t>(cfg.train_top_k, N);
        std::vector<int64_t> sel;
        for (int64_t j = 0; j < k; ++j) sel.push_back(order[j].item<int64_t>());
        recall_sum += std::find(t.positives.begin(), t.positives.end(), static_cast<int>(sel[0])) != t.positives.end();
        ++router_count;
        std::sort(sel.begin(), sel.end());
        std::vector<int64_t> cidx;
        for (auto d : sel)
          for (int64_t j = 0; j < nchunks[d]; ++j) cidx.push_back(first_chunk[d] + j);
        auto ci = torch::tensor(cidx, torch::kInt64);
        const int64_t n = static_cast<int64_t>(cidx.size());
        auto ks = Kc.index_select(1, ci).to(m.dtype()).unsqueeze(0), vs = Vc.index_select(1, ci).to(m.dtype()).unsqueeze(0);
        // keys [template | chunks | rest]; template rows see the template only
        auto K = torch::cat({qa.k.narrow(2, 0, T), ks, qa.k.narrow(2, T, La - T)}, 2);
        auto V = torch::cat({qa.v.narrow(2, 0, T), vs, qa.v.narrow(2, T, La - T)}, 2);
        auto allowed = torch::zeros({La, La + n}, torch::kBool);
        auto causal = torch::ones({La, La}, torch::kBool).tril();
        allowed.narrow(1, 0, T).copy_(causal.narrow(1, 0, T));
        allowed.narrow(1, T + n, La - T).copy_(causal.narrow(1, T, La - T));
        allowed.narrow(0, T, La - T).narrow(1, T, n).fill_(true);
        auto bias = torch::zeros({1, 1, La, La + n}).masked_fill(allowed.logical_not().view({1, 1, La, La + n}), kLowest);
        out = m.attend(qa.q, K, V, bias);
        // Columns of the gold document's chunks: naming must read the document it names. With
        // id_attention_target "tag_chunks", only the chunks that hold its "[id]" tokens (after
        // <|im_start|> and before <|im_end|>).
        std::vector<int64_t> gold_cols;
        for (int64_t j = 0; j < n; ++j) {
          const int64_t d = chunk_doc[cidx[j]];
          if (std::find(t.positives.begin(), t.positives.end(), static_cast<int>(d)) == t.positives.end()) continue;
          if (cfg.id_attention_target == "tag_chunks") {
            const int64_t within = cidx[j] - first_chunk[d], tag = static_cast<int64_t>(t.doc_tag[d].size());
            const bool opening = within <= tag / P;  // tokens 1..tag
            const bool closing = within >= (lengths[d] - 1 - tag) / P && within <= (lengths[d] - 2) / P;
            if (!opening && !closing) continue;
          }
          gold_cols.push_back(T + j);
        }
        if (!memory_rows.empty() && gold_cols.empty()) id_memory_attention.push_back(0.0);  // gold not selected
        if (!memory_rows.empty() && !gold_cols.empty()) {
          // The same scores as attend()'s, for the id rows only; log shares via logsumexp, since the
          // share can be 1e-20 (a softmax that saturated away from the memory passes no gradient).
          c10::AutoGradMode grad(cfg.id_attention_weight > 0);  // a measurement only, unless trained
          auto rows = torch::tensor(memory_rows, torch::kInt64);
          auto scores = torch::matmul(qa.q.index_select(2, rows), K.repeat_interleave(H / Hk, 1).transpose(-1, -2))
                            .to(torch::kFloat32) / std::sqrt(static_cast<double>(D)) + bias.index_select(2, rows);
          auto log_share = torch::logsumexp(scores.index_select(-1, torch::tensor(gold_cols, torch::kInt64)), -1) -
                           torch::logsumexp(scores, -1);  // [1, H, rows]
          id_memory_attention.push_back(log_share.detach().exp().mean().item<double>());
          // Mean over heads inside the log: one head reading the memory is enough.
          if (cfg.id_attention_weight > 0)
            id_attention_terms.push_back(-(torch::logsumexp(log_share, 1) - std::log(static_cast<double>(H))).mean());
        }
        // Hop-2 naming copies an id out of the injected text: the share of attention these rows
        // give the earlier occurrences of the id they must write. Keys: template | chunks | rest.
        if (l == copy_layer && !copy_rows.empty()) measure_copy(qa.q, K, V, bias, n);
      } else {
        out = m.attend(qa.q, qa.k, qa.v, act_causal);
        if (l == copy_layer && !copy_rows.empty()) measure_copy(qa.q, qa.k, qa.v, act_causal, 0);
      }
      if (l < last_router) {
        auto within = padded ? m.attend(qd.q, qd.k, qd.v, dbias) : attend_within_documents(m, qd, lengths, dbias);
        hd = hd + torch::linear(within, L.o_proj);
        hd = hd + m.mlp(L, m.rms_norm(hd, L.post_norm));
      }
    } else {
      out = m.attend(qa.q, qa.k, qa.v, act_causal);
      if (l == copy_layer && !copy_rows.empty()) measure_copy(qa.q, qa.k, qa.v, act_causal, 0);
    }
    if (l == copy_layer && cfg.copy_gate_head >= 0) gate_copy_head(L, out, ha);
    ha = ha + torch::linear(out, L.o_proj);
    ha = ha + m.mlp(L, m.rms_norm(ha, L.post_norm));
  }
  SampleLoss r;
  auto logits = m.hidden_to_logits(ha)[0];  // [La, V]
  auto labels = torch::tensor(t.labels, torch::kInt64);
  const auto ce = torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100);
  r.lm = torch::nn::functional::cross_entropy(logits, labels, ce);
  r.context_lm = cfg.context_lm_weight > 0
                     ? torch::nn::functional::cross_entropy(logits, torch::tensor(t.context_labels, torch::kInt64), ce)
                     : torch::zeros({});
  if (cfg.id_lm_weight > 0) {
    std::vector<int64_t> id_labels(t.labels.size(), -100);
    for (size_t i = 0; i < id_labels.size(); ++i)
      if (t.id_target[i]) id_labels[i] = t.labels[i];
    r.id_lm = torch::nn::functional::cross_entropy(logits, torch::tensor(id_labels, torch::kInt64), ce);
  } else {
    r.id_lm = torch::zeros({});
  }
  r.id_probe = id_probe;
  r.id_probe_accuracy = id_probe_accuracy;
  r.id_memory_attention = std::move(id_memory_attention);
  r.id_attention = id_attention_terms.empty() ? torch::zeros({}) : torch::stack(id_attention_terms).mean();
  r.copy_attention = copy_attention;
  r.copy_attention_share = copy_attention_share;
  r.copy_value = copy_value;
  r.copy_value_accuracy = copy_value_accuracy;
  r.copy_gate = copy_gate;
  r.copy_gate_shut = copy_gate_shut;
  r.copy_gate_open = copy_gate_open;
  r.id_accuracy = masked_accuracy(logits, t.labels, t.id_target);
  if (!id_rows.empty()) {
    std::vector<uint8_t> naming(t.labels.size(), 0);
    for (auto i : id_rows) naming[i] = 1;
    r.id_name_accuracy = masked_accuracy(logits, t.labels, naming);
    // Later steps alone (hop 2 of pointer and joint twohop transcripts), which the mean above hides.
    // A per-hop twohop sample trains hop 2 only, which is then its first trained step.
    // The first step alone: naming from memory, which later steps' copies would otherwise inflate.
    std::vector<uint8_t> later(t.labels.size(), 0), first(t.labels.size(), 0);
    bool any_later = false, any_first = false;
    for (auto i : id_rows) {
      any_later |= (later[i] = t.later_step[i]) != 0;
      any_first |= (first[i] = !t.later_step[i]) != 0;
    }
    if (any_later) r.id_name_later_accuracy = masked_accuracy(logits, t.labels, later);
    if (any_first) r.id_name_first_accuracy = masked_accuracy(logits, t.labels, first);
  }
  r.answer_accuracy = masked_accuracy(logits, t.labels, t.answer_target);
  const RowScore stop = score_rows(logits, t.labels, t.stop_target, cfg.stop_weight > 0);
  r.stop_accuracy = stop.accuracy;
  r.stop_lm = stop.ce;
  r.aux = aux_terms.empty() ? torch::zeros({}) : torch::stack(aux_terms).mean();
  r.key_match = key_match_terms.empty() ? torch::zeros({}) : torch::stack(key_match_terms).mean();
  if (!key_match_terms.empty()) r.key_match_top1 = key_match_hits / static_cast<double>(key_match_terms.size());
  r.router_recall = router_count ? recall_sum / router_count : 0;
  int64_t doc_tokens = 0;
  for (auto n : lengths) doc_tokens += n;
  r.tokens = doc_tokens + La;
  return r;
}

// The "lm" objective's step s draws samples from index s * batch * seq_len / kPackedIndexStride on:
// steps never reuse a sample when transcripts are at least this many tokens long (repeat_chars
// transcripts are about 230, so consecutive steps share one or two samples; kept, since the
// committed run logs were produced with it).
constexpr uint64_t kPackedIndexStride = 256;
uint64_t packed_first_index(int64_t step, int batch, int seq_len) {
  return static_cast<uint64_t>(step) * batch * seq_len / kPackedIndexStride;
}

// The "lm" objective (TrainConfig::DataStage): transcripts packed into [batch, seq_len], causal LM
// loss on every target except template tokens and, unless the documents are in context, "[id]"
// steps. Sample indices continue from first_index; returns the loss and fills answer and id
// accuracy and token counts.
SampleLoss packed_lm_loss(Qwen3Model& m, const TextTokenizer& tok, const TrainConfig::DataStage& st, int batch,
                          uint64_t first_index, double copy_attention_weight, double copy_value_weight, int copy_layer,
                          bool copy_answer_rows) {
  const int64_t seq_len = st.seq_len, n = batch * seq_len;
  const double context_weight = st.context_weight;
  const Documents docs = st.documents_in_context ? Documents::InContext : Documents::None;
  std::vector<int64_t> ids, labels;
  std::vector<uint8_t> answer, context, id_step, stop;
  for (uint64_t idx = first_index; static_cast<int64_t>(ids.size()) < n; ++idx) {
    Tokenized t = tokenize(tok, make_training_sample(st.data, idx), docs);
    const auto room = seq_len - static_cast<int64_t>(ids.size()) % seq_len;
    if (st.whole_samples && static_cast<int64_t>(t.active.size()) > room && room < seq_len) {
      ids.insert(ids.end(), room, t.active.front());  // padding: not trained; nothing later in its row
      labels.insert(labels.end(), room, -100);
      answer.insert(answer.end(), room, 0);
      stop.insert(stop.end(), room, 0);
      id_step.insert(id_step.end(), room, 0);
      context.insert(context.end(), room, 0);
      if (static_cast<int64_t>(ids.size()) >= n) break;
    }
    std::set<int64_t> seen;  // tokens of this transcript up to the current row (train_seen_ids)
    for (size_t i = 0; i < t.active.size(); ++i) {
      if (st.train_seen_ids) seen.insert(t.active[i]);
      // Without the documents an id step needs the memory, unless its token is already in the text.
      const bool masked_id = t.id_target[i] && docs == Documents::None && !(st.train_seen_ids && seen.count(t.labels[i]));
      ids.push_back(t.active[i]);
      labels.push_back(masked_id ? -100 : t.labels[i] != -100 ? t.labels[i] : t.context_labels[i]);
      answer.push_back(t.answer_target[i]);
      stop.push_back(t.stop_target[i]);
      id_step.push_back(t.id_target[i] && !masked_id);
      context.push_back(!t.id_target[i] && t.labels[i] == -100 && t.context_labels[i] != -100);
    }
  }
  ids.resize(n);
  labels.resize(n);
  context.resize(n);
  answer.resize(n);
  stop.resize(n);
  id_step.resize(n);
  auto x = torch::tensor(ids, torch::kInt64).view({batch, seq_len});
  auto y = torch::tensor(labels, torch::kInt64).view({batch, seq_len});
  auto pos = torch::arange(seq_len, torch::kInt64).unsqueeze(0).expand({batch, seq_len});
  auto bias = prefix_causal_bias(torch::zeros({batch, 0}, torch::kBool), torch::ones({batch, seq_len}, torch::kBool));
  // Copy rows (copy_attention_weight): a trained id target that already stands earlier in its
  // packed row (a copy_ids second copy, a pointer hop with train_seen_ids), and where.
  std::vector<std::vector<int64_t>> copy_rows(batch);
  std::vector<std::vector<std::vector<int64_t>>> copy_sources(batch);
  const auto first_id = tok.token_id("[0]");
  if ((copy_attention_weight > 0 || copy_value_weight > 0) && first_id)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < seq_len; ++i) {
        const int64_t target = labels[b * seq_len + i];
        if (target < *first_id) continue;  // -100, or not an id
        auto at = earlier_occurrences(ids.data() + b * seq_len, i, target);
        if (at.empty()) continue;
        copy_rows[b].push_back(i);
        copy_sources[b].push_back(std::move(at));
      }
  std::vector<size_t> id_copy_rows(batch);  // copy_rows[b]'s id rows come first, then its answer rows
  for (int64_t b = 0; b < batch; ++b) id_copy_rows[b] = copy_rows[b].size();
  if ((copy_attention_weight > 0 || copy_value_weight > 0) && copy_answer_rows)
    for (int64_t b = 0; b < batch; ++b)
      add_answer_copy_rows(ids.data() + b * seq_len, labels.data() + b * seq_len, answer.data() + b * seq_len, seq_len,
                           copy_rows[b], copy_sources[b]);
  std::vector<torch::Tensor> copy_log_shares, copy_values;
  std::vector<uint8_t> copy_row_is_answer;  // over the batch's copy rows in order
  std::vector<double> copy_value_hits;
  double copy_value_rows = 0;
  auto h = torch::embedding(m.embed_tokens, x);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const auto& L = m.layers[l];
    auto qkv = m.project_qkv(L, m.rms_norm(h, L.input_norm), pos);
    if (static_cast<int>(l) == copy_layer)
      for (int64_t b = 0; b < batch; ++b)
        if (!copy_rows[b].empty()) {
          for (size_t k = 0; k < copy_rows[b].size(); ++k) copy_row_is_answer.push_back(k >= id_copy_rows[b]);
          {
            c10::AutoGradMode grad(copy_attention_weight > 0);  // logged only, unless trained
            copy_log_shares.push_back(log_copy_share(qkv.q.narrow(0, b, 1), qkv.k.narrow(0, b, 1), bias.narrow(0, b, 1),
                                                     copy_rows[b], copy_sources[b]));
          }
          if (copy_value_weight > 0) {
            std::vector<int64_t> targets;
            for (auto i : copy_rows[b]) targets.push_back(labels[b * seq_len + i]);
            const double rows = static_cast<double>(targets.size());
            copy_values.push_back(
                copy_value_loss(m, L, qkv.v.narrow(0, b, 1), qkv.q.size(1), copy_sources[b], targets, copy_value_hits) * rows);
            copy_value_rows += rows;
          }
        }
    h = h + torch::linear(m.attend(qkv.q, qkv.k, qkv.v, bias), L.o_proj);
    h = h + m.mlp(L, m.rms_norm(h, L.post_norm));
  }
  auto logits = m.hidden_to_logits(h).view({n, -1});
  SampleLoss r;
  if (!copy_log_shares.empty()) {
    auto log_share = torch::cat(copy_log_shares, 1);  // [H, rows]
    r.copy_attention = copy_attention_loss(log_share);
    r.copy_attention_share = copy_row_means(row_shares(log_share), copy_row_is_answer);
  }
  if (!copy_values.empty()) {  // mean over every copy row of the batch
    r.copy_value = torch::stack(copy_values).sum() / copy_value_rows;
    r.copy_value_accuracy = copy_row_means(copy_value_hits, copy_row_is_answer);
  }
  namespace F = torch::nn::functional;
  if (std::all_of(labels.begin(), labels.end(), [](int64_t l) { return l == -100; })) {
    r.lm = logits.sum() * 0.0;  // rows of inline documents only: no target (a mean over none is NaN)
  } else if (context_weight == 1) {
    r.lm = F::cross_entropy(logits, y.view({n}), F::CrossEntropyFuncOptions().ignore_index(-100));
  } else {  // weighted mean over the targets: context ones count context_weight
    const auto ce = F::cross_entropy(logits, y.view({n}), F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kNone));
    const auto is_context = torch::tensor(std::vector<int64_t>(context.begin(), context.end()), torch::kInt64).to(torch::kBool);
    const auto w = torch::where(is_context, torch::full({n}, context_weight), (y.view({n}) != -100).to(torch::kFloat));
    r.lm = (ce * w).sum() / w.sum().clamp_min(1e-6);
  }
  r.aux = torch::zeros({});
  r.context_lm = torch::zeros({});
  r.id_lm = torch::zeros({});
  r.id_probe = torch::zeros({});
  r.id_attention = torch::zeros({});
  r.answer_accuracy = masked_accuracy(logits, labels, answer);
  r.id_accuracy = masked_accuracy(logits, labels, id_step);
  r.stop_accuracy = score_rows(logits, labels, stop, false).accuracy;
  r.tokens = n;
  return r;
}

std::vector<torch::Tensor*> layer_parameters(Qwen3Layer& L) {
  std::vector<torch::Tensor*> p;
  for (auto* t : {&L.input_norm, &L.post_norm, &L.q_proj, &L.k_proj, &L.v_proj, &L.o_proj, &L.q_norm, &L.k_norm,
                  &L.gate_proj, &L.up_proj, &L.down_proj, &L.router_q_proj, &L.router_k_proj})
    if (t->defined()) p.push_back(t);
  return p;
}

std::vector<torch::Tensor*> parameters(Qwen3Model& m) {
  std::vector<torch::Tensor*> p = {&m.embed_tokens, &m.final_norm};
  if (!m.config().tie_word_embeddings) p.push_back(&m.lm_head);
  for (auto& L : m.layers)
    for (auto* t : layer_parameters(L)) p.push_back(t);
  return p;
}

// The decoder layers a trainable "layers:I,J,..." names (an empty set for "all" and "router").
std::set<int> trainable_layers(const std::string& trainable, int num_layers, const std::string& src) {
  std::set<int> out;
  if (trainable.rfind("layers:", 0) != 0) return out;
  std::stringstream ss(trainable.substr(7));
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long i = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || i < 0 || i >= num_layers)
      throw Error(src + ": trainable \"" + trainable + "\": \"" + item + "\" is not a layer index below " + std::to_string(num_layers));
    out.insert(static_cast<int>(i));
  }
  if (out.empty()) throw Error(src + ": trainable \"" + trainable + "\" names no layer");
  return out;
}

// Copies init_from's weights into a freshly initialised model (see TrainConfig::init_from). New
// embedding rows (tokens the source did not have) get the source's "[" row added to their random
// init: the new tokens are document ids "[i]", so they start as what the model knows of "[" and
// share one direction a layer can attend to, plus a part of their own to copy. A smaller vocabulary
// keeps the source's first rows. From bytes+ids:N to bytes+splitids, that keeps the bytes, the
// specials and ids [0]..[99] as they were. The split tokens "[h" and "dd]" start from the rows of
// ids 100..298: rows the model already reads and writes as document ids.
void warm_start(Qwen3Model& model, const std::string& init_from, const TextTokenizer& tok) {
  Qwen3Model src = Qwen3Model::load(init_from);
  auto dst_params = parameters(model), src_params = parameters(src);
  if (dst_params.size() != src_params.size())
    throw Error("train: init_from " + init_from + " has " + std::to_string(src_params.size()) +
                " weight tensors, this model " + std::to_string(dst_params.size()) + " (different architecture)");
  torch::NoGradGuard ng;
  for (size_t i = 0; i < dst_params.size(); ++i) {
    auto& d = *dst_params[i];
    auto s = src_params[i]->to(d.dtype());
    const bool embedding_rows = dst_params[i] == &model.embed_tokens && s.dim() == 2 && d.size(1) == s.size(1);
    const bool grown_rows = embedding_rows && s.size(0) <= d.size(0), shrunk_rows = embedding_rows && s.size(0) > d.size(0);
    if (s.sizes() == d.sizes()) {
      d.copy_(s);
    } else if (shrunk_rows) {
      d.copy_(s.narrow(0, 0, d.size(0)));
    } else if (grown_rows) {
      d.narrow(0, 0, s.size(0)).copy_(s);
      if (auto bracket = tok.token_id("["); bracket && *bracket < s.size(0))
        d.narrow(0, s.size(0), d.size(0) - s.size(0)).add_(s[*bracket]);
    } else {
      std::ostringstream a, b;
      a << s.sizes();
      b << d.sizes();
      throw Error("train: init_from " + init_from + ": weight tensor " + std::to_string(i) + " has shape " + a.str() +
                  ", this model needs " + b.str());
    }
  }
}

// Gives every document-id token embedding ("[0]" .. the last id) a fresh random part of norm
// `spread` around the rows' common mean (TrainConfig::id_embedding_spread).
void spread_id_embeddings(Qwen3Model& model, const TextTokenizer& tok, double spread) {
  const auto first = tok.token_id("[0]");
  if (!first) throw Error("train: id_embedding_spread needs a tokenizer with document-id tokens (bytes+ids:N)");
  torch::NoGradGuard ng;
  auto rows = model.embed_tokens.narrow(0, *first, tok.vocab_size() - *first);
  auto fresh = torch::randn(rows.sizes(), torch::kFloat32);
  fresh = fresh / fresh.norm(2, -1, true) * spread;
  rows.copy_((rows.to(torch::kFloat32).mean(0, true) + fresh).to(rows.dtype()));
}

}  // namespace

std::vector<int64_t> later_naming_targets(const TextTokenizer& tok, const TrainingSample& s) {
  const Tokenized t = tokenize(tok, s);
  std::vector<int64_t> targets;
  for (auto i : naming_rows(t))
    if (t.later_step[i]) targets.push_back(t.labels[i]);
  return targets;
}

namespace {
json data_json(const TrainingDataConfig& d) {
  return {{"task", d.task}, {"min_docs", d.min_docs}, {"max_docs", d.max_docs}, {"doc_words", d.doc_words},
          {"doc_words_min", d.doc_words_min}, {"max_doc_id", d.max_doc_id}, {"doc_id_range", d.doc_id_range}, {"needle_position", d.needle_position},
          {"extra_questions", d.extra_questions}, {"per_hop_samples", d.per_hop_samples}, {"key_style", d.key_style}, {"max_distractors", d.max_distractors},
          {"copy_min_len", d.copy_min_len}, {"copy_max_len", d.copy_max_len}, {"copy_max_lines", d.copy_max_lines},
          {"copy_pairs", d.copy_pairs}, {"copy_gap_words", d.copy_gap_words},
          {"seed", d.seed}};
}

json stage_json(const TrainConfig::DataStage& st) {
  return {{"until_step", st.until_step}, {"data", data_json(st.data)}, {"batch", st.batch},
          {"objective", st.objective},   {"seq_len", st.seq_len},        {"warmup_steps", st.warmup_steps},
          {"lr", st.lr},                 {"context_weight", st.context_weight},
          {"documents_in_context", st.documents_in_context}, {"train_seen_ids", st.train_seen_ids},
          {"whole_samples", st.whole_samples}, {"copy_answer_rows", st.copy_answer_rows}};
}

// The keys a config object may have are the ones its writer emits (data_json, stage_json,
// TrainConfig::to_json), so a new option is accepted once it is written, and only then.
std::set<std::string> keys_of(const json& obj) {
  std::set<std::string> keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys.insert(it.key());
  return keys;
}

TrainingDataConfig parse_data(const json& d, TrainingDataConfig c) {
  static const std::set<std::string> known = keys_of(data_json(TrainingDataConfig{}));
  require_known_keys(d, known, "data");
  c.task = d.value("task", c.task);
  c.min_docs = d.value("min_docs", c.min_docs);
  c.max_docs = d.value("max_docs", c.max_docs);
  c.doc_words = d.value("doc_words", c.doc_words);
  c.doc_words_min = d.value("doc_words_min", c.doc_words_min);
  c.max_doc_id = d.value("max_doc_id", c.max_doc_id);
  c.doc_id_range = d.value("doc_id_range", c.doc_id_range);
  c.needle_position = d.value("needle_position", c.needle_position);
  c.extra_questions = d.value("extra_questions", c.extra_questions);
  c.per_hop_samples = d.value("per_hop_samples", c.per_hop_samples);
  c.key_style = d.value("key_style", c.key_style);
  c.max_distractors = d.value("max_distractors", c.max_distractors);
  c.copy_min_len = d.value("copy_min_len", c.copy_min_len);
  c.copy_max_len = d.value("copy_max_len", c.copy_max_len);
  c.copy_max_lines = d.value("copy_max_lines", c.copy_max_lines);
  c.copy_pairs = d.value("copy_pairs", c.copy_pairs);
  c.copy_gap_words = d.value("copy_gap_words", c.copy_gap_words);
  c.seed = d.value("seed", c.seed);
  validate_training_data(c);  // at load, with the file named, not at the first sample of a stage
  return c;
}

// A curriculum stage's keys that lm_mix, which runs beside every msa step, has no use for.
constexpr const char* kStageOnlyKeys[] = {"until_step", "lr", "warmup_steps"};

// One curriculum stage (or lm_mix) from its JSON object; until_step and from_step are the caller's.
// Keys absent from st keep d's values (d.data is the base the stage's "data" overrides).
// `what` names the object in errors ("curriculum" or "lm_mix").
TrainConfig::DataStage parse_stage(const json& st, TrainConfig::DataStage d, int max_positions, const std::string& what) {
  static const std::set<std::string> known_stage = keys_of(stage_json(TrainConfig::DataStage{}));
  require_known_keys(st, known_stage, what == "curriculum" ? "a curriculum stage" : what);
  d.data = parse_data(st.value("data", json::object()), d.data);
  d.batch = st.value("batch", d.batch);
  d.objective = st.value("objective", d.objective);
  d.seq_len = st.value("seq_len", d.seq_len);
  d.warmup_steps = st.value("warmup_steps", d.warmup_steps);
  d.lr = st.value("lr", d.lr);
  d.context_weight = st.value("context_weight", d.context_weight);
  d.documents_in_context = st.value("documents_in_context", d.documents_in_context);
  d.train_seen_ids = st.value("train_seen_ids", d.train_seen_ids);
  d.whole_samples = st.value("whole_samples", d.whole_samples);
  d.copy_answer_rows = st.value("copy_answer_rows", d.copy_answer_rows);
  if (d.copy_answer_rows && d.objective != "lm") throw Error(what + ": copy_answer_rows in a stage needs objective lm");
  if (d.whole_samples && d.objective != "lm") throw Error(what + ": whole_samples needs objective lm");
  if (d.train_seen_ids && (d.objective != "lm" || d.documents_in_context))
    throw Error(what + ": train_seen_ids needs objective lm without documents_in_context");
  if (d.documents_in_context && d.objective != "lm")
    throw Error(what + ": documents_in_context needs objective lm (the msa objective reads documents from memory)");
  if (d.context_weight < 0) throw Error(what + ": context_weight must be >= 0");
  if (d.lr < 0) throw Error(what + ": lr must be >= 0 (0: the run's cosine)");
  if (d.warmup_steps < 0) throw Error(what + ": warmup_steps must be >= 0");
  if (d.batch < 1) throw Error(what + ": batch must be >= 1");
  if (d.objective != "msa" && d.objective != "lm")
    throw Error(what + ": objective must be msa or lm (got '" + d.objective + "')");
  if (d.seq_len < 16 || d.seq_len > max_positions)
    throw Error(what + ": seq_len must be in [16, max_position_embeddings]");
  return d;
}
}  // namespace

const TrainConfig::DataStage* TrainConfig::stage_at(int64_t step) const {
  for (const auto& st : curriculum)
    if (step < st.until_step) return &st;
  return nullptr;
}

const TrainingDataConfig& TrainConfig::data_at(int64_t step) const {
  const auto* st = stage_at(step);
  return st ? st->data : data;
}

double TrainConfig::lr_at(int64_t step) const {
  if (step < warmup_steps) return lr * (step + 1) / warmup_steps;
  const double prog = std::min(1.0, static_cast<double>(step - warmup_steps) / std::max<int64_t>(1, steps - warmup_steps));
  const auto* st = stage_at(step);
  const double base = st && st->lr > 0 ? st->lr : min_lr + 0.5 * (lr - min_lr) * (1 + std::cos(M_PI * prog));
  if (st && step - st->from_step < st->warmup_steps) return base * (step - st->from_step + 1) / st->warmup_steps;
  return base;
}

int TrainConfig::batch_at(int64_t step) const {
  const auto* st = stage_at(step);
  return st ? st->batch : batch;
}

TrainConfig TrainConfig::from_json(const json& j, const std::string& src) {
  TrainConfig c;
  try {
    static const std::set<std::string> known = keys_of(TrainConfig{}.to_json());
    require_known_keys(j, known, "the training config (every key: TrainConfig in core/model/msa_train.h)");
    if (!j.contains("model")) throw Error("missing \"model\" (a config.json-style object with model_type msa)");
    c.model = ModelConfig::from_json(j["model"], src + " model");
    if (!c.model.msa) throw Error("model.model_type must be \"msa\"");
    c.out_dir = j.at("out_dir").get<std::string>();
    c.tokenizer = j.value("tokenizer", c.tokenizer);
    c.init_from = j.value("init_from", c.init_from);
    c.qk_norm_scale = j.value("qk_norm_scale", c.qk_norm_scale);
    c.document_attention = j.value("document_attention", c.document_attention);
    c.context_lm_weight = j.value("context_lm_weight", c.context_lm_weight);
    c.id_lm_weight = j.value("id_lm_weight", c.id_lm_weight);
    c.stop_weight = j.value("stop_weight", c.stop_weight);
    c.id_embedding_spread = j.value("id_embedding_spread", c.id_embedding_spread);
    c.id_probe_weight = j.value("id_probe_weight", c.id_probe_weight);
    c.id_attention_weight = j.value("id_attention_weight", c.id_attention_weight);
    c.id_attention_target = j.value("id_attention_target", c.id_attention_target);
    c.id_attention_copy_rows = j.value("id_attention_copy_rows", c.id_attention_copy_rows);
    c.copy_attention_weight = j.value("copy_attention_weight", c.copy_attention_weight);
    c.copy_attention_layer = j.value("copy_attention_layer", c.copy_attention_layer);
    c.copy_value_weight = j.value("copy_value_weight", c.copy_value_weight);
    c.copy_answer_rows = j.value("copy_answer_rows", c.copy_answer_rows);
    c.copy_gate_weight = j.value("copy_gate_weight", c.copy_gate_weight);
    c.copy_gate_head = j.value("copy_gate_head", c.copy_gate_head);
    c.trainable = j.value("trainable", c.trainable);
    if (j.contains("data")) c.data = parse_data(j["data"], c.data);
    if (j.contains("curriculum")) {
      int64_t prev = 0;
      for (const auto& st : j.at("curriculum")) {
        DataStage defaults;
        defaults.data = c.data;
        defaults.batch = j.value("batch", c.batch);
        DataStage d = parse_stage(st, defaults, c.model.max_position_embeddings, "curriculum");
        d.until_step = st.at("until_step").get<int64_t>();
        d.from_step = prev;
        if (d.until_step <= prev) throw Error("curriculum: until_step must increase (got " + std::to_string(d.until_step) + ")");
        prev = d.until_step;
        c.curriculum.push_back(d);
      }
    }
    c.lm_mix_weight = j.value("lm_mix_weight", c.lm_mix_weight);
    if (j.contains("lm_mix")) {
      const json& mj = j["lm_mix"];
      for (const char* k : kStageOnlyKeys)
        if (mj.is_object() && mj.contains(k))
          throw Error(std::string("lm_mix: \"") + k + "\" does not apply (lm_mix runs beside every msa step at the run's lr)");
      DataStage defaults = c.lm_mix;
      defaults.data = c.data;
      c.lm_mix = parse_stage(mj, defaults, c.model.max_position_embeddings, "lm_mix");
      if (c.lm_mix.objective != "lm") throw Error("lm_mix: objective must be lm");
    }
    if (!(c.lm_mix_weight >= 0)) throw Error("lm_mix_weight must be >= 0 (0: off)");
    if (c.lm_mix_weight > 0 && !j.contains("lm_mix")) throw Error("lm_mix_weight > 0 needs an \"lm_mix\" object (what it trains)");
    c.steps = j.value("steps", c.steps);
    c.batch = j.value("batch", c.batch);
    c.lr = j.value("lr", c.lr);
    c.min_lr = j.value("min_lr", c.min_lr);
    c.weight_decay = j.value("weight_decay", c.weight_decay);
    c.clip_norm = j.value("clip_norm", c.clip_norm);
    c.warmup_steps = j.value("warmup_steps", c.warmup_steps);
    c.phase1_steps = j.value("phase1_steps", c.phase1_steps);
    c.phase2_aux_weight = j.value("phase2_aux_weight", c.phase2_aux_weight);
    c.aux_loss = j.value("aux_loss", c.aux_loss);
    c.tau = j.value("tau", c.tau);
    c.routing_token_temperature = j.value("routing_token_temperature", c.routing_token_temperature);
    c.key_match_weight = j.value("key_match_weight", c.key_match_weight);
    c.train_top_k = j.value("train_top_k", c.train_top_k);
    c.save_every = j.value("save_every", c.save_every);
    c.log_every = j.value("log_every", c.log_every);
    c.seed = j.value("seed", c.seed);
    c.threads = j.value("threads", c.threads);
    c.max_seconds = j.value("max_seconds", c.max_seconds);
  } catch (const json::exception& e) {
    throw Error(src + ": " + e.what());
  } catch (const Error& e) {
    throw Error(src + ": " + e.what());
  }
  if (c.context_lm_weight < 0) throw Error(src + ": context_lm_weight must be >= 0");
  if (!(c.stop_weight >= 0)) throw Error(src + ": stop_weight must be >= 0");
  if (!(c.routing_token_temperature >= 0)) throw Error(src + ": routing_token_temperature must be >= 0 (0: hard max)");
  if (!(c.key_match_weight >= 0)) throw Error(src + ": key_match_weight must be >= 0");
  if (c.phase2_aux_weight < 0) throw Error(src + ": phase2_aux_weight must be >= 0");
  if (c.id_lm_weight < 0 || c.id_embedding_spread < 0 || c.id_probe_weight < 0 || c.id_attention_weight < 0 ||
      c.copy_attention_weight < 0 || !(c.copy_value_weight >= 0))
    throw Error(src + ": id_lm_weight, id_embedding_spread, id_probe_weight, id_attention_weight, copy_attention_weight and "
                      "copy_value_weight must be >= 0");
  const bool stage_answer_rows = c.lm_mix.copy_answer_rows || std::any_of(c.curriculum.begin(), c.curriculum.end(),
                                                                            [](const auto& st) { return st.copy_answer_rows; });
  if ((c.copy_answer_rows || stage_answer_rows) && c.copy_attention_weight == 0 && c.copy_value_weight == 0)
    throw Error(src + ": copy_answer_rows adds rows to copy_attention_weight and copy_value_weight; both are 0");
  if (c.id_attention_target != "document" && c.id_attention_target != "tag_chunks")
    throw Error(src + ": id_attention_target must be \"document\" or \"tag_chunks\", not \"" + c.id_attention_target + "\"");
  if (c.trainable != "all" && c.trainable != "router" && c.trainable.rfind("layers:", 0) != 0)
    throw Error(src + ": trainable must be \"all\", \"router\" or \"layers:I,J,...\", not \"" + c.trainable + "\"");
  trainable_layers(c.trainable, c.model.num_hidden_layers, src);  // refuses bad indices at load
  if (c.copy_attention_layer < -1 || c.copy_attention_layer >= c.model.num_hidden_layers)
    throw Error(src + ": copy_attention_layer must be -1 (the last router layer) or a layer index below " +
                std::to_string(c.model.num_hidden_layers) + ", not " + std::to_string(c.copy_attention_layer));
  if (!(c.copy_gate_weight >= 0) || c.copy_gate_head < -1 || c.copy_gate_head >= c.model.num_attention_heads ||
      (c.copy_gate_weight > 0 && c.copy_gate_head < 0))
    throw Error(src + ": copy_gate_weight must be >= 0 and copy_gate_head a head index below " +
                std::to_string(c.model.num_attention_heads) + " (or -1 with the weight 0), not " +
                std::to_string(c.copy_gate_weight) + " and " + std::to_string(c.copy_gate_head));
  if (c.trainable == "router" && (!c.model.msa || !c.model.msa->decouple_router || !c.aux_loss))
    throw Error(src + ": trainable \"router\" needs model.msa_config.decouple_router (the router projections) "
                "and aux_loss (the only loss that reaches them)");
  if (c.trainable == "router" && c.lm_mix_weight > 0)
    throw Error(src + ": trainable \"router\" cannot use lm_mix (no lm loss reaches the router)");
  for (const auto& st : c.curriculum)
    if (c.trainable == "router" && st.objective == "lm")
      throw Error(src + ": trainable \"router\" cannot run an \"lm\" curriculum stage (no loss there reaches the router)");
  if (c.steps < 1 || c.batch < 1 || c.save_every < 1 || c.log_every < 1 || c.train_top_k < 1 || c.threads < 1)
    throw Error(src + ": steps, batch, save_every, log_every, train_top_k and threads must be >= 1");
  if (c.document_attention != "per_document" && c.document_attention != "padded")
    throw Error(src + ": document_attention must be \"per_document\" or \"padded\", not \"" + c.document_attention + "\"");
  if (!(c.lr > 0) || !(c.tau > 0) || !(c.qk_norm_scale > 0)) throw Error(src + ": lr, tau and qk_norm_scale must be positive");
  if (c.out_dir.empty()) throw Error(src + ": out_dir is empty");
  return c;
}

TrainConfig TrainConfig::load(const std::string& path) {
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::parse_error& e) {
    throw Error(path + ": invalid JSON (" + e.what() + ")");
  }
  return from_json(j, path);
}

json TrainConfig::to_json() const {
  return {{"out_dir", out_dir},   {"model", model.to_json()}, {"tokenizer", tokenizer}, {"init_from", init_from},
          {"qk_norm_scale", qk_norm_scale}, {"document_attention", document_attention},
          {"context_lm_weight", context_lm_weight},
          {"id_lm_weight", id_lm_weight}, {"stop_weight", stop_weight}, {"id_embedding_spread", id_embedding_spread},
          {"id_probe_weight", id_probe_weight},
          {"id_attention_weight", id_attention_weight},
          {"id_attention_target", id_attention_target},
          {"id_attention_copy_rows", id_attention_copy_rows},
          {"copy_attention_weight", copy_attention_weight},
          {"copy_attention_layer", copy_attention_layer},
          {"copy_value_weight", copy_value_weight},
          {"copy_answer_rows", copy_answer_rows},
          {"copy_gate_weight", copy_gate_weight},
          {"copy_gate_head", copy_gate_head},
          {"trainable", trainable},
          {"data", data_json(data)},
          {"lm_mix_weight", lm_mix_weight}, {"lm_mix", [this] {
             json m = stage_json(lm_mix);
             for (const char* k : kStageOnlyKeys) m.erase(k);
             return m;
           }()},
          {"steps", steps},       {"batch", batch},            {"lr", lr},
          {"min_lr", min_lr},     {"weight_decay", weight_decay}, {"clip_norm", clip_norm},
          {"warmup_steps", warmup_steps}, {"phase1_steps", phase1_steps}, {"phase2_aux_weight", phase2_aux_weight}, {"aux_loss", aux_loss},
          {"tau", tau},           {"routing_token_temperature", routing_token_temperature},
          {"key_match_weight", key_match_weight},
          {"train_top_k", train_top_k}, {"save_every", save_every},
          {"log_every", log_every}, {"seed", seed},           {"threads", threads},
          {"max_seconds", max_seconds}, {"curriculum", [this] {
             json a = json::array();
             for (const auto& st : curriculum) a.push_back(stage_json(st));
             return a;
           }()}};
}

// The window mean of a per-sample measurement, over the samples that measured it (-1: not measured).
struct MeasuredMean {
  double sum = 0;
  int64_t n = 0;
  void add(double v) {
    if (v < 0) return;
    sum += v;
    ++n;
  }
  void log_to(json& rec, const std::string& key) const {
    if (n > 0) rec[key] = sum / static_cast<double>(n);
  }
};

// Window means of copy_value_loss / copy_value_acc over the steps that measured them, and of the
// copy rows' attention share and value accuracy split into id and answer rows (*_ids, *_answers).
struct CopyRowWindow {
  MeasuredMean loss, accuracy, accuracy_ids, accuracy_answers, share_ids, share_answers;
  void add(const SampleLoss& l) {
    share_ids.add(l.copy_attention_share.ids);
    share_answers.add(l.copy_attention_share.answers);
    if (l.copy_value_accuracy.all < 0) return;
    loss.add(l.copy_value.item<double>());  // a CE: never negative, so never skipped
    accuracy.add(l.copy_value_accuracy.all);
    accuracy_ids.add(l.copy_value_accuracy.ids);
    accuracy_answers.add(l.copy_value_accuracy.answers);
  }
  void log_to(json& rec, const std::string& prefix) const {
    loss.log_to(rec, prefix + "copy_value_loss");
    accuracy.log_to(rec, prefix + "copy_value_acc");
    accuracy_ids.log_to(rec, prefix + "copy_value_acc_ids");
    accuracy_answers.log_to(rec, prefix + "copy_value_acc_answers");
    share_ids.log_to(rec, prefix + "copy_attention_share_ids");
    share_answers.log_to(rec, prefix + "copy_attention_share_answers");
  }
};

TrainSummary train_msa(const TrainConfig& cfg, bool quiet) {
  keep_freed_memory_in_heap();  // activations are allocated and freed every step
  set_compute_threads(cfg.threads);
  torch::manual_seed(cfg.seed);
  auto tok = load_tokenizer(cfg.tokenizer);
  if (tok->vocab_size() > cfg.model.vocab_size)
    throw Error("train: tokenizer '" + cfg.tokenizer + "' has " + std::to_string(tok->vocab_size()) +
                " ids but model.vocab_size is " + std::to_string(cfg.model.vocab_size));
  if ((cfg.id_probe_weight > 0 || cfg.id_embedding_spread > 0 || cfg.id_attention_weight > 0) && !tok->token_id("[0]"))
    throw Error("train: id_probe_weight, id_attention_weight and id_embedding_spread need a tokenizer with document-id tokens "
                "(bytes+ids:N), not '" + cfg.tokenizer + "'");
  const fs::path out(cfg.out_dir), ck = out / "checkpoint";
  fs::create_directories(out);
  TrainSummary summary;
  int64_t step = 0;
  Qwen3Model model = fs::exists(ck / "trainer_state.json") ? Qwen3Model::load(ck.string())
                                                           : Qwen3Model::random_init(cfg.model, cfg.seed);
  if (!fs::exists(ck / "trainer_state.json")) {
    if (!cfg.init_from.empty()) warm_start(model, cfg.init_from, *tok);
    if (cfg.id_embedding_spread > 0) spread_id_embeddings(model, *tok, cfg.id_embedding_spread);
    torch::NoGradGuard ng;
    for (auto& L : model.layers) {
      L.q_norm.mul_(cfg.qk_norm_scale);
      L.k_norm.mul_(cfg.qk_norm_scale);
    }
  }
  if (fs::exists(ck / "trainer_state.json")) {
    json st = json::parse(read_file((ck / "trainer_state.json").string()));
    step = st.at("step").get<int64_t>();
    if (st.value("train_config", json::object()).value("seed", cfg.seed) != cfg.seed)
      throw Error((ck / "trainer_state.json").string() + ": checkpoint was trained with another seed");
  }
  MsaOptions opt = MsaOptions::from_config(model.config());
  std::vector<torch::Tensor> params;
  std::set<torch::Tensor*> trained;  // "all": every tensor; "router": the router projections; "layers:...": those layers'
  if (cfg.trainable == "all")
    for (auto* p : parameters(model)) trained.insert(p);
  for (auto& L : model.layers)
    for (auto* p : {&L.router_q_proj, &L.router_k_proj})
      if (cfg.trainable == "router" && p->defined()) trained.insert(p);
  for (int i : trainable_layers(cfg.trainable, static_cast<int>(model.layers.size()), cfg.out_dir))
    for (auto* p : layer_parameters(model.layers[i])) trained.insert(p);
  for (auto* p : parameters(model)) {
    const bool train = trained.count(p) > 0;
    p->set_requires_grad(train);
    if (train) params.push_back(*p);
  }
  torch::optim::AdamW adam(params, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
  if (fs::exists(ck / "optimizer.pt")) torch::load(adam, (ck / "optimizer.pt").string());
  write_json_atomic((out / "train_config.json").string(), cfg.to_json());

  auto save = [&](int64_t at_step) {
    const fs::path tmp = out / "checkpoint.tmp";
    fs::remove_all(tmp);
    {
      torch::NoGradGuard ng;
      model.save(tmp.string());
    }
    torch::save(adam, (tmp / "optimizer.pt").string());
    write_json_atomic((tmp / "trainer_state.json").string(),
                      {{"step", at_step}, {"train_config", cfg.to_json()}, {"tokenizer", cfg.tokenizer}});
    const fs::path old = out / "checkpoint.old";
    fs::remove_all(old);
    if (fs::exists(ck)) fs::rename(ck, old);
    fs::rename(tmp, ck);
    fs::remove_all(old);
  };

  const int64_t first_step = step;
  // A run killed between checkpoints logged steps the checkpoint does not have; they run again.
  if (fs::exists(out / "log.jsonl")) {
    std::ifstream in((out / "log.jsonl").string());
    std::string kept, line;
    bool dropped = false;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto rec = json::parse(line, nullptr, false);
      if (!rec.is_discarded() && rec.value("step", int64_t{0}) > step) {
        dropped = true;
        continue;
      }
      kept += line + "\n";
    }
    if (dropped) write_file_atomic((out / "log.jsonl").string(), kept);
  }
  std::ofstream log((out / "log.jsonl").string(), std::ios::app);
  Progress progress("train", cfg.steps, "steps", !quiet);
  progress.resume_from(step);
  const auto t_start = std::chrono::steady_clock::now();
  double acc_loss = 0, acc_lm = 0, acc_aux = 0, acc_rec = 0, acc_id = 0, acc_ans = 0, acc_ctx = 0, acc_id_lm = 0, acc_probe = 0, acc_probe_acc = 0, acc_id_attn_loss = 0;
  std::vector<double> acc_id_attn;  // per router layer, summed over samples that measured it
  int64_t acc_id_attn_n = 0;
  MeasuredMean acc_id_name, acc_id_name_first, acc_id_name_later;
  double acc_key_match = 0, acc_key_match_top1 = 0;
  int64_t acc_key_match_n = 0;
  double acc_mix_lm = 0, acc_mix_ans = 0, acc_mix_id = 0;
  int64_t acc_mix_n = 0;
  const int copy_layer = copy_layer_of(cfg, model.config());  // for the lm paths' copy rows
  double acc_copy_attn_loss = 0, acc_copy_share = 0, acc_mix_copy_loss = 0, acc_mix_copy_share = 0;
  int64_t acc_copy_n = 0, acc_mix_copy_n = 0;
  CopyRowWindow acc_copy_value, acc_mix_copy_value;
  MeasuredMean acc_gate_shut, acc_gate_open;  // copy_gate_weight's shares
  MeasuredMean acc_stop, acc_stop_lm, acc_mix_stop;  // the <End-of-Retrieve> rows (SampleLoss::stop_accuracy)
  // An lm stage's or lm_mix's loss: the LM loss and the copy losses on its copy rows.
  auto packed_loss = [&](const SampleLoss& l) {
    auto loss = l.lm + cfg.copy_attention_weight * l.copy_attention;
    if (cfg.copy_value_weight > 0) loss = loss + cfg.copy_value_weight * l.copy_value;
    return loss;
  };
  int64_t acc_tokens = 0, acc_n = 0;
  auto t_log = std::chrono::steady_clock::now();
  while (step < cfg.steps) {
    const bool phase1 = step < cfg.phase1_steps;
    const double w_lm = phase1 ? 0.1 : 1.0, w_aux = phase1 ? 1.0 : cfg.phase2_aux_weight;
    const double lr = cfg.lr_at(step);
    for (auto& g : adam.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    adam.zero_grad();
    const int batch = cfg.batch_at(step);
    const auto* stage = cfg.stage_at(step);
    const bool lm_stage = stage && stage->objective == "lm";
    if (lm_stage) {
      SampleLoss l = packed_lm_loss(model, *tok, *stage, batch, packed_first_index(step, batch, stage->seq_len),
                                    cfg.copy_attention_weight, cfg.copy_value_weight, copy_layer,
                                    cfg.copy_answer_rows || stage->copy_answer_rows);
      auto loss = packed_loss(l);
      loss.backward();
      if (l.copy_attention_share.all >= 0) {
        acc_copy_attn_loss += l.copy_attention.item<double>();
        acc_copy_share += l.copy_attention_share.all;
        ++acc_copy_n;
      }
      acc_copy_value.add(l);
      acc_loss += l.lm.item<double>() + cfg.copy_attention_weight * l.copy_attention.item<double>() +
                  (cfg.copy_value_weight > 0 ? cfg.copy_value_weight * l.copy_value.item<double>() : 0.0);
      acc_lm += l.lm.item<double>();
      acc_ans += l.answer_accuracy;
      acc_id += l.id_accuracy;
      acc_stop.add(l.stop_accuracy);
      acc_tokens += l.tokens;
      ++acc_n;
    }
    for (int b = 0; b < (lm_stage ? 0 : batch); ++b) {
      TrainingSample s = make_training_sample(cfg.data_at(step), static_cast<uint64_t>(step) * batch + b);
      Tokenized t = tokenize(*tok, s);
      if (cfg.key_match_weight > 0) locate_keys(*tok, s, t);
      SampleLoss l = sample_loss(model, opt, cfg, t);
      auto lm = l.lm + cfg.context_lm_weight * l.context_lm;
      if (cfg.id_lm_weight > 0) lm = lm + cfg.id_lm_weight * l.id_lm;
      if (cfg.stop_weight > 0) lm = lm + cfg.stop_weight * l.stop_lm;
      if (cfg.id_probe_weight > 0) lm = lm + cfg.id_probe_weight * l.id_probe;
      if (cfg.id_attention_weight > 0) lm = lm + cfg.id_attention_weight * l.id_attention;
      if (cfg.copy_attention_weight > 0) lm = lm + cfg.copy_attention_weight * l.copy_attention;
      if (cfg.copy_value_weight > 0) lm = lm + cfg.copy_value_weight * l.copy_value;
      if (cfg.copy_gate_weight > 0) lm = lm + cfg.copy_gate_weight * l.copy_gate;
      auto loss = (w_lm * lm + (cfg.aux_loss ? w_aux : 0.0) * l.aux + cfg.key_match_weight * l.key_match) / batch;
      loss.backward();
      acc_loss += loss.item<double>() * batch;
      acc_lm += l.lm.item<double>();
      acc_aux += l.aux.item<double>();
      acc_rec += l.router_recall;
      acc_id += l.id_accuracy;
      acc_ans += l.answer_accuracy;
      acc_ctx += l.context_lm.item<double>();
      acc_id_lm += l.id_lm.item<double>();
      acc_probe += l.id_probe.item<double>();
      acc_probe_acc += l.id_probe_accuracy;
      acc_id_attn_loss += l.id_attention.item<double>();
      if (l.copy_attention_share.all >= 0) {
        acc_copy_attn_loss += l.copy_attention.item<double>();
        acc_copy_share += l.copy_attention_share.all;
        ++acc_copy_n;
      }
      acc_copy_value.add(l);
      acc_gate_shut.add(l.copy_gate_shut);
      acc_gate_open.add(l.copy_gate_open);
      if (l.key_match_top1 >= 0) {
        acc_key_match += l.key_match.item<double>();
        acc_key_match_top1 += l.key_match_top1;
        ++acc_key_match_n;
      }
      acc_id_name.add(l.id_name_accuracy);
      acc_id_name_first.add(l.id_name_first_accuracy);
      acc_id_name_later.add(l.id_name_later_accuracy);
      acc_stop.add(l.stop_accuracy);
      if (cfg.stop_weight > 0 && l.stop_accuracy >= 0) acc_stop_lm.add(l.stop_lm.item<double>());
      if (!l.id_memory_attention.empty()) {
        acc_id_attn.resize(l.id_memory_attention.size(), 0.0);
        for (size_t i = 0; i < acc_id_attn.size(); ++i) acc_id_attn[i] += l.id_memory_attention[i];
        ++acc_id_attn_n;
      }
      acc_tokens += l.tokens;
      ++acc_n;
    }
    if (!lm_stage && cfg.lm_mix_weight > 0) {
      const auto& mix = cfg.lm_mix;
      SampleLoss l = packed_lm_loss(model, *tok, mix, mix.batch, packed_first_index(step, mix.batch, mix.seq_len),
                                    cfg.copy_attention_weight, cfg.copy_value_weight, copy_layer,
                                    cfg.copy_answer_rows || mix.copy_answer_rows);
      auto loss = packed_loss(l);
      (cfg.lm_mix_weight * loss).backward();
      acc_mix_copy_value.add(l);
      if (l.copy_attention_share.all >= 0) {
        acc_mix_copy_loss += l.copy_attention.item<double>();
        acc_mix_copy_share += l.copy_attention_share.all;
        ++acc_mix_copy_n;
      }
      acc_mix_lm += l.lm.item<double>();
      acc_mix_ans += l.answer_accuracy;
      acc_mix_id += l.id_accuracy;
      acc_mix_stop.add(l.stop_accuracy);
      acc_tokens += l.tokens;
      ++acc_mix_n;
    }
    auto norm = torch::nn::utils::clip_grad_norm_(params, cfg.clip_norm);
    if (!std::isfinite(norm)) adam.zero_grad();  // skip a step with a non-finite gradient
    adam.step();
    ++step;
    progress.advance(1, 0);
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      json rec = {{"step", step},
                  {"phase", phase1 ? 1 : 2},
                  {"lr", lr},
                  {"loss", acc_loss / acc_n},
                  {"lm_loss", acc_lm / acc_n},
                  {"aux_loss", acc_aux / acc_n},
                  {"router_top1", acc_rec / acc_n},
                  {"id_token_acc", acc_id / acc_n},
                  {"answer_token_acc", acc_ans / acc_n},
                  {"context_lm_loss", acc_ctx / acc_n},
                  {"grad_norm", norm},
                  {"tokens_per_s", acc_tokens / std::max(secs, 1e-9)}};
      if (cfg.id_lm_weight > 0) rec["id_lm_loss"] = acc_id_lm / acc_n;
      if (cfg.id_probe_weight > 0) {
        rec["id_probe_loss"] = acc_probe / acc_n;
        rec["id_probe_acc"] = acc_probe_acc / acc_n;
      }
      if (cfg.id_attention_weight > 0) rec["id_attention_loss"] = acc_id_attn_loss / acc_n;
      if (acc_copy_n > 0) {
        rec["copy_attention_share"] = acc_copy_share / static_cast<double>(acc_copy_n);
        if (cfg.copy_attention_weight > 0) rec["copy_attention_loss"] = acc_copy_attn_loss / static_cast<double>(acc_copy_n);
      }
      if (acc_mix_copy_n > 0) {
        rec["mix_copy_attention_share"] = acc_mix_copy_share / static_cast<double>(acc_mix_copy_n);
        rec["mix_copy_attention_loss"] = acc_mix_copy_loss / static_cast<double>(acc_mix_copy_n);
      }
      acc_copy_value.log_to(rec, "");
      acc_mix_copy_value.log_to(rec, "mix_");
      acc_gate_shut.log_to(rec, "copy_gate_loss");
      acc_gate_open.log_to(rec, "copy_gate_open");
      acc_id_name.log_to(rec, "id_name_acc");
      acc_id_name_first.log_to(rec, "id_name_acc_first");
      acc_id_name_later.log_to(rec, "id_name_acc_later");
      acc_stop.log_to(rec, "stop_acc");
      acc_stop_lm.log_to(rec, "stop_lm_loss");
      acc_mix_stop.log_to(rec, "mix_stop_acc");
      if (acc_mix_n > 0) {
        rec["mix_lm_loss"] = acc_mix_lm / static_cast<double>(acc_mix_n);
        rec["mix_answer_token_acc"] = acc_mix_ans / static_cast<double>(acc_mix_n);
        rec["mix_id_token_acc"] = acc_mix_id / static_cast<double>(acc_mix_n);
      }
      if (acc_key_match_n > 0) {
        rec["key_match_loss"] = acc_key_match / static_cast<double>(acc_key_match_n);
        rec["key_match_top1"] = acc_key_match_top1 / static_cast<double>(acc_key_match_n);
      }
      if (acc_id_attn_n > 0) {
        for (auto& a : acc_id_attn) a /= static_cast<double>(acc_id_attn_n);
        rec["id_memory_attention"] = acc_id_attn;
      }
      log << rec.dump() << "\n";
      log.flush();
      if (!quiet)
        std::fprintf(stderr, "\nstep %lld loss %.4f lm %.4f aux %.4f ctx %.3f router@1 %.2f id-acc %.2f answer-acc %.2f %.0f tok/s\n",
                     (long long)step, acc_loss / acc_n, acc_lm / acc_n, acc_aux / acc_n, acc_ctx / acc_n, acc_rec / acc_n,
                     acc_id / acc_n, acc_ans / acc_n, acc_tokens / std::max(secs, 1e-9));
      summary.last_loss = acc_loss / acc_n;
      summary.last_lm = acc_lm / acc_n;
      summary.last_aux = acc_aux / acc_n;
      summary.last_router_recall = acc_rec / acc_n;
      summary.last_id_acc = acc_id / acc_n;
      summary.last_answer_acc = acc_ans / acc_n;
      acc_loss = acc_lm = acc_aux = acc_rec = acc_id = acc_ans = acc_ctx = acc_id_lm = acc_probe = acc_probe_acc = acc_id_attn_loss = 0;
      acc_id_attn.clear();
      acc_id_attn_n = 0;
      acc_id_name = acc_id_name_first = acc_id_name_later = MeasuredMean{};
      acc_key_match = acc_key_match_top1 = 0;
      acc_key_match_n = 0;
      acc_mix_lm = acc_mix_ans = acc_mix_id = 0;
      acc_mix_n = 0;
      acc_copy_attn_loss = acc_copy_share = acc_mix_copy_loss = acc_mix_copy_share = 0;
      acc_copy_n = acc_mix_copy_n = 0;
      acc_copy_value = acc_mix_copy_value = CopyRowWindow{};
      acc_gate_shut = acc_gate_open = MeasuredMean{};
      acc_stop = acc_stop_lm = acc_mix_stop = MeasuredMean{};
      acc_tokens = acc_n = 0;
      t_log = std::chrono::steady_clock::now();
    }
    const bool out_of_time = cfg.max_seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() > cfg.max_seconds;
    if (step % cfg.save_every == 0 || step == cfg.steps || out_of_time) save(step);
    if (out_of_time) break;
  }
  progress.finish();
  summary.steps_run = step - first_step;
  summary.steps_done = step;
  summary.finished = step >= cfg.steps;
  return summary;
}

CopyProbe probe_answer_copy(const TrainConfig& cfg, int samples) {
  const fs::path ck = fs::path(cfg.out_dir) / "checkpoint";
  const bool trained = fs::exists(ck / "trainer_state.json");
  if (!trained && cfg.init_from.empty())
    throw Error(ck.string() + ": no checkpoint to probe, and the config has no init_from to probe instead");
  if (samples < 1) throw Error("probe: samples must be >= 1");
  set_compute_threads(cfg.threads);
  CopyProbe r;
  r.weights = trained ? ck.string() : cfg.init_from;
  Qwen3Model model = Qwen3Model::load(r.weights);
  auto tok = load_tokenizer(cfg.tokenizer);
  if (trained) r.step = json::parse(read_file((ck / "trainer_state.json").string())).at("step").get<int64_t>();
  TrainingDataConfig data = cfg.data;
  data.seed = cfg.data.seed + 1000003;
  SamplingOptions opt;
  opt.max_new_tokens = 12;
  for (const char* st : {interleave::kImEnd, "<|endoftext|>"})
    if (auto id = tok->token_id(st)) opt.stop_token_ids.push_back(*id);
  int64_t digits = 0, digit_hits = 0, nll_tokens = 0, target_hits = 0, id_targets = 0, id_hits = 0;
  double nll = 0;
  const int64_t first_id = tok->token_id("[0]").value_or(std::numeric_limits<int64_t>::max());
  for (int i = 0; i < samples; ++i) {
    TrainingSample s = make_training_sample(data, static_cast<uint64_t>(i));
    // The transcript up to the first answer value: the last token whose target is a value token.
    // Copy tasks have no answer value; their probe is the trained second copy of the block.
    Tokenized t = tokenize(*tok, s, Documents::None);
    const auto end = static_cast<int64_t>(t.answer_target.size());
    auto first = std::find(t.answer_target.begin(), t.answer_target.end(), 1) - t.answer_target.begin();
    SamplingOptions o = opt;
    // Room for the whole answer and its end token: pointer's word answers run to 17 bytes.
    o.max_new_tokens = std::max<int>(opt.max_new_tokens, static_cast<int>(tok->count(s.answer, false)) + 1);
    std::vector<uint8_t> target = t.answer_target;
    if (first == end && s.response.back().text == s.answer + interleave::kImEnd) {
      first = std::find_if(t.labels.begin(), t.labels.end(), [](int64_t l) { return l != -100; }) - t.labels.begin();
      o.max_new_tokens = static_cast<int>(end - first);
      for (size_t i = 0; i < target.size(); ++i) target[i] = t.labels[i] != -100;
    }
    if (first == end) throw Error("probe: the config's data (task '" + data.task + "') has no answer to probe");
    std::vector<int64_t> prompt(t.active.begin(), t.active.begin() + first + 1);
    // Teacher-forced NLL of the target tokens (the value, or the second copy with its end token):
    // partial copying shows here before greedy decoding gets a whole string right.
    const auto ids = torch::tensor(t.active, torch::kInt64).unsqueeze(0);
    const auto logp = torch::log_softmax(model.forward(ids, torch::arange(ids.size(1), torch::kInt64).unsqueeze(0))[0], -1);
    const auto mask = torch::tensor(std::vector<int64_t>(target.begin(), target.end() - 1), torch::kInt64).to(torch::kBool);
    const auto next = ids[0].narrow(0, 1, end - 1).unsqueeze(1);
    const auto rows = logp.narrow(0, 0, end - 1);
    nll -= rows.gather(1, next).squeeze(1).masked_select(mask).to(torch::kFloat64).sum().item<double>();
    const auto gold = next.squeeze(1).masked_select(mask);
    // Greedy hits and id flags of the target tokens, read once: every count below comes from them.
    const auto hits = (rows.argmax(-1).masked_select(mask) == gold).to(torch::kInt64).contiguous();
    const auto is_id = (gold >= first_id).to(torch::kInt64).contiguous();
    const int64_t* hit = hits.data_ptr<int64_t>();
    const int64_t* id = is_id.data_ptr<int64_t>();
    const auto places = static_cast<size_t>(hits.size(0));
    nll_tokens += static_cast<int64_t>(places);
    if (places > r.targets_by_place.size()) {
      r.targets_by_place.resize(places, 0);
      r.target_accuracy_by_place.resize(places, 0.0);
    }
    for (size_t k = 0; k < places; ++k) {
      ++r.targets_by_place[k];
      r.target_accuracy_by_place[k] += static_cast<double>(hit[k]);
      target_hits += hit[k];
      id_targets += id[k];
      id_hits += hit[k] & id[k];
    }
    auto g = generate(model, {prompt}, o);
    const auto& out = g.tokens[0];
    const std::string text = tok->decode(std::vector<int32_t>(out.begin(), out.end()), true);
    r.exact += text == s.answer || text.rfind(s.answer + "\n", 0) == 0;  // kv_direct values end with a newline
    for (size_t k = 0; k < s.answer.size(); ++k, ++digits) digit_hits += k < text.size() && text[k] == s.answer[k];
    if (r.examples.size() < 8) r.examples.emplace_back(s.answer, text);
  }
  r.samples = samples;
  r.digit_accuracy = digits ? static_cast<double>(digit_hits) / digits : 0;
  r.target_nll = nll_tokens ? nll / nll_tokens : 0;
  r.target_accuracy = nll_tokens ? static_cast<double>(target_hits) / nll_tokens : 0;
  if (id_targets > 0) r.id_target_accuracy = static_cast<double>(id_hits) / id_targets;
  for (size_t k = 0; k < r.targets_by_place.size(); ++k) r.target_accuracy_by_place[k] /= r.targets_by_place[k];
  return r;
}

void export_trained_model(const std::string& checkpoint_dir, const std::string& model_dir) {
  const fs::path ck(checkpoint_dir);
  if (!fs::exists(ck / "trainer_state.json"))
    throw Error(ck.string() + ": no checkpoint to export (trainer_state.json missing)");
  Qwen3Model m = Qwen3Model::load(ck.string());
  json state = json::parse(read_file((ck / "trainer_state.json").string()));
  // Written beside the target and swapped in whole, so a failed export leaves the old model as it was.
  fs::path target = fs::absolute(model_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "dir/": the staging goes beside dir, not in it
  if (fs::exists(target) && fs::equivalent(target, ck))
    throw Error(target.string() + ": the export would replace the checkpoint it reads; export elsewhere");
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string staging = target.string() + ".export-" + std::to_string(::getpid());
  fs::remove_all(staging);
  fs::create_directories(staging);
  try {
    m.save(staging, "bfloat16");
    write_json_atomic((fs::path(staging) / "tokenizer_spec.json").string(),
                      {{"tokenizer", state.value("tokenizer", std::string("bytes"))}});
    write_json_atomic((fs::path(staging) / "trainer_state.json").string(), state);
    // The trainer routes by cosine similarity (the paper's rule); the engine default for this config
    // would be the scaled dot product, so the model records how it must be served.
    // It also records the question position it was trained at (sample_loss: MsaOptions' 3 + 16), which
    // the backend keeps for any top-k.
    // And the number of documents it was trained to attend to (train_top_k), its default topk.
    json hints = {{"routing", "cosine"}, {"query_position", MsaOptions::from_config(m.config()).query_position_start}};
    if (state.contains("train_config") && state["train_config"].contains("train_top_k"))
      hints["topk"] = state["train_config"]["train_top_k"];
    write_json_atomic((fs::path(staging) / "msabench_inference.json").string(), hints);
    replace_directory_atomic(staging, target.string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    throw;
  }
}

}  // namespace msabench
