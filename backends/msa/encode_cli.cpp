#include "backends/msa/encode_cli.h"

#include <chrono>
#include <filesystem>

#include "backends/msa/bank_store.h"
#include "core/error.h"
#include "core/text.h"
#include "core/io.h"
#include "core/progress.h"
#include "core/tokenizer/text_tokenizer.h"
#include "datasets/msa_training.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

json encode_corpus_bank(const std::string& model_dir, const std::string& corpus_jsonl, const std::string& out,
                        int64_t segment_docs, bool quiet, const std::string& ram_budget, const std::string& gpu_budget) {
  set_compute_threads(2);
  MsaModel model = MsaModel::load(model_dir);
  auto tok = load_tokenizer(model_tokenizer_spec(model_dir));
  std::vector<Document> docs;
  read_jsonl(corpus_jsonl, [&](const json& j, size_t) {
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) throw Error("document needs a string \"text\"");
    const std::string id = j.contains("id") ? (j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump()) : "";
    docs.push_back({id, j["text"].get<std::string>()});
  });
  if (docs.empty()) throw Error(corpus_jsonl + ": no documents");
  std::vector<std::vector<int64_t>> ids;
  int64_t tokens = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto v = tok->encode(interleave::memory_document(static_cast<int64_t>(i), docs[i].text), true);
    ids.emplace_back(v.begin(), v.end());
    tokens += static_cast<int64_t>(v.size());
  }
  auto tpl32 = tok->encode(interleave::kTemplateHead, true);
  std::vector<int64_t> tpl(tpl32.begin(), tpl32.end());
  std::vector<int64_t> doc_tokens;
  int64_t text_bytes = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    doc_tokens.push_back(static_cast<int64_t>(ids[i].size()));
    text_bytes += static_cast<int64_t>(docs[i].text.size());
  }
  const auto tiers = bank_tier_bytes(bank_geometry(model.base().config(), model.options().pooling_kernel_size,
                                                   static_cast<int64_t>(tpl.size()), model.base().dtype()),
                                     doc_tokens, text_bytes, std::nullopt);
  const TierPlan plan = plan_tiers(tiers, parse_byte_size(ram_budget), parse_byte_size(gpu_budget), "auto", true);  // throws before any encoding
  BankFingerprint fp{model_fingerprint(model_dir), tok->name(), corpus_fingerprint(docs)};
  Progress progress("encode", static_cast<int64_t>(docs.size()), "docs", !quiet);
  int64_t last = 0;
  auto t0 = std::chrono::steady_clock::now();
  MemoryBank bank = encode_bank(model, ids, tpl, fp, out, segment_docs, [&](int64_t done, int64_t) {
    int64_t toks = 0;
    for (int64_t i = last; i < done; ++i) toks += static_cast<int64_t>(ids[i].size());
    progress.advance(done - last, toks);
    last = done;
  });
  progress.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {{"bank", out},         {"documents", docs.size()}, {"chunks", bank.num_chunks()},
          {"tokens", tokens},    {"seconds", secs},          {"bytes", bank.bytes()},
          {"tokenizer", tok->name()}, {"bytes_by_tier", tiers.to_json()}, {"tier_plan", plan.to_json()}};
}

json describe_bank(const std::string& dir, bool verify) {
  if (verify) verify_bank(dir);
  json j = bank_info(dir);
  if (verify) j["verified"] = true;
  return j;
}

}  // namespace msabench
