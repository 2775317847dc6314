// Trainer for the suite's own MSA models (msa-reference.md §6.4, §7): one differentiable pass per
// sample over its documents (intra-document attention) and its active sequence (template, routing
// query, response); router layers score documents by cosine similarity, select top-k, and the
// active tokens attend to every chunk of the selected documents. Loss = w_lm * LM (response tokens)
// + w_aux * InfoNCE-decoupled routing loss (tau 0.1), with the paper's two phases.
// Checkpoints (model + AdamW state + step) make training resumable and deterministic.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/config.h"
#include "datasets/msa_training.h"

namespace msabench {

class TextTokenizer;

struct TrainConfig {
  std::string out_dir;                 // checkpoint/, log.jsonl
  ModelConfig model;                   // architecture (model_type msa)
  std::string tokenizer = "bytes";
  // Warm start (used only when out_dir has no checkpoint yet): a model or checkpoint directory whose
  // weights initialise this run. Every tensor must have this config's shape, except that the
  // embedding may have fewer rows (a tokenizer that adds tokens): the new rows are their random init
  // plus the source's "[" row (new tokens are document ids "[i]"). With more rows (bytes+ids:N to
  // bytes+splitids) the first rows are kept.
  std::string init_from;
  // At initialisation (fresh or warm start), multiply every q_norm and k_norm weight by this. QK-norm
  // caps an attention logit at sqrt(head_dim) * |w_q| * |w_k| (5.7 for head_dim 32 at the usual init
  // of 1), too soft to pick one token out of hundreds, and at lr 2e-3 the weights take thousands of
  // steps to grow; a small model learns copying (names, answer values) only with sharper attention.
  double qk_norm_scale = 1.0;
  // How the "msa" objective runs each document's attention within itself: "per_document" (one
  // document at a time) or "padded" (one batch padded to the longest document: about 2.5x the
  // time and 2x the peak memory on the shipped recipe). They agree to float rounding, not bitwise;
  // the runs committed before session 11 used "padded", and their configs say so.
  std::string document_attention = "per_document";
  TrainingDataConfig data;
  // Data curriculum: steps before until_step draw samples from that stage's data (the base "data"
  // with the stage's overrides) and use the stage's batch (default: "batch"); steps past every
  // stage use "data" and "batch". Stages are in increasing order of until_step.
  // A stage's objective "lm" trains the backbone as a plain causal LM, without memory: the
  // transcripts of its samples (routing query, injected document, restated questions, answers;
  // not the "[id]" steps, which need the memory) are packed into `batch` sequences of seq_len
  // tokens with a loss on every token. Dense next-token signal grows the copy (induction) circuits
  // the protocol needs, which the "msa" objective's few dozen targets per sample do not.
  struct DataStage {
    int64_t until_step = 0;
    TrainingDataConfig data;
    int batch = 1;
    std::string objective = "msa";  // msa | lm
    int seq_len = 1024;
    // The lr ramps up again over the stage's first warmup_steps steps: at the full lr a switch of
    // data can wreck what the previous stage learnt (a loss spike of 1.4 -> 4.4 in session 4).
    int64_t warmup_steps = 0;
    // > 0: the stage trains at this constant lr (after its warmup) instead of the run's cosine,
    // so a stage added late in a run is not stuck at the cosine's tail.
    double lr = 0;
    // "lm" objective: weight of the targets the system writes (prose, needles, questions) against
    // the model-written ones (copies, answers). Prose LM gradients wear a fragile copy circuit down
    // (session 6: kv_direct NLL 0.75 -> 2.09 in 700 mixed steps); < 1 keeps more of it.
    double context_weight = 1;
    // "lm" objective: the sample's documents are inline after the template head (a full-context
    // reading); the "[id]" steps and each document's closing "[id]" are trained. Naming the
    // document that holds the key, with the document in plain view, needs the circuit that writes
    // each document's id into its tokens, which the "msa" objective then reads from pooled chunks.
    bool documents_in_context = false;
    // "lm" objective without documents: train the "[id]" step tokens that already occurred in the
    // transcript (a pointer hop's id, copied from the injected text) instead of masking every
    // "[id]" step (the first names a document only the memory shows).
    bool train_seen_ids = false;
    // "lm" objective: a transcript that does not fit the rest of a packed row starts the next row
    // (the rest is padding, not trained) instead of running on into it, where its answer would be
    // trained without the text it copies from. One longer than seq_len is still cut.
    bool whole_samples = false;
    // "lm" objective: TrainConfig::copy_answer_rows for this stage (or the lm_mix) alone. In msa
    // steps answer rows count as copy rows for copy_gate_head too, which opens the gated head where
    // NIAH's digits are written (session 30); the lm objective has no gate.
    bool copy_answer_rows = false;
    int64_t from_step = 0;  // the previous stage's until_step (derived)
  };
  std::vector<DataStage> curriculum;
  // > 0: every "msa"-objective step also adds lm_mix_weight x the "lm" objective's loss on one
  // packed batch of lm_mix (its data, batch, seq_len, context_weight, documents_in_context,
  // train_seen_ids, whole_samples, copy_answer_rows; its until_step, lr and warmup_steps are refused). A skill only the dense "lm"
  // signal teaches (copying an id token out of the context) is then learnt while the msa loss holds
  // naming from memory, which an "lm" stage on its own erased (session 20). Logged as mix_lm_loss,
  // mix_answer_token_acc and mix_id_token_acc; "loss" stays the msa objective's. 0 = off.
  double lm_mix_weight = 0;
  DataStage lm_mix = [] {
    DataStage s;
    s.objective = "lm";
    return s;
  }();
  const TrainingDataConfig& data_at(int64_t step) const;
  int batch_at(int64_t step) const;
  const DataStage* stage_at(int64_t step) const;  // nullptr past the curriculum
  double lr_at(int64_t step) const;  // warmup, cosine to min_lr over `steps`, stage re-warmups
  int64_t steps = 1000;
  int batch = 1;                       // samples per optimizer step (gradient accumulation)
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.01, clip_norm = 1.0;
  int64_t warmup_steps = 50;
  int64_t phase1_steps = 100;          // 0.1*LM + 1.0*aux; afterwards 1.0*LM + phase2_aux_weight*aux
  // The paper's phase 2 keeps 0.1. A later stage that must restore routing without letting the LM
  // terms drift (short many-document refresh after naming runs) raises it to 1.0.
  double phase2_aux_weight = 0.1;
  bool aux_loss = true;                // ablation switch
  // Weight of an auxiliary LM loss on the system-written tokens after the template (routing query,
  // injected document text, restated question). Those repeat earlier text (the question, the
  // document id, haystack sentences), so they give the copying circuits a dense signal; the
  // protocol's own targets are a few dozen tokens per sample. 0 = the paper's loss only.
  double context_lm_weight = 0;
  // Weight of an extra LM term, the mean loss over the retrieval-step targets alone ("[id]" and its
  // delimiter). In the paper's loss these are 2 of about 45 targets per round, and the only ones
  // that need memory values; this lets naming get a signal of its own. 0 = the paper's loss only.
  double id_lm_weight = 0;
  // Weight of an extra LM term in msa steps on the trained <End-of-Retrieve> targets alone (logged as
  // stop_lm_loss; stop_acc / mix_stop_acc give their greedy accuracy at any weight): the decision after an
  // injected document to answer rather than name another document. In the LM loss it is one target
  // of dozens, against id_lm_weight on pointer's second id (session 30: a model with an id copy wrote
  // a fixed id after NIAH documents instead of stopping). 0 = the paper's loss only.
  double stop_weight = 0;
  // At a fresh start (after init_from), replaces each document-id token's own part of its embedding
  // (the row minus the mean of all id rows) by a random vector of this norm. Trained ids collapse
  // onto one direction (pairwise cosine 0.9 in the session-10 model), which leaves nothing to copy.
  // 0 = keep the rows.
  double id_embedding_spread = 0;
  // Weight of an auxiliary loss on the last router layer's pooled chunk values: each chunk's value,
  // through o_proj and the LM head as if a query attended to it alone, must name the chunk's
  // document. Not in the paper; it trains the half of naming that carries the id into memory (the
  // other half, attending to the right chunk, is left to the LM loss). Needs id tokens
  // (bytes+ids:N: the id; bytes+splitids: the id, or its second token "dd]"). 0 = off. With any id option on, the log also records `id_memory_attention`: per
  // router layer, the attention share that the rows predicting a document id give the gold's chunks.
  double id_probe_weight = 0;
  // Weight of a loss on where the rows that predict a document id look, in every router layer that
  // selected the gold document: -log of the attention share of the gold document's chunks (mean
  // over heads inside the log). Not in
  // the paper. Measured (session 12): the shipped model gives the gold's chunks a share of 1e-7
  // there (1e-14 after the 2-document probe run), a saturated softmax through which the LM loss
  // passes no gradient, so naming could not be learned however the values carried the id. 0 = off.
  double id_attention_weight = 0;
  // What id_attention_weight (and the logged id_memory_attention) count as the gold's share:
  // "document" (all its chunks) or "tag_chunks" (the chunks holding its opening and closing "[id]"
  // tokens). The second is for ids of two tokens (bytes+splitids), whose second token the layers
  // below do not spread over the document (session 13), so it is read where it is written.
  std::string id_attention_target = "document";
  // false: id_attention_weight leaves out copy rows (naming rows whose id already stands in the
  // active text: hop 2 of a pointer transcript, which copy_attention_weight trains). At a router
  // layer both losses pull on one softmax, towards the memory and towards the text. Measured
  // (session 23, joint runs from an lm stage with copy_value_weight 1): hop 2 was named in 24% of
  // rows over 150 steps with id_attention_weight 0, and fell to 0 within 50 steps with it at 1.
  bool id_attention_copy_rows = true;
  // Weight of a loss on where a copy looks: -log of copy_attention_layer's attention share on the
  // earlier occurrences of the id a row must write (mean over heads inside the log). In msa steps
  // the rows are later retrieval steps' ids that already stand in the active text (synth pointer
  // transcripts: "kept in document [j]" in the injected document); in "lm" stages and lm_mix, every
  // trained id target already in its packed row (copy_ids' second copies: a dense signal for the
  // same circuit). Not in the paper: hop 2's LM signal is one token per sample, and the attention
  // that would carry it starts near zero (session 22: a share below 1e-18). With any id option on, msa
  // steps log that share as copy_attention_share; lm_mix logs mix_copy_attention_*. 0 = off.
  double copy_attention_weight = 0;
  // The layer whose attention copy_attention_weight trains; -1 = the last router layer. Measured
  // (session 22): the copy that an "lm" stage on copy_ids grows runs through layer 2's head 0 in
  // msa-small (85% of copy rows attend the source there after 4,300 steps), and supervising layer 3
  // instead drew attention to the source without copying.
  int copy_attention_layer = -1;
  // Weight of a loss on what a copy reads: each copy row's sources (as copy_attention_weight finds
  // them) at copy_attention_layer, read by every head at once (the mean of their values), through
  // o_proj and the LM head, must give the row's target id: CE over the vocabulary. Not in the paper.
  // Measured (session 23, msa-small after 2,700 copy_ids steps with copy_attention_weight 1 at
  // layer 2; results/msa-small-copy/s23-value/id_readout.py): a linear map reads the id back from
  // layer 2's input at an id token's position in 94% of held-out contexts (74% at rank 32, one
  // value head's width), layer 3's in 15%; yet with 76% of layer 2 head 0's attention on the
  // source, copy rows ranked the id 414th of 2,064 (median). The id is there; the
  // value path is not learnt from copy_ids' LM targets alone. Logged as
  // copy_value_loss / copy_value_acc (mix_copy_value_* for lm_mix). 0 = off.
  double copy_value_weight = 0;
  // true: answer rows join the copy rows of copy_attention_weight and copy_value_weight when their
  // value already stands verbatim earlier in the active text (or packed row): the row writing the
  // value's k-th token has as its source the k-th token of the latest earlier occurrence. Pointer
  // answers copy a word out of the injected target document, with no key to match; from the LM
  // loss alone session 26's model writes one fixed word for every answer. Measured (session 27,
  // results/msa-small-copy/s27-read/): an "lm" stage on pointer_read with it copies the word in
  // 14/32 in-context probes after 2,850 steps. Their shares count in copy_attention_share and
  // copy_value_acc; the log also gives both figures for id rows and answer rows apart
  // (copy_attention_share_ids / _answers, copy_value_acc_ids / _answers; mix_ for lm_mix), since
  // the easy answer copies hid a missing id copy (session 29: 0.91 logged, 0 on id rows held out).
  // Each is a mean over the window's steps that had such rows, of per-step row means, so over a
  // window the whole figure need not lie between the two kinds' (within one step it does).
  // Not in the paper.
  bool copy_answer_rows = false;
  // Weight of a gate on one head of copy_attention_layer (copy_gate_head): at the rows with a
  // target that are not copy rows (hop 1's naming from memory, answers, delimiters), the squared
  // norm of what the head adds to the residual over the residual's own (a share; mean over rows).
  // Not in the paper. Measured (session 25, results/msa-small-copy/s25-surgery/): a planted copy
  // head names hop 2, but writes its id code wherever it looks (24% of its attention on id tokens
  // at other rows), and hop 1 and NIAH's digits fall as its scale rises; the gate asks training to
  // open it at copy rows only. Logged as copy_gate_loss (gated rows) and copy_gate_open (copy rows,
  // the same share, not trained) in msa steps; lm_mix and lm stages are not gated. 0 = off.
  double copy_gate_weight = 0;
  int copy_gate_head = -1;  // the head copy_gate_weight gates; -1 = none (then the weight must be 0)
  // Which weights the optimizer updates: "all", or "router" (the decoupled router projections
  // router_q_proj/router_k_proj only). With hard top-k on detached scores only L_aux reaches those,
  // so a "router" stage retrains routing (e.g. key-specific, against distractor needles) while
  // naming and reading stay bit-identical. Needs msa_config.decouple_router.
  // "layers:I,J,..." updates those decoder layers only (every tensor in them; embeddings, the final
  // norm and the other layers stay): a copy circuit can be grown in the lower layers by an "lm"
  // stage while the upper layers that name documents from memory keep their weights.
  std::string trainable = "all";
  double tau = 0.1;
  // > 0 (and query_reduce_method "max"): in the routing loss, the maximum over routing tokens
  // becomes a soft maximum, t * logsumexp(s / t). The hard max passes gradient to one token per
  // chunk; when that is a token every question shares (the instruction text, "special magic
  // number"), it scores all needles alike and the key's tokens never get a gradient (sessions
  // 16-17: multikey routing stuck at chance). Top-k selection and the engine keep the hard max.
  // 0 = the paper's hard max. Tried at 0.05 in session 18: no effect on multikey routing
  // (results/msa-small-copy/s19-keymatch/, soft1, km8); kept as an option, not used by the shipped recipe.
  double routing_token_temperature = 0;
  // > 0: adds key_match_weight x an InfoNCE (temperature tau) at every router layer in which the
  // question's last key token must score the asked needle's key chunk above the other needles' key
  // chunks (niah samples with distractor needles or extra_questions; others add nothing). The
  // document-level routing loss cannot say which routing token should carry the match, and with
  // the max over tokens the template's tokens, alike for every needle, take it (sessions 16-18).
  // Logged as key_match_loss and key_match_top1. 0 = off (the paper's objective).
  double key_match_weight = 0;
  int train_top_k = 4;                 // documents attended per router layer during training
  int64_t save_every = 50, log_every = 10;
  uint64_t seed = 1;
  int threads = 2;
  int64_t max_seconds = 0;             // stop (after a checkpoint) when exceeded; 0 = no limit

