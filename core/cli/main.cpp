// msabench: the command line. One translation unit on purpose (CLI11 is slow to compile).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "backends/builtin.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/harness.h"
#include "core/io.h"
#include "core/progress.h"
#include "core/result.h"
#include "core/text.h"
#include "core/tokenizer.h"
#include "datasets/niah.h"
#include "metrics/metrics.h"
#include "metrics/report.h"

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
    std::error_code ec;
    const std::string old = final_ + ".old-" + std::to_string(::getpid());
    if (fs::exists(final_)) fs::rename(final_, old);
    fs::rename(staging_, final_);
    fs::remove_all(old, ec);
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
  std::string out = "results/latest";
  bool no_plot = false, quiet = false, list = false;
};

struct SuiteDefaults {
  std::vector<std::string> backends, datasets, sizes;
  int samples;
};

SuiteDefaults suite_defaults(const std::string& suite) {
  if (suite == "default")
    return {{"bm25:k1=0.9,b=0.4"}, {"niah_single_1", "niah_multikey_1"}, {"16K", "64K", "256K", "1M"}, 50};
  if (suite == "smoke") return {{"bm25"}, {"niah_single_1"}, {"4K"}, 4};
  if (suite == "niah") {
    std::vector<std::string> all;
    for (const auto& t : niah_tasks()) all.push_back(t.name);
    return {{"bm25"}, all, {"32K", "64K", "128K", "256K", "512K", "1M"}, 50};
  }
  throw Error("unknown suite '" + suite + "' (default, smoke, niah)");
}

int cmd_run(RunArgs a) {
  register_builtin_backends();
  if (a.list) {
    std::cout << "backends:\n";
    for (const auto& b : BackendRegistry::instance().list())
      std::cout << "  " << b.name << "  " << b.summary << "\n      options: " << b.options << "\n";
    std::cout << "datasets (generated):\n";
    for (const auto& t : niah_tasks())
      std::cout << "  " << t.name << "  haystack=" << t.haystack << " keys=" << t.key_type
                << " values=" << t.value_type << " k/v/q=" << t.num_keys << "/" << t.num_values << "/"
                << t.num_queries << "\n";
    std::cout << "  DIR  a dataset directory written by `msabench data make` (corpus.jsonl, queries.jsonl, meta.json)\n";
    std::cout << "suites: default, smoke, niah\n";
    return 0;
  }
  SuiteDefaults d = suite_defaults(a.suite);
  if (a.backends.empty()) a.backends = d.backends;
  if (a.datasets.empty()) a.datasets = d.datasets;
  if (a.sizes.empty()) a.sizes = d.sizes;
  if (a.samples <= 0) a.samples = d.samples;
  if (a.k < 1) throw Error("--k must be at least 1");
  const std::vector<double> depths = parse_depths(a.depths);
  std::vector<int64_t> sizes;
  for (const auto& s : a.sizes) sizes.push_back(parse_token_count(s));

  // Validate every backend spec and dataset before any work starts.
  for (const auto& b : a.backends) BackendRegistry::instance().create(b);
  auto counter = make_token_counter("whitespace-words");
  struct Plan {
    std::string backend;
    CorpusStream data;
  };
  std::vector<Plan> plan;
  std::vector<std::shared_ptr<Dataset>> loaded;
  std::vector<std::shared_ptr<NiahGenerator>> gens;
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
        CorpusStream cs{ds, counter->label(), size, static_cast<size_t>(a.samples),
                        [gen](size_t i) { return gen->sample(static_cast<int>(i)); }, gen->describe()};
        for (const auto& b : a.backends) plan.push_back({b, cs});
      }
    } else if (fs::is_directory(ds)) {
      auto data = std::make_shared<Dataset>(load_dataset_dir(ds));
      loaded.push_back(data);
      int64_t size = data->target_tokens > 0 ? data->target_tokens
                                             : data->total_tokens() / std::max<int64_t>(1, data->corpora.size());
      CorpusStream cs{data->name, data->tokenizer, size, data->corpora.size(),
                      [data](size_t i) { return data->corpora[i]; }, data->meta};
      for (const auto& b : a.backends) plan.push_back({b, cs});
    } else {
      std::string known;
      for (const auto& t : niah_tasks()) known += " " + t.name;
      throw Error("dataset '" + ds + "' is neither a generated task (" + known.substr(1) +
                  ") nor a dataset directory");
    }
  }

  size_t total_queries = 0;
  for (const auto& p : plan) total_queries += p.data.count;  // NIAH: one query per corpus
  StagingDir staging(a.out);
  auto metrics = default_metrics();
  std::vector<json> results;
  Progress progress("run", static_cast<int64_t>(total_queries), "queries", !a.quiet);
  for (const auto& p : plan) {
    progress.set_label(p.data.dataset + " " + format_token_count(p.data.memory_tokens) + " " + p.backend);
    auto backend = BackendRegistry::instance().create(p.backend);
    CellOptions opt;
    opt.suite = a.suite;
    opt.k = a.k;
    opt.progress = &progress;
    json r = run_cell(*backend, p.data, metrics, opt);
    const std::string file = (fs::path(staging.path()) / "cells" /
                              (sanitize(p.data.dataset) + "__" + format_token_count(p.data.memory_tokens) + "__" +
                               sanitize(backend->spec()) + ".json"))
                                 .string();
    write_json_atomic(file, r, 1);
    results.push_back(std::move(r));
  }
  progress.finish();
  json suite = {{"schema", "msabench.suite/1"}, {"suite", a.suite}, {"backends", a.backends},
                {"datasets", a.datasets},       {"sizes", a.sizes},   {"samples", a.samples},
                {"seed", a.seed},               {"doc_tokens", a.doc_tokens}, {"depths", depths},
                {"k", a.k},                     {"created", utc_timestamp()}, {"machine", machine_info()},
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
      for (const auto& [s, v] : a.stage_seconds) query_s += v;
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
                  int64_t doc_tokens, const std::string& depths, const std::string& out) {
  auto counter = make_token_counter("whitespace-words");
  NiahConfig cfg;
  cfg.task = task;
  cfg.target_tokens = parse_token_count(tokens);
  cfg.samples = samples;
  cfg.seed = seed;
  cfg.doc_tokens = doc_tokens;
  cfg.depths = parse_depths(depths);
  NiahGenerator gen(cfg, *counter);
  StagingDir staging(out);
  Dataset ds = gen.all();
  save_dataset_dir(ds, staging.path());
  staging.commit();
  std::printf("wrote %s: %s, %zu corpora x %s %s tokens, %zu queries\n", out.c_str(), ds.name.c_str(),
              ds.corpora.size(), format_token_count(cfg.target_tokens).c_str(), ds.tokenizer.c_str(),
              ds.num_queries());
  return 0;
}

