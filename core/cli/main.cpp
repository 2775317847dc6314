// msabench: the command line. One translation unit on purpose (CLI11 is slow to compile).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "backends/builtin.h"
#include "backends/msa/encode_cli.h"
#include "backends/msa/memory_shards.h"
#include "backends/msa/msa_backend.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/harness.h"
#include "core/model/generate_cli.h"
#include "core/model/msa_train.h"
#include "core/io.h"
#include "core/progress.h"
#include "core/result.h"
#include "core/run_state.h"
#include "core/text.h"
#include "core/tokenizer.h"
#include "core/tokenizer/text_tokenizer.h"
#include "datasets/dataset_writer.h"
#include "datasets/loaders.h"
#include "datasets/scaling.h"
#include "datasets/niah.h"
#include "datasets/pointer_chain.h"
#include "datasets/twohop.h"
#include "metrics/calibration.h"
#include "metrics/compare.h"
#include "metrics/judge.h"
#include "metrics/judge_local.h"
#include "metrics/metrics.h"
#include "metrics/report.h"
#include "metrics/stats.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace msabench;

namespace {

// A directory being written; removed unless commit() moved it into place. Also removed on
// SIGINT/SIGTERM so an interrupted run leaves no partial results behind.
std::string g_partial_dir;

void on_signal(int sig) {
  if (!g_partial_dir.empty()) {
    std::error_code ec;
    fs::remove_all(g_partial_dir, ec);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

class StagingDir {
 public:
  explicit StagingDir(const std::string& final_dir) : final_(final_dir) {
    fs::path f(final_dir);
    if (f.has_parent_path()) fs::create_directories(f.parent_path());
    staging_ = final_dir + ".partial-" + std::to_string(::getpid());
    fs::remove_all(staging_);
    fs::create_directories(staging_);
    g_partial_dir = staging_;
  }
  ~StagingDir() {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(staging_, ec);
    }
    g_partial_dir.clear();
  }
  const std::string& path() const { return staging_; }
  void commit() {
    replace_directory_atomic(staging_, final_);
    committed_ = true;
    g_partial_dir.clear();
  }

 private:
  std::string final_, staging_;
  bool committed_ = false;
};

std::string sanitize(const std::string& s) {
  std::string o;
  for (char c : s) o.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_');
  return o;
}

std::vector<double> parse_depths(const std::string& s) {
  std::vector<double> out;
  if (s.empty()) return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t idx = 0;
      out.push_back(std::stod(item, &idx));
      if (idx != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw Error("--depths: '" + item + "' is not a number");
    }
  }
  return out;
}

// Token counter for memory sizes: --tokenizer on run / data (whitespace-words, bytes, or a
// tokenizer.json / model directory such as a Qwen3 checkpoint).
std::string g_tokenizer = "whitespace-words";
std::unique_ptr<TokenCounter> token_counter() { return make_token_counter(g_tokenizer); }

bool is_niah_task(const std::string& name) {
  for (const auto& t : niah_tasks())
    if (t.name == name) return true;
  return false;
}

// ------------------------------------------------------------------------------------ run
struct RunArgs {
  std::string suite = "default";
  std::vector<std::string> backends;
  std::vector<std::string> datasets;
  std::vector<std::string> sizes;
  int samples = 0;
  uint64_t seed = 42;
  int64_t doc_tokens = 512;
  std::string depths;
  int k = 10;
  int batch = 1;
  int shards = 1;
  std::string out = "results/latest";
  bool no_plot = false, quiet = false, list = false;
};

struct SuiteDefaults {
  std::vector<std::string> backends, datasets, sizes;
  int samples;
  // Per backend: largest memory size and most samples it runs in this suite (a prefix of the same
  // deterministic samples the other backends see).
  std::map<std::string, std::pair<int64_t, int>> limits;
  std::string tokenizer;  // suite's token counter unless --tokenizer is given
};

SuiteDefaults suite_defaults(const std::string& suite) {
  if (suite == "default") {
    SuiteDefaults d{{"bm25:k1=0.9,b=0.4"}, {"niah_single_1", "niah_multikey_1"}, {"16K", "64K", "256K", "1M"}, 50, {}, ""};
    // The shipped MSA model reads bytes (its id tokens occur only in document tags), so sizes are
    // counted in bytes for every backend; MSA runs the sizes a 2-core CPU encodes within the
    // suite's budget. naming=router beside the paper's protocol shows routing and reading apart
    // from naming (the shipped model names ids below 2,064, about 1M bytes of memory;
    // backends/msa/msa-small/README.md).
    if (fs::exists(fs::path(default_msa_model_dir()) / "config.json")) {
      for (const std::string msa : {"msa:max_rounds=3,max_tokens=64", "msa:max_rounds=3,max_tokens=64,naming=router"}) {
        d.backends.push_back(msa);
        d.limits[msa] = {64 * 1024, 5};
      }
      d.tokenizer = "bytes";
    }
    return d;
  }
  if (suite == "smoke") return {{"bm25"}, {"niah_single_1"}, {"4K"}, 4, {}, ""};
  if (suite == "rag") {
    // Same backbone everywhere: the shipped model generates for rag and msa and embeds for dense.
    return {{"bm25", "dense", "rag:retriever=bm25,k=5", "rag:retriever=dense,k=5", "msa:max_rounds=3,max_tokens=64"},
            {"niah_single_1", kTwoHopTask},
            {"16K", "64K"},
            4,
            {},
            "bytes"};
  }
  if (suite == "niah") {
    std::vector<std::string> all;
    for (const auto& t : niah_tasks()) all.push_back(t.name);
    return {{"bm25"}, all, {"32K", "64K", "128K", "256K", "512K", "1M"}, 50, {}, ""};
  }
  throw Error("unknown suite '" + suite + "' (default, smoke, niah, rag)");
}

// A backend's option string, one option per element: split at ", " outside parentheses (values such
// as IVF256,Flat keep their commas).
std::vector<std::string> split_options(const std::string& options) {
  std::vector<std::string> out(1);
  int depth = 0;
  for (size_t i = 0; i < options.size(); ++i) {
    const char ch = options[i];
    depth += ch == '(' ? 1 : ch == ')' ? -1 : 0;
    if (depth == 0 && ch == ',' && i + 1 < options.size() && options[i + 1] == ' ') {
      out.emplace_back();
      ++i;
      continue;
    }
    out.back() += ch;
  }
  return out;
}

int cmd_run(RunArgs a) {
  register_builtin_backends();
  if (a.list) {
    std::cout << "backends:\n";
    for (const auto& b : BackendRegistry::instance().list()) {
      std::cout << "  " << b.name << "  " << b.summary << "\n      options:\n";
      for (const auto& o : split_options(b.options)) std::cout << "        " << o << "\n";
    }
    std::cout << "datasets (generated):\n";
    for (const auto& t : niah_tasks())
      std::cout << "  " << t.name << "  haystack=" << t.haystack << " keys=" << t.key_type
                << " values=" << t.value_type << " k/v/q=" << t.num_keys << "/" << t.num_values << "/"
                << t.num_queries << "\n";
    std::cout << "  " << kTwoHopTask << "  synthetic two-hop QA: \"A works with B.\" + \"B lives in C.\", "
              << TwoHopConfig{}.queries << " questions per memory\n";
    std::cout << "  " << kPointerTask << "  synthetic pointer-chain two-hop QA: a NIAH question whose document "
                 "names the record with the word (\"... is kept in document [j] under code N.\") among decoy records, 1 question per "
                 "memory\n";
    std::cout << "  DIR  a dataset directory written by `msabench data make` (corpus.jsonl, queries.jsonl, meta.json)\n";
    std::cout << "suites: default, smoke, niah, rag\n";
    return 0;
  }
  SuiteDefaults d = suite_defaults(a.suite);
  const bool backends_from_suite = a.backends.empty();
  if (a.backends.empty()) a.backends = d.backends;
  if (a.datasets.empty()) a.datasets = d.datasets;
  if (a.sizes.empty()) a.sizes = d.sizes;
  if (a.samples <= 0) a.samples = d.samples;
  if (backends_from_suite && !d.tokenizer.empty() && g_tokenizer == "whitespace-words") g_tokenizer = d.tokenizer;
  if (!backends_from_suite) d.limits.clear();
  if (a.shards > 1) {  // --shards N: every msa spec gets shards=N (suite limits follow the new spec)
    for (auto& b : a.backends) {
      BackendSpec spec = BackendSpec::parse(b);
      if (spec.name != "msa") continue;
      spec.options["shards"] = std::to_string(a.shards);
      const std::string sharded = spec.to_string();
      if (auto lim = d.limits.find(b); lim != d.limits.end()) d.limits[sharded] = lim->second;
      b = sharded;
    }
  }
  if (a.k < 1) throw Error("--k must be at least 1");
  const std::vector<double> depths = parse_depths(a.depths);
  std::vector<int64_t> sizes;
  for (const auto& s : a.sizes) sizes.push_back(parse_token_count(s));

  // Validate every backend spec and dataset before any work starts.
  for (const auto& b : a.backends) BackendRegistry::instance().create(b);
  auto counter = token_counter();
  struct Plan {
    std::string backend;
    CorpusStream data;
  };
  std::vector<Plan> plan;
  std::vector<std::shared_ptr<Dataset>> loaded;
  std::vector<std::shared_ptr<NiahGenerator>> gens;
  // One cell per backend, within the suite's per-backend size and sample limits.
  auto add_cells = [&](const CorpusStream& cs) {
    for (const auto& b : a.backends) {
      auto lim = d.limits.find(b);
      if (lim != d.limits.end() && cs.memory_tokens > lim->second.first) continue;
      CorpusStream cell = cs;
      if (lim != d.limits.end()) cell.count = std::min<size_t>(cell.count, lim->second.second);
      plan.push_back({b, cell});
    }
  };
  // A generated multi-hop task: one cell per size, the generator's config from the run's flags.
  auto add_generated = [&](const std::string& ds, auto cfg, auto make_generator, int queries_per_memory) {
    for (int64_t size : sizes) {
      cfg.target_tokens = size;
      cfg.samples = a.samples;
      cfg.seed = a.seed;
      cfg.doc_tokens = a.doc_tokens;
      auto gen = make_generator(cfg);
      add_cells({ds, counter->label(), size, static_cast<size_t>(a.samples),
                 [gen](size_t i) { return gen->sample(static_cast<int>(i)); }, gen->describe(),
                 static_cast<double>(queries_per_memory)});
    }
  };
  for (const auto& ds : a.datasets) {
    if (is_niah_task(ds)) {
      for (int64_t size : sizes) {
        NiahConfig cfg;
        cfg.task = ds;
        cfg.target_tokens = size;
        cfg.samples = a.samples;
        cfg.seed = a.seed;
        cfg.doc_tokens = a.doc_tokens;
        cfg.depths = depths;
        auto gen = std::make_shared<NiahGenerator>(cfg, *counter);
        gens.push_back(gen);
        add_cells({ds, counter->label(), size, static_cast<size_t>(a.samples),
                   [gen](size_t i) { return gen->sample(static_cast<int>(i)); }, gen->describe()});
      }
    } else if (ds == kTwoHopTask) {
      add_generated(ds, TwoHopConfig{}, [&](const TwoHopConfig& c) { return std::make_shared<TwoHopGenerator>(c, *counter); },
                    TwoHopConfig{}.queries);
    } else if (ds == kPointerTask) {
      add_generated(ds, PointerChainConfig{},
                    [&](const PointerChainConfig& c) { return std::make_shared<PointerChainGenerator>(c, *counter); }, 1);
    } else if (fs::is_directory(ds)) {
      auto data = std::make_shared<Dataset>(load_dataset_dir(ds));
      loaded.push_back(data);
      int64_t size = data->target_tokens > 0 ? data->target_tokens
                                             : data->total_tokens() / std::max<int64_t>(1, data->corpora.size());
      CorpusStream cs{data->name, data->tokenizer, size, data->corpora.size(),
                      [data](size_t i) { return data->corpora[i]; }, data->meta,
                      static_cast<double>(data->num_queries()) / static_cast<double>(std::max<size_t>(1, data->corpora.size()))};
      for (const auto& b : a.backends) plan.push_back({b, cs});
    } else {
      std::string known;
      for (const auto& t : niah_tasks()) known += " " + t.name;
      known += std::string(" ") + kTwoHopTask + " " + kPointerTask;
      throw Error("dataset '" + ds + "' is neither a generated task (" + known.substr(1) +
                  ") nor a dataset directory");
    }
  }

  size_t total_queries = 0;
  for (const auto& p : plan)
    total_queries += static_cast<size_t>(std::llround(static_cast<double>(p.data.count) * p.data.queries_per_corpus));
  // Kept across kills: a rerun with the same identity resumes from the completed cells.
  RunStaging staging(a.out, {{"suite", a.suite}, {"backends", a.backends}, {"datasets", a.datasets},
                             {"sizes", a.sizes}, {"samples", a.samples}, {"seed", a.seed},
                             {"doc_tokens", a.doc_tokens}, {"depths", depths}, {"k", a.k}, {"batch", a.batch},
                             {"tokenizer", g_tokenizer}, {"git", git_info()}});
  auto metrics = default_metrics();
  std::vector<json> results;
  Progress progress("run", static_cast<int64_t>(total_queries), "queries", !a.quiet);
  for (const auto& p : plan) {
    progress.set_label(p.data.dataset + " " + format_token_count(p.data.memory_tokens) + " " + p.backend);
    auto backend = BackendRegistry::instance().create(p.backend);
    const std::string file = (fs::path(staging.path()) / "cells" /
                              (sanitize(p.data.dataset) + "__" + format_token_count(p.data.memory_tokens) + "__" +
                               sanitize(backend->spec()) + ".json"))
                                 .string();
    if (auto done = staging.completed(file)) {
      progress.advance(std::llround(static_cast<double>(p.data.count) * p.data.queries_per_corpus));
      results.push_back(std::move(*done));
      continue;
    }
    CellOptions opt;
    opt.suite = a.suite;
    opt.k = a.k;
    opt.batch = a.batch;
    opt.progress = &progress;
    // The probe is measured next to every cell so `compare` can normalise timings across machines.
    json calib = calibration_probe();
    json r = run_cell(*backend, p.data, metrics, opt);
    add_confidence_intervals(r);
    r["calibration"] = calib;
    write_json_atomic(file, r, 1);
    results.push_back(std::move(r));
  }
  progress.finish();
  json suite = {{"schema", "msabench.suite/1"}, {"suite", a.suite}, {"backends", a.backends},
                {"datasets", a.datasets},       {"sizes", a.sizes},   {"samples", a.samples},
                {"seed", a.seed},               {"doc_tokens", a.doc_tokens}, {"depths", depths},
                {"k", a.k},                     {"batch", a.batch},
                {"created", utc_timestamp()},   {"tokenizer", g_tokenizer},
                {"backend_limits", [&] {
                   json l = json::object();
                   for (const auto& [b, v] : d.limits) l[b] = {{"max_memory_tokens", v.first}, {"max_samples", v.second}};
                   return l;
                 }()}, {"machine", machine_info()},
                {"git", git_info()}};
  write_json_atomic((fs::path(staging.path()) / "suite.json").string(), suite);
  write_report(results, staging.path(), !a.no_plot);
  staging.commit();
  std::cout << report_markdown(results);
  std::cout << "\nwrote " << a.out << "/ (cells/*.json, report.md, report.csv"
            << (fs::exists(fs::path(a.out) / "report.png") ? ", report.png" : "") << ")\n";
  return 0;
}

// ------------------------------------------------------------------------------- retrieve
int cmd_retrieve(const std::string& backend_spec, const std::string& corpus, const std::string& queries, int k,
                 const std::string& out, bool quiet) {
  register_builtin_backends();
  if (k < 1) throw Error("--k must be at least 1");
  auto backend = BackendRegistry::instance().create(backend_spec);
  Dataset ds = load_jsonl_dataset(corpus, queries, "whitespace-words");
  std::string lines;
  double index_s = 0, query_s = 0;
  int64_t tokens = 0;
  Progress progress("retrieve", static_cast<int64_t>(ds.num_queries()), "queries", !quiet);
  for (const auto& c : ds.corpora) {
    if (c.queries.empty()) continue;
    IndexStats is = backend->index(c);
    index_s += is.seconds;
    tokens += c.tokens;
    for (const auto& q : c.queries) {
      Answer a = backend->answer(q, k);
      for (const auto& [s, v] : a.stage_seconds)
        if (s.find('.') == std::string::npos) query_s += v;  // "prefill.fetch" is part of "prefill"
      json res = json::array();
      int rank = 1;
      for (const auto& r : a.retrieved) res.push_back({{"rank", rank++}, {"id", r.id}, {"score", r.score}});
      json line = {{"query_id", q.id}, {"results", res}};
      if (ds.corpora.size() > 1) line["group"] = c.id;
      lines += line.dump() + "\n";
      progress.advance();
    }
  }
  progress.finish();
  write_file_atomic(out, lines);
  std::fprintf(stderr, "%s: %zu queries, top-%d from %s; index %.2fs (%.0f tokens/s), retrieve %.3fs (%.1f q/s)\n",
               out.c_str(), ds.num_queries(), k, backend->spec().c_str(), index_s,
               index_s > 0 ? tokens / index_s : 0.0, query_s, query_s > 0 ? ds.num_queries() / query_s : 0.0);
  return 0;
}

// ----------------------------------------------------------------------------------- data
int cmd_data_make(const std::string& task, const std::string& tokens, int samples, uint64_t seed,
                  int64_t doc_tokens, const std::string& depths, const std::string& out, bool quiet) {
  auto counter = token_counter();
  std::vector<std::string> tasks;
  if (task == "all")
    for (const auto& t : niah_tasks()) tasks.push_back(t.name);
  else
    tasks.push_back(task);
  std::vector<NiahGenerator> gens;
  for (const auto& t : tasks) {  // validate everything before writing
    NiahConfig cfg;
    cfg.task = t;
    cfg.target_tokens = parse_token_count(tokens);
    cfg.samples = samples;
    cfg.seed = seed;
    cfg.doc_tokens = doc_tokens;
    cfg.depths = parse_depths(depths);
    gens.emplace_back(cfg, *counter);
  }
  StagingDir staging(out);
  const int64_t total = static_cast<int64_t>(tasks.size()) * samples * parse_token_count(tokens);
  Progress progress("data make", total, "tokens", !quiet);
  int64_t before = 0;
  for (const auto& gen : gens) {
    // --task all: one dataset directory per task under OUT
    const std::string dir = task == "all" ? (fs::path(staging.path()) / gen.config().task).string() : staging.path();
    progress.set_label(gen.config().task);
    int64_t last = 0;
    WrittenDataset w = write_niah_dir(gen, dir, [&](int64_t done) {
      progress.advance(done - last);
      last = done;
    });
    before += w.tokens;
    std::printf("%s%s: %s, %zu corpora x %s %s tokens, %lld documents, %lld queries\n", out.c_str(),
                task == "all" ? ("/" + w.name).c_str() : "", w.name.c_str(), w.corpora,
                format_token_count(gen.config().target_tokens).c_str(), counter->label().c_str(),
                (long long)w.documents, (long long)w.queries);
  }
  progress.finish();
  staging.commit();
  std::printf("wrote %s (%lld tokens)\n", out.c_str(), (long long)before);
  return 0;
}

// data make --from FORMAT --input FILE...: a public format (or a dataset directory) as a dataset
// directory, or with --sizes one memory bank per size (gold documents + distractors + padding).
int cmd_data_make_from(const std::string& format, const std::vector<std::string>& inputs,
                       const std::vector<std::string>& sizes, const std::string& pad, size_t max_queries,
                       uint64_t seed, int64_t doc_tokens, const std::string& out) {
  auto counter = token_counter();
  ScalingConfig sc;
  for (const auto& s : sizes) sc.sizes.push_back(parse_token_count(s));
  sc.seed = seed;
  sc.pad = pad;
  sc.pad_doc_tokens = doc_tokens;
  sc.max_queries = max_queries;
  std::vector<Query> queries;
  Dataset ds;
  DocumentStream docs;
  std::string name;
  if (format == "dir" || format == "msmarco-passage") {
    // streamed: the corpus is never loaded (MS MARCO's 8.8M passages, 100M-token dataset dirs)
    if (format == "dir") {
      if (inputs.size() != 1) throw Error("--from dir takes one --input DIR");
      const std::string meta_path = (fs::path(inputs[0]) / "meta.json").string();
      if (!fs::exists(meta_path)) throw Error(meta_path + ": missing (not a dataset directory)");
      name = json::parse(read_file(meta_path)).value("name", "dataset");
      read_jsonl((fs::path(inputs[0]) / "queries.jsonl").string(), [&](const json& j, size_t) {
        Query q;
        q.id = j.at("id").is_string() ? j["id"].get<std::string>() : j["id"].dump();
        q.text = j.at("text").get<std::string>();
        for (const auto& v : j.value("answers", json::array())) q.answers.push_back(v.get<std::string>());
        for (const auto& v : j.value("gold_doc_ids", json::array()))
          q.gold_doc_ids.push_back(v.is_string() ? v.get<std::string>() : v.dump());
        q.meta = j.value("meta", json::object());
        queries.push_back(std::move(q));
      });
      docs = documents_of_jsonl((fs::path(inputs[0]) / "corpus.jsonl").string());
    } else {
      if (inputs.size() != 3) throw Error("--from msmarco-passage takes --input COLLECTION --input QUERIES --input QRELS");
      name = "msmarco_passage";
      queries = load_msmarco_passage_queries(inputs[1], inputs[2]);
      docs = documents_of_msmarco_tsv(inputs[0]);
    }
    if (sc.sizes.empty()) throw Error("--from " + format + " needs --sizes (it only builds memory banks)");
  } else {
    ds = load_by_format(format, inputs, *counter);
    name = ds.name;
    for (const auto& c : ds.corpora)
      for (const auto& q : c.queries) queries.push_back(q);
    docs = documents_of(ds);
  }
  StagingDir staging(out);
  if (sc.sizes.empty()) {
    DatasetDirWriter w(staging.path());
    for (const auto& c : ds.corpora) {
      for (const auto& d : c.documents) w.document(c.id, d, counter->count(d.text));
      for (const auto& q : c.queries) w.query(c.id, q);
    }
    w.finish(ds.name, counter->label(), counter->spec(), 0, ds.meta);
    staging.commit();
    std::printf("wrote %s: %s, %lld documents, %lld tokens, %lld queries\n", out.c_str(), ds.name.c_str(),
                (long long)w.documents(), (long long)w.tokens(), (long long)w.queries());
    return 0;
  }
  auto banks = build_memory_banks(name, queries, docs, *counter, sc, staging.path());
  staging.commit();
  for (const auto& b : banks)
    std::printf("%s/%s: %lld tokens, %lld documents (%lld gold, %lld padding = %lld tokens)\n", out.c_str(),
                format_token_count(b.target_tokens).c_str(), (long long)b.tokens, (long long)b.documents,
                (long long)b.gold_documents, (long long)b.pad_documents, (long long)b.pad_tokens);
  return 0;
}

int cmd_data_inspect(const std::vector<std::string>& paths, const std::string& format, int show) {
  if (!format.empty()) {
    auto counter = token_counter();
    std::cout << dataset_summary(load_by_format(format, paths, *counter), *counter, show);
    return 0;
  }
  if (paths.size() != 1) throw Error("several files need --format (see `msabench data list`)");
  const std::string& dir = paths[0];
  if (!fs::exists(dir)) throw Error(dir + ": no such file or directory");
  if (!fs::is_directory(dir)) {
    if (fs::path(dir).extension() == ".pkl") {
      std::cout << pickle_summary(dir);
      return 0;
    }
    throw Error(dir + ": not a dataset directory; give --format for a public-format file");
  }
  DatasetDirStats st = inspect_dataset_dir(dir, show);
  std::printf("dataset     %s\ntokenizer   %s\ncorpora     %zu\ndocuments   %lld (%lld..%lld tokens each)\n"
              "tokens      %lld total, %lld per corpus on average\nqueries     %lld (%lld with gold documents)\n",
              st.meta.value("name", "").c_str(), st.tokenizer.c_str(), st.corpora, (long long)st.documents,
              (long long)st.min_doc_tokens, (long long)st.max_doc_tokens, (long long)st.tokens,
              (long long)(st.tokens / std::max<int64_t>(1, static_cast<int64_t>(st.corpora))), (long long)st.queries,
              (long long)st.queries_with_gold);
  if (st.gold_ids_missing > 0)
    std::printf("WARNING     %lld gold document ids are not in the corpus\n", (long long)st.gold_ids_missing);
  for (const auto& q : st.sample_queries) {
    std::printf("\n[%s] %s\n  answers: %s\n  gold docs: %s\n", q.id.c_str(), q.text.c_str(),
                json(q.answers).dump().c_str(), json(q.gold_doc_ids).dump().c_str());
    for (const auto& d : st.sample_documents)
      if (std::find(q.gold_doc_ids.begin(), q.gold_doc_ids.end(), d.id) != q.gold_doc_ids.end()) {
        std::string t = d.text.substr(0, 200);
        std::replace(t.begin(), t.end(), '\n', ' ');
        std::printf("  %s: %s%s\n", d.id.c_str(), t.c_str(), d.text.size() > 200 ? "..." : "");
      }
  }
  return 0;
}

int cmd_report(const std::vector<std::string>& inputs, std::string out, bool no_plot) {
  auto results = load_results(inputs);
  if (out.empty()) out = fs::is_directory(inputs.front()) ? inputs.front() : fs::path(inputs.front()).parent_path().string();
  if (out.empty()) out = ".";
  ReportFiles f = write_report(results, out, !no_plot);
  std::cout << report_markdown(results) << "\nwrote " << f.markdown << ", " << f.csv << ", " << f.latex
            << (f.png.empty() ? "" : ", " + f.png) << "\n";
  return 0;
}

// ------------------------------------------------------------------------------- compare
// Exit code 1 on any regression, so CI fails with the diff on stdout.
int cmd_compare(const std::string& base, const std::string& next, const std::vector<std::string>& tolerances,
                bool no_timing, bool verbose) {
  Tolerances tol = parse_tolerances(tolerances);
  tol.check_timing = !no_timing;
  const CompareOutcome out = compare_results(load_compared({base}), load_compared({next}), tol, verbose);
  std::cout << out.text;
  return out.failed() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_in_heap();  // process-wide allocator policy, before any tensor exists
  // Hidden: a Memory Parallel worker, launched by the msa backend (or by hand on another machine).
  if (argc > 1 && std::string(argv[1]) == "shard-worker") return shard_worker_main(argc - 1, argv + 1);
  set_model_token_counter_factory([](const std::string& spec) { return make_model_token_counter(spec); });
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  // over a file-size limit write() then fails with EFBIG and the writers report it
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"msabench: benchmark Memory Sparse Attention and RAG baselines on long-memory workloads"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  msabench run                      default suite (NIAH 16K..1M, BM25; MSA to 64K) -> results/latest/\n"
      "  msabench run --help               all run options\n"
      "  msabench data make --task niah_multikey_1 --tokens 64K --out data/mk1-64k\n"
      "  msabench retrieve --backend bm25 --corpus c.jsonl --queries q.jsonl --k 10 --out run.jsonl\n"
      "  msabench report results/latest");

