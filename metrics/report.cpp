#include "metrics/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "core/backend.h"
#include "core/error.h"
#include "core/io.h"
#include "core/result.h"
#include "core/text.h"
#include "metrics/published.h"
#include "metrics/stats.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

// Accuracy metrics, in display order; a metric is shown for a dataset only if some result has it.
const std::vector<std::pair<std::string, std::string>> kAccuracy = {
    {"judge_score", "LLM judge score (0-5)"},
    {"recall@1", "retrieval recall@1"},
    {"recall@5", "retrieval recall@5"},
    {"recall@10", "retrieval recall@10"},
    {"mrr@10", "MRR@10"},
    {"router_recall", "MSA router recall (gold in routed top-k)"},
    {"router_recall_any_call", "MSA router recall over all interleave calls"},
    {"pred_ids_f1", "MSA predicted-id F1 (reference set metric)"},
    {"ruler_string_match_all", "RULER string match (all)"},
    {"exact_match", "exact match"},
    {"token_f1", "token F1"}};

// The score a paper-shaped table shows for a cell: the judge if present, else the generated
// answer's metric, else (retrieval-only backends) retrieval recall.
const std::vector<std::string> kAnswerPreference = {"judge_score", "ruler_string_match_all", "token_f1", "exact_match"};

const BootstrapOptions kBoot{};