int cmd_data_inspect(const std::string& dir, int show) {
  Dataset ds = load_dataset_dir(dir);
  size_t docs = 0, min_len = SIZE_MAX, max_len = 0;
  auto counter = make_token_counter(ds.tokenizer);
  for (const auto& c : ds.corpora)
    for (const auto& d : c.documents) {
      ++docs;
      size_t n = static_cast<size_t>(counter->count(d.text));
      min_len = std::min(min_len, n);
      max_len = std::max(max_len, n);
    }
  std::printf("dataset     %s\ntokenizer   %s\ncorpora     %zu\ndocuments   %zu (%zu..%zu tokens each)\n"
              "tokens      %lld total, %lld per corpus on average\nqueries     %zu\n",
              ds.name.c_str(), ds.tokenizer.c_str(), ds.corpora.size(), docs, min_len, max_len,
              (long long)ds.total_tokens(), (long long)(ds.total_tokens() / std::max<size_t>(1, ds.corpora.size())),
              ds.num_queries());
  int shown = 0;
  for (const auto& c : ds.corpora)
    for (const auto& q : c.queries) {
      if (shown++ >= show) break;
      std::printf("\n[%s] %s\n  answers: %s\n  gold docs: %s\n", q.id.c_str(), q.text.c_str(),
                  json(q.answers).dump().c_str(), json(q.gold_doc_ids).dump().c_str());
    }
  return 0;
}

