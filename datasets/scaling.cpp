#include "datasets/scaling.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/io.h"
#include "core/text.h"
#include "datasets/dataset_writer.h"
#include "datasets/haystack.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

DocumentStream documents_of(const Dataset& ds) {
  return [&ds](const DocumentVisitor& visit) {
    for (const auto& c : ds.corpora)
      for (const auto& d : c.documents) visit(d);
  };
}

DocumentStream documents_of_jsonl(const std::string& path) {
  return [path](const DocumentVisitor& visit) {
    read_jsonl(path, [&](const json& j, size_t) {
      if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
        throw Error("document needs a string \"text\"");
      const json& id = j.contains("id") ? j["id"] : json();
      if (!id.is_string() && !id.is_number_integer()) throw Error("document \"id\" must be a string or an integer");
      visit(Document{id.is_string() ? id.get<std::string>() : std::to_string(id.get<long long>()),
                     j["text"].get<std::string>()});
    });
  };
}

DocumentStream documents_of_msmarco_tsv(const std::string& path) {
  return [path](const DocumentVisitor& visit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open file");
    std::string line;
    size_t lineno = 0;
    Document d;
    while (std::getline(in, line)) {
      ++lineno;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      size_t tab = line.find('\t');
      if (tab == std::string::npos || tab == 0 || line.find('\t', tab + 1) != std::string::npos)
        throw Error(path + ":" + std::to_string(lineno) + ": expected 2 tab-separated columns (pid, passage)");
      d.id = line.substr(0, tab);
      d.text = line.substr(tab + 1);
      if (!valid_utf8(d.text)) {  // latin-1 bytes -> UTF-8, as load_msmarco_passage does
        std::string fixed;
        for (unsigned char ch : d.text) {
          if (ch < 0x80)
            fixed.push_back(static_cast<char>(ch));
          else {
            fixed.push_back(static_cast<char>(0xC0 | (ch >> 6)));
            fixed.push_back(static_cast<char>(0x80 | (ch & 0x3F)));
          }
        }
        d.text = std::move(fixed);
      }
      visit(d);
    }
    if (in.bad()) throw Error(path + ": read error");
  };
}

namespace {

struct Distractor {
  uint64_t hash;
  int64_t tokens;
  uint32_t ordinal;  // position among non-gold documents
};

// Padding documents cut from a haystack source at sentence boundaries, in a fixed order.
class PadSource {
 public:
  PadSource(const std::string& kind, uint64_t seed, int64_t doc_tokens, const TokenCounter& counter)
      : src_(make_sentence_source(kind, seed % (1u << 30))), kind_(kind), doc_tokens_(doc_tokens), counter_(counter) {}
  Document next(int64_t& tokens) {
    Document d;
    char id[48];
    std::snprintf(id, sizeof id, "pad-%s-%06lld", kind_.c_str(), static_cast<long long>(n_++));
    d.id = id;
    tokens = 0;
    while (true) {
      if (pending_.empty()) {
        pending_ = src_->next();
        pending_len_ = counter_.count(pending_);
      }
      if (tokens > 0 && tokens + pending_len_ > doc_tokens_) break;
      if (!d.text.empty()) d.text.push_back(' ');
      d.text += pending_;
      tokens += pending_len_;
      pending_.clear();
    }
    return d;
  }

 private:
  std::unique_ptr<SentenceSource> src_;
  std::string kind_;
  int64_t doc_tokens_;
  const TokenCounter& counter_;
  int64_t n_ = 0;
  std::string pending_;
  int64_t pending_len_ = 0;
};

}  // namespace

