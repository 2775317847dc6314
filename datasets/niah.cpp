#include "datasets/niah.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "datasets/haystack.h"
#include "datasets/haystack_stream.h"

namespace msabench {

namespace {
#include "datasets/niah_words.inc"

constexpr size_t kNumAdj = sizeof(kAdjectives) / sizeof(kAdjectives[0]);
constexpr size_t kNumNoun = sizeof(kNouns) / sizeof(kNouns[0]);

// mt19937_64 is fully specified by the standard; distributions are not, so draw by modulo.
uint64_t draw(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

std::string singular(const std::string& plural) { return plural.substr(0, plural.size() - 1); }

// "a", "a and b", "a, b, and c" (RULER's join).
std::string join_keys(const std::vector<std::string>& keys) {
  if (keys.size() == 1) return keys[0];
  if (keys.size() == 2) return keys[0] + " and " + keys[1];
  std::string s;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i) s += (i + 1 == keys.size()) ? ", and " : ", ";
    s += keys[i];
  }
  return s;
}

struct Needle : PlacedSentence {
  std::string key, value;
  bool queried = false;
  double depth = 0;  // percent
};
}  // namespace

std::string niah_word_key(uint64_t r) {
  return std::string(kAdjectives[r % kNumAdj]) + "-" + kNouns[(r / kNumAdj) % kNumNoun];
}

std::string niah_needle_sentence(const std::string& value_type, const std::string& key, const std::string& value) {
  return "One of the special magic " + value_type + " for " + key + " is: " + value + ".";
}

std::string niah_single_question(const std::string& value_type, const std::string& key) {
  return "What is the special magic " + value_type + " for " + key + " mentioned in the provided text?";
}