int cmd_report(const std::vector<std::string>& inputs, std::string out, bool no_plot) {
  auto results = load_results(inputs);
  if (out.empty()) out = fs::is_directory(inputs.front()) ? inputs.front() : fs::path(inputs.front()).parent_path().string();
  if (out.empty()) out = ".";
  ReportFiles f = write_report(results, out, !no_plot);
  std::cout << report_markdown(results) << "\nwrote " << f.markdown << ", " << f.csv
            << (f.png.empty() ? "" : ", " + f.png) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  CLI::App app{"msabench: benchmark Memory Sparse Attention and RAG baselines on long-memory workloads"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  msabench run                      default suite (NIAH 16K..1M, BM25) -> results/latest/\n"
      "  msabench run --help               all run options\n"
      "  msabench data make --task niah_multikey_1 --tokens 64K --out data/mk1-64k\n"
      "  msabench retrieve --backend bm25 --corpus c.jsonl --queries q.jsonl --k 10 --out run.jsonl\n"
      "  msabench report results/latest");

  // run
  RunArgs ra;
  auto* run = app.add_subcommand("run", "run a suite: backends x datasets x memory sizes, write results and report");
  run->add_option("--suite", ra.suite, "named defaults: default (NIAH single_1+multikey_1 at 16K,64K,256K,1M; bm25), "
                                       "smoke (tiny), niah (all generated NIAH tasks 32K..1M)")
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
  run->add_option("-o,--out", ra.out, "output directory (replaced atomically when the run completes)")
      ->capture_default_str();
  run->add_flag("--no-plot", ra.no_plot, "skip report.png");
  run->add_flag("-q,--quiet", ra.quiet, "no progress bar");
  run->add_flag("--list", ra.list, "list backends, datasets and suites, then exit");
  run->footer("Examples:\n"
              "  msabench run\n"
              "  msabench run --suite smoke -o /tmp/smoke\n"
              "  msabench run -b bm25 -b bm25:k1=1.2,b=0.75 -d niah_single_1 -s 64K,256K --samples 50\n"
              "  msabench run -d data/mk1-64k -b bm25:index_dir=indexes\n"
              "Results: OUT/cells/<dataset>__<size>__<backend>.json (schema msabench.result/1), OUT/suite.json,\n"
              "OUT/report.md, OUT/report.csv, OUT/report.png. Sizes are whitespace-word counts until the Qwen3\n"
              "tokenizer lands (every result names its tokenizer).");

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
  make->add_option("--task", d_task, "NIAH task (see `msabench data list`)")->capture_default_str();
  make->add_option("--tokens", d_tokens, "memory size per sample (16K, 1M, ...)")->capture_default_str();
  make->add_option("--samples", d_samples, "number of samples (one memory corpus + query each)")->capture_default_str();
  make->add_option("--seed", d_seed, "generator seed")->capture_default_str();
  make->add_option("--doc-tokens", d_doc_tokens, "document size in tokens")->capture_default_str();
  make->add_option("--depths", d_depths, "needle depths in percent, cycled over samples");
  make->add_option("-o,--out", d_out, "output directory")->required();
  make->footer("Example:\n  msabench data make --task niah_multikey_1 --tokens 64K --samples 20 --out data/mk1-64k");
  std::string i_dir;
  int i_show = 3;
  auto* inspect = data->add_subcommand("inspect", "print statistics and example queries of a dataset directory");
  inspect->add_option("dir", i_dir, "dataset directory")->required();
  inspect->add_option("--show", i_show, "queries to print")->capture_default_str();
  inspect->footer("Example:\n  msabench data inspect data/mk1-64k --show 5");
  auto* list = data->add_subcommand("list", "list the generated tasks");

  // report
  std::vector<std::string> rep_inputs;
  std::string rep_out;
  bool rep_no_plot = false;
  auto* report = app.add_subcommand("report", "Markdown/CSV tables and a PNG plot from result files");
  report->add_option("inputs", rep_inputs, "result files or directories (default: results/latest)");
  report->add_option("-o,--out", rep_out, "where report.md/.csv/.png go (default: the first input directory)");
  report->add_flag("--no-plot", rep_no_plot, "skip report.png");
  report->footer("Examples:\n  msabench report\n  msabench report results/latest results/gpu-run -o results/compare");

  CLI11_PARSE(app, argc, argv);
  try {
    if (run->parsed()) return cmd_run(ra);
    if (retrieve->parsed()) return cmd_retrieve(r_backend, r_corpus, r_queries, r_k, r_out, r_quiet);
    if (make->parsed()) return cmd_data_make(d_task, d_tokens, d_samples, d_seed, d_doc_tokens, d_depths, d_out);
    if (inspect->parsed()) return cmd_data_inspect(i_dir, i_show);
    if (list->parsed()) {
      for (const auto& t : niah_tasks())
        std::printf("%-18s haystack=%-6s keys=%-6s values=%-8s keys/values/queries=%d/%d/%d\n", t.name.c_str(),
                    t.haystack.c_str(), t.key_type.c_str(), t.value_type.c_str(), t.num_keys, t.num_values,
                    t.num_queries);
      return 0;
    }
    if (report->parsed()) {
      if (rep_inputs.empty()) rep_inputs.push_back("results/latest");
      return cmd_report(rep_inputs, rep_out, rep_no_plot);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
