// The trainer: losses fall, and a run stopped and resumed from its checkpoint ends bitwise equal
// to an uninterrupted run with the same seed and thread count.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/model/msa_train.h"
#include "core/model/qwen3.h"
#include "core/tokenizer/text_tokenizer.h"
#include "datasets/pointer_chain.h"

namespace fs = std::filesystem;
using namespace msabench;

namespace {
TrainConfig tiny_train(const std::string& out) {
  TrainConfig c;
  c.out_dir = out;
  c.model.model_type = "msa";
  c.model.vocab_size = 262;
  c.model.hidden_size = 32;
  c.model.intermediate_size = 64;
  c.model.num_hidden_layers = 2;
  c.model.num_attention_heads = 4;
  c.model.num_key_value_heads = 2;
  c.model.head_dim = 8;
  c.model.rope_theta = 10000;
  c.model.tie_word_embeddings = true;
  c.model.torch_dtype = "float32";
  MsaConfig m;
  m.router_layers = {1};
  m.router_layer_idx = "1";
  m.decouple_router = true;
  m.pooling_kernel_size = 16;
  c.model.msa = m;
  c.data.min_docs = 3;
  c.data.max_docs = 5;
  c.data.doc_words = 8;
  c.steps = 6;
  c.batch = 2;
  c.warmup_steps = 2;
  c.phase1_steps = 2;
  c.save_every = 3;
  c.log_every = 1;
  c.threads = 1;
  return c;
}
fs::path tmp(const std::string& n) {
  fs::path p = fs::temp_directory_path() / ("msabench-train-" + n + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}
// Trains `c` for `steps` steps (log_every 1) in a scratch folder and returns the steps' log records.
std::vector<nlohmann::json> step_records(TrainConfig c, const std::string& name, int64_t steps) {
  const auto dir = tmp(name);
  c.out_dir = dir.string();
  c.steps = steps;
  c.log_every = 1;
  train_msa(c, true);
  std::ifstream log(dir / "log.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(log, line);) records.push_back(nlohmann::json::parse(line));
  EXPECT_EQ(static_cast<int64_t>(records.size()), steps) << name;
  fs::remove_all(dir);
  return records;
}
nlohmann::json first_step_record(const TrainConfig& c, const std::string& name) { return step_records(c, name, 1).at(0); }
using JsonEdit = void (*)(nlohmann::json&);
// Each edit of `good` must be refused by TrainConfig::from_json with an error naming `file` (and
// holding `word`, when given).
void expect_refused(const nlohmann::json& good, std::initializer_list<JsonEdit> edits, const std::string& file,
                    const std::string& word = "") {
  for (auto edit : edits) {
    auto bad = good;
    edit(bad);
    try {
      TrainConfig::from_json(bad, file);
      ADD_FAILURE() << bad.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      if (!word.empty()) {
        EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
      }
    }
  }
}
// rec[key], which must be logged and be a share strictly between 0 and 1 (-1 when missing).
double logged_share(const nlohmann::json& rec, const std::string& key) {
  if (!rec.contains(key)) {
    ADD_FAILURE() << key << " not logged: " << rec.dump();
    return -1;
  }
  const double share = rec[key].get<double>();
  EXPECT_GT(share, 0.0) << key;
  EXPECT_LT(share, 1.0) << key;
  return share;
}
// A small lm_mix of copy_ids strings over c's data (its weight left as it is).
void copy_ids_mix(TrainConfig& c) {
  c.lm_mix.seq_len = 128;
  c.lm_mix.batch = 2;
  c.lm_mix.data = c.data;
  c.lm_mix.data.task = "copy_ids";
  c.lm_mix.data.copy_max_len = 6;
}
// Trains `c` (its trainable option) for two steps from its random init; returns (init, trained).
std::pair<Qwen3Model, Qwen3Model> initial_and_trained(TrainConfig c, const std::string& name) {
  const auto dir = tmp(name);
  c.out_dir = dir.string();
  c.steps = 2;
  EXPECT_EQ(TrainConfig::from_json(c.to_json(), name + ".json").trainable, c.trainable);
  train_msa(c, true);
  torch::manual_seed(c.seed);
  std::pair<Qwen3Model, Qwen3Model> out{Qwen3Model::random_init(c.model, c.seed), Qwen3Model::load((dir / "checkpoint").string())};
  fs::remove_all(dir);
  return out;
}
}  // namespace

TEST(MsaTrain, ResumeIsBitwiseEqualToAnUninterruptedRun) {
  auto a = tmp("a"), b = tmp("b");
  TrainConfig full = tiny_train(a.string());
  auto sa = train_msa(full, true);
  EXPECT_TRUE(sa.finished);
  TrainConfig part = tiny_train(b.string());
  part.steps = 3;  // stop at the first checkpoint ...
  train_msa(part, true);
  part.steps = 6;  // ... and resume from it
  auto sb = train_msa(part, true);
  EXPECT_EQ(sb.steps_done, 6);
  auto ma = Qwen3Model::load((a / "checkpoint").string()), mb = Qwen3Model::load((b / "checkpoint").string());
  EXPECT_TRUE(torch::equal(ma.embed_tokens, mb.embed_tokens));
  EXPECT_TRUE(torch::equal(ma.layers[1].router_q_proj, mb.layers[1].router_q_proj));
  EXPECT_EQ(sa.last_loss, sb.last_loss);
  // the log has one line per step and the export is a loadable bf16 model
  std::ifstream log((a / "log.jsonl").string());
  int lines = 0;
  for (std::string l; std::getline(log, l);) {
    ++lines;
    const auto rec = nlohmann::json::parse(l);
    ASSERT_TRUE(rec.contains("id_token_acc")) << l;
    ASSERT_TRUE(rec.contains("answer_token_acc")) << l;
    EXPECT_GE(rec["id_token_acc"].get<double>(), 0.0);
    EXPECT_LE(rec["id_token_acc"].get<double>(), 1.0);
  }
  EXPECT_EQ(lines, 6);
  // Already at the planned steps: nothing runs, and the summary says so.
  EXPECT_EQ(train_msa(full, true).steps_run, 0);
  EXPECT_EQ(sb.steps_run, 3);
  export_trained_model((a / "checkpoint").string(), (a / "model").string());
  auto shipped = Qwen3Model::load((a / "model").string());
  EXPECT_EQ(shipped.config().torch_dtype, "bfloat16");
  EXPECT_TRUE(fs::exists(a / "model" / "tokenizer_spec.json"));
  // how it must be served: cosine routing, the trained question position and top-k
  const auto hints = nlohmann::json::parse(std::ifstream(a / "model" / "msabench_inference.json"));
  EXPECT_EQ(hints.value("routing", ""), "cosine");
  EXPECT_EQ(hints.value("topk", 0), full.train_top_k);
  EXPECT_EQ(hints.value("query_position", -1), 19);
  // A failed export names the checkpoint and leaves the model as it was; a second export replaces
  // it whole and leaves no staging directory behind.
  try {
    export_trained_model((a / "no-checkpoint").string(), (a / "model").string());
    ADD_FAILURE() << "exported a missing checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-checkpoint"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(a / "model" / "model.safetensors"));
  fs::remove(a / "model" / "tokenizer_spec.json");
  export_trained_model((a / "checkpoint").string(), (a / "model").string());
  EXPECT_TRUE(fs::exists(a / "model" / "tokenizer_spec.json"));
  EXPECT_TRUE(torch::equal(Qwen3Model::load((a / "model").string()).embed_tokens, shipped.embed_tokens));
  // a target written with a trailing slash is staged beside it too; the checkpoint itself is refused
  export_trained_model((a / "checkpoint").string(), (a / "model").string() + "/");
  EXPECT_TRUE(fs::exists(a / "model" / "model.safetensors"));
  EXPECT_THROW(export_trained_model((a / "checkpoint").string(), (a / "checkpoint").string()), Error);
  EXPECT_TRUE(fs::exists(a / "checkpoint" / "trainer_state.json"));
  for (const auto& e : fs::directory_iterator(a))
    EXPECT_EQ(e.path().filename().string().find("model.export-"), std::string::npos) << e.path();
  for (const auto& e : fs::directory_iterator(a / "model"))
    EXPECT_EQ(e.path().filename().string().find(".export-"), std::string::npos) << e.path();
  fs::remove_all(a);
  fs::remove_all(b);
}

// Warm start into a model whose tokenizer adds id tokens: old weights are copied, the new
// embedding rows start from the source's "[" row; a curriculum stage changes data and batch for its steps.
TEST(MsaTrain, WarmStartGrowsTheVocabularyAndFollowsTheCurriculum) {
  auto a = tmp("src"), b = tmp("warm");
  TrainConfig src = tiny_train(a.string());
  src.steps = 2;
  train_msa(src, true);
  TrainConfig warm = tiny_train(b.string());
  warm.tokenizer = "bytes+ids:40";
  warm.model.vocab_size = 302;
  warm.init_from = (a / "checkpoint").string();
  warm.data.max_doc_id = 40;
  TrainConfig::DataStage st;
  st.until_step = 2;
  st.data = warm.data;
  st.data.min_docs = st.data.max_docs = 2;
  st.batch = 1;
  warm.curriculum = {st};
  EXPECT_EQ(warm.batch_at(1), 1);
  EXPECT_EQ(warm.batch_at(2), 2);
  EXPECT_EQ(warm.data_at(0).max_docs, 2);
  EXPECT_EQ(warm.data_at(5).max_docs, 5);
  const auto round = TrainConfig::from_json(warm.to_json(), "warm.json");
  ASSERT_EQ(round.curriculum.size(), 1u);
  EXPECT_EQ(round.curriculum[0].batch, 1);
  EXPECT_EQ(round.curriculum[0].data.max_docs, 2);
  EXPECT_EQ(round.init_from, warm.init_from);
  // an "lm" stage (packed transcripts, no memory) before the msa stage; bad stages are refused
  auto lm_json = warm.to_json();
  lm_json["curriculum"][0]["objective"] = "lm";
  lm_json["curriculum"][0]["seq_len"] = 64;
  const auto lm_cfg = TrainConfig::from_json(lm_json, "lm.json");
  ASSERT_NE(lm_cfg.stage_at(0), nullptr);
  EXPECT_EQ(lm_cfg.stage_at(0)->objective, "lm");
  EXPECT_EQ(lm_cfg.stage_at(2), nullptr);
  // a stage's warmup ramps the lr again from its first step
  lm_json["curriculum"][0]["warmup_steps"] = 2;
  lm_json["curriculum"].push_back({{"until_step", 4}, {"warmup_steps", 2}});
  const auto ramp = TrainConfig::from_json(lm_json, "lm.json");
  EXPECT_EQ(ramp.curriculum[1].from_step, 2);
  EXPECT_EQ(ramp.curriculum[1].warmup_steps, 2);
  EXPECT_NEAR(ramp.lr_at(2), 0.5 * lm_cfg.lr_at(2), 1e-12);
  EXPECT_NEAR(ramp.lr_at(3), lm_cfg.lr_at(3), 1e-12);
  EXPECT_NEAR(ramp.lr_at(4), lm_cfg.lr_at(4), 1e-12);
  lm_json["curriculum"][1]["lr"] = 0.5;
  const auto flat = TrainConfig::from_json(lm_json, "lm.json");
  EXPECT_NEAR(flat.lr_at(2), 0.25, 1e-12);
  EXPECT_NEAR(flat.lr_at(3), 0.5, 1e-12);
  EXPECT_NEAR(flat.lr_at(1), lm_cfg.lr_at(1), 1e-12);
  lm_json["curriculum"][1]["lr"] = -1;
  EXPECT_THROW(TrainConfig::from_json(lm_json, "lm.json"), Error);
  lm_json["curriculum"][1].erase("lr");
  lm_json["curriculum"][1]["warmup_steps"] = -1;
  EXPECT_THROW(TrainConfig::from_json(lm_json, "lm.json"), Error);
  lm_json["curriculum"].erase(1);
  lm_json["curriculum"][0].erase("warmup_steps");
  lm_json["curriculum"][0]["objective"] = "mlm";
  EXPECT_THROW(TrainConfig::from_json(lm_json, "lm.json"), Error);
  lm_json["curriculum"][0]["objective"] = "lm";
  lm_json["curriculum"][0]["seq_len"] = 1 << 20;
  EXPECT_THROW(TrainConfig::from_json(lm_json, "lm.json"), Error);
  {
    lm_json["out_dir"] = tmp("lm").string();
    lm_json["curriculum"][0]["seq_len"] = 64;
    auto c = TrainConfig::from_json(lm_json, "lm.json");
    c.init_from.clear();
    c.steps = 3;
    const auto sum = train_msa(c, true);
    EXPECT_EQ(sum.steps_done, 3);
    EXPECT_TRUE(std::isfinite(sum.last_loss));
    // the copy probe: an untrained model is near chance on the answer value and on a copy block
    const auto p = probe_answer_copy(c, 2);
    EXPECT_EQ(p.samples, 2);
    EXPECT_GT(p.target_nll, 1.0);
    EXPECT_LT(p.target_nll, 20.0);
    EXPECT_TRUE(p.target_accuracy >= 0 && p.target_accuracy < 1) << p.target_accuracy;
    EXPECT_EQ(p.id_target_accuracy, -1);  // a NIAH value has no id tokens
    // by place: every sample has a first target token, fewer have later ones, and the places
    // together are the overall accuracy
    ASSERT_FALSE(p.targets_by_place.empty());
    ASSERT_EQ(p.targets_by_place.size(), p.target_accuracy_by_place.size());
    EXPECT_EQ(p.targets_by_place[0], 2);
    double hits = 0;
    int64_t n = 0;
    for (size_t k = 0; k < p.targets_by_place.size(); ++k) {
      if (k > 0) {
        EXPECT_LE(p.targets_by_place[k], p.targets_by_place[k - 1]);
      }
      hits += p.target_accuracy_by_place[k] * p.targets_by_place[k];
      n += p.targets_by_place[k];
    }
    EXPECT_NEAR(hits / n, p.target_accuracy, 1e-12);
    // without a checkpoint of its own a config probes its init_from: the same weights, the same probe
    auto from_init = c;
    from_init.out_dir = tmp("probe-init").string();
    from_init.init_from = (fs::path(c.out_dir) / "checkpoint").string();
    const auto pi = probe_answer_copy(from_init, 2);
    EXPECT_EQ(pi.weights, from_init.init_from);
    EXPECT_EQ(pi.step, 0);
    EXPECT_EQ(pi.target_nll, p.target_nll);
    from_init.init_from.clear();
    EXPECT_THROW(probe_answer_copy(from_init, 2), Error);
    c.data.task = "copy_chars";
    const auto pc = probe_answer_copy(c, 2);
    ASSERT_FALSE(pc.examples.empty());
    EXPECT_EQ(pc.examples[0].first.find("Again:"), std::string::npos);
    EXPECT_GT(pc.target_nll, 1.0);
    EXPECT_LE(pc.exact, 2);
    fs::remove_all(c.out_dir);
  }
  // the loss of one step from the fresh model that lm_json describes
  const auto first_step_loss = [&lm_json] {
    auto c = TrainConfig::from_json(lm_json, "lm.json");
    c.init_from.clear();
    c.steps = 1;
    const double loss = train_msa(c, true).last_loss;
    fs::remove_all(c.out_dir);
    return loss;
  };
  {  // context_weight: 0 trains only the model-written targets, so the first step's loss differs
    lm_json["out_dir"] = tmp("lmw").string();
    lm_json["curriculum"][0]["seq_len"] = 64;
    lm_json["curriculum"][0]["context_weight"] = -0.5;
    EXPECT_THROW(TrainConfig::from_json(lm_json, "lm.json"), Error);
    std::vector<double> first_loss;
    for (double w : {1.0, 0.0}) {
      lm_json["curriculum"][0]["context_weight"] = w;
      EXPECT_EQ(TrainConfig::from_json(lm_json, "lm.json").curriculum[0].context_weight, w);
      first_loss.push_back(first_step_loss());
    }
    EXPECT_TRUE(std::isfinite(first_loss[1]));
    EXPECT_NE(first_loss[0], first_loss[1]);
    lm_json["curriculum"][0].erase("context_weight");
  }
  {  // documents_in_context: the documents join the packed transcripts (another first loss); only
     // the lm objective can take them, and the flag survives the checkpoint's config round trip
    lm_json["out_dir"] = tmp("lmd").string();
    lm_json["curriculum"][0]["seq_len"] = 1024;
    lm_json["curriculum"][0]["objective"] = "msa";
    lm_json["curriculum"][0]["documents_in_context"] = true;
    EXPECT_THROW(TrainConfig::from_json(lm_json, "lm.json"), Error);
    lm_json["curriculum"][0]["objective"] = "lm";
    std::vector<double> first_loss;
    for (bool inline_docs : {false, true}) {
      lm_json["curriculum"][0]["documents_in_context"] = inline_docs;
      const auto c = TrainConfig::from_json(lm_json, "lm.json");
      EXPECT_EQ(c.curriculum[0].documents_in_context, inline_docs);
      EXPECT_EQ(TrainConfig::from_json(c.to_json(), "round trip").curriculum[0].documents_in_context, inline_docs);
      first_loss.push_back(first_step_loss());
    }
    EXPECT_TRUE(std::isfinite(first_loss[1]));
    EXPECT_NE(first_loss[0], first_loss[1]);
    // a step whose rows hold document tokens only has no target: loss 0, not NaN
    lm_json["curriculum"][0]["seq_len"] = 16;
    EXPECT_EQ(first_step_loss(), 0.0);
    lm_json["curriculum"][0].erase("documents_in_context");
  }
  warm.steps = 1;  // one step: compare against the source before the weights move far
  train_msa(warm, true);
  auto ms = Qwen3Model::load((a / "checkpoint").string()), mw = Qwen3Model::load((b / "checkpoint").string());
  ASSERT_EQ(mw.embed_tokens.size(0), 302);
  // one AdamW step moves each weight by at most about lr
  EXPECT_LT((mw.layers[1].router_q_proj - ms.layers[1].router_q_proj).abs().max().item<double>(), 2 * warm.lr);
  EXPECT_LT((mw.embed_tokens.narrow(0, 0, 262) - ms.embed_tokens).abs().max().item<double>(), 2 * warm.lr);
  // a source with another architecture is refused, naming it
  TrainConfig bad = tiny_train(tmp("bad").string());
  bad.model.hidden_size = 16;
  bad.init_from = (a / "checkpoint").string();
  try {
    train_msa(bad, true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(a.string()), std::string::npos) << e.what();
  }
  fs::remove_all(bad.out_dir);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(MsaTrain, IdLossAndIdProbeAreLoggedAndIdEmbeddingsAreSpread) {
  auto dir = tmp("idopts");
  TrainConfig c = tiny_train(dir.string());
  c.tokenizer = "bytes+ids:40";
  c.model.vocab_size = 302;
  c.data.max_doc_id = 40;
  c.steps = 2;
  c.lr = 1e-6;  // the rows must still show the spread after two steps
  c.id_lm_weight = 2;
  c.id_embedding_spread = 1.5;
  c.id_probe_weight = 0.5;
  c.id_attention_weight = 0.25;
  c.train_top_k = 8;  // every document selected, so the gold's attention share is measured in every sample
  const auto round = TrainConfig::from_json(c.to_json(), "ids.json");
  EXPECT_EQ(round.id_lm_weight, 2);
  EXPECT_EQ(round.id_embedding_spread, 1.5);
  EXPECT_EQ(round.id_probe_weight, 0.5);
  EXPECT_EQ(round.id_attention_weight, 0.25);
  train_msa(c, true);
  std::ifstream log(dir / "log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    const auto rec = nlohmann::json::parse(line);
    ASSERT_TRUE(rec.contains("id_lm_loss"));
    EXPECT_TRUE(std::isfinite(rec["id_lm_loss"].get<double>()));
    EXPECT_GT(rec["id_lm_loss"].get<double>(), 0);
    ASSERT_TRUE(rec.contains("id_probe_loss"));
    EXPECT_TRUE(std::isfinite(rec["id_probe_loss"].get<double>()));
    EXPECT_GT(rec["id_probe_loss"].get<double>(), 0);
    EXPECT_GE(rec["id_probe_acc"].get<double>(), 0);
    ASSERT_TRUE(rec.contains("id_attention_loss"));
    EXPECT_GT(rec["id_attention_loss"].get<double>(), 0);  // -log of a share below 1
    // One attention mass per router layer; a softmax share of the memory columns, so in (0, 1).
    ASSERT_TRUE(rec.contains("id_memory_attention"));
    const auto attn = rec["id_memory_attention"].get<std::vector<double>>();
    EXPECT_EQ(attn.size(), c.model.msa->router_layers.size());
    for (double a : attn) {
      EXPECT_GT(a, 0);
      EXPECT_LT(a, 1);
    }
    ASSERT_TRUE(rec.contains("id_name_acc"));
    EXPECT_GE(rec["id_name_acc"].get<double>(), 0);
    EXPECT_LE(rec["id_name_acc"].get<double>(), 1);
    ++lines;
  }
  EXPECT_EQ(lines, 2);
  const auto m = Qwen3Model::load((dir / "checkpoint").string());
  auto ids = m.embed_tokens.narrow(0, 262, 40).to(torch::kFloat32);
  auto own = (ids - ids.mean(0, true)).norm(2, -1);
  // the mean of 40 unit-norm random parts is not exactly zero, so the own parts are near, not at, 1.5
  EXPECT_NEAR(own.mean().item<double>(), 1.5, 0.2);
  TrainConfig plain = tiny_train(tmp("idplain").string());
  plain.id_embedding_spread = 1;
  EXPECT_THROW(train_msa(plain, true), Error);  // "bytes" has no id tokens
  fs::remove_all(plain.out_dir);
  plain.id_embedding_spread = 0;
  plain.id_probe_weight = 1;
  EXPECT_THROW(train_msa(plain, true), Error);
  plain.id_probe_weight = 0;
  plain.id_attention_weight = 1;
  EXPECT_THROW(train_msa(plain, true), Error);
  fs::remove_all(plain.out_dir);
  auto bad = c.to_json();
  bad["id_lm_weight"] = -1;
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
  fs::remove_all(dir);
}

// stop_acc scores the trained <End-of-Retrieve> targets (the decision to answer after an injected
// document) in msa steps and the lm_mix; stop_weight adds their CE to the loss, on the same sample
// by exactly weight x stop_lm_loss. Samples with no such target log no stop figure.
TEST(MsaTrain, StopWeightTrainsTheEndOfRetrieveDecision) {
  TrainConfig c = tiny_train("unused");
  c.data.task = "niah";
  c.phase1_steps = 0;  // LM weight 1
  const auto plain = first_step_record(c, "stop-plain");
  ASSERT_TRUE(plain.contains("stop_acc")) << plain.dump();
  EXPECT_GE(plain["stop_acc"].get<double>(), 0);
  EXPECT_LE(plain["stop_acc"].get<double>(), 1);
  EXPECT_FALSE(plain.contains("stop_lm_loss"));
  c.stop_weight = 2.5;
  EXPECT_EQ(TrainConfig::from_json(c.to_json(), "stop.json").stop_weight, 2.5);
  const auto weighted = first_step_record(c, "stop-weighted");
  ASSERT_TRUE(weighted.contains("stop_lm_loss")) << weighted.dump();
  const double stop_lm = weighted["stop_lm_loss"].get<double>();
  EXPECT_GT(stop_lm, 0);
  EXPECT_EQ(weighted["lm_loss"].get<double>(), plain["lm_loss"].get<double>());  // same sample, same init
  EXPECT_NEAR(weighted["loss"].get<double>() - plain["loss"].get<double>(), 2.5 * stop_lm, 1e-4);
  c.data.task = "periodic";  // no retrieval, nothing to stop
  const auto none = first_step_record(c, "stop-none");
  EXPECT_FALSE(none.contains("stop_acc"));
  EXPECT_FALSE(none.contains("stop_lm_loss"));
  c.data.task = "niah";
  c.stop_weight = 0;
  c.lm_mix_weight = 1;
  c.lm_mix.data = c.data;
  c.lm_mix.seq_len = 1024;
  c.lm_mix.batch = 1;
  const auto mix = first_step_record(c, "stop-mix");
  ASSERT_TRUE(mix.contains("mix_stop_acc")) << mix.dump();
  EXPECT_GE(mix["mix_stop_acc"].get<double>(), 0);
  EXPECT_LE(mix["mix_stop_acc"].get<double>(), 1);
  auto bad = c.to_json();
  bad["stop_weight"] = -1;
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
}

// After phase 1 the routing loss weighs phase2_aux_weight (the paper's 0.1 by default): the logged
// loss is LM + w * aux for the weight given, it survives the JSON round trip, and < 0 is refused.
TEST(MsaTrain, Phase2AuxWeightScalesTheRoutingLoss) {
  for (const double w : {0.1, 1.0}) {
    TrainConfig c = tiny_train("unused");
    c.phase1_steps = 0;
    c.phase2_aux_weight = w;
    EXPECT_EQ(TrainConfig::from_json(c.to_json(), "w.json").phase2_aux_weight, w);
    const auto rec = first_step_record(c, "aux-weight");
    const double lm = rec["lm_loss"].get<double>(), aux = rec["aux_loss"].get<double>();
    EXPECT_GT(aux, 0);
    EXPECT_NEAR(rec["loss"].get<double>(), lm + w * aux, 1e-4 * (lm + aux));
  }
  auto bad = tiny_train("unused").to_json();
  bad["phase2_aux_weight"] = -0.5;
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
}

// The trainer scores documents with the config's head, query-token and chunk reductions (as the
// engine does at inference), not a fixed max/max: each change of one reduction changes the routing
// loss of the same first step.
TEST(MsaTrain, RoutingFollowsTheConfigsReductions) {
  auto first_aux = [](void (*edit)(MsaConfig&)) {
    TrainConfig c = tiny_train("unused");
    edit(*c.model.msa);
    return first_step_record(c, "reduce")["aux_loss"].get<double>();
  };
  const double base = first_aux(+[](MsaConfig&) {});
  EXPECT_GT(base, 0);
  for (auto edit : {+[](MsaConfig& m) { m.query_reduce = Reduce::Mean; }, +[](MsaConfig& m) { m.chunk_reduce = Reduce::Mean; },
                    +[](MsaConfig& m) { m.head_reduce = Reduce::Max; }})
    EXPECT_GT(std::abs(first_aux(edit) - base), 1e-6 * base);
}

// routing_token_temperature softens the max over routing tokens in the routing loss only: a tiny
// temperature gives the hard max's loss back, a real one changes it, and the selection (router
// top-1) stays on the hard max. Negative temperatures are refused.
TEST(MsaTrain, RoutingTokenTemperatureSoftensOnlyTheLoss) {
  auto first_step = [](double temperature) {
    TrainConfig c = tiny_train("unused");
    c.routing_token_temperature = temperature;
    EXPECT_EQ(TrainConfig::from_json(c.to_json(), "t.json").routing_token_temperature, temperature);
    return first_step_record(c, "soft-route");
  };
  const auto hard = first_step(0), nearly = first_step(1e-5), soft = first_step(0.5);
  const double base = hard["aux_loss"].get<double>();
  EXPECT_NEAR(nearly["aux_loss"].get<double>(), base, 1e-3 * base);
  EXPECT_GT(std::abs(soft["aux_loss"].get<double>() - base), 1e-3 * base);
  EXPECT_EQ(soft["router_top1"], hard["router_top1"]);
  auto bad = tiny_train("unused").to_json();
  bad["routing_token_temperature"] = -0.1;
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
}

// niah samples list every needle's document and key, the asked one first; key_match_weight adds
// the key-token InfoNCE over the needles' key chunks, logged with its top-1 when a sample has
// more than one needle; without distractors nothing is logged, and < 0 is refused.
TEST(MsaTrain, KeyMatchLossScoresTheQuestionsKeyTokenAgainstEveryNeedle) {
  TrainingDataConfig d;
  d.min_docs = 4;
  d.max_docs = 6;
  d.max_distractors = 3;
  d.extra_questions = 1;
  for (uint64_t i = 0; i < 10; ++i) {
    const auto s = make_training_sample(d, i);
    ASSERT_GE(s.needle_keys.size(), 2u);
    EXPECT_EQ(s.needle_keys[0].document, s.positives[0]);
    EXPECT_NE(s.question.find("for " + s.needle_keys[0].key + " "), std::string::npos);
    for (const auto& n : s.needle_keys)
      EXPECT_NE(s.documents[n.document].find("for " + n.key + " is: "), std::string::npos) << n.key;
  }
  TrainConfig c = tiny_train("unused");
  c.data.max_distractors = 3;
  c.data.extra_questions = 1;
  c.key_match_weight = 1;
  EXPECT_EQ(TrainConfig::from_json(c.to_json(), "k.json").key_match_weight, 1);
  const auto on = first_step_record(c, "key-match");
  ASSERT_TRUE(on.contains("key_match_loss"));
  EXPECT_GT(on["key_match_loss"].get<double>(), 0);
  EXPECT_GE(on["key_match_top1"].get<double>(), 0);
  EXPECT_LE(on["key_match_top1"].get<double>(), 1);
  // the weight enters the loss; the other terms of the first step are unchanged
  c.key_match_weight = 0;
  const auto off = first_step_record(c, "key-match-off");
  EXPECT_FALSE(off.contains("key_match_loss"));
  EXPECT_EQ(off["aux_loss"], on["aux_loss"]);
  EXPECT_NEAR(on["loss"].get<double>() - off["loss"].get<double>(), on["key_match_loss"].get<double>(),
              1e-4 * on["loss"].get<double>());
  c.data.max_distractors = 0;
  c.data.extra_questions = 0;
  c.key_match_weight = 1;
  EXPECT_FALSE(first_step_record(c, "key-match-one").contains("key_match_loss"));
  auto bad = tiny_train("unused").to_json();
  bad["key_match_weight"] = -1;
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
}

// trainable "router": only the decoupled router projections move; every other weight (naming,
// reading) stays bitwise as initialised.
TEST(MsaTrain, RouterOnlyStageUpdatesTheRouterProjectionsOnly) {
  TrainConfig c = tiny_train("unused");
  c.trainable = "router";
  const auto [init, trained] = initial_and_trained(c, "router-only");
  EXPECT_TRUE(torch::equal(init.embed_tokens, trained.embed_tokens));
  for (size_t l = 0; l < init.layers.size(); ++l) {
    const auto &a = init.layers[l], &b = trained.layers[l];
    for (auto [x, y] : {std::pair{&a.q_proj, &b.q_proj}, {&a.k_proj, &b.k_proj}, {&a.v_proj, &b.v_proj},
                        {&a.o_proj, &b.o_proj}, {&a.down_proj, &b.down_proj}, {&a.input_norm, &b.input_norm}})
      EXPECT_TRUE(torch::equal(*x, *y)) << "layer " << l;
    if (a.router_q_proj.defined()) {
      EXPECT_FALSE(torch::equal(a.router_q_proj, b.router_q_proj)) << "layer " << l;
      EXPECT_FALSE(torch::equal(a.router_k_proj, b.router_k_proj)) << "layer " << l;
    }
  }
  expect_refused(tiny_train("unused").to_json(), {+[](nlohmann::json& j) { j["trainable"] = "mlp"; },
                    +[](nlohmann::json& j) { j["trainable"] = "router"; j["aux_loss"] = false; },
                    +[](nlohmann::json& j) { j["trainable"] = "router"; j["model"]["msa_config"]["decouple_router"] = false; }}, "bad.json");
}

TEST(MsaTrain, LayerStageUpdatesTheNamedLayersOnly) {
  TrainConfig c = tiny_train("unused");
  c.trainable = "layers:0";
  const auto [init, trained] = initial_and_trained(c, "layers-only");
  EXPECT_TRUE(torch::equal(init.embed_tokens, trained.embed_tokens));
  EXPECT_TRUE(torch::equal(init.final_norm, trained.final_norm));
  ASSERT_EQ(init.layers.size(), 2u);
  for (auto [x, y] : {std::pair{&init.layers[0].q_proj, &trained.layers[0].q_proj}, {&init.layers[0].o_proj, &trained.layers[0].o_proj},
                      {&init.layers[0].down_proj, &trained.layers[0].down_proj}})
    EXPECT_FALSE(torch::equal(*x, *y));
  for (auto [x, y] : {std::pair{&init.layers[1].q_proj, &trained.layers[1].q_proj}, {&init.layers[1].o_proj, &trained.layers[1].o_proj},
                      {&init.layers[1].down_proj, &trained.layers[1].down_proj}, {&init.layers[1].router_q_proj, &trained.layers[1].router_q_proj}})
    EXPECT_TRUE(torch::equal(*x, *y));
  for (const char* bad_layers : {"layers:", "layers:2", "layers:0,x", "layers:-1"}) {
    auto bad = tiny_train("unused").to_json();
    bad["trainable"] = bad_layers;
    try {
      TrainConfig::from_json(bad, "bad-layers.json");
      ADD_FAILURE() << bad_layers;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad-layers.json"), std::string::npos) << e.what();
    }
  }
}

// bytes+splitids: a warm start from a larger bytes+ids vocabulary keeps the first rows, and the
// two-token ids ("[h", "dd]") count as naming rows (id_name_acc, the attention share).
TEST(MsaTrain, SplitIdsWarmStartKeepsTheFirstRowsAndNamesWithTwoTokens) {
  auto a = tmp("splitsrc"), b = tmp("splitwarm");
  TrainConfig src = tiny_train(a.string());
  src.tokenizer = "bytes+ids:400";
  src.model.vocab_size = 662;
  src.steps = 1;
  train_msa(src, true);
  TrainConfig c = tiny_train(b.string());
  c.tokenizer = "bytes+splitids";
  c.model.vocab_size = 561;
  c.init_from = (a / "checkpoint").string();
  c.data.max_doc_id = 2200;
  c.data.doc_id_range = "uniform";
  c.steps = 1;
  c.lr = 1e-9;
  c.warmup_steps = 0;
  c.id_attention_weight = 0.25;
  c.id_attention_target = "tag_chunks";
  c.train_top_k = 8;
  EXPECT_EQ(TrainConfig::from_json(c.to_json(), "split.json").id_attention_target, "tag_chunks");
  auto bad = c.to_json();
  bad["id_attention_target"] = "chunks";
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
  train_msa(c, true);
  const auto s = Qwen3Model::load((a / "checkpoint").string()), w = Qwen3Model::load((b / "checkpoint").string());
  EXPECT_TRUE(torch::allclose(w.embed_tokens.to(torch::kFloat32), s.embed_tokens.narrow(0, 0, 561).to(torch::kFloat32),
                              0, 1e-5));
  std::ifstream log(b / "log.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(log, line));
  const auto rec = nlohmann::json::parse(line);
  ASSERT_TRUE(rec.contains("id_name_acc"));
  ASSERT_TRUE(rec.contains("id_memory_attention"));
  for (double x : rec["id_memory_attention"].get<std::vector<double>>()) EXPECT_GT(x, 0);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(MsaTrain, PerDocumentAttentionMatchesThePaddedBatch) {
  // documents of 3-30 words, so the padded batch carries a lot of padding
  auto a = tmp("perdoc"), b = tmp("padded");
  TrainConfig per = tiny_train(a.string()), pad = tiny_train(b.string());
  per.data.doc_words_min = pad.data.doc_words_min = 3;
  per.data.doc_words = pad.data.doc_words = 30;
  per.steps = pad.steps = 3;
  pad.document_attention = "padded";
  train_msa(per, true);
  train_msa(pad, true);
  std::ifstream la(a / "log.jsonl"), lb(b / "log.jsonl");
  std::string x, y;
  int lines = 0;
  while (std::getline(la, x) && std::getline(lb, y)) {
    const auto ra = nlohmann::json::parse(x), rb = nlohmann::json::parse(y);
    for (const char* k : {"loss", "lm_loss", "aux_loss", "grad_norm"})
      EXPECT_NEAR(ra[k].get<double>(), rb[k].get<double>(), 1e-4 * (1 + std::abs(rb[k].get<double>()))) << k;
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  auto bad = per.to_json();
  bad["document_attention"] = "dense";
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(MsaTrain, ConfigErrorsNameTheFile) {
  try {
    TrainConfig::from_json(nlohmann::json::parse(R"({"out_dir": "x"})"), "train.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.json"), std::string::npos);
  }
  EXPECT_THROW(TrainConfig::load("/nonexistent/train.json"), Error);
  // a misspelt key is refused, not silently replaced by its default
  auto good = tiny_train("unused").to_json();
  good["curriculum"] = nlohmann::json::array({{{"until_step", 2}, {"data", {{"task", "niah"}}}}});
  EXPECT_NO_THROW(TrainConfig::from_json(good, "good.json"));
  expect_refused(good, {+[](nlohmann::json& j) { j["stpes"] = 5; }, +[](nlohmann::json& j) { j["data"]["max_distractor"] = 2; },
                    +[](nlohmann::json& j) { j["curriculum"][0]["warmup"] = 10; },
                    +[](nlohmann::json& j) { j["curriculum"][0]["data"]["per_hop_sample"] = true; }}, "typo.json", "unknown key");
  // a bad data value is refused at load (with the file), not at the first sample of its stage
  auto bad_value = good;
  bad_value["curriculum"][0]["data"]["key_style"] = "letters";
  try {
    TrainConfig::from_json(bad_value, "value.json");
    ADD_FAILURE() << "key_style letters accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("value.json"), std::string::npos) << e.what();
  }
}

TEST(MsaTrain, MemoryDocumentIsItsThreePiecesInOrder) {
  EXPECT_EQ(interleave::memory_document(12, "Some text."), "<|im_start|>[12]. Some text.[12]<|im_end|>");
  const auto p = interleave::memory_document_pieces(12, "Some text.");
  EXPECT_EQ(p.head_and_text, "<|im_start|>[12]. Some text.");
  EXPECT_EQ(p.closing_tag, interleave::document_tag(12));
  EXPECT_EQ(p.end, "<|im_end|>");
}

// per_hop_samples: a two-hop chain becomes one sample per retrieval step (msa-reference §7). Hop 1
// names the first fact's document; hop 2 carries hop 1 untrained, routes by the injected first fact
// (the engine's round-2 query) and names the second fact's document, then answers.
TEST(MsaTrain, PerHopTwoHopSamplesRouteTheSecondHopByTheInjectedFact) {
  TrainingDataConfig d;
  d.task = "twohop";
  d.min_docs = 4;
  d.max_docs = 6;
  d.max_doc_id = 500;
  const auto joint = make_training_sample(d, 0);
  EXPECT_EQ(joint.positives.size(), 2u);
  for (const auto& seg : joint.response) EXPECT_FALSE(seg.routes);
  d.per_hop_samples = true;
  int hop1 = 0, hop2 = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    const auto s = make_training_sample(d, i);
    EXPECT_EQ(s.response.size(), make_training_sample(d, i).response.size());  // deterministic
    ASSERT_EQ(s.positives.size(), 1u);
    const std::string& gold = s.documents[s.positives[0]];
    const std::string gold_tag = "[" + std::to_string(s.ids[s.positives[0]]) + "]";
    std::vector<std::string> trained, routing;
    for (const auto& seg : s.response) {
      if (seg.trained) trained.push_back(seg.text);
      if (seg.routes) routing.push_back(seg.text);
    }
    ASSERT_FALSE(trained.empty());
    EXPECT_EQ(trained.front(), gold_tag + "<|object_ref_end|>");  // names this hop's document
    if (routing.empty()) {  // hop 1: the colleague fact, then the call ends
      ++hop1;
      EXPECT_NE(gold.find(" works with "), std::string::npos);
      EXPECT_EQ(trained.size(), 1u);
    } else {  // hop 2: routed by the first fact's injected text, ends with the answer
      ++hop2;
      EXPECT_NE(gold.find(" lives in " + s.answer + "."), std::string::npos);
      ASSERT_EQ(routing.size(), 1u);
      EXPECT_NE(routing[0].find(" works with "), std::string::npos) << routing[0];
      EXPECT_EQ(routing[0].back(), '\n');
      EXPECT_EQ(trained.back(), "The answer to the question is: " + s.answer + "<|im_end|>");
    }
  }
  EXPECT_GT(hop1, 5);
  EXPECT_GT(hop2, 5);
  // and the trainer runs on them (the routed injected text joins the router query)
  auto dir = tmp("per-hop");
  TrainConfig c = tiny_train(dir.string());
  c.data = d;
  c.data.max_doc_id = 0;
  c.steps = 2;
  EXPECT_TRUE(TrainConfig::from_json(c.to_json(), "h.json").data.per_hop_samples);
  const auto sum = train_msa(c, true);
  EXPECT_EQ(sum.steps_done, 2);
  EXPECT_TRUE(std::isfinite(sum.last_loss));
  fs::remove_all(dir);
}

TEST(MsaTrain, PointerSamplesNameTheSecondDocumentFromTheFirstsText) {
  TrainingDataConfig d;
  d.task = "pointer";
  d.min_docs = 2;
  d.max_docs = 6;
  d.max_doc_id = 500;
  for (uint64_t i = 0; i < 20; ++i) {
    const auto s = make_training_sample(d, i);
    EXPECT_EQ(s.documents, make_training_sample(d, i).documents);  // deterministic
    ASSERT_EQ(s.positives.size(), 1u);  // routing finds the first document only
    const int first = s.positives[0];
    int second = -1;
    for (size_t k = 0; k < s.documents.size(); ++k)
      if (s.documents[k].find(pointer_value_fact(s.answer)) != std::string::npos) second = static_cast<int>(k);
    ASSERT_GE(second, 0);
    ASSERT_NE(second, first);
    const std::string second_tag = interleave::document_tag(s.ids[second]);
    EXPECT_NE(s.documents[first].find(" is kept in document " + second_tag + " under code "), std::string::npos);
    EXPECT_EQ(s.documents[first].find(s.answer), std::string::npos);
    std::vector<std::string> trained;
    for (const auto& seg : s.response)
      if (seg.trained) trained.push_back(seg.text);
    ASSERT_EQ(trained.size(), 4u);
    EXPECT_EQ(trained[0], interleave::document_tag(s.ids[first]) + "<|object_ref_end|>");
    EXPECT_EQ(trained[1], second_tag + "<|object_ref_end|>");
    EXPECT_EQ(trained[2], "<End-of-Retrieve>");
    EXPECT_EQ(trained[3], "The answer to the question is: " + s.answer + "<|im_end|>");
  }
  // id_name_acc_later scores exactly the second naming's id: pointer and joint twohop samples
  // have one, niah samples none.
  const auto tok = load_tokenizer("bytes+ids:4096");
  for (uint64_t i = 0; i < 5; ++i) {
    const auto s = make_training_sample(d, i);
    int second = -1;
    for (size_t k = 0; k < s.documents.size(); ++k)
      if (s.documents[k].find(pointer_value_fact(s.answer)) != std::string::npos) second = static_cast<int>(k);
    const auto targets = later_naming_targets(*tok, s);
    ASSERT_EQ(targets.size(), 1u);
    EXPECT_EQ(tok->decode(std::vector<int32_t>(targets.begin(), targets.end())), interleave::document_tag(s.ids[second]));
  }
  TrainingDataConfig two = d;
  two.task = "twohop";
  const auto joint = make_training_sample(two, 0);
  const auto targets = later_naming_targets(*tok, joint);
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(tok->decode(std::vector<int32_t>(targets.begin(), targets.end())), interleave::document_tag(joint.ids[joint.positives[1]]));
  TrainingDataConfig niah = d;
  niah.task = "niah";
  EXPECT_TRUE(later_naming_targets(*tok, make_training_sample(niah, 0)).empty());
  // and the trainer logs it (niah transcripts, which name once, do not add the field)
  TrainConfig c = tiny_train("unused");
  c.data = d;
  c.id_lm_weight = 1;
  const auto rec = first_step_record(c, "pointer");
  for (const char* key : {"id_name_acc_first", "id_name_acc_later"}) {
    ASSERT_TRUE(rec.contains(key)) << key << " " << rec.dump();
    EXPECT_GE(rec[key].get<double>(), 0.0);
    EXPECT_LE(rec[key].get<double>(), 1.0);
  }
  c.data.task = "niah";
  const auto once = first_step_record(c, "niah-once");
  EXPECT_FALSE(once.contains("id_name_acc_later"));
  ASSERT_TRUE(once.contains("id_name_acc_first")) << once.dump();
  EXPECT_DOUBLE_EQ(once["id_name_acc_first"].get<double>(), once["id_name_acc"].get<double>());  // one step: the same rows
  // An "lm" stage with train_seen_ids trains the pointer hop's id, which is in the injected text:
  // the first step's loss changes. NIAH's one id is not in its text, so there nothing changes.
  c.tokenizer = "bytes+ids:500";
  c.model.vocab_size = 262 + 500;
  TrainConfig::DataStage lm;
  lm.until_step = 1;
  lm.objective = "lm";
  lm.seq_len = 512;
  lm.context_weight = 0;
  for (const char* task : {"pointer", "niah"}) {
    lm.data = d;
    lm.data.task = task;
    c.curriculum = {lm};
    const double masked = first_step_record(c, std::string("lm-") + task)["lm_loss"].get<double>();
    c.curriculum[0].train_seen_ids = true;
    const double seen = first_step_record(c, std::string("lm-seen-") + task)["lm_loss"].get<double>();
    if (std::string(task) == "pointer") EXPECT_NE(seen, masked);
    else EXPECT_EQ(seen, masked);
  }
  auto bad = c.to_json();
  bad["curriculum"][0]["objective"] = "msa";
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
}

TEST(MsaTrain, PointerReadRoundsAnswerFromTheInjectedTargetAndWholeSamplesKeepThemInOneRow) {
  TrainingDataConfig d;
  d.task = "pointer_read";
  d.copy_pairs = 3;
  d.copy_gap_words = 6;
  d.max_doc_id = 500;
  d.doc_id_range = "uniform";
  bool pointer_id_smaller = false, pointer_id_larger = false;
  for (uint64_t i = 0; i < 20; ++i) {
    const auto s = make_training_sample(d, i);
    EXPECT_EQ(s.response.size(), make_training_sample(d, i).response.size());  // deterministic
    ASSERT_EQ(s.documents.size(), 6u);  // two per round, whatever min_docs says
    ASSERT_EQ(s.ids.size(), 6u);
    EXPECT_TRUE(std::is_sorted(s.ids.begin(), s.ids.end()));
    std::vector<std::string> trained;
    for (const auto& seg : s.response)
      if (seg.trained) trained.push_back(seg.text);
    ASSERT_EQ(trained.size(), 10u);  // round 1: name, name, end, answer; later rounds: name, end, answer
    for (int r = 0; r < 3; ++r) {
      const std::string& answer = trained[r == 0 ? 3 : 3 + 3 * r];
      const std::string prefix = "The answer to the question is: ";
      ASSERT_EQ(answer.rfind(prefix, 0), 0u) << answer;
      const std::string word = answer.substr(prefix.size(), answer.size() - prefix.size() - std::string("<|im_end|>").size());
      int target = -1, pointer = -1;
      for (int k = 2 * r; k < 2 * r + 2; ++k) {
        if (s.documents[k].find(pointer_value_fact(word)) != std::string::npos) target = k;
        if (s.documents[k].find(" is kept in document ") != std::string::npos) pointer = k;
      }
      ASSERT_GE(target, 0) << "round " << r;
      ASSERT_EQ(pointer, 4 * r + 1 - target);
      EXPECT_NE(s.documents[pointer].find(" is kept in document " + interleave::document_tag(s.ids[target])), std::string::npos);
      EXPECT_EQ(s.documents[pointer].find(word), std::string::npos);
      EXPECT_EQ(trained[r == 0 ? 1 : 1 + 3 * r], interleave::document_tag(s.ids[target]) + "<|object_ref_end|>");
      if (r == 0) {
        EXPECT_EQ(s.answer, word);
        EXPECT_EQ(s.positives, std::vector<int>{pointer});
        EXPECT_EQ(trained[0], interleave::document_tag(s.ids[pointer]) + "<|object_ref_end|>");
      }
      (pointer < target ? pointer_id_smaller : pointer_id_larger) = true;
    }
  }
  EXPECT_TRUE(pointer_id_smaller && pointer_id_larger);  // the id order gives nothing away
  TrainingDataConfig few = d;
  few.max_doc_id = 5;  // 3 rounds need 6 distinct ids
  EXPECT_THROW(make_training_sample(few, 0), Error);

  // whole_samples: a transcript that would run over a row boundary starts the next row instead,
  // so the first step's loss differs; it round-trips and needs the lm objective.
  TrainConfig c = tiny_train("unused");
  c.tokenizer = "bytes+ids:500";
  c.model.vocab_size = 262 + 500;
  c.data = d;
  c.data.copy_pairs = 1;
  TrainConfig::DataStage lm;
  lm.until_step = 1;
  lm.objective = "lm";
  lm.seq_len = 1000;  // two transcripts of about 430 tokens and part of a third
  lm.batch = 2;
  lm.data = c.data;
  c.curriculum = {lm};
  const double cut = first_step_record(c, "read-cut")["lm_loss"].get<double>();
  c.curriculum[0].whole_samples = true;
  EXPECT_TRUE(TrainConfig::from_json(c.to_json(), "read.json").curriculum.at(0).whole_samples);
  const double whole = first_step_record(c, "read-whole")["lm_loss"].get<double>();
  EXPECT_NE(whole, cut);
  EXPECT_TRUE(std::isfinite(whole));
  auto bad = c.to_json();
  bad["curriculum"][0]["objective"] = "msa";
  EXPECT_THROW(TrainConfig::from_json(bad, "bad.json"), Error);
}

namespace {
// tiny_train on pointer transcripts (hop 2 copies an id out of the injected text), one sample
// per step, with an id option on so that the copy rows are measured.
TrainConfig pointer_copy_train() {
  TrainConfig c = tiny_train("unused");
  c.tokenizer = "bytes+ids:500";
  c.model.vocab_size = 262 + 500;
  c.data.task = "pointer";
  c.data.min_docs = 2;
  c.data.max_docs = 4;
  c.data.max_doc_id = 500;
  c.id_lm_weight = 1;
  c.phase1_steps = 0;
  c.batch = 1;
  return c;
}
// The first step's records with the option at `weight` off, then at 2 (which must round-trip
// through JSON); `key` must be missing from the first. Runs are named NAME-off and NAME-on.
std::pair<nlohmann::json, nlohmann::json> first_step_off_and_on(TrainConfig& c, double TrainConfig::*weight,
                                                               const std::string& key, const std::string& name) {
  auto off = first_step_record(c, name + "-off");
  EXPECT_FALSE(off.contains(key));
  c.*weight = 2;
  EXPECT_EQ(TrainConfig::from_json(c.to_json(), name + ".json").*weight, 2);
  return {std::move(off), first_step_record(c, name + "-on")};
}
// The 8th step's `key` at lr 1e-2, run NAME with `weight` as c has it, then NAME-off with it at
// `off` (left so): the same samples, so the difference is what the loss trained.
std::pair<double, double> eighth_step_trained_and_off(TrainConfig& c, double TrainConfig::*weight, double off,
                                                      const std::string& key, const std::string& name) {
  c.lr = 1e-2;
  c.warmup_steps = 0;
  const double trained = step_records(c, name, 8)[7][key].get<double>();
  c.*weight = off;
  return {trained, step_records(c, name + "-off", 8)[7][key].get<double>()};
}
}  // namespace

TEST(MsaTrain, CopyAttentionLossPullsEachCopyRowTowardsItsSource) {
  TrainConfig c = pointer_copy_train();
  // measured with any id option on: hop 2's id stands in the injected text, so the share is real;
  // the loss is -log of that share (one sample, one row) and adds to the step's loss
  const auto [off, on] = first_step_off_and_on(c, &TrainConfig::copy_attention_weight, "copy_attention_loss", "copy");
  const double share = logged_share(off, "copy_attention_share");
  ASSERT_TRUE(on.contains("copy_attention_loss")) << on.dump();
  EXPECT_NEAR(on["copy_attention_share"].get<double>(), share, 1e-6);
  EXPECT_NEAR(on["copy_attention_loss"].get<double>(), -std::log(share), 1e-4);
  EXPECT_NEAR(on["loss"].get<double>() - off["loss"].get<double>(), 2 * -std::log(share), 1e-3);
  // any layer can be the copy layer: layer 0 is not a router layer here (no memory keys)
  c.copy_attention_layer = 0;
  const auto layer0 = first_step_record(c, "copy-layer0");
  const double layer0_share = logged_share(layer0, "copy_attention_share");
  EXPECT_NE(layer0_share, share);
  EXPECT_NEAR(layer0["copy_attention_loss"].get<double>(), -std::log(layer0_share), 1e-4);
  c.copy_attention_layer = -1;
  // trained, it moves the attention onto the id: the same samples later on, with and without it
  const auto [trained, untrained] =
      eighth_step_trained_and_off(c, &TrainConfig::copy_attention_weight, 0, "copy_attention_share", "copy-train");
  EXPECT_GT(trained, untrained);
  // in lm_mix and lm stages the rows are trained ids already in their packed row: copy_ids' second copies
  c.lm_mix_weight = 1;
  copy_ids_mix(c);
  const auto mix_off = first_step_record(c, "copy-mix-off");
  EXPECT_FALSE(mix_off.contains("mix_copy_attention_share"));
  c.copy_attention_weight = 2;
  const auto mix_on = first_step_record(c, "copy-mix-on");
  const double mix_share = logged_share(mix_on, "mix_copy_attention_share");
  EXPECT_GE(mix_on["mix_copy_attention_loss"].get<double>(), -std::log(mix_share) - 1e-6);  // a mean of -log >= -log of the mean
  EXPECT_EQ(mix_on["mix_lm_loss"].get<double>(), mix_off["mix_lm_loss"].get<double>());
  TrainConfig::DataStage lm = c.lm_mix;
  lm.until_step = 1;
  c.curriculum = {lm};
  const auto stage = first_step_record(c, "copy-lm-stage");
  ASSERT_TRUE(stage.contains("copy_attention_loss")) << stage.dump();
  EXPECT_NEAR(stage["loss"].get<double>() - stage["lm_loss"].get<double>(), 2 * stage["copy_attention_loss"].get<double>(), 1e-4);
  c.curriculum.clear();
  c.lm_mix_weight = 0;
  // NIAH names once: nothing to measure
  c.data.task = "niah";
  EXPECT_FALSE(first_step_record(c, "copy-niah").contains("copy_attention_share"));
  // refused: a negative weight, and layers outside tiny_train's 2
  expect_refused(c.to_json(), {+[](nlohmann::json& j) { j["copy_attention_weight"] = -1; }, +[](nlohmann::json& j) { j["copy_attention_layer"] = -2; },
                    +[](nlohmann::json& j) { j["copy_attention_layer"] = 2; }}, "copy-bad.json");
}

TEST(MsaTrain, CopyValueLossTrainsWhatCopyRowsRead) {
  TrainConfig c = pointer_copy_train();
  // msa steps: hop 2's source read as its id, a CE over the vocabulary that adds to the step's loss
  const auto [off, on] = first_step_off_and_on(c, &TrainConfig::copy_value_weight, "copy_value_loss", "value");
  ASSERT_TRUE(on.contains("copy_value_loss")) << on.dump();
  const double ce = on["copy_value_loss"].get<double>(), acc = on["copy_value_acc"].get<double>();
  EXPECT_GT(ce, 0.0);
  EXPECT_LT(ce, 3 * std::log(262.0 + 500));  // an untrained readout is near uniform, not diverged
  EXPECT_TRUE(acc >= 0 && acc <= 1) << acc;
  EXPECT_NEAR(on["loss"].get<double>() - off["loss"].get<double>(), 2 * ce, 1e-3);
  EXPECT_EQ(on["lm_loss"].get<double>(), off["lm_loss"].get<double>());
  // trained, the readout improves on the same later samples against a near-zero weight
  c.copy_value_weight = 1;
  const auto [trained, untrained] =
      eighth_step_trained_and_off(c, &TrainConfig::copy_value_weight, 1e-9, "copy_value_loss", "value-train");
  EXPECT_LT(trained, untrained);
  // lm_mix and lm stages: copy_ids' second copies read from their first copies
  c.copy_value_weight = 1;
  c.lm_mix_weight = 1;
  copy_ids_mix(c);
  const auto mix = first_step_record(c, "value-mix");
  ASSERT_TRUE(mix.contains("mix_copy_value_loss")) << mix.dump();
  EXPECT_GT(mix["mix_copy_value_loss"].get<double>(), 0.0);
  TrainConfig::DataStage lm = c.lm_mix;
  lm.until_step = 1;
  c.curriculum = {lm};
  const auto stage = first_step_record(c, "value-lm-stage");
  ASSERT_TRUE(stage.contains("copy_value_loss")) << stage.dump();
  EXPECT_NEAR(stage["loss"].get<double>() - stage["lm_loss"].get<double>(), stage["copy_value_loss"].get<double>(), 1e-4);
  // the copy probe scores the copied ids apart from the characters around them
  c.data = lm.data;
  c.out_dir = tmp("value-probe").string();
  c.steps = 1;
  train_msa(c, true);
  const auto probe = probe_answer_copy(c, 2);
  EXPECT_TRUE(probe.id_target_accuracy >= 0 && probe.id_target_accuracy <= 1) << probe.id_target_accuracy;
  EXPECT_TRUE(probe.target_accuracy >= 0 && probe.target_accuracy <= 1) << probe.target_accuracy;
  fs::remove_all(c.out_dir);
  expect_refused(c.to_json(), {+[](nlohmann::json& j) { j["copy_value_weight"] = -1; }}, "value-bad.json");
}

TEST(MsaTrain, CopyAnswerRowsSuperviseTheAnswersCopyFromTheInjectedText) {
  TrainConfig c = pointer_copy_train();
  c.data.task = "niah";  // names once: no id copy rows; its answer stands in the injected document
  c.copy_attention_weight = 2;
  EXPECT_FALSE(first_step_record(c, "answer-rows-off").contains("copy_attention_share"));
  c.copy_answer_rows = true;
  EXPECT_TRUE(TrainConfig::from_json(c.to_json(), "answer-rows.json").copy_answer_rows);
  const auto on = first_step_record(c, "answer-rows-on");
  ASSERT_TRUE(on.contains("copy_attention_share")) << on.dump();
  const double share = on["copy_attention_share"].get<double>();
  EXPECT_TRUE(share > 0 && share < 1) << share;
  // trained, the answer rows' attention moves onto the value's earlier tokens
  const auto [trained, untrained] =
      eighth_step_trained_and_off(c, &TrainConfig::copy_attention_weight, 1e-9, "copy_attention_share", "answer-rows-train");
  EXPECT_GT(trained, untrained);
  // with neither copy loss on there is nothing to add the rows to
  c.copy_attention_weight = 0;
  c.copy_value_weight = 0;
  EXPECT_THROW(TrainConfig::from_json(c.to_json(), "answer-rows-bad.json"), Error);
  // the lm_mix's own copy_answer_rows: answer rows in the mix only, none in the msa steps
  c.copy_answer_rows = false;
  c.copy_value_weight = 1;
  c.lm_mix_weight = 1;
  c.lm_mix.data = c.data;
  c.lm_mix.seq_len = 1024;
  c.lm_mix.batch = 1;
  c.lm_mix.copy_answer_rows = true;
  EXPECT_TRUE(TrainConfig::from_json(c.to_json(), "mix-answer-rows.json").lm_mix.copy_answer_rows);
  const auto mix = first_step_record(c, "mix-answer-rows");
  EXPECT_TRUE(mix.contains("mix_copy_value_acc_answers")) << mix.dump();
  EXPECT_FALSE(mix.contains("copy_value_acc_answers")) << mix.dump();
  EXPECT_FALSE(mix.contains("copy_value_acc"));
  c.copy_value_weight = 0;
  EXPECT_THROW(TrainConfig::from_json(c.to_json(), "mix-answer-rows-bad.json"), Error);
  c.copy_value_weight = 1;
  auto msa_stage = c.to_json();
  msa_stage["curriculum"] = nlohmann::json::array({{{"until_step", 2}, {"objective", "msa"}, {"copy_answer_rows", true}}});
  try {
    TrainConfig::from_json(msa_stage, "msa-stage-answer-rows.json");
    ADD_FAILURE() << "an msa stage with copy_answer_rows was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("copy_answer_rows in a stage needs objective lm"), std::string::npos) << e.what();
  }
}

// The copy rows' share and value accuracy are also logged for id rows and answer rows apart
// (*_ids, *_answers): answer rows copy a word the model reads anyway, and mixed in they once hid a
// missing id copy.
TEST(MsaTrain, CopyFiguresAreLoggedForIdRowsAndAnswerRowsApart) {
  TrainConfig c = pointer_copy_train();
  c.copy_attention_weight = 1;
  c.copy_value_weight = 1;
  const auto num = [](const nlohmann::json& rec, const std::string& key) {
    EXPECT_TRUE(rec.contains(key)) << key << " missing: " << rec.dump();
    return rec.value(key, -1.0);
  };
  // pointer's hop 2 alone: the id figures are the whole figures
  const auto ids = first_step_record(c, "split-ids");
  EXPECT_EQ(num(ids, "copy_value_acc_ids"), num(ids, "copy_value_acc"));
  EXPECT_NEAR(num(ids, "copy_attention_share_ids"), num(ids, "copy_attention_share"), 1e-12);
  EXPECT_FALSE(ids.contains("copy_value_acc_answers"));
  EXPECT_FALSE(ids.contains("copy_attention_share_answers"));
  // with the answer rows: the id figures are unchanged (same sample, same weights) and the whole
  // figures, row-weighted means of the two kinds, lie between them
  c.copy_answer_rows = true;
  const auto both = first_step_record(c, "split-both");
  EXPECT_NEAR(num(both, "copy_attention_share_ids"), num(ids, "copy_attention_share_ids"), 1e-9);
  EXPECT_EQ(num(both, "copy_value_acc_ids"), num(ids, "copy_value_acc_ids"));
  for (const std::string key : {"copy_attention_share", "copy_value_acc"}) {
    const double a = num(both, key + "_ids"), b = num(both, key + "_answers"), whole = num(both, key);
    EXPECT_GE(whole, std::min(a, b) - 1e-12) << key;
    EXPECT_LE(whole, std::max(a, b) + 1e-12) << key;
    EXPECT_TRUE(b >= 0 && b <= 1) << key;
  }
  EXPECT_NE(num(both, "copy_attention_share"), num(ids, "copy_attention_share"));
  // NIAH names once: answer rows only
  c.data.task = "niah";
  const auto answers = first_step_record(c, "split-answers");
  EXPECT_EQ(num(answers, "copy_value_acc_answers"), num(answers, "copy_value_acc"));
  EXPECT_FALSE(answers.contains("copy_value_acc_ids"));
  EXPECT_FALSE(answers.contains("copy_attention_share_ids"));
  // lm_mix: copy_ids' second copies are id rows; niah adds answer rows
  c.data.task = "pointer";
  c.lm_mix_weight = 1;
  copy_ids_mix(c);
  c.copy_answer_rows = false;
  const auto mix_ids = first_step_record(c, "split-mix-ids");
  EXPECT_EQ(num(mix_ids, "mix_copy_value_acc_ids"), num(mix_ids, "mix_copy_value_acc"));
  EXPECT_NEAR(num(mix_ids, "mix_copy_attention_share_ids"), num(mix_ids, "mix_copy_attention_share"), 1e-12);
  EXPECT_FALSE(mix_ids.contains("mix_copy_value_acc_answers"));
  c.copy_answer_rows = true;
  c.lm_mix.data.task = "copy_ids+niah";
  c.lm_mix.seq_len = 512;
  const auto mix_both = first_step_record(c, "split-mix-both");
  for (const std::string key : {"mix_copy_attention_share", "mix_copy_value_acc"}) {
    const double a = num(mix_both, key + "_ids"), b = num(mix_both, key + "_answers"), whole = num(mix_both, key);
    EXPECT_GE(whole, std::min(a, b) - 1e-12) << key;
    EXPECT_LE(whole, std::max(a, b) + 1e-12) << key;
  }
}

TEST(MsaTrain, CopyGateShutsOneHeadAtRowsThatMustNotCopy) {
  TrainConfig c = pointer_copy_train();
  const auto none = first_step_record(c, "gate-none");
  EXPECT_FALSE(none.contains("copy_gate_loss"));
  // measured with a head named and the weight 0: its share of the residual, gated rows and copy rows
  c.copy_gate_head = 1;
  const auto measured = first_step_record(c, "gate-measured");
  ASSERT_TRUE(measured.contains("copy_gate_loss") && measured.contains("copy_gate_open")) << measured.dump();
  const double shut = measured["copy_gate_loss"].get<double>();
  EXPECT_GT(shut, 0.0);
  EXPECT_GT(measured["copy_gate_open"].get<double>(), 0.0);
  EXPECT_EQ(measured["loss"].get<double>(), none["loss"].get<double>());
  // another head writes something else
  c.copy_gate_head = 0;
  EXPECT_NE(first_step_record(c, "gate-head0")["copy_gate_loss"].get<double>(), shut);
  c.copy_gate_head = 1;
  // on, it adds weight x share to the step's loss (one sample, phase 2)
  c.copy_gate_weight = 2;
  EXPECT_EQ(TrainConfig::from_json(c.to_json(), "gate.json").copy_gate_head, 1);
  const auto on = first_step_record(c, "gate-on");
  EXPECT_NEAR(on["copy_gate_loss"].get<double>(), shut, 1e-9);
  EXPECT_NEAR(on["loss"].get<double>() - none["loss"].get<double>(), 2 * shut, 1e-4);
  // trained, the head writes less at the gated rows of later samples than without the gate
  c.copy_gate_weight = 50;
  const auto [gated, ungated] = eighth_step_trained_and_off(c, &TrainConfig::copy_gate_weight, 0, "copy_gate_loss", "gate-train");
  EXPECT_LT(gated, ungated);
  // refused: a negative weight, a weight without a head, a head out of range
  expect_refused(c.to_json(), {+[](nlohmann::json& j) { j["copy_gate_weight"] = -1; },
                    +[](nlohmann::json& j) { j["copy_gate_weight"] = 1; j["copy_gate_head"] = -1; },
                    +[](nlohmann::json& j) { j["copy_gate_head"] = 99; }}, "gate-bad.json");
}

TEST(MsaTrain, IdAttentionCanLeaveCopyRowsToTheCopy) {
  TrainConfig c = pointer_copy_train();
  c.id_attention_weight = 1;
  const auto all = first_step_record(c, "idattn-all");
  c.id_attention_copy_rows = false;
  EXPECT_FALSE(TrainConfig::from_json(c.to_json(), "idattn.json").id_attention_copy_rows);
  const auto memory = first_step_record(c, "idattn-memory");
  ASSERT_TRUE(all.contains("id_attention_loss") && memory.contains("id_attention_loss")) << all.dump();
  // hop 2's row (its id stands in the injected text) is no longer pulled towards the memory
  EXPECT_NE(all["id_attention_loss"].get<double>(), memory["id_attention_loss"].get<double>());
  EXPECT_EQ(all["lm_loss"].get<double>(), memory["lm_loss"].get<double>());
  // NIAH names once, from memory: no copy rows, nothing changes
  c.data.task = "niah";
  const double niah_memory = first_step_record(c, "idattn-niah-memory")["loss"].get<double>();
  c.id_attention_copy_rows = true;
  EXPECT_EQ(first_step_record(c, "idattn-niah-all")["loss"].get<double>(), niah_memory);
}

TEST(MsaTrain, LmMixAddsThePackedLmLossBesideEveryMsaStep) {
  TrainConfig c = tiny_train("unused");
  c.tokenizer = "bytes+ids:64";
  c.model.vocab_size = 262 + 64;
  c.data.max_doc_id = 64;
  copy_ids_mix(c);
  const auto off = first_step_record(c, "mix-off");
  EXPECT_FALSE(off.contains("mix_lm_loss"));
  c.lm_mix_weight = 1;
  // the config round-trips, and its step logs the mix on top of the unchanged msa loss
  const auto back = TrainConfig::from_json(c.to_json(), "mix.json");
  EXPECT_EQ(back.lm_mix_weight, 1);
  EXPECT_EQ(back.lm_mix.data.task, "copy_ids");
  EXPECT_EQ(back.lm_mix.seq_len, 128);
  const auto on = first_step_record(c, "mix-on");
  ASSERT_TRUE(on.contains("mix_lm_loss")) << on.dump();
  EXPECT_GT(on["mix_lm_loss"].get<double>(), 0.0);
  EXPECT_EQ(on["loss"].get<double>(), off["loss"].get<double>());  // same msa samples, same weights
  EXPECT_NE(on["grad_norm"].get<double>(), off["grad_norm"].get<double>());  // the mix's gradient is added
  // the mix changes what the next step sees; an lm-objective stage runs without it
  const double second_on = step_records(c, "mix-2on", 2)[1]["loss"].get<double>();
  c.lm_mix_weight = 0;
  EXPECT_NE(step_records(c, "mix-2off", 2)[1]["loss"].get<double>(), second_on);
  TrainConfig::DataStage lm = c.lm_mix;
  lm.until_step = 1;
  c.curriculum = {lm};
  c.lm_mix_weight = 1;
  EXPECT_FALSE(first_step_record(c, "mix-lm-stage").contains("mix_lm_loss"));
  // what lm_mix cannot mean is refused with the file named
  expect_refused(c.to_json(), {+[](nlohmann::json& j) { j["lm_mix"]["until_step"] = 5; }, +[](nlohmann::json& j) { j["lm_mix"]["lr"] = 1e-3; },
                    +[](nlohmann::json& j) { j["lm_mix"]["objective"] = "msa"; }, +[](nlohmann::json& j) { j["lm_mix_weight"] = -1; },
                    +[](nlohmann::json& j) { j.erase("lm_mix"); }, +[](nlohmann::json& j) { j["lm_mix"]["seq_len"] = 8; },
                    +[](nlohmann::json& j) { j["trainable"] = "router"; }}, "mix-bad.json", "lm_mix");
}

TEST(MsaTrain, TrainingSamplesAreDeterministicAndPlaceTheNeedleAsConfigured) {
  TrainingDataConfig d;
  d.min_docs = 4;
  d.max_docs = 6;
  d.max_doc_id = 500;
  for (uint64_t i = 0; i < 20; ++i) {
    auto a = make_training_sample(d, i), b = make_training_sample(d, i);
    EXPECT_EQ(a.documents, b.documents);
    EXPECT_EQ(a.ids, b.ids);
    ASSERT_EQ(a.positives.size(), 1u);
    const int gold = a.positives[0];
    EXPECT_NE(a.documents[gold].find(a.answer), std::string::npos);
    EXPECT_EQ(a.response.front().text.rfind("[" + std::to_string(a.ids[gold]) + "]", 0), 0u);  // names the gold id
  }
  d.needle_position = "end";
  for (uint64_t i = 0; i < 20; ++i) {
    auto s = make_training_sample(d, i);
    const std::string& doc = s.documents[s.positives[0]];
    const std::string tail = " is: " + s.answer + ".";
    ASSERT_GE(doc.size(), tail.size());
    EXPECT_EQ(doc.substr(doc.size() - tail.size()), tail) << doc;
  }
  d.needle_position = "middle";
  EXPECT_THROW(make_training_sample(d, 0), Error);
  // key_style ids: the key is a document-id tag, the same in the needle and the question
  d.needle_position = "random";
  d.key_style = "ids";
  for (uint64_t i = 0; i < 5; ++i) {
    auto s = make_training_sample(d, i);
    const auto at = s.question.find("for [");
    ASSERT_NE(at, std::string::npos) << s.question;
    const std::string key = s.question.substr(at + 4, s.question.find(']', at) - at - 3);
    EXPECT_NE(s.documents[s.positives[0]].find("for " + key + " is: " + s.answer), std::string::npos) << key;
  }
  d.key_style = "letters";
  EXPECT_THROW(make_training_sample(d, 0), Error);
  d.key_style = "words";
  // id ranges: log-uniform ids are mostly small (median range sqrt(ndocs * max)), uniform ones not
  d.needle_position = "random";
  d.max_doc_id = 4096;
  auto median_id = [&](const std::string& range) {
    d.doc_id_range = range;
    std::vector<int64_t> ids;
    for (uint64_t i = 0; i < 200; ++i)
      for (auto id : make_training_sample(d, i).ids) ids.push_back(id);
    std::nth_element(ids.begin(), ids.begin() + ids.size() / 2, ids.end());
    return ids[ids.size() / 2];
  };
  EXPECT_LT(median_id("log_uniform"), 500);
  EXPECT_GT(median_id("uniform"), 1500);
  d.doc_id_range = "linear";
  EXPECT_THROW(make_training_sample(d, 0), Error);
  d.doc_id_range = "log_uniform";
  d.max_doc_id = 500;
  // extra questions: each asks a needle of the gold document, answered after the main answer
  d.needle_position = "random";
  d.extra_questions = 3;
  for (uint64_t i = 0; i < 10; ++i) {
    auto s = make_training_sample(d, i);
    const std::string& doc = s.documents[s.positives[0]];
    ASSERT_EQ(s.response.size(), 5u + 2 * 3);
    for (size_t q = 5; q < s.response.size(); q += 2) {
      EXPECT_FALSE(s.response[q].trained);
      EXPECT_TRUE(s.response[q + 1].trained);
      const std::string& ans = s.response[q + 1].text;  // "The answer to the question is: N<|im_end|>"
      const std::string value = ans.substr(ans.find(": ") + 2, 7);
      const std::string asked = s.response[q].text;
      const std::string key = asked.substr(asked.find(" for ") + 5, asked.find(" mentioned") - asked.find(" for ") - 5);
      EXPECT_NE(doc.find("numbers for " + key + " is: " + value + "."), std::string::npos) << key << " " << doc;
    }
  }
  d.extra_questions = 17;
  EXPECT_THROW(make_training_sample(d, 0), Error);
  // copy warm-up: the trained second block repeats the first
  d.extra_questions = 0;
  d.task = "repeat";
  for (uint64_t i = 0; i < 5; ++i) {
    auto s = make_training_sample(d, i);
    ASSERT_EQ(s.response.size(), 2u);
    EXPECT_FALSE(s.response[0].trained);
    EXPECT_TRUE(s.response[1].trained);
    EXPECT_EQ(s.response[1].text, s.response[0].text + "<|im_end|>");
    EXPECT_NE(s.response[0].text.find('\n'), std::string::npos);
  }
  d.task = "repeat_chars";
  const auto c = make_training_sample(d, 3);
  ASSERT_EQ(c.response[0].text.size(), 24u);
  for (char ch : c.response[0].text) EXPECT_TRUE(ch >= 'a' && ch <= 'z');
  EXPECT_EQ(c.response[1].text, c.response[0].text + "<|im_end|>");
  // copy_chars: varying lengths, so no fixed offset predicts the copy
  d.task = "copy_chars";
  std::set<size_t> lengths;
  for (uint64_t i = 0; i < 20; ++i) {
    const auto v = make_training_sample(d, i);
    const std::string& b = v.response[0].text;
    ASSERT_GE(b.size(), 5u + 7);
    ASSERT_LE(b.size(), 6 * 41u + 7);
    ASSERT_EQ(b.rfind("\nAgain:\n"), b.size() - 8);
    for (char ch : b.substr(0, b.size() - 7)) EXPECT_TRUE(ch == '\n' || std::isalnum(static_cast<unsigned char>(ch)));
    EXPECT_EQ(v.response[1].text, b.substr(0, b.size() - 7) + "<|im_end|>");
    lengths.insert(b.size());
  }
  EXPECT_GE(lengths.size(), 8u);
  // copy knobs: short single lines, several pairs per transcript; the last copy ends the answer
  {
    TrainingDataConfig k = d;
    k.copy_min_len = 3;
    k.copy_max_len = 5;
    k.copy_max_lines = 1;
    k.copy_pairs = 4;
    const auto v = make_training_sample(k, 7);
    ASSERT_EQ(v.response.size(), 8u);
    for (size_t p = 0; p < 4; ++p) {
      const std::string& src = v.response[2 * p].text;
      EXPECT_FALSE(v.response[2 * p].trained);
      EXPECT_TRUE(v.response[2 * p + 1].trained);
      ASSERT_GE(src.size(), 4u + 7);
      ASSERT_LE(src.size(), 6u + 7);
      EXPECT_EQ(v.response[2 * p + 1].text, src.substr(0, src.size() - 7) + (p == 3 ? "<|im_end|>" : ""));
    }
    EXPECT_EQ(v.answer + "<|im_end|>", v.response.back().text);
    // copy_gap_words: haystack words between a block and "Again:", the copy unchanged
    k.copy_pairs = 1;
    k.copy_gap_words = 30;
    bool gap_seen = false;
    for (uint64_t i = 0; i < 8; ++i) {
      const auto g = make_training_sample(k, i);
      const std::string& src = g.response[0].text;
      ASSERT_EQ(src.compare(0, g.answer.size(), g.answer), 0);
      gap_seen |= src.find(' ') != std::string::npos;
      EXPECT_EQ(src.substr(src.size() - 7), "Again:\n");
    }
    EXPECT_TRUE(gap_seen);
    k.copy_gap_words = -1;
    EXPECT_THROW(make_training_sample(k, 0), Error);
    k.copy_gap_words = 0;
    k.copy_max_len = 2;
    EXPECT_THROW(make_training_sample(k, 0), Error);
  }
  // copy_ids: about half the symbols are document ids "[i]", i < max_doc_id; copy_only_ids: all
  d.max_doc_id = 50;
  auto count_symbols = [&](const std::string& task, int& id_symbols, int& char_symbols) {
    d.task = task;
    id_symbols = char_symbols = 0;
    for (uint64_t i = 0; i < 20; ++i) {
      const auto v = make_training_sample(d, i);
      const std::string& b = v.response[0].text;
      EXPECT_EQ(v.response[1].text, b.substr(0, b.size() - 7) + "<|im_end|>");
      for (size_t k = 0; k + 7 < b.size(); ++k) {
        if (b[k] == '[') {
          const size_t close = b.find(']', k);
          ASSERT_NE(close, std::string::npos);
          EXPECT_LT(std::stoi(b.substr(k + 1, close - k - 1)), 50);
          ++id_symbols;
          k = close;
        } else if (b[k] != '\n') {
          ++char_symbols;
        }
      }
    }
  };
  int id_symbols = 0, char_symbols = 0;
  count_symbols("copy_ids", id_symbols, char_symbols);
  EXPECT_GT(id_symbols, char_symbols / 2);
  EXPECT_GT(char_symbols, id_symbols / 2);
  count_symbols("copy_only_ids", id_symbols, char_symbols);
  EXPECT_GT(id_symbols, 20);
  EXPECT_EQ(char_symbols, 0);
  // periodic: one trained segment, a short string repeated; copy_mix draws periodic and copy_chars
  d.task = "periodic";
  for (uint64_t i = 0; i < 10; ++i) {
    const auto v = make_training_sample(d, i);
    ASSERT_EQ(v.response.size(), 1u);
    const std::string& t = v.answer;
    ASSERT_GE(t.size(), 40u);
    ASSERT_LE(t.size(), 160u);
    size_t p = 1;
    while (p <= 8 && t.compare(p, std::string::npos, t, 0, t.size() - p) != 0) ++p;
    EXPECT_LE(p, 8u) << t;
    EXPECT_EQ(v.response[0].text, t + "<|im_end|>");
  }
  d.task = "copy_mix";
  std::set<size_t> segments;
  for (uint64_t i = 0; i < 20; ++i) segments.insert(make_training_sample(d, i).response.size());
  EXPECT_EQ(segments, (std::set<size_t>{1, 2}));
  // copy_find: the code sits inside prose and is asked for in the protocol's answer form
  d.task = "copy_find";
  for (uint64_t i = 0; i < 5; ++i) {
    const auto f = make_training_sample(d, i);
    ASSERT_EQ(f.response.size(), 2u);
    EXPECT_NE(f.response[0].text.find("The special code is: " + f.answer + "."), std::string::npos);
    EXPECT_EQ(f.response[1].text, "The answer to the question is: " + f.answer + "<|im_end|>");
  }
  // kv_direct / kv_question: 1..copy_pairs needles with distinct keys, each asked once; the asked
  // value is the one whose needle has that key
  d.copy_pairs = 4;
  for (const char* task : {"kv_direct", "kv_question"}) {
    d.task = task;
    std::set<size_t> asked;
    for (uint64_t i = 0; i < 12; ++i) {
      const auto v = make_training_sample(d, i);
      const std::string& ctx = v.response[0].text;
      EXPECT_FALSE(v.response[0].trained);
      const size_t n = (v.response.size() - 1) / 2;
      ASSERT_EQ(v.response.size(), 2 * n + 1);
      ASSERT_GE(n, 1u);
      ASSERT_LE(n, 4u);
      asked.insert(n);
      std::set<std::string> keys;
      for (size_t q = 0; q < n; ++q) {
        const auto& ask = v.response[1 + 2 * q];
        const auto& ans = v.response[2 + 2 * q];
        EXPECT_TRUE(ans.trained);
        EXPECT_EQ(ans.kind, TrainingSegment::Kind::Answer);
        const size_t at = ask.text.find(" for ") + 5;
        const std::string key = ask.text.substr(at, ask.text.find(' ', at) - at);
        EXPECT_TRUE(keys.insert(key).second);
        const std::string value = std::string(task) == "kv_direct"
                                      ? ans.text.substr(0, ans.text.size() - 1)
                                      : ans.text.substr(31, ans.text.size() - 31 - 10);
        EXPECT_EQ(ans.text, std::string(task) == "kv_direct" ? value + "\n"
                                                             : "The answer to the question is: " + value + "<|im_end|>");
        if (q == 0) {
          EXPECT_EQ(value, v.answer);
        }
        EXPECT_NE(ctx.find("numbers for " + key + " is: " + value + "."), std::string::npos) << ctx;
        if (std::string(task) == "kv_question") {
          EXPECT_EQ(ask.text.rfind("<|im_start|>The user's question is: What is the special magic number for ", 0), 0u);
        }
      }
    }
    EXPECT_GE(asked.size(), 3u);
  }
  // lookup_chars: each query line is a 3-symbol piece of the string and the 6 symbols after it
  d.task = "lookup_chars";
  d.copy_min_len = 16;
  d.copy_max_len = 48;
  d.copy_pairs = 5;
  for (uint64_t i = 0; i < 8; ++i) {
    const auto v = make_training_sample(d, i);
    ASSERT_EQ(v.response.size(), 11u);
    const std::string text = v.response[0].text.substr(0, v.response[0].text.size() - 1);
    ASSERT_GE(text.size(), 16u);
    ASSERT_LE(text.size(), 48u);
    for (size_t q = 0; q < 5; ++q) {
      const std::string key = v.response[1 + 2 * q].text, value = v.response[2 + 2 * q].text;
      ASSERT_EQ(key.size(), 3u);
      ASSERT_EQ(value.size(), 7u);
      EXPECT_NE(text.find(key + value.substr(0, 6)), std::string::npos);
      EXPECT_EQ(v.response[2 + 2 * q].kind, TrainingSegment::Kind::Answer);
    }
  }
  // induct_chars: the segments spell the text; every trained segment continues a span that
  // occurred earlier (from its two untrained lead symbols on)
  d.task = "induct_chars";
  d.copy_min_len = 100;
  d.copy_max_len = 160;
  int spans = 0;
  for (uint64_t i = 0; i < 8; ++i) {
    const auto v = make_training_sample(d, i);
    std::string joined;
    for (const auto& seg : v.response) {
      if (seg.trained) {
        ++spans;
        EXPECT_EQ(seg.kind, TrainingSegment::Kind::Answer);
        const std::string lead = joined.substr(joined.size() - 2) + seg.text;
        // LZ-style: the source may overlap the repeat, so search the text written so far plus the span
        EXPECT_LT((joined + seg.text).find(lead), joined.size() - 2) << lead;
      }
      joined += seg.text;
    }
    EXPECT_EQ(joined, v.answer + "\n");
    EXPECT_GE(v.answer.size(), 100u);
    EXPECT_LE(v.answer.size(), 160u);
  }
  EXPECT_GT(spans, 40);
  // mixtures: "a+b" draws both; an unknown part is named in the error
  d.task = "lookup_chars+kv_direct";
  std::set<std::string> questions;
  for (uint64_t i = 0; i < 20; ++i) questions.insert(make_training_sample(d, i).question.substr(0, 4));
  EXPECT_EQ(questions.size(), 2u);
  d.task = "lookup_chars+nope";
  try {
    make_training_sample(d, 0);
    ADD_FAILURE() << "no error for an unknown task";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
  d.task = "niah_copy";
  std::set<std::string> kinds;
  for (uint64_t i = 0; i < 20; ++i) kinds.insert(make_training_sample(d, i).question.substr(0, 6));
  EXPECT_EQ(kinds.size(), 2u);
}