std::vector<ScalingBank> build_memory_banks(const std::string& name, const std::vector<Query>& all_queries,
                                            const DocumentStream& docs, const TokenCounter& counter,
                                            const ScalingConfig& cfg, const std::string& out_dir) {
  if (cfg.sizes.empty()) throw Error("scaling: no memory sizes given");
  for (int64_t s : cfg.sizes)
    if (s <= 0) throw Error("scaling: memory size " + std::to_string(s) + " is not positive");
  if (cfg.pad != "essay" && cfg.pad != "noise" && cfg.pad != "none")
    throw Error("scaling: unknown padding source '" + cfg.pad + "' (essay, noise, none)");
  if (cfg.pad_doc_tokens < 16) throw Error("scaling: padding documents need at least 16 tokens");
  std::vector<int64_t> sizes = cfg.sizes;
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  if (sizes.size() > 250) throw Error("scaling: at most 250 sizes");

  // ---- queries: all, or a seeded sample kept in input order
  std::vector<const Query*> queries;
  for (const auto& q : all_queries)
    if (!q.gold_doc_ids.empty()) queries.push_back(&q);
  if (queries.empty()) throw Error("scaling: no query has a gold document");
  if (cfg.max_queries > 0 && queries.size() > cfg.max_queries) {
    std::vector<std::pair<uint64_t, size_t>> order;
    for (size_t i = 0; i < queries.size(); ++i) order.emplace_back(fnv1a64(queries[i]->id, cfg.seed), i);
    std::sort(order.begin(), order.end());
    order.resize(cfg.max_queries);
    std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.second < b.second; });
    std::vector<const Query*> picked;
    for (auto& [h, i] : order) picked.push_back(queries[i]);
    queries = std::move(picked);
  }
  std::unordered_map<std::string, int64_t> gold;  // id -> tokens (-1 until seen)
  for (const Query* q : queries)
    for (const auto& id : q->gold_doc_ids) gold.emplace(id, -1);

  // ---- pass 1: token counts, distractor order
  std::vector<Distractor> distractors;
  int64_t gold_tokens = 0;
  std::unordered_set<std::string> seen_gold;
  docs([&](const Document& d) {
    const int64_t n = counter.count(d.text);
    auto it = gold.find(d.id);
    if (it != gold.end()) {
      if (it->second >= 0) throw Error("scaling: duplicate document id '" + d.id + "'");
      it->second = n;
      gold_tokens += n;
      return;
    }
    if (distractors.size() >= UINT32_MAX) throw Error("scaling: more than 4G documents");
    distractors.push_back({fnv1a64(d.id, cfg.seed ^ 0x5bd1e995ULL), n, static_cast<uint32_t>(distractors.size())});
  });
  for (const Query* q : queries)
    for (const auto& id : q->gold_doc_ids)
      if (gold[id] < 0)
        throw Error("scaling: gold document '" + id + "' of query '" + q->id + "' is not in the corpus");
  if (gold_tokens > sizes.front())
    throw Error("scaling: the gold documents alone have " + std::to_string(gold_tokens) + " tokens, more than the " +
                format_token_count(sizes.front()) + " bank (use fewer queries: --max-queries)");
  std::sort(distractors.begin(), distractors.end(), [](const Distractor& a, const Distractor& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.ordinal < b.ordinal;
  });

  // level[ordinal] = index of the smallest bank that holds the distractor (255: none)
  std::vector<uint8_t> level(distractors.size(), 255);
  std::vector<ScalingBank> banks(sizes.size());
  std::vector<int64_t> pad_needed(sizes.size(), 0);
  size_t taken = 0;
  int64_t used = gold_tokens;
  for (size_t b = 0; b < sizes.size(); ++b) {
    while (taken < distractors.size() && used + distractors[taken].tokens <= sizes[b]) {
      level[distractors[taken].ordinal] = static_cast<uint8_t>(b);
      used += distractors[taken].tokens;
      ++taken;
    }
    // corpus exhausted (not merely the next document too big): pad up to the size
    if (taken == distractors.size()) pad_needed[b] = sizes[b] - used;
    banks[b].target_tokens = sizes[b];
  }
  if (cfg.pad == "none" && pad_needed.back() > 0 && taken == distractors.size())
    for (size_t b = 0; b < sizes.size(); ++b)
      if (pad_needed[b] > cfg.pad_doc_tokens)
        throw Error("scaling: the corpus has only " + std::to_string(used) + " tokens, too few for the " +
                    format_token_count(sizes[b]) + " bank (choose a padding source: essay or noise)");
  distractors.clear();
  distractors.shrink_to_fit();

  // ---- pass 2: write every bank in one read of the corpus
  std::vector<std::unique_ptr<DatasetDirWriter>> writers;
  std::vector<std::string> groups;
  for (size_t b = 0; b < sizes.size(); ++b) {
    banks[b].dir = (fs::path(out_dir) / format_token_count(sizes[b])).string();
    writers.push_back(std::make_unique<DatasetDirWriter>(banks[b].dir));
    groups.push_back(name + "-" + format_token_count(sizes[b]));
  }
  uint32_t ordinal = 0;
  docs([&](const Document& d) {
    size_t from = sizes.size();
    bool is_gold = gold.count(d.id) > 0;
    if (is_gold)
      from = 0;
    else if (level[ordinal++] != 255)
      from = level[ordinal - 1];
    if (from == sizes.size()) return;
    const int64_t n = counter.count(d.text);
    for (size_t b = from; b < sizes.size(); ++b) {
      writers[b]->document(groups[b], d, n);
      banks[b].gold_documents += is_gold;
    }
  });
  if (cfg.pad != "none" && pad_needed.back() > 0) {
    PadSource pad(cfg.pad, cfg.seed, cfg.pad_doc_tokens, counter);
    int64_t written = 0;  // the same padding prefix goes to every bank that needs it
    size_t first = 0;
    while (first < sizes.size() && pad_needed[first] <= 0) ++first;
    while (first < sizes.size()) {
      int64_t n = 0;
      Document d = pad.next(n);
      while (first < sizes.size() && written + n > pad_needed[first]) ++first;
      if (first == sizes.size()) break;
      for (size_t b = first; b < sizes.size(); ++b) {
        writers[b]->document(groups[b], d, n);
        ++banks[b].pad_documents;
        banks[b].pad_tokens += n;
      }
      written += n;
    }
  }
  for (size_t b = 0; b < sizes.size(); ++b) {
    for (const Query* q : queries) writers[b]->query(groups[b], *q);
    json gen = {{"generator", "scaling"},
                {"source", name},
                {"seed", cfg.seed},
                {"target_tokens", sizes[b]},
                {"gold_documents", banks[b].gold_documents},
                {"gold_tokens", gold_tokens},
                {"distractor_order", "fnv1a64(id, seed) ascending; longest prefix that fits (nested banks)"},
                {"padding",
                 {{"source", cfg.pad},
                  {"path", cfg.pad == "essay" ? essay_source_path() : ""},
                  {"documents", banks[b].pad_documents},
                  {"tokens", banks[b].pad_tokens},
                  {"doc_tokens", cfg.pad_doc_tokens}}}};
    writers[b]->finish(name, counter.label(), counter.spec(), sizes[b], gen);
    banks[b].tokens = writers[b]->tokens();
    banks[b].documents = writers[b]->documents();
    writers[b].reset();
  }
  return banks;
}

}  // namespace msabench
