// Scale run (issue #5): routing keys of a 100M-token memory for a small MSA config (synthetic keys
// in the bank's scan layout), per-query routing latency through the code path the msa backend uses
// with key_dtype (index_document_scores + MsaModel::top_k_documents), a streaming-read bandwidth
// probe in the same process, and the bank's bytes per memory token by tier.
//   build/tests/benchmarks/scale_run --out results/scale/scale_run.json      (scripts/scale_run.sh)
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>

#include "backends/msa/bank_store.h"
#include "core/error.h"
#include "core/io.h"
#include "core/model/routing_kernel.h"
#include "core/text.h"

using namespace msabench;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Deterministic synthetic keys: uniform in [-1, 1) per element (xorshift64*), per-head L2
// normalised when the model routes by cosine (as the index stores them then).
struct KeyStream {
  uint64_t s;
  explicit KeyStream(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<float>((s * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0f - 1.0f;
  }
};

std::shared_ptr<RouterKeyIndex> synthetic_index(int64_t chunks, int64_t Hk, int64_t D, bool normalize, KeyDtype dt,
                                                uint64_t seed) {
  auto ix = std::make_shared<RouterKeyIndex>(Hk * D, dt, chunks);
  KeyStream ks(seed);
  const int64_t step = 1 << 16;
  std::vector<float> rows(static_cast<size_t>(step * Hk * D));
  for (int64_t c0 = 0; c0 < chunks; c0 += step) {
    const int64_t n = std::min(step, chunks - c0);
    for (int64_t i = 0; i < n * Hk; ++i) {
      float* r = rows.data() + i * D;
      double nn = 0;
      for (int64_t j = 0; j < D; ++j) {
        r[j] = ks.next();
        nn += static_cast<double>(r[j]) * r[j];
      }
      if (normalize)
        for (int64_t j = 0; j < D; ++j) r[j] = static_cast<float>(r[j] / std::sqrt(std::max(nn, 1e-24)));
    }
    ix->append(rows.data(), n);
  }
  return ix;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

int64_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"MSA routing scale run: 100M-token routing keys, latency vs a bandwidth probe, bytes per token"};
  std::string config = std::string(MSABENCH_SOURCE_DIR) + "/backends/msa/msa-small/model/config.json", out;
  std::string tokens_s = "100M", dtypes_s = "fp32,bf16,int8";
  std::vector<int> query_tokens = {1, 16, 64}, thread_counts = {1, 2};
  int64_t doc_tokens = 512, probe_mib = 1024, check_chunks = 1 << 18;
  int reps = 5, layers = 0, recall_queries = 8;
  bool torch_baseline = true;
  app.add_option("--config", config, "model config.json (geometry, pooling, router layers, routing similarity)");
  app.add_option("--tokens", tokens_s, "memory tokens (binary suffixes, as the paper's 100M: 100M = 104,857,600)");
  app.add_option("--doc-tokens", doc_tokens, "tokens per synthetic document");
  app.add_option("--dtypes", dtypes_s, "routing key storage to measure");
  app.add_option("--query-tokens", query_tokens, "routing tokens per query (query-token max is over these)")->delimiter(',');
  app.add_option("--threads", thread_counts, "scan threads")->delimiter(',');
  app.add_option("--reps", reps, "timed queries per setting (after one warm-up)");
  app.add_option("--layers", layers, "router layers to route (0 = all of the config)");
  app.add_option("--probe-mib", probe_mib, "bandwidth probe buffer (MiB)");
  app.add_option("--check-chunks", check_chunks, "chunks of the equality check against document_scores");
  app.add_option("--recall-queries", recall_queries, "queries for the top-16 overlap of bf16/int8 vs fp32");
  app.add_option("--out", out, "JSON result file");
  app.add_option("--torch-baseline", torch_baseline, "also time MsaModel::document_scores on one full layer (1 query)");
  CLI11_PARSE(app, argc, argv);
  try {
    const ModelConfig cfg = ModelConfig::load(config);
    MsaOptions opt = MsaOptions::from_config(cfg);
    // The shipped model says how it routes (msabench_inference.json next to config.json).
    const std::string hints = config.substr(0, config.find_last_of('/') + 1) + "msabench_inference.json";
    if (std::filesystem::exists(hints) && json::parse(read_file(hints)).value("routing", "") == "cosine")
      opt.similarity = RoutingSimilarity::Cosine;
    const bool cosine = opt.similarity == RoutingSimilarity::Cosine;
    const int64_t tokens = parse_token_count(tokens_s);
    const int64_t H = cfg.num_attention_heads, Hk = cfg.num_key_value_heads, D = cfg.head_dim;
    const int64_t P = opt.pooling_kernel_size;
    const int64_t S = layers > 0 ? layers : static_cast<int64_t>(cfg.msa->router_layers.size());
    std::vector<int64_t> doc_tok;
    for (int64_t left = tokens; left > 0; left -= doc_tokens) doc_tok.push_back(std::min(doc_tokens, left));
    std::vector<int64_t> doc_end;
    int64_t chunks = 0;
    for (auto n : doc_tok) doc_end.push_back(chunks += (n + P - 1) / P);
    std::vector<KeyDtype> dtypes;
    for (const auto& d : split_commas(dtypes_s)) dtypes.push_back(parse_key_dtype(d));
    std::printf("scale_run: %lld tokens, %zu documents, %lld chunks (P=%lld), %lld router layers, keys %lld x %lld, %s routing\n",
                static_cast<long long>(tokens), doc_tok.size(), static_cast<long long>(chunks), static_cast<long long>(P),
                static_cast<long long>(S), static_cast<long long>(Hk), static_cast<long long>(D), cosine ? "cosine" : "engine");

    json res;
    utsname un{};
    uname(&un);
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    res["machine"] = {{"cpu", cpu_model()}, {"logical_cores", sysconf(_SC_NPROCESSORS_ONLN)},
                      {"ram_bytes", static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE)},
                      {"kernel", std::string(un.sysname) + " " + un.release}, {"loadavg_1min_at_start", load[0]}};
    res["config"] = {{"file", config}, {"heads", H}, {"kv_heads", Hk}, {"head_dim", D}, {"pooling", P},
                     {"router_layers_routed", S}, {"router_layers_in_config", cfg.msa->router_layers.size()},
                     {"similarity", cosine ? "cosine" : "scaled_dot"}, {"tokens", tokens}, {"doc_tokens", doc_tokens},
                     {"documents", doc_tok.size()}, {"chunks", chunks}, {"top_k", opt.doc_top_k}};

    // Bandwidth probe: streaming read sum of a buffer larger than the caches, per thread count.
    auto probe = [&](const char* when) {
      json p;
      for (int t : thread_counts) {
        const double bw = memory_read_bandwidth(probe_mib << 20, t, 5);
        p[std::to_string(t)] = bw;
        std::printf("probe (%s) %d thread(s): %.2f GB/s\n", when, t, bw / 1e9);
      }
      return p;
    };
    res["probe_bytes_per_s_before"] = probe("before");

    // Equality of the scan with the torch routing path on a slice of the bank (fp32 keys).
    {
      const int64_t cc = std::min(check_chunks, chunks);
      torch::manual_seed(3);
      auto rk = torch::rand({Hk, cc, D}) * 2 - 1;
      std::vector<int64_t> chunk_doc, ends;
      for (int64_t c = 0; c < cc; ++c) chunk_doc.push_back(c / (doc_tokens / P));
      for (int64_t d = 0; d <= chunk_doc.back(); ++d) ends.push_back(std::min(cc, (d + 1) * (doc_tokens / P)));
      MsaModel ref(Qwen3Model::random_init(cfg, 1), opt);
      auto q = torch::randn({1, H, 16, D});
      auto mask = torch::ones({1, 16}, torch::kBool);
      auto want = ref.document_scores(q, mask, rk, torch::tensor(chunk_doc), static_cast<int64_t>(ends.size()));
      auto ix = RouterKeyIndex::from_tensor(rk, cosine, KeyDtype::F32);
      auto got = index_document_scores(opt, q, mask, ix, ends, thread_counts.back());
      std::vector<std::vector<int64_t>> a, b;
      std::vector<std::vector<double>> sa, sb;
      MsaModel::top_k_documents(want, opt.doc_top_k, a, sa);
      MsaModel::top_k_documents(got, opt.doc_top_k, b, sb);
      const double diff = (got - want).abs().max().item<double>();
      res["check_against_document_scores"] = {{"chunks", cc}, {"query_tokens", 16}, {"max_abs_score_diff", diff},
                                              {"top_k_equal", a == b}};
      std::printf("check vs document_scores on %lld chunks: max |diff| %.3g, top-%d equal: %s\n",
                  static_cast<long long>(cc), diff, opt.doc_top_k, a == b ? "yes" : "NO");
      if (a != b) throw Error("the scan's top-k differs from document_scores");
    }

    // The torch routing path (MsaModel::document_scores, the backend without key_dtype) on one
    // router layer of the full bank, for comparison.
    if (torch_baseline) {
      torch::manual_seed(4);
      auto rk = torch::rand({Hk, chunks, D}) * 2 - 1;
      std::vector<int64_t> chunk_doc(static_cast<size_t>(chunks));
      for (size_t d = 0, c = 0; d < doc_end.size(); ++d)
        for (; c < static_cast<size_t>(doc_end[d]); ++c) chunk_doc[c] = static_cast<int64_t>(d);
      auto cd = torch::tensor(chunk_doc);
      MsaModel ref(Qwen3Model::random_init(cfg, 1), opt);
      auto q = torch::randn({1, H, 16, D});
      auto mask = torch::ones({1, 16}, torch::kBool);
      json tb = json::array();
      for (int threads : thread_counts) {
        set_compute_threads(threads);
        auto t0 = Clock::now();
        auto ds = ref.document_scores(q, mask, rk, cd, static_cast<int64_t>(doc_end.size()));
        std::vector<std::vector<int64_t>> ids;
        std::vector<std::vector<double>> scv;
        MsaModel::top_k_documents(ds, opt.doc_top_k, ids, scv);
        const double t = secs(t0);
        tb.push_back({{"threads", threads}, {"query_tokens", 16}, {"router_layers", 1}, {"ms_per_layer", 1e3 * t},
                      {"key_bytes", static_cast<int64_t>(rk.nbytes())}});
        std::printf("torch document_scores path, 1 layer fp32, L=16, threads=%d: %.1f ms\n", threads, 1e3 * t);
      }
      res["torch_document_scores_baseline"] = tb;
    }

    // Queries: fixed per (query tokens, rep) so every dtype routes the same queries.
    auto make_query = [&](int L, int rep) {
      torch::manual_seed(1000 + 31 * L + rep);
      return torch::randn({1, H, L, D});
    };
    std::map<std::string, std::vector<std::vector<int64_t>>> fp32_topk;  // "L/layer/query" -> ids
    json runs = json::array(), recall = json::array();
    for (KeyDtype dt : dtypes) {
      auto tb = Clock::now();
      std::vector<std::shared_ptr<RouterKeyIndex>> ix;
      for (int64_t s = 0; s < S; ++s) ix.push_back(synthetic_index(chunks, Hk, D, cosine, dt, 17 + s));
      int64_t key_bytes = 0;
      for (auto& i : ix) key_bytes += i->bytes();
      std::printf("%s keys: %.1f MB in %.1f s\n", key_dtype_name(dt).c_str(), key_bytes / 1e6, secs(tb));
      for (int threads : thread_counts)
        for (int L : query_tokens) {
          auto mask = torch::ones({1, L}, torch::kBool);
          std::vector<double> total, score, topk;
          for (int rep = -1; rep < reps; ++rep) {
            auto q = make_query(L, std::max(rep, 0));
            double sc = 0, tk = 0;
            for (int64_t s = 0; s < S; ++s) {
              auto t0 = Clock::now();
              auto ds = index_document_scores(opt, q, mask, *ix[s], doc_end, threads);
              sc += secs(t0);
              auto t1 = Clock::now();
              std::vector<std::vector<int64_t>> ids;
              std::vector<std::vector<double>> scv;
              MsaModel::top_k_documents(ds, opt.doc_top_k, ids, scv);
              tk += secs(t1);
            }
            if (rep < 0) continue;  // warm-up
            score.push_back(sc);
            topk.push_back(tk);
            total.push_back(sc + tk);
          }
          const double t = median(total), bw = res["probe_bytes_per_s_before"][std::to_string(threads)].get<double>();
          const double eff = key_bytes / t;
          json r = {{"key_dtype", key_dtype_name(dt)}, {"threads", threads}, {"query_tokens", L},
                    {"router_layers", S}, {"key_bytes", key_bytes},
                    {"ms_per_query_median", 1e3 * t}, {"ms_per_query_min", 1e3 * *std::min_element(total.begin(), total.end())},
                    {"ms_score_median", 1e3 * median(score)}, {"ms_topk_median", 1e3 * median(topk)},
                    {"scan_bytes_per_s", eff}, {"fraction_of_probe", eff / bw},
                    {"fraction_of_probe_fp32_equivalent", (key_bytes * 4.0 / key_element_bytes(dt)) / t / bw}};
          std::printf("  %s threads=%d L=%d: %.1f ms/query (score %.1f, top-k %.2f), %.2f GB/s = %.2f of probe\n",
                      key_dtype_name(dt).c_str(), threads, L, 1e3 * t, 1e3 * median(score), 1e3 * median(topk),
                      eff / 1e9, eff / bw);
          runs.push_back(r);
        }
      // Top-16 overlap with fp32 keys on the same queries (synthetic keys: a stress case, every
      // document's score is a max over near-identical random values).
      const int L = 16;
      auto mask = torch::ones({1, L}, torch::kBool);
      double overlap = 0;
      int n = 0;
      for (int qi = 0; qi < recall_queries; ++qi) {
        auto q = make_query(L, 100 + qi);
        for (int64_t s = 0; s < S; ++s) {
          auto ds = index_document_scores(opt, q, mask, *ix[s], doc_end, thread_counts.back());
          std::vector<std::vector<int64_t>> ids;
          std::vector<std::vector<double>> scv;
          MsaModel::top_k_documents(ds, opt.doc_top_k, ids, scv);
          const std::string key = std::to_string(qi) + "/" + std::to_string(s);
          if (dt == KeyDtype::F32) fp32_topk[key] = ids;
          if (!fp32_topk.count(key)) continue;
          std::set<int64_t> want(fp32_topk[key][0].begin(), fp32_topk[key][0].end());
          int hit = 0;
          for (auto id : ids[0]) hit += want.count(id) ? 1 : 0;
          overlap += static_cast<double>(hit) / std::max<size_t>(1, want.size());
          ++n;
        }
      }
      if (n > 0) {
        recall.push_back({{"key_dtype", key_dtype_name(dt)}, {"queries", recall_queries}, {"query_tokens", L},
                          {"top_k_overlap_with_fp32", overlap / n}});
        std::printf("  %s top-%d overlap with fp32 keys: %.3f\n", key_dtype_name(dt).c_str(), opt.doc_top_k, overlap / n);
      }
    }
    res["routing"] = runs;
    res["synthetic_recall_vs_fp32"] = recall;
    res["probe_bytes_per_s_after"] = probe("after");

    // Bytes per memory token by tier, from the bank layout (bank_tier_bytes), next to the
    // reference formula (msa-reference §8.4: 3 tensors x Hk x D x bytes x router layers / P).
    const int64_t text_bytes = tokens;  // byte-level tokenizer: one token per byte of text
    const int64_t layers_cfg = static_cast<int64_t>(cfg.msa->router_layers.size());
    BankGeometry g = bank_geometry(cfg, P, 3, torch::kFloat32);
    json tiers;
    tiers["model_dtype_fp32_tensors"] = bank_tier_bytes(g, doc_tok, text_bytes, std::nullopt).to_json();
    for (KeyDtype dt : {KeyDtype::F32, KeyDtype::BF16, KeyDtype::I8})
      tiers["scan_keys_" + key_dtype_name(dt)] = bank_tier_bytes(g, doc_tok, text_bytes, dt).to_json();
    g.element_bytes = 2;
    tiers["bf16_tensors"] = bank_tier_bytes(g, doc_tok, text_bytes, std::nullopt).to_json();
    res["bytes_by_tier"] = tiers;
    const double formula_bf16 = 3.0 * Hk * D * 2 * layers_cfg / P, formula_fp32 = 2 * formula_bf16;
    res["reference_formula_bytes_per_token"] = {{"bf16", formula_bf16}, {"fp32", formula_fp32},
                                                {"expression", "3 x Hk x D x bytes x router_layers / P"}};
    std::printf("formula: %.2f B/token (bf16), %.2f (fp32); bank layout fp32: routing keys %.3f + content K/V %.3f + doc map %.3f RAM B/token\n",
                formula_bf16, formula_fp32,
                tiers["model_dtype_fp32_tensors"]["routing_keys"]["ram_bytes_per_token"].get<double>(),
                tiers["model_dtype_fp32_tensors"]["content_kv"]["ram_bytes_per_token"].get<double>(),
                tiers["model_dtype_fp32_tensors"]["doc_map"]["ram_bytes_per_token"].get<double>());
    res["peak_rss_bytes"] = peak_rss_bytes();
    getloadavg(load, 3);
    res["machine"]["loadavg_1min_at_end"] = load[0];
    if (!out.empty()) write_json_atomic(out, res);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scale_run: %s\n", e.what());
    return 1;
  }
}