std::string niah_uuid(uint64_t hi, uint64_t lo) {
  hi = (hi & ~0xF000ULL) | 0x4000ULL;                       // version 4
  lo = (lo & ~(0xC000ULL << 48)) | (0x8000ULL << 48);       // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx", (unsigned long long)(hi >> 32),
                (unsigned long long)((hi >> 16) & 0xFFFF), (unsigned long long)(hi & 0xFFFF),
                (unsigned long long)(lo >> 48), (unsigned long long)(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

const std::vector<NiahTask>& niah_tasks() {
  static const std::vector<NiahTask> tasks = {
      {"niah_single_1", "noise", "words", "numbers", 1, 1, 1},
      {"niah_single_2", "essay", "words", "numbers", 1, 1, 1},
      {"niah_single_3", "essay", "words", "uuids", 1, 1, 1},
      {"niah_multikey_1", "essay", "words", "numbers", 4, 1, 1},
      {"niah_multikey_2", "needle", "words", "numbers", 1, 1, 1},
      {"niah_multikey_3", "needle", "uuids", "uuids", 1, 1, 1},
      {"niah_multivalue", "essay", "words", "numbers", 1, 4, 1},
      {"niah_multiquery", "essay", "words", "numbers", 4, 1, 4},
  };
  return tasks;
}

const NiahTask& find_niah_task(const std::string& name) {
  std::string known;
  for (const auto& t : niah_tasks()) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  throw Error("unknown NIAH task '" + name + "' (available: " + known + ")");
}

NiahGenerator::NiahGenerator(NiahConfig cfg, const TokenCounter& counter)
    : cfg_(std::move(cfg)), task_(find_niah_task(cfg_.task)), counter_(counter) {
  if (cfg_.samples < 1) throw Error("NIAH: --samples must be at least 1");
  if (cfg_.doc_tokens < 16) throw Error("NIAH: doc_tokens must be at least 16");
  if (cfg_.target_tokens < 256) throw Error("NIAH: memory size must be at least 256 tokens");
  for (double d : cfg_.depths)
    if (!(d >= 0 && d <= 100)) throw Error("NIAH: depth " + std::to_string(d) + " is outside 0..100");
}

nlohmann::json NiahGenerator::describe() const {
  return {{"generator", "niah"},         {"task", task_.name},          {"haystack", task_.haystack},
          {"key_type", task_.key_type},  {"value_type", task_.value_type}, {"num_keys", task_.num_keys},
          {"num_values", task_.num_values}, {"num_queries", task_.num_queries}, {"seed", cfg_.seed},
          {"samples", cfg_.samples},     {"target_tokens", cfg_.target_tokens}, {"doc_tokens", cfg_.doc_tokens},
          {"depths", cfg_.depths},       {"tokenizer", counter_.label()},
          {"essay_source", task_.haystack == "essay" ? essay_source_path() : ""}};
}

std::string NiahGenerator::corpus_id(int index) const {
  return task_.name + "-" + format_token_count(cfg_.target_tokens) + "-s" + std::to_string(index);
}

MemoryCorpus NiahGenerator::sample(int index) const {
  return collect_documents([&](const auto& sink) { return generate(index, sink); });
}

MemoryCorpus NiahGenerator::generate(int index, const std::function<void(Document&&)>& on_document) const {
  const std::string corpus_id = this->corpus_id(index);
  uint64_t h = fnv1a64(task_.name, cfg_.seed * 0x9E3779B97F4A7C15ULL + 1);
  h = fnv1a64(std::to_string(cfg_.target_tokens) + "/" + std::to_string(index), h);
  std::mt19937_64 rng(h);

  // ---- needles: distinct keys, then values per key
  const int num_keys = std::max(task_.num_keys, task_.num_queries);
  std::set<std::string> used_keys;
  std::vector<std::string> keys;
  while (static_cast<int>(keys.size()) < num_keys) {
    std::string k = task_.key_type == "uuids" ? niah_uuid_from(rng) : niah_word_key(rng());
    if (used_keys.insert(k).second) keys.push_back(k);
  }
  auto make_value = [&] {
    if (task_.value_type == "uuids") return niah_uuid_from(rng);
    return std::to_string(1000000 + draw(rng, 9000000));  // 7-digit number
  };
  // Which keys are asked: the first num_queries of a shuffled copy.
  std::vector<int> order(num_keys);
  for (int i = 0; i < num_keys; ++i) order[i] = i;
  for (int i = num_keys - 1; i > 0; --i) std::swap(order[i], order[draw(rng, i + 1)]);
  std::set<int> queried(order.begin(), order.begin() + task_.num_queries);

  std::vector<Needle> needles;
  for (int ki = 0; ki < num_keys; ++ki)
    for (int v = 0; v < task_.num_values; ++v) {
      Needle n;
      n.key = keys[ki];
      n.value = make_value();
      n.queried = queried.count(ki) > 0;
      n.sentence = niah_needle_sentence(task_.value_type, n.key, n.value);
      needles.push_back(std::move(n));
    }

  // ---- depths: RULER grid without replacement; optional fixed depth for the first queried needle
  std::vector<double> grid;
  for (int i = 0; i < 40; ++i) grid.push_back(std::round(100.0 * i / 39.0));
  for (int i = static_cast<int>(grid.size()) - 1; i > 0; --i) std::swap(grid[i], grid[draw(rng, i + 1)]);
  size_t g = 0;
  bool fixed_used = false;
  for (auto& n : needles) {
    if (n.queried && !fixed_used && !cfg_.depths.empty()) {
      n.depth = cfg_.depths[index % cfg_.depths.size()];
      fixed_used = true;
    } else if (task_.haystack == "needle") {
      // RULER inserts into a needle haystack at uniformly random line indices, not on the grid.
      n.depth = static_cast<double>(draw(rng, 1000001)) / 10000.0;
    } else {
      n.depth = grid[g++ % grid.size()];
    }
  }

  int64_t needle_tokens = 0;
  for (const auto& n : needles) needle_tokens += counter_.count(n.sentence);
  const int64_t budget = cfg_.target_tokens - needle_tokens;
  if (budget < 16) throw Error("NIAH: memory size " + std::to_string(cfg_.target_tokens) + " is too small for the needles");
  for (auto& n : needles) n.offset = static_cast<int64_t>(std::floor(n.depth / 100.0 * budget));
  std::vector<Needle*> by_offset;
  for (auto& n : needles) by_offset.push_back(&n);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](Needle* a, Needle* b) { return a->offset < b->offset; });

  // ---- stream haystack sentences, inserting needles, cutting documents at sentence boundaries
  MemoryCorpus corpus;
  corpus.id = corpus_id;
  std::unique_ptr<SentenceSource> source;
  if (task_.haystack == "needle") {
    // Distractor needles must never reuse a real key: the small word-key space would otherwise
    // give a queried key a second, wrong value at large sizes (RULER's 10M-word space hides this).
    std::set<std::string> exclude(keys.begin(), keys.end());
    source = make_needle_source(task_.key_type, task_.value_type, rng(), std::move(exclude));
  } else {
    source = make_sentence_source(task_.haystack, draw(rng, 1u << 30));
  }
  std::vector<PlacedSentence*> placed;
  for (Needle* n : by_offset) placed.push_back(n);
  const int64_t haystack_sentences =
      stream_documents(*source, placed, budget, cfg_.doc_tokens, counter_, corpus, on_document);

  // ---- the query (RULER wording, singular when exactly one value is asked)
  std::vector<std::string> qkeys;
  Query q;
  q.id = corpus_id + "-q0";
  nlohmann::json depth_info = nlohmann::json::array();
  std::set<std::string> gold_docs;
  for (int ki : order) {
    if (!queried.count(ki)) continue;
    qkeys.push_back(keys[ki]);
  }
  for (const auto& n : needles) {
    if (!n.queried) continue;
    q.answers.push_back(n.value);
    if (gold_docs.insert(n.doc_id).second) q.gold_doc_ids.push_back(n.doc_id);
    depth_info.push_back({{"key", n.key}, {"depth", n.depth}, {"doc_id", n.doc_id}});
  }
  const bool one = task_.num_queries * task_.num_values == 1;
  const std::string vt = one ? singular(task_.value_type) : task_.value_type;
  const std::string keystr = join_keys(qkeys);
  q.text = one ? niah_single_question(vt, keystr)
               : "What are all the special magic " + vt + " for " + keystr + " mentioned in the provided text?";
  q.meta = {{"task", task_.name},
            {"needles", depth_info},
            {"answer_prefix", "The special magic " + vt + " for " + keystr + " mentioned in the provided text " +
                                  (one ? "is" : "are")},
            {"distractor_needles", static_cast<int>(needles.size()) - static_cast<int>(q.answers.size())},
            {"haystack", task_.haystack},
            {"haystack_sentences", haystack_sentences}};
  corpus.queries.push_back(std::move(q));
  return corpus;
}

Dataset NiahGenerator::all() const {
  Dataset ds;
  ds.name = task_.name;
  ds.tokenizer = counter_.label();
  ds.tokenizer_spec = counter_.spec();
  ds.target_tokens = cfg_.target_tokens;
  ds.meta = describe();
  for (int i = 0; i < cfg_.samples; ++i) ds.corpora.push_back(sample(i));
  return ds;
}

}  // namespace msabench