  // Unknown keys (top level, data, curriculum stages) are refused with the file named.
  static TrainConfig from_json(const nlohmann::json& j, const std::string& source);
  static TrainConfig load(const std::string& path);
  nlohmann::json to_json() const;
};

struct TrainSummary {
  int64_t steps_done = 0;
  int64_t steps_run = 0;  // in this call (0: the checkpoint was already at the planned steps)
  bool finished = false;
  double last_loss = 0, last_lm = 0, last_aux = 0, last_router_recall = 0, last_id_acc = 0, last_answer_acc = 0;
};

// Trains from scratch, or resumes from out_dir/checkpoint when present.
TrainSummary train_msa(const TrainConfig& cfg, bool quiet = false);

// In-context copy probe, no memory: for `samples` held-out samples of the config's final data
// (seed data.seed + 1000003, never a training seed), the transcript up to the answer (routing
// query, the gold document injected, the restated question, "The answer to the question is: ")
// is fed to the latest checkpoint as plain context and the greedy answer compared with the gold
// value. It separates "cannot copy from its context" from "cannot name the document". For the
// copy tasks (repeat*, copy_*) it feeds the first copy and compares the generated second copy.
// Without a checkpoint in out_dir it probes the config's init_from (e.g. a shipped model), step 0.
struct CopyProbe {
  std::string weights;  // the checkpoint or model directory probed
  int64_t step = 0, samples = 0, exact = 0;
  double digit_accuracy = 0;  // per character position of the gold value
  // Mean teacher-forced NLL (nats) of the target tokens: the answer value's, or the second copy's
  // and its end token. Chance is ln 10 = 2.30 for digits, ln 36 = 3.58 for copy_chars symbols.
  double target_nll = 0;
  // Teacher-forced top-1 accuracy over those target tokens, and over the ones that are document-id
  // tokens (-1: none). Copying ids shows here: a generated string with one id wrong is not exact,
  // and an id dropped shifts every later character of digit_accuracy.
  double target_accuracy = 0, id_target_accuracy = -1;
  // target_accuracy by the target token's place in its sample's target (k = 0: the first byte of
  // the word), and how many samples have a k-th token. Tells a copy that loses the word after a
  // few letters from one that never finds it.
  std::vector<double> target_accuracy_by_place;
  std::vector<int64_t> targets_by_place;
  std::vector<std::pair<std::string, std::string>> examples;  // (gold, generated), first few
};
CopyProbe probe_answer_copy(const TrainConfig& cfg, int samples);

// The target tokens that id_name_acc_later scores for one sample, as the trainer tokenizes it: the
// "[id]" tokens of its trained retrieval steps after the first. Exposed for tests.
std::vector<int64_t> later_naming_targets(const TextTokenizer& tok, const TrainingSample& s);

// Writes a checkpoint directory (a run's OUT_DIR/checkpoint, or a committed fp32 snapshot with its
// trainer_state.json) as a shippable model: bf16 weights, config, tokenizer spec, serving hints.
// model_dir is replaced whole (staged beside it, then swapped in).
void export_trained_model(const std::string& checkpoint_dir, const std::string& model_dir);

}  // namespace msabench