  // run
  RunArgs ra;
  auto* run = app.add_subcommand("run", "run a suite: backends x datasets x memory sizes, write results and report");
  run->add_option("--suite", ra.suite, "named defaults: default (NIAH single_1+multikey_1 at 16K,64K,256K,1M; bm25, "
                                       "plus the shipped msa model at 16K,64K, as the paper's protocol and with "
                                       "naming=router), smoke (tiny), "
                                       "niah (all generated NIAH tasks 32K..1M), rag (bm25, dense, rag over bm25 and "
                                       "dense, msa; NIAH and synth_twohop at 16K,64K; one shared backbone)")
      ->capture_default_str();
  run->add_option("-b,--backend", ra.backends, "backend spec, repeatable (e.g. bm25:k1=0.9,b=0.4); see --list");
  run->add_option("-d,--dataset", ra.datasets, "generated task name or dataset directory, repeatable");
  run->add_option("-s,--sizes", ra.sizes, "memory sizes in tokens for generated tasks (e.g. 16K,64K,1M)")
      ->delimiter(',');
  run->add_option("--samples", ra.samples, "samples (memory corpora) per task and size (suite default if 0)");
  run->add_option("--seed", ra.seed, "generator seed")->capture_default_str();
  run->add_option("--doc-tokens", ra.doc_tokens, "NIAH document size in tokens")->capture_default_str();
  run->add_option("--depths", ra.depths, "needle depths in percent, cycled over samples (e.g. 0,25,50,75,100); "
                                         "default: RULER's random 40-point grid");
  run->add_option("-k,--k", ra.k, "documents retrieved per query")->capture_default_str();
  run->add_option("--batch", ra.batch, "queries of one memory corpus answered together (msa batches its engine "
                                       "calls; greedy outputs equal batch 1)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  run->add_option("--shards", ra.shards, "Memory Parallel: every msa backend routes over its bank sharded across N "
                                         "worker processes on this machine (adds shards=N to msa specs)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  run->add_option("-o,--out", ra.out, "output directory (replaced atomically when the run completes)")
      ->capture_default_str();
  run->add_flag("--no-plot", ra.no_plot, "skip report.png");
  run->add_flag("-q,--quiet", ra.quiet, "no progress bar");
  run->add_flag("--list", ra.list, "list backends, datasets and suites, then exit");
  run->add_option("--tokenizer", g_tokenizer, "token counter for memory sizes: whitespace-words, bytes, or a "
                                              "tokenizer.json / model directory (e.g. a Qwen3 checkpoint)")
      ->capture_default_str();
  run->footer("Examples:\n"
              "  msabench run\n"
              "  msabench run --suite smoke -o /tmp/smoke\n"
              "  msabench run -b bm25 -b bm25:k1=1.2,b=0.75 -d niah_single_1 -s 64K,256K --samples 50\n"
              "  msabench run -d data/mk1-64k -b bm25:index_dir=indexes\n"
              "Results: OUT/cells/<dataset>__<size>__<backend>.json (schema msabench.result/1), OUT/suite.json,\n"
              "OUT/report.md, OUT/report.csv, OUT/report.png. Sizes are counted by --tokenizer (the default suite\n"
              "counts bytes, the shipped model's tokens); every result names its tokenizer.");

  // retrieve
  std::string r_backend = "bm25", r_corpus, r_queries, r_out;
  int r_k = 10;
  bool r_quiet = false;
  auto* retrieve = app.add_subcommand("retrieve", "rank documents for each query and write JSONL");
  retrieve->add_option("--backend", r_backend, "backend spec")->capture_default_str();
  retrieve->add_option("--corpus", r_corpus, "JSONL, one {\"id\":..., \"text\":...} per line (optional \"group\")")
      ->required();
  retrieve->add_option("--queries", r_queries, "JSONL, one {\"id\":..., \"text\":...} per line (optional \"group\")")
      ->required();
  retrieve->add_option("-k,--k", r_k, "documents per query")->capture_default_str();
  retrieve->add_option("-o,--out", r_out, "output JSONL: {\"query_id\", \"results\":[{\"rank\",\"id\",\"score\"}]}")
      ->required();
  retrieve->add_flag("-q,--quiet", r_quiet, "no progress bar");
  retrieve->footer("Examples:\n"
                   "  msabench retrieve --backend bm25 --corpus corpus.jsonl --queries queries.jsonl --k 10 --out run.jsonl\n"
                   "  msabench retrieve --backend bm25:k1=0.82,b=0.68,index_dir=idx --corpus c.jsonl --queries q.jsonl "
                   "--out run.jsonl\n"
                   "With index_dir the Lucene++ index is kept and reused while the corpus is unchanged.\n"
                   "Lines with a \"group\" field form separate corpora; a query searches its own group only.");

  // data
  auto* data = app.add_subcommand("data", "make or inspect datasets");
  data->require_subcommand(1);
  std::string d_task = "niah_single_1", d_tokens = "16K", d_out, d_depths;
  int d_samples = 10;
  uint64_t d_seed = 42;
  int64_t d_doc_tokens = 512;
  auto* make = data->add_subcommand("make", "generate a NIAH dataset directory (corpus.jsonl, queries.jsonl, meta.json)");
  bool d_quiet = false;
  make->add_option("--task", d_task, "NIAH task (see `msabench data list`) or all (one directory per task under OUT)")
      ->capture_default_str();
  make->add_flag("-q,--quiet", d_quiet, "no progress bar");
  make->add_option("--tokens", d_tokens, "memory size per sample (16K, 1M, ...)")->capture_default_str();
  make->add_option("--samples", d_samples, "number of samples (one memory corpus + query each)")->capture_default_str();
  make->add_option("--seed", d_seed, "generator seed")->capture_default_str();
  make->add_option("--tokenizer", g_tokenizer, "token counter for sizes: whitespace-words, bytes, tokenizer.json or "
                                               "model directory")
      ->capture_default_str();
  make->add_option("--doc-tokens", d_doc_tokens, "document size in tokens")->capture_default_str();
  make->add_option("--depths", d_depths, "needle depths in percent, cycled over samples");
  std::string d_from, d_pad = "essay";
  std::vector<std::string> d_inputs, d_sizes;
  size_t d_max_queries = 0;
  make->add_option("--from", d_from, "instead of NIAH: read a public format (see `msabench data list`) or 'dir' "
                                     "(a dataset directory)");
  make->add_option("--input", d_inputs, "input file(s) for --from, repeatable, in the format's order");
  make->add_option("--sizes", d_sizes, "with --from: build one memory bank per size (e.g. 16K,1M,100M): gold "
                                       "documents + seeded distractors, nested")
      ->delimiter(',');
  make->add_option("--pad", d_pad, "with --sizes: padding source when the corpus is too small (essay, noise, none)")
      ->capture_default_str();
  make->add_option("--max-queries", d_max_queries, "with --sizes: keep a seeded sample of this many queries (0: all)");
  make->add_option("-o,--out", d_out, "output directory")->required();
  make->footer("Examples:\n  msabench data make --task niah_multikey_1 --tokens 64K --samples 20 --out data/mk1-64k\n"
               "  msabench data make --task all --tokens 100M --samples 1 --out data/niah-100m\n"
               "  msabench data make --from hotpotqa --input hotpot_dev_distractor_v1.json --out data/hotpotqa\n"
               "  msabench data make --from msmarco-passage --input collection.tsv --input queries.dev.small.tsv \\\n"
               "      --input qrels.dev.small.tsv --sizes 16K,64K,256K,1M,10M,100M --max-queries 200 --out data/msmarco-banks\n"
               "Documents are streamed to disk as they are generated (bounded RAM at any size).");
  std::vector<std::string> i_paths;
  std::string i_format;
  int i_show = 3;
  auto* inspect = data->add_subcommand("inspect", "print counts, token sizes and example queries of a dataset");
  inspect->add_option("path", i_paths, "dataset directory, .pkl file, or the file(s) of --format")->required();
  inspect->add_option("--format", i_format, "read PATH... in this public format (see `msabench data list`)");
  inspect->add_option("--show", i_show, "queries to print")->capture_default_str();
  inspect->add_option("--tokenizer", g_tokenizer, "token counter for files read with --format")->capture_default_str();
  inspect->footer("Examples:\n  msabench data inspect data/mk1-64k --show 5\n"
                  "  msabench data inspect --format hotpotqa hotpot_dev_distractor_v1.json\n"
                  "  msabench data inspect qdata_hotpotqa.pkl");
  auto* list = data->add_subcommand("list", "list the generated tasks");

  // report
  std::vector<std::string> rep_inputs;
  std::string rep_out;
  bool rep_no_plot = false;
  auto* report = app.add_subcommand("report", "Markdown/CSV/LaTeX tables and a PNG plot from result files");
  report->add_option("inputs", rep_inputs, "result files or directories (default: results/latest)");
  report->add_option("-o,--out", rep_out, "where report.md/.csv/.tex/.png go (default: the first input directory)");
  report->add_flag("--no-plot", rep_no_plot, "skip report.png");
  report->footer("Examples:\n  msabench report\n  msabench report results/latest results/gpu-run -o results/compare\n"
                 "Tables in the shapes of the paper's Table 2, Figure 4 and Figure 1 with its published numbers\n"
                 "beside them (labelled \"published\"), 95% bootstrap CIs, paired bootstrap p-values between\n"
                 "backends. The same result files always regenerate byte-identical report files.");

  // compare
  std::string cmp_base, cmp_new;
  std::vector<std::string> cmp_tol;
  bool cmp_no_timing = false, cmp_verbose = false;
  auto* compare = app.add_subcommand("compare", "fail (exit 1) if NEW regresses against BASE: accuracy or timing");
  compare->add_option("base", cmp_base, "baseline result file or directory")->required();
  compare->add_option("new", cmp_new, "new result file or directory")->required();
  compare->add_option("-t,--tolerance", cmp_tol,
                      "NUMBER (allowed absolute accuracy drop, default 0) or NAME=NUMBER with NAME accuracy, timing "
                      "(allowed normalised slowdown, default 0.25 = 25%), a metric (recall@1) or a timing "
                      "(mean_query_ms, index_tokens_per_s); repeatable or comma-separated");
  compare->add_flag("--no-timing", cmp_no_timing, "check accuracy only");
  compare->add_flag("-v,--verbose", cmp_verbose, "also list unchanged checks");
  compare->footer("Examples:\n"
                  "  msabench compare results/baselines/regression /tmp/new --tolerance 0.02\n"
                  "  msabench compare base.json new.json -t accuracy=0,recall@10=0.05,timing=1.0\n"
                  "Cells are matched by dataset, memory size and backend spec. Timings are divided by the\n"
                  "calibration probe each run recorded (result \"calibration\" or suite.json); without one they are\n"
                  "not checked. Accuracy drops show a paired bootstrap p-value over the common queries.");

  // generate
  std::string g_model, g_prompt;
  int g_max_tokens = 64;
  double g_temperature = 0.0, g_top_p = 1.0;
  uint64_t g_seed = 0;
  bool g_raw = false;
  auto* gen = app.add_subcommand("generate", "generate text with a Qwen3/MSA checkpoint (quick manual check)");
  gen->add_option("-m,--model", g_model, "model directory (config.json, safetensors, tokenizer)")->required();
  gen->add_option("-p,--prompt", g_prompt, "user message (wrapped in the Qwen3 chat template unless --raw)")->required();
  gen->add_option("-n,--max-tokens", g_max_tokens, "tokens to generate")->capture_default_str();
  gen->add_option("--temperature", g_temperature, "0 = greedy")->capture_default_str();
  gen->add_option("--top-p", g_top_p, "nucleus sampling mass")->capture_default_str();
  gen->add_option("--seed", g_seed, "sampling seed")->capture_default_str();
  gen->add_flag("--raw", g_raw, "feed the prompt as is, without the chat template");
  gen->footer("Examples:\n"
              "  msabench generate -m /models/Qwen3-4B-Instruct-2507 -p \"What is the capital of France?\"\n"
              "  msabench generate -m backends/msa/msa-small/model -p \"hello\" --raw -n 32\n"
              "Prints the completion, then prompt/generated token counts with prefill and decode tokens/s.");

  // judge
  std::vector<std::string> j_inputs;
  std::string j_url = HttpJudgeConfig{}.base_url, j_model = HttpJudgeConfig{}.model, j_key = HttpJudgeConfig{}.api_key_env,
              j_local, j_prompt, j_cache = "results/.judge-cache";
  int j_conc = 8;
  auto* judge = app.add_subcommand("judge", "score generated answers 0-5 with an LLM judge and add judge_score to results");
  judge->add_option("inputs", j_inputs, "result files or directories (rewritten atomically)")->required();
  judge->add_option("--endpoint", j_url, "OpenAI-compatible base URL (POST {url}/chat/completions)")->capture_default_str();
  judge->add_option("--model", j_model, "judge model name at the endpoint")->capture_default_str();
  judge->add_option("--api-key-env", j_key, "environment variable holding the API key (never printed)")
      ->capture_default_str();
  judge->add_option("--local", j_local, "judge with a local Qwen3 checkpoint instead of an endpoint");
  judge->add_option("--prompt-file", j_prompt, "rubric with {question}, {gold} and {prediction} template fields");
  judge->add_option("--cache", j_cache, "judgment cache directory")->capture_default_str();
  judge->add_option("--concurrency", j_conc, "requests in flight")->capture_default_str();
  judge->footer("Examples:\n"
                "  OPENROUTER_API_KEY=... msabench judge results/latest\n"
                "  msabench judge results/latest --endpoint http://127.0.0.1:8000/v1 --model qwen3 --api-key-env \"\"\n"
                "  msabench judge results/latest --local /models/Qwen3-4B-Instruct-2507\n"
                "Then `msabench report results/latest` shows the judge score tables.");

  // encode / bank
  std::string e_model, e_corpus, e_out;
  int64_t e_segment = 256;
  bool e_quiet = false;
  auto* encode = app.add_subcommand("encode", "encode a corpus into a persistent MSA memory bank (resumable)");
  encode->add_option("-m,--model", e_model, "MSA checkpoint directory")->required();
  encode->add_option("--corpus", e_corpus, "JSONL, one {\"id\":..., \"text\":...} per line; index = line order")->required();
  encode->add_option("-o,--out", e_out, "bank directory (created, or resumed if an encode was interrupted)")->required();
  encode->add_option("--segment-docs", e_segment, "documents per segment (the unit of resumption)")->capture_default_str();
  encode->add_flag("-q,--quiet", e_quiet, "no progress bar");
  std::string e_ram_budget = "0", e_gpu_budget = "0";
  encode->add_option("--ram-budget", e_ram_budget,
                     "RAM for the bank (e.g. 8G); refused before encoding when its routing keys cannot fit");
  encode->add_option("--gpu-budget", e_gpu_budget, "GPU memory for the routing keys (GPU builds only; recorded here)");
  encode->footer("Examples:\n"
                 "  msabench encode -m backends/msa/msa-small/model --corpus corpus.jsonl -o banks/c1\n"
                 "  msabench bank info banks/c1\n"
                 "Killing an encode and running the same command again resumes from the last complete segment;\n"
                 "the finished bank is byte-identical to an uninterrupted one.");
  auto* bank = app.add_subcommand("bank", "inspect memory banks");
  bank->require_subcommand(1);
  std::string b_dir;
  auto* binfo = bank->add_subcommand("info", "print a bank's manifest, fingerprints and sizes");
  binfo->add_option("dir", b_dir, "bank directory")->required();
  bool b_verify = false;
  binfo->add_flag("--verify", b_verify, "read every segment and check its size and CRC-32");
  binfo->footer("Example:\n  msabench bank info banks/c1");

  // train
  std::string t_config, t_export, t_checkpoint;
  int64_t t_steps = 0, t_max_seconds = -1;
  bool t_quiet = false;
  int t_probe = 0;
  auto* train = app.add_subcommand("train", "train an MSA model (LM + routing loss), resumable from its checkpoint");
  train->add_option("-c,--config", t_config,
                    "training config JSON (every key: TrainConfig in core/model/msa_train.h; the shipped "
                    "recipes: backends/msa/msa-small/); required unless --checkpoint is given");
  train->add_option("--steps", t_steps,
                    "override the total number of optimizer steps (the cosine lr schedule follows it, so a "
                    "shorter --steps is a different run)");
  train->add_option("--max-seconds", t_max_seconds, "checkpoint and stop after this many seconds (resume later)");
  train->add_option("--export", t_export,
                    "after training, write the latest checkpoint (OUT_DIR/checkpoint, or --checkpoint) as a bf16 "
                    "model here; an existing model there is replaced whole");
  train->add_option("--checkpoint", t_checkpoint,
                    "with --export and no --config: export this checkpoint directory (weights, config.json, "
                    "trainer_state.json; e.g. a committed fp32 snapshot) instead of a config's OUT_DIR/checkpoint");
  train->add_flag("-q,--quiet", t_quiet, "no progress output");
  train->add_option("--probe", t_probe,
                    "after training, copy probe of the latest checkpoint (without one: of init_from) on N held-out "
                    "samples of the config's data: the answer with the gold document in the context and no memory, "
                    "or for copy tasks the second copy (prints JSON: exact match, per-character accuracy, "
                    "teacher-forced target NLL and accuracy, overall and by place in the target)");
  train->footer("Examples:\n"
                "  msabench train -c backends/msa/msa-small/train_config.json\n"
                "  msabench train -c backends/msa/msa-small/train_config.json --max-seconds 3000   # resume later\n"
                "  msabench train -c backends/msa/msa-small/train_config.json --steps 0 --export build/stage1-model\n"
                "  msabench train -c backends/msa/msa-small/train_config.json --steps 0 --probe 64\n"
                "  msabench train --checkpoint results/msa-small-copy/s32-copy/y4-3050 --export build/y4-model\n"
                "Progress, loss and tokens/s go to stderr and OUT_DIR/log.jsonl; OUT_DIR/checkpoint holds the\n"
                "weights, AdamW state and step, so running the same command again resumes.");

  CLI11_PARSE(app, argc, argv);
  try {
    if (run->parsed()) return cmd_run(ra);
    if (retrieve->parsed()) return cmd_retrieve(r_backend, r_corpus, r_queries, r_k, r_out, r_quiet);
    if (make->parsed() && !d_from.empty())
      return cmd_data_make_from(d_from, d_inputs, d_sizes, d_pad, d_max_queries, d_seed, d_doc_tokens, d_out);
    if (make->parsed()) return cmd_data_make(d_task, d_tokens, d_samples, d_seed, d_doc_tokens, d_depths, d_out, d_quiet);
    if (inspect->parsed()) return cmd_data_inspect(i_paths, i_format, i_show);
    if (list->parsed()) {
      for (const auto& t : niah_tasks())
        std::printf("%-18s haystack=%-6s keys=%-6s values=%-8s keys/values/queries=%d/%d/%d\n", t.name.c_str(),
                    t.haystack.c_str(), t.key_type.c_str(), t.value_type.c_str(), t.num_keys, t.num_values,
                    t.num_queries);
      std::printf("\nformats for `data make --from` / `data inspect --format`:\n");
      for (const auto& f : dataset_formats())
        std::printf("  %-16s %-26s %s\n", f.name.c_str(), f.files.c_str(), f.summary.c_str());
      std::printf("  %-16s %-26s %s\n", "dir", "DIR", "a dataset directory (memory banks with --sizes)");
      return 0;
    }
    if (encode->parsed()) {
      json s = encode_corpus_bank(e_model, e_corpus, e_out, e_segment, e_quiet, e_ram_budget, e_gpu_budget);
      std::printf("%s\n", s.dump(1).c_str());
      return 0;
    }
    if (binfo->parsed()) {
      std::printf("%s\n", describe_bank(b_dir, b_verify).dump(1).c_str());
      return 0;
    }
    if (judge->parsed()) {
      std::unique_ptr<ChatModel> chat;
      if (!j_local.empty()) {
        chat = make_local_chat_model(j_local);
      } else {
        HttpJudgeConfig hc;
        hc.base_url = j_url;
        hc.model = j_model;
        hc.api_key_env = j_key;
        chat = make_http_chat_model(hc);
      }
      JudgeOptions jo;
      if (!j_prompt.empty()) jo.prompt_template = load_judge_prompt(j_prompt);
      jo.cache_dir = j_cache;
      jo.concurrency = std::max(1, j_conc);
      LlmJudge lj(*chat, jo);
      int failed = 0, files = 0;
      for (auto& [path, result] : load_result_files(j_inputs)) {
        failed += judge_result_records(result, lj);
        write_json_atomic(path, result, 1);
        ++files;
        std::printf("%s: judge_score %s\n", path.c_str(), result["aggregates"]["judge_score"].dump().c_str());
      }
      std::printf("judged %d result file(s) with %s; %d judgment(s) failed\n", files, chat->id().c_str(), failed);
      return failed > 0 ? 1 : 0;
    }
    if (gen->parsed()) {
      GenerateRequest req{g_model, g_prompt, g_max_tokens, g_temperature, g_top_p, g_seed, g_raw};
      GenerateReport rep = run_generate(req);
      std::printf("%s\n", rep.text.c_str());
      std::fprintf(stderr, "[%lld prompt tokens, %lld generated (%s); prefill %.0f tokens/s, decode %.1f tokens/s]\n",
                   (long long)rep.prompt_tokens, (long long)rep.generated_tokens, rep.finish_reason.c_str(),
                   rep.prefill_tokens_per_s, rep.decode_tokens_per_s);
      return 0;
    }
    if (train->parsed()) {
      if (!t_checkpoint.empty()) {
        if (!t_config.empty() || t_export.empty() || t_probe > 0 || train->count("--steps") || t_max_seconds >= 0)
          throw Error("train --checkpoint DIR only exports DIR (with --export MODEL_DIR); to train, probe or "
                      "export a run's own checkpoint, give --config instead");
        export_trained_model(t_checkpoint, t_export);
        std::printf("exported %s to %s\n", t_checkpoint.c_str(), t_export.c_str());
        return 0;
      }
      if (t_config.empty()) throw Error("train needs --config FILE (or --checkpoint DIR --export MODEL_DIR)");
      TrainConfig cfg = TrainConfig::load(t_config);
      if (train->count("--steps")) cfg.steps = t_steps;
      if (t_max_seconds >= 0) cfg.max_seconds = t_max_seconds;
      TrainSummary sum;
      if (cfg.steps > 0) sum = train_msa(cfg, t_quiet);
      if (!t_export.empty()) {
        export_trained_model((fs::path(cfg.out_dir) / "checkpoint").string(), t_export);
        std::printf("exported %s/checkpoint to %s\n", cfg.out_dir.c_str(), t_export.c_str());
      }
      if (t_probe > 0) {
        const CopyProbe p = probe_answer_copy(cfg, t_probe);
        json ex = json::array();
        for (const auto& [gold, got] : p.examples) ex.push_back({{"gold", gold}, {"generated", got}});
        std::printf("%s\n", json({{"checkpoint", p.weights}, {"step", p.step}, {"samples", p.samples},
                                   {"exact_match", static_cast<double>(p.exact) / p.samples},
                                   {"digit_accuracy", p.digit_accuracy}, {"target_nll", p.target_nll},
                                   {"target_token_accuracy", p.target_accuracy}, {"id_target_accuracy", p.id_target_accuracy},
                                   {"target_accuracy_by_place", p.target_accuracy_by_place}, {"targets_by_place", p.targets_by_place},
                                   {"examples", ex}})
                                 .dump(1)
                                 .c_str());
      }
      if (cfg.steps > 0 && sum.steps_run == 0)
        std::printf("%s: checkpoint already at step %lld of %lld; nothing to train\n", cfg.out_dir.c_str(),
                    (long long)sum.steps_done, (long long)cfg.steps);
      else if (cfg.steps > 0)
        std::printf("%s: %lld/%lld steps%s; last loss %.4f (lm %.4f, aux %.4f), router top-1 %.3f\n",
                    cfg.out_dir.c_str(), (long long)sum.steps_done, (long long)cfg.steps,
                    sum.finished ? " (finished)" : " (stopped early; run again to resume)", sum.last_loss, sum.last_lm,
                    sum.last_aux, sum.last_router_recall);
      return 0;
    }
    if (report->parsed()) {
      if (rep_inputs.empty()) rep_inputs.push_back("results/latest");
      return cmd_report(rep_inputs, rep_out, rep_no_plot);
    }
    if (compare->parsed()) return cmd_compare(cmp_base, cmp_new, cmp_tol, cmp_no_timing, cmp_verbose);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