std::string fixed(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string fmt_rate(const json& v) {
  if (v.is_null()) return "–";
  double x = v.get<double>();
  char buf[64];
  if (x >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", x / 1e6);
  else if (x >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK", x / 1e3);
  else std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

// Full precision but stable text for CSV.
std::string g10(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

std::string tex(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '_': case '%': case '&': case '#': case '$': case '{': case '}': o += '\\'; o += c; break;
      case '~': o += "\\textasciitilde{}"; break;
      case '^': o += "\\textasciicircum{}"; break;
      case '\\': o += "\\textbackslash{}"; break;
      default: o += c;
    }
  }
  return o;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string o;
  for (const auto& x : v) o += (o.empty() ? "" : sep) + x;
  return o;
}

std::string join(const std::set<std::string>& s, const std::string& sep) {
  return join(std::vector<std::string>(s.begin(), s.end()), sep);
}

const std::string& spec_of(const json& r) { return r["backend"]["spec"].get_ref<const std::string&>(); }
// Optional numeric fields of a result. json's get<int64_t>() of a float beyond int64 is undefined
// behaviour (found by fuzz_results), so integers are read only from integers.
int64_t int_or(const json& obj, const char* key, int64_t fallback) {
  if (!obj.is_object() || !obj.contains(key) || !obj.at(key).is_number_integer()) return fallback;
  return obj.at(key).get<int64_t>();
}
double num_or(const json& obj, const char* key, double fallback) {
  if (!obj.is_object() || !obj.contains(key) || !obj.at(key).is_number()) return fallback;
  return obj.at(key).get<double>();
}

int k_of(const json& r) { return static_cast<int>(int_or(r, "k", 10)); }
bool is_msa(const std::string& spec) { return spec.rfind("msa", 0) == 0; }
bool is_niah(const std::string& ds) { return ds.rfind("niah_", 0) == 0; }

// Row name of a backend: its spec, plus k when it is not the default 10 (a RAG backend run at
// several depths gives several rows).
std::string row_name(const json& r) {
  return spec_of(r) + (k_of(r) != 10 ? " k=" + std::to_string(k_of(r)) : std::string());
}

json agg(const json* r, const std::string& m) {
  if (!r || !r->at("aggregates").contains(m)) return nullptr;
  return r->at("aggregates")[m];
}

std::string primary_metric(const json& r) {
  for (const auto& m : kAnswerPreference)
    if (!agg(&r, m).is_null()) return m;
  for (int k : {k_of(r), 10, 5, 1}) {
    const std::string m = "recall@" + std::to_string(k);
    if (!agg(&r, m).is_null()) return m;
  }
  return "";
}

// Per-query values and bootstrap CIs, cached per (result, metric): reports ask repeatedly.
class Stats {
 public:
  const std::vector<double>& values(const json& r, const std::string& m) {
    auto key = std::make_pair(&r, m);
    auto it = values_.find(key);
    if (it != values_.end()) return it->second;
    std::vector<double> v;
    for (const auto& [id, x] : metric_values(r, m)) v.push_back(x);
    return values_[key] = std::move(v);
  }
  std::optional<ConfidenceInterval> ci(const json& r, const std::string& m) {
    auto key = std::make_pair(&r, m);
    auto it = ci_.find(key);
    if (it != ci_.end()) return it->second;
    return ci_[key] = bootstrap_ci(values(r, m), kBoot);
  }

 private:
  std::map<std::pair<const json*, std::string>, std::vector<double>> values_;
  std::map<std::pair<const json*, std::string>, std::optional<ConfidenceInterval>> ci_;
};

// "0.980 [0.940, 1.000]"; the aggregate stored in the result is the value shown.
std::string with_ci(const json& v, const std::optional<ConfidenceInterval>& ci) {
  if (v.is_null()) return "–";
  std::string s = fixed(v.get<double>());
  if (ci) s += " [" + fixed(ci->low) + ", " + fixed(ci->high) + "]";
  return s;
}

struct Facts {
  std::string model, data, sizes, machine, git;
};

Facts facts_of(const std::vector<const json*>& cells) {
  std::set<std::string> specs, datasets, tokenizers, machines, commits, seeds;
  std::set<int64_t> sizes;
  size_t qmin = SIZE_MAX, qmax = 0;
  bool any_generator = false;
  for (const json* r : cells) {
    specs.insert(spec_of(*r));
    any_generator = any_generator || r->at("backend").value("generates_answers", false);
    const json& d = r->at("dataset");
    datasets.insert(d["name"].get<std::string>());
    tokenizers.insert(d.value("tokenizer", std::string("?")));
    sizes.insert(d["memory_tokens"].get<int64_t>());
    const size_t q = d.value("queries", size_t{0});
    qmin = std::min(qmin, q);
    qmax = std::max(qmax, q);
    if (d.contains("meta") && d["meta"].is_object() && d["meta"].contains("seed"))
      seeds.insert(d["meta"]["seed"].dump());
    if (r->contains("machine")) {
      const json& m = r->at("machine");
      machines.insert(m.value("cpu", std::string("?")) + ", " + std::to_string(int_or(m, "logical_cores", 0)) +
                      " logical cores, " + fixed(num_or(m, "memory_bytes", 0) / 1073741824.0, 0) + " GiB, " +
                      m.value("os", std::string("?")));
    }
    if (r->contains("git") && r->at("git").contains("commit") && r->at("git")["commit"].is_string())
      commits.insert(r->at("git")["commit"].get<std::string>().substr(0, 12) +
                     (r->at("git").value("dirty", false) ? "+dirty" : ""));
  }
  Facts f;
  f.model = join(specs, ", ") + (any_generator ? "" : " (retrieval only, no generator)");
  f.data = join(datasets, ", ") + "; " +
           (qmin == qmax ? std::to_string(qmin) : std::to_string(qmin) + "-" + std::to_string(qmax)) +
           " queries per cell" + (seeds.empty() ? "" : "; seed " + join(seeds, "/"));
  std::vector<std::string> sz;
  for (int64_t s : sizes) sz.push_back(format_token_count(s));
  f.sizes = join(sz, ", ") + " (" + join(tokenizers, "/") + " tokens)";
  f.machine = machines.empty() ? "unknown" : join(machines, "; ");
  f.git = commits.empty() ? "unknown" : join(commits, "; ");
  return f;
}

std::string facts_md(const Facts& f) {
  return "*model: " + f.model + " · data: " + f.data + " · sizes: " + f.sizes + " · machine: " + f.machine +
         " · git: " + f.git + "*\n\n";
}

std::string facts_line(const Facts& f) {
  return "model: " + f.model + " | data: " + f.data + " | sizes: " + f.sizes + " | machine: " + f.machine +
         " | git: " + f.git;
}

// ------------------------------------------------------------------------------ the model
// All tables are built once into plain structures, then rendered as Markdown, CSV and LaTeX.

struct CellValue {
  json value = nullptr;  // number or null
  std::optional<ConfidenceInterval> ci;
  std::string metric;
};

struct Table2 {
  struct Column {
    std::string backend;  // spec
    std::string depth;    // "R@1", "R@5", "R@10" or "adaptive"
    int k = 0;            // 1/5/10, 0 for adaptive
  };
  struct Row {
    std::string dataset;
    int64_t tokens = 0;
    std::vector<CellValue> cells;  // one per column
    std::set<std::string> metrics;
    const PublishedTable2Row* published = nullptr;
  };
  std::vector<Column> columns;
  std::vector<Row> rows;
  std::vector<const json*> sources;
};

struct Curves {  // Figure 4 / Figure 1 shapes: rows = curves, columns = memory sizes
  struct Row {
    std::string source;  // "measured" or "published"
    std::string dataset, label, metric;
    std::map<int64_t, CellValue> points;
    std::set<int64_t> approximate;
  };
  std::vector<Row> rows;
  std::set<int64_t> sizes;
  std::vector<const json*> sources;
  std::vector<std::string> tasks;  // Figure 4: NIAH tasks averaged
};

class Model {
 public:
  explicit Model(const std::vector<json>& results) : results_(results) {
    for (const auto& r : results) {
      const std::string ds = r["dataset"]["name"].get<std::string>();
      const int64_t size = r["dataset"]["memory_tokens"].get<int64_t>();
      grid_[ds][row_name(r)][size] = &r;
      sizes_[ds].insert(size);
      all_.push_back(&r);
    }
    build_table2();
    build_figure4();
    build_figure1();
  }

  const std::vector<json>& results_;
  // dataset -> row name -> size -> result (a repeated cell: the last file in sorted order wins)
  std::map<std::string, std::map<std::string, std::map<int64_t, const json*>>> grid_;
  std::map<std::string, std::set<int64_t>> sizes_;
  std::vector<const json*> all_;
  Stats stats;
  Table2 t2;
  Curves f4, f1;

 private:
  CellValue score(const json& r, const std::string& metric) {
    CellValue c;
    c.metric = metric;
    c.value = agg(&r, metric);
    if (!c.value.is_null()) c.ci = stats.ci(r, metric);
    return c;
  }

  void build_table2() {
    std::set<std::string> backends;
    for (const json* r : all_) backends.insert(spec_of(*r));
    for (const auto& b : backends) {
      if (is_msa(b)) {
        t2.columns.push_back({b, "adaptive", 0});
      } else {
        for (int k : {1, 5, 10}) t2.columns.push_back({b, "R@" + std::to_string(k), k});
      }
    }
    // (dataset, size) -> spec -> results at that cell (one per k)
    std::map<std::pair<std::string, int64_t>, std::map<std::string, std::vector<const json*>>> by;
    for (const json* r : all_)
      by[{r->at("dataset")["name"].get<std::string>(), r->at("dataset")["memory_tokens"].get<int64_t>()}][spec_of(*r)]
          .push_back(r);
    for (const auto& [key, specs] : by) {
      Table2::Row row;
      row.dataset = key.first;
      row.tokens = key.second;
      row.published = published_table2_row(key.first);
      for (const auto& col : t2.columns) {
        CellValue c;
        auto it = specs.find(col.backend);
        if (it != specs.end()) {
          for (const json* r : it->second) {
            const bool generates = r->at("backend").value("generates_answers", false);
            if (col.k == 0) {
              c = score(*r, primary_metric(*r));
            } else if (generates && k_of(*r) == col.k) {
              // R@k of a generating RAG backend: k documents were given to the generator
              std::string m = primary_metric(*r);
              if (m.rfind("recall@", 0) != 0) c = score(*r, m);
            } else if (!generates && k_of(*r) >= col.k) {
              // retrieval-only: R@k is retrieval recall within the top k
              c = score(*r, "recall@" + std::to_string(col.k));
            }
            if (!c.value.is_null()) {
              t2.sources.push_back(r);
              break;
            }
          }
        }
        if (!c.value.is_null()) row.metrics.insert(c.metric.rfind("recall@", 0) == 0 ? "recall@k" : c.metric);
        row.cells.push_back(c);
      }
      t2.rows.push_back(std::move(row));
    }
  }

  void build_figure4() {
    std::set<std::string> tasks;
    // row name -> size -> task -> result
    std::map<std::string, std::map<int64_t, std::map<std::string, const json*>>> m;
    for (const auto& [ds, rows] : grid_) {
      if (!is_niah(ds)) continue;
      tasks.insert(ds);
      for (const auto& [b, cells] : rows)
        for (const auto& [s, r] : cells) m[b][s][ds] = r;
    }
    if (tasks.empty()) return;
    f4.tasks.assign(tasks.begin(), tasks.end());
    for (const auto& [b, by_size] : m) {
      Curves::Row row;
      row.source = "measured";
      row.dataset = "niah (mean over tasks)";
      row.label = b;
      std::set<std::string> metrics;
      for (const auto& [s, by_task] : by_size) {
        std::vector<std::vector<double>> groups;
        double sum = 0;
        int n = 0;
        for (const auto& [task, r] : by_task) {
          const std::string metric = primary_metric(*r);
          if (metric.empty()) continue;
          metrics.insert(metric);
          groups.push_back(stats.values(*r, metric));
          sum += agg(r, metric).get<double>();
          ++n;
          f4.sources.push_back(r);
        }
        if (n == 0) continue;
        CellValue c;
        c.value = sum / n;
        c.ci = bootstrap_ci_groups(groups, kBoot);
        row.points[s] = c;
        f4.sizes.insert(s);
      }
      row.metric = join(metrics, "/");
      for (auto& [s, c] : row.points) c.metric = row.metric;
      f4.rows.push_back(std::move(row));
    }
    for (const auto& curve : published_figure4()) {
      Curves::Row row;
      row.source = "published";
      row.dataset = "RULER NIAH (mean of 8 tasks)";
      row.label = curve.model;
      row.metric = "niah_accuracy";
      for (const auto& p : curve.points) {
        CellValue c;
        c.value = p.value;
        c.metric = row.metric;
        row.points[p.tokens] = c;
        f4.sizes.insert(p.tokens);
      }
      f4.rows.push_back(std::move(row));
    }
  }

  void build_figure1() {
    for (const auto& [ds, rows] : grid_)
      for (const auto& [b, cells] : rows) {
        Curves::Row row;
        row.source = "measured";
        row.dataset = ds;
        row.label = b;
        std::set<std::string> metrics;
        for (const auto& [s, r] : cells) {
          const std::string metric = primary_metric(*r);
          if (metric.empty()) continue;
          metrics.insert(metric);
          row.points[s] = score(*r, metric);
          f1.sizes.insert(s);
          f1.sources.push_back(r);
        }
        row.metric = join(metrics, "/");
        if (!row.points.empty()) f1.rows.push_back(std::move(row));
      }
    for (const auto& curve : published_figure1()) {
      Curves::Row row;
      row.source = "published";
      row.dataset = "MS MARCO";
      row.label = curve.model;
      row.metric = "judge_score";
      for (const auto& p : curve.points) {
        CellValue c;
        c.value = p.value;
        c.metric = row.metric;
        row.points[p.tokens] = c;
        if (p.approximate) row.approximate.insert(p.tokens);
        f1.sizes.insert(p.tokens);
      }
      f1.rows.push_back(std::move(row));
    }
  }
};

std::string published_value(const Curves::Row& row, int64_t s) {
  auto it = row.points.find(s);
  if (it == row.points.end()) return "–";
  return (row.approximate.count(s) ? "≈" : "") + fixed(it->second.value.get<double>(), 2);
}

std::string curve_cell(const Curves::Row& row, int64_t s) {
  if (row.source == "published") return published_value(row, s);
  auto it = row.points.find(s);
  return it == row.points.end() ? "–" : with_ci(it->second.value, it->second.ci);
}

std::string t2_published_rag(const PublishedTable2Row& p) {
  return fixed(p.q4b[0]) + " / " + fixed(p.q4b[1]) + " / " + fixed(p.q4b[2]);
}

std::string metric_list(const std::set<std::string>& m) {
  std::vector<std::string> v;
  for (const auto& x : m) v.push_back(x == "recall@k" ? "recall@k (retrieval only)" : x);
  return join(v, ", ");
}

const char* kStatsNote =
    "95% CIs in brackets: percentile bootstrap over queries (2000 resamples, fixed seed), "
    "stratified by task where tasks are averaged.";

// ------------------------------------------------------------------------------- markdown

void md_table2(std::ostringstream& md, Model& m) {
  md << "## Table 2 shape: backends x datasets\n\n" << facts_md(facts_of(m.t2.sources.empty() ? m.all_ : m.t2.sources));
  md << "R@k for a RAG backend that generates answers: its score with k retrieved documents given to the "
        "generator (the paper's meaning); for a retrieval-only backend: retrieval recall@k. MSA backends: "
        "adaptive. Published columns: paper Table 2 (LLM judge 0-5, Qwen3-4B backbone), shown only for the "
        "paper's datasets; they are not the same metric as recall.\n\n";
  md << "| dataset | memory | metric |";
  for (const auto& c : m.t2.columns) md << " `" << c.backend << "` " << c.depth << " |";
  md << " published MSA | published Qwen3-4B RAG R@1 / R@5 / R@10 |\n|---|---:|---|";
  for (size_t i = 0; i < m.t2.columns.size(); ++i) md << "---:|";
  md << "---:|---:|\n";
  for (const auto& row : m.t2.rows) {
    md << "| " << row.dataset << " | " << format_token_count(row.tokens) << " | " << metric_list(row.metrics) << " |";
    for (const auto& c : row.cells) md << " " << with_ci(c.value, c.ci) << " |";
    if (row.published)
      md << " " << fixed(row.published->msa) << " | " << t2_published_rag(*row.published) << " |\n";
    else
      md << " not in paper | not in paper |\n";
  }
  md << "\n";
}

void md_curves(std::ostringstream& md, const Curves& c, const std::string& first_col) {
  md << "| " << first_col << " | source | metric |";
  for (int64_t s : c.sizes) md << " " << format_token_count(s) << " |";
  md << "\n|---|---|---|";
  for (size_t i = 0; i < c.sizes.size(); ++i) md << "---:|";
  md << "\n";
  for (const auto& row : c.rows) {
    const std::string label = row.source == "published" ? row.label : "`" + row.label + "`";
    md << "| " << (first_col == "dataset / model" ? row.dataset + " / " : std::string()) << label << " | "
       << row.source << " | " << row.metric << " |";
    for (int64_t s : c.sizes) md << " " << curve_cell(row, s) << " |";
    md << "\n";
  }
  md << "\n";
}

}  // namespace

std::vector<std::pair<std::string, json>> load_result_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    if (fs::is_directory(in)) {
      for (const auto& e : fs::recursive_directory_iterator(in))
        if (e.is_regular_file() && e.path().extension() == ".json" && e.path().filename() != "suite.json")
          files.push_back(e.path().string());
    } else if (fs::exists(in)) {
      files.push_back(in);
    } else {
      throw Error(in + ": no such result file or directory");
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::pair<std::string, json>> out;
  for (const auto& f : files) {
    json j;
    try {
      j = json::parse(read_file(f));
    } catch (const json::exception& e) {
      throw Error(f + ": invalid JSON (" + e.what() + ")");
    }
    if (j.is_object() && j.contains("schema") && j["schema"].is_string() &&
        j["schema"].get<std::string>().rfind("msabench.result/", 0) != 0)
      continue;  // some other JSON (e.g. a dataset meta.json) inside a searched directory
    validate_result(j, f);
    out.emplace_back(f, std::move(j));
  }
  if (out.empty()) throw Error("no result files found in the given paths");
  return out;
}

std::vector<json> load_results(const std::vector<std::string>& inputs) {
  std::vector<json> out;
  for (auto& [f, j] : load_result_files(inputs)) out.push_back(std::move(j));
  return out;
}

std::string report_caption(const std::vector<json>& results) {
  std::vector<const json*> all;
  for (const auto& r : results) all.push_back(&r);
  return facts_line(facts_of(all));
}

// Models a result ran that are partially trained checkpoints (backend.info, any depth), so a
// report never presents a training checkpoint's accuracy as the method's.
std::set<std::string> partially_trained(const std::vector<json>& results) {
  std::set<std::string> out;
  std::function<void(const json&)> walk = [&](const json& j) {
    if (!j.is_object()) return;
    if (j.value("training", "") == "partial")
      out.insert(j.value("model", "?") + " (" + std::to_string(int_or(j, "trained_steps", 0)) + " of " +
                 std::to_string(int_or(j, "planned_steps", 0)) + " planned training steps)");
    for (const auto& [k, v] : j.items()) walk(v);
  };
  for (const auto& r : results)
    if (r.contains("backend") && r["backend"].contains("info")) walk(r["backend"]["info"]);
  return out;
}

// msa backends run with naming=router: the router, not the model, names each retrieved document,
// so their answers measure routing and reading, not the paper's protocol.
std::set<std::string> router_named_backends(const std::vector<json>& results) {
  std::set<std::string> out;
  for (const auto& r : results) {
    if (!r.contains("backend") || !r["backend"].is_object()) continue;
    const std::string spec = r["backend"].value("spec", "");
    try {
      const BackendSpec parsed = BackendSpec::parse(spec);
      auto it = parsed.options.find("naming");
      if (parsed.name == "msa" && it != parsed.options.end() && it->second == "router") out.insert("`" + spec + "`");
    } catch (const Error&) {
      // a malformed spec names no backend option; the rest of the report still renders
    }
  }
  return out;
}

std::string report_markdown(const std::vector<json>& results) {
  Model m(results);
  std::ostringstream md;
  md << "# MSA-Bench report\n\n";
  const Facts f = facts_of(m.all_);
  md << "- results: " << results.size() << " cells\n- model: " << f.model << "\n- data: " << f.data
     << "\n- sizes: " << f.sizes << "\n- machine: " << f.machine << "\n- git: " << f.git << "\n- statistics: "
     << kStatsNote << "\n";
  const auto partial = partially_trained(results);
  if (!partial.empty())
    md << "- partially trained: " << join(partial, ", ")
       << ": its numbers are a training checkpoint's, not the method's\n";
  const auto router_named = router_named_backends(results);
  if (!router_named.empty())
    md << "- diagnostic, not the paper's protocol: " << join(router_named, ", ")
       << " (naming=router: the router's pick is named for the model; the model only decides whether to retrieve)\n";
  md << "\n";

  md_table2(md, m);

  if (!m.f4.tasks.empty()) {
    md << "## Figure 4 shape: NIAH accuracy vs memory length\n\n" << facts_md(facts_of(m.f4.sources));
    md << "measured: mean over the NIAH tasks present (" << join(m.f4.tasks, ", ")
       << "); published: paper Figure 4, mean over RULER's 8 NIAH tasks with generated answers.\n\n";
    md_curves(md, m.f4, "model");
  }

  md << "## Figure 1 shape: score vs memory size\n\n" << facts_md(facts_of(m.f1.sources));
  md << "measured: each dataset's score (LLM judge if present, else the answer metric, else retrieval "
        "recall@k); published: paper Figure 1, MS MARCO QA, LLM judge 0-5 (read off the plot, +-0.01; "
        "≈ = hidden under another marker).\n\n";
  md_curves(md, m.f1, "dataset / model");

  for (const auto& [ds, rows] : m.grid_) {
    const auto& cols = m.sizes_[ds];
    std::vector<const json*> cells;
    for (const auto& [b, cs] : rows)
      for (const auto& [s, r] : cs) cells.push_back(r);
    auto header = [&](const std::string& first) {
      md << "| " << first << " |";
      for (int64_t s : cols) md << " " << format_token_count(s) << " |";
      md << "\n|---|";
      for (size_t i = 0; i < cols.size(); ++i) md << "---:|";
      md << "\n";
    };
    md << "## " << ds << "\n\n" << facts_md(facts_of(cells));
    for (const auto& [metric, title] : kAccuracy) {
      bool present = false;
      for (const json* r : cells) present = present || !agg(r, metric).is_null();
      if (!present) continue;
      md << "**" << title << "**\n\n";
      header("backend");
      for (const auto& [b, cs] : rows) {
        md << "| `" << b << "` |";
        for (int64_t s : cols) {
          auto it = cs.find(s);
          const json* r = it == cs.end() ? nullptr : it->second;
          md << " " << (r ? with_ci(agg(r, metric), m.stats.ci(*r, metric)) : std::string("–")) << " |";
        }
        md << "\n";
      }
      md << "\n";
    }

    // Paired bootstrap of every other backend against the first, on the queries both answered.
    std::vector<std::string> lines;
    for (int64_t s : cols) {
      const json* first = nullptr;
      std::string first_name;
      for (const auto& [b, cs] : rows) {
        auto it = cs.find(s);
        if (it == cs.end()) continue;
        if (!first) {
          first = it->second;
          first_name = b;
          continue;
        }
        const std::string metric = primary_metric(*first);
        if (metric.empty()) continue;
        auto pc = paired_bootstrap_results(*first, *it->second, metric, kBoot);
        if (!pc) continue;
        lines.push_back("| " + format_token_count(s) + " | " + metric + " | `" + first_name + "` | `" + b + "` | " +
                        fixed(pc->mean_a) + " | " + fixed(pc->mean_b) + " | " + (pc->diff >= 0 ? "+" : "") +
                        fixed(pc->diff) + " [" + fixed(pc->diff_low) + ", " + fixed(pc->diff_high) + "] | " +
                        fixed(pc->p_value, 4) + " | " + std::to_string(pc->n) + " |");
      }
    }
    if (!lines.empty()) {
      md << "**paired bootstrap** (B - A on the same queries; two-sided p)\n\n"
         << "| memory | metric | A | B | mean A | mean B | B - A [95% CI] | p | n |\n"
         << "|---:|---|---|---|---:|---:|---:|---:|---:|\n";
      for (const auto& l : lines) md << l << "\n";
      md << "\n";
    }

    md << "**throughput and memory** (index tokens/s · queries/s · peak RSS MiB · queries)\n\n";
    header("backend");
    for (const auto& [b, cs] : rows) {
      md << "| `" << b << "` |";
      for (int64_t s : cols) {
        auto it = cs.find(s);
        if (it == cs.end()) {
          md << " – |";
          continue;
        }
        const json& r = *it->second;
        // optional fields: const operator[] on a missing key is undefined behaviour (found by fuzz_results)
        const json& t = r.at("timings");
        const json mem = r.contains("memory") ? r.at("memory") : json();
        md << " " << fmt_rate(t.value("index_tokens_per_s", json())) << " · " << fmt_rate(t.value("queries_per_s", json()))
           << " · " << fixed(num_or(mem, "peak_rss_bytes", 0) / 1048576.0, 0) << " · "
           << int_or(r.at("dataset"), "queries", 0) << " |";
      }
      md << "\n";
    }
    md << "\n";
  }
  return md.str();
}

std::string report_csv(const std::vector<json>& results) {
  Model m(results);
  std::ostringstream csv;
  csv << "source,figure,dataset,backend,metric,memory_tokens,k,value,ci_low,ci_high,n\n";
  auto row = [&](const std::string& source, const std::string& figure, const std::string& ds, const std::string& b,
                 const std::string& metric, int64_t tokens, const std::string& k, double v,
                 const std::optional<ConfidenceInterval>& ci) {
    csv << source << "," << figure << "," << csv_field(ds) << "," << csv_field(b) << "," << csv_field(metric) << ","
        << tokens << "," << k << "," << g10(v) << "," << (ci ? g10(ci->low) : "") << "," << (ci ? g10(ci->high) : "")
        << "," << (ci ? std::to_string(ci->n) : "") << "\n";
  };
  // per cell: every aggregate with its CI, timings and memory
  for (const auto& [ds, rows] : m.grid_)
    for (const auto& [b, cells] : rows)
      for (const auto& [s, r] : cells) {
        const std::string k = std::to_string(k_of(*r));
        for (const auto& [metric, title] : kAccuracy) {
          json v = agg(r, metric);
          if (!v.is_null()) row("measured", "cell", ds, spec_of(*r), metric, s, k, v.get<double>(), m.stats.ci(*r, metric));
        }
        for (const char* t : {"index_tokens_per_s", "queries_per_s", "mean_query_ms"})
          if (r->at("timings").contains(t) && r->at("timings")[t].is_number())
            row("measured", "cell", ds, spec_of(*r), t, s, k, r->at("timings")[t].get<double>(), std::nullopt);
        row("measured", "cell", ds, spec_of(*r), "peak_rss_bytes", s, k,
            num_or(r->contains("memory") ? r->at("memory") : json(), "peak_rss_bytes", 0), std::nullopt);
      }
  for (const auto& r2 : m.t2.rows)
    for (size_t i = 0; i < r2.cells.size(); ++i) {
      const auto& c = r2.cells[i];
      if (c.value.is_null()) continue;
      const auto& col = m.t2.columns[i];
      row("measured", "table2", r2.dataset, col.backend, c.metric, r2.tokens, col.k ? std::to_string(col.k) : "adaptive",
          c.value.get<double>(), c.ci);
    }
  for (const auto& p : published_table2()) {
    // the paper prints decimal token counts ("7.34M", "277K")
    const double mult = p.tokens.back() == 'M' ? 1e6 : p.tokens.back() == 'K' ? 1e3 : 1;
    const int64_t tokens = static_cast<int64_t>(std::llround(std::stod(p.tokens) * mult));
    const std::pair<const char*, const double*> systems[] = {
        {"Qwen3-4B RAG", p.q4b}, {"Qwen3-4B RAG + rerank", p.q4b_rr}, {"HippoRAG2", p.hipporag2}};
    for (const auto& [name, v] : systems)
      for (int i = 0; i < 3; ++i)
        row("published", "table2", p.dataset, name, "judge_score", tokens, std::to_string(i == 0 ? 1 : i == 1 ? 5 : 10),
            v[i], std::nullopt);
    row("published", "table2", p.dataset, "MSA", "judge_score", tokens, "adaptive", p.msa, std::nullopt);
  }
  for (const auto* c : {&m.f4, &m.f1}) {
    const std::string figure = c == &m.f4 ? "fig4" : "fig1";
    for (const auto& r : c->rows)
      for (const auto& [s, v] : r.points)
        row(r.source, figure, r.dataset, r.label, r.metric, s, "", v.value.get<double>(), v.ci);
  }
  return csv.str();
}

std::string report_latex(const std::vector<json>& results) {
  Model m(results);
  std::ostringstream t;
  auto caption = [&](const std::string& title, const std::vector<const json*>& src) {
    const Facts f = facts_of(src.empty() ? m.all_ : src);
    t << "\\caption{" << tex(title) << " Model: " << tex(f.model) << ". Data: " << tex(f.data)
      << ". Sizes: " << tex(f.sizes) << ". Machine: " << tex(f.machine) << ". Git: " << tex(f.git) << ".}\n";
  };
  auto cell = [](const CellValue& c) {
    if (c.value.is_null()) return std::string("--");
    std::string s = fixed(c.value.get<double>());
    if (c.ci) s += " {\\scriptsize[" + fixed(c.ci->low) + ", " + fixed(c.ci->high) + "]}";
    return s;
  };
  t << "% MSA-Bench report tables (needs \\usepackage{booktabs}). " << kStatsNote << "\n";

  t << "\\begin{table}[t]\n\\centering\\small\n";
  caption("Table 2 shape: backends x datasets; R@k = k retrieved documents (retrieval recall@k for "
          "retrieval-only backends), adaptive for MSA; published = paper Table 2 (LLM judge 0-5).",
          m.t2.sources);
  t << "\\begin{tabular}{ll";
  for (size_t i = 0; i < m.t2.columns.size(); ++i) t << "r";
  t << "rr}\n\\toprule\n & ";
  for (const auto& c : m.t2.columns) t << " & \\texttt{" << tex(c.backend) << "}";
  t << " & \\multicolumn{2}{c}{published} \\\\\ndataset & memory";
  for (const auto& c : m.t2.columns) t << " & " << tex(c.depth);
  t << " & MSA & Q4B R@1/5/10 \\\\\n\\midrule\n";
  for (const auto& row : m.t2.rows) {
    t << tex(row.dataset) << " & " << format_token_count(row.tokens);
    for (const auto& c : row.cells) t << " & " << cell(c);
    if (row.published) t << " & " << fixed(row.published->msa) << " & " << t2_published_rag(*row.published);
    else t << " & -- & --";
    t << " \\\\\n";
  }
  t << "\\bottomrule\n\\end{tabular}\n\\end{table}\n\n";

  auto curves = [&](const Curves& c, const std::string& title) {
    t << "\\begin{table}[t]\n\\centering\\small\n";
    caption(title, c.sources);
    t << "\\begin{tabular}{lll";
    for (size_t i = 0; i < c.sizes.size(); ++i) t << "r";
    t << "}\n\\toprule\nmodel & source & metric";
    for (int64_t s : c.sizes) t << " & " << format_token_count(s);
    t << " \\\\\n\\midrule\n";
    for (const auto& row : c.rows) {
      t << (row.source == "published" ? tex(row.label) : "\\texttt{" + tex(row.dataset + " " + row.label) + "}")
        << " & " << row.source << " & " << tex(row.metric);
      for (int64_t s : c.sizes) {
        if (row.source == "published") {
          std::string v = published_value(row, s);
          if (v.rfind("≈", 0) == 0) v = "$\\approx$" + v.substr(std::string("≈").size());
          t << " & " << (v == "–" ? "--" : v);
        } else {
          auto it = row.points.find(s);
          t << " & " << (it == row.points.end() ? std::string("--") : cell(it->second));
        }
      }
      t << " \\\\\n";
    }
    t << "\\bottomrule\n\\end{tabular}\n\\end{table}\n\n";
  };
  if (!m.f4.tasks.empty())
    curves(m.f4, "Figure 4 shape: NIAH accuracy vs memory length (measured: mean over " + join(m.f4.tasks, ", ") +
                     "; published: paper Figure 4, mean of 8 RULER NIAH tasks).");
  curves(m.f1, "Figure 1 shape: score vs memory size (published: paper Figure 1, MS MARCO, LLM judge 0-5).");
  return t.str();
}

ReportFiles write_report(const std::vector<json>& results, const std::string& out_dir, bool plot) {
  ReportFiles f;
  f.markdown = (fs::path(out_dir) / "report.md").string();
  f.csv = (fs::path(out_dir) / "report.csv").string();
  f.latex = (fs::path(out_dir) / "report.tex").string();
  write_file_atomic(f.markdown, report_markdown(results));
  write_file_atomic(f.csv, report_csv(results));
  write_file_atomic(f.latex, report_latex(results));
  if (plot) {
    const std::string script = std::string(MSABENCH_SOURCE_DIR) + "/scripts/plot_results.py";
    const std::string png = (fs::path(out_dir) / "report.png").string();
    const std::string tmp = png + ".tmp.png";
    const std::string caption_file = png + ".caption.tmp";
    write_file_atomic(caption_file, report_caption(results));
    // Debian's interpreter has python3-matplotlib; a user's pyenv/venv python3 may not.
    const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    std::string cmd = python + " '" + script + "' '" + f.csv + "' '" + tmp + "' --caption-file '" + caption_file +
                      "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    if (p) {
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
    }
    int rc = p ? ::pclose(p) : -1;
    std::error_code ec;
    fs::remove(caption_file, ec);
    if (rc == 0 && fs::exists(tmp)) {
      fs::rename(tmp, png);
      f.png = png;
    } else {
      fs::remove(tmp, ec);
      std::fprintf(stderr, "warning: plot not written (%s): %s\n", script.c_str(), out.c_str());
    }
  }
  return f;
}

}  // namespace msabench
