#include "datasets/twohop.h"

#include <algorithm>
#include <iterator>
#include <random>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "datasets/haystack.h"
#include "datasets/haystack_stream.h"

namespace msabench {

namespace {
const char* const kFirst[] = {"Alice", "Bruno", "Chen", "Dara", "Emil", "Farah", "Gus", "Hana", "Ivan",
                              "Jules", "Kofi", "Lena", "Mateo", "Nora", "Omar", "Pia", "Quinn", "Rosa",
                              "Sami", "Tara", "Uma", "Viktor", "Wen", "Yara", "Zane"};
const char* const kLast[] = {"Abbott", "Baker", "Costa", "Dimitrov", "Evans", "Fischer", "Garcia", "Hughes",
                             "Ito", "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Price",
                             "Quiroga", "Rossi", "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Young"};
const char* const kCities[] = {"Lisbon", "Oslo", "Quito", "Nairobi", "Hanoi", "Lima", "Perth", "Dakar",
                               "Riga", "Tunis", "Cusco", "Bergen", "Kyoto", "Porto", "Accra", "Split"};
constexpr uint64_t kFirstN = std::size(kFirst), kLastN = std::size(kLast);

}  // namespace

std::string twohop_person(uint64_t r) {
  return std::string(kFirst[r % kFirstN]) + " " + kLast[(r / kFirstN) % kLastN];
}
std::string twohop_city(uint64_t r) { return kCities[r % std::size(kCities)]; }
std::string twohop_colleague_fact(const std::string& a, const std::string& b) { return a + " works with " + b + "."; }
std::string twohop_city_fact(const std::string& b, const std::string& city) { return b + " lives in " + city + "."; }
std::string twohop_question(const std::string& a) { return "In which city does the colleague of " + a + " live?"; }

TwoHopGenerator::TwoHopGenerator(TwoHopConfig cfg, const TokenCounter& counter) : cfg_(std::move(cfg)), counter_(counter) {
  if (cfg_.queries < 1 || 2 * static_cast<uint64_t>(cfg_.queries) > kFirstN * kLastN)
    throw Error("synth_twohop: queries per memory must be 1.." + std::to_string(kFirstN * kLastN / 2));
  if (cfg_.doc_tokens < 8) throw Error("synth_twohop: doc_tokens must be at least 8");
  if (cfg_.haystack != "essay" && cfg_.haystack != "noise") throw Error("synth_twohop: haystack must be essay or noise");
}

MemoryCorpus TwoHopGenerator::sample(int index) const {
  return collect_documents([&](const auto& sink) { return generate(index, sink); });
}

MemoryCorpus TwoHopGenerator::generate(int index, const std::function<void(Document&&)>& on_document) const {
  MemoryCorpus corpus;
  corpus.id = std::string(kTwoHopTask) + "-" + format_token_count(cfg_.target_tokens) + "-s" + std::to_string(index);
  std::mt19937_64 rng(fnv1a64(corpus.id, cfg_.seed * 0x9E3779B97F4A7C15ULL + 2));
  // Distinct people: every name appears in exactly one fact pair of this memory.
  std::set<std::string> used;
  auto fresh_person = [&] {
    while (true) {
      std::string p = twohop_person(rng());
      if (used.insert(p).second) return p;
    }
  };
  struct Pair {
    std::string a, b, city;
    PlacedSentence first, second;
  };
  std::vector<Pair> pairs(static_cast<size_t>(cfg_.queries));
  int64_t fact_tokens = 0;
  for (auto& p : pairs) {
    p.a = fresh_person();
    p.b = fresh_person();
    p.city = twohop_city(rng());
    p.first.sentence = twohop_colleague_fact(p.a, p.b);
    p.second.sentence = twohop_city_fact(p.b, p.city);
    fact_tokens += counter_.count(p.first.sentence) + counter_.count(p.second.sentence);
  }
  const int64_t budget = cfg_.target_tokens - fact_tokens;
  if (budget < 16) throw Error("synth_twohop: memory size " + std::to_string(cfg_.target_tokens) + " is too small for " +
                               std::to_string(cfg_.queries) + " fact pairs");
  std::vector<PlacedSentence*> placed;
  for (auto& p : pairs)
    for (PlacedSentence* f : {&p.first, &p.second}) {
      f->offset = static_cast<int64_t>(rng() % static_cast<uint64_t>(budget + 1));
      placed.push_back(f);
    }
  std::stable_sort(placed.begin(), placed.end(),
                   [](const PlacedSentence* x, const PlacedSentence* y) { return x->offset < y->offset; });
  auto source = make_sentence_source(cfg_.haystack, rng() % (1u << 30));
  stream_documents(*source, placed, budget, cfg_.doc_tokens, counter_, corpus, on_document);

  for (size_t i = 0; i < pairs.size(); ++i) {
    const Pair& p = pairs[i];
    Query q;
    q.id = corpus.id + "-q" + std::to_string(i);
    q.text = twohop_question(p.a);
    q.answers = {p.city};
    q.gold_doc_ids.push_back(p.first.doc_id);
    if (p.second.doc_id != p.first.doc_id) q.gold_doc_ids.push_back(p.second.doc_id);
    q.meta = {{"task", kTwoHopTask},
              {"hops", {{{"fact", p.first.sentence}, {"doc_id", p.first.doc_id}},
                        {{"fact", p.second.sentence}, {"doc_id", p.second.doc_id}}}},
              {"bridge", p.b},
              {"answer_prefix", "The colleague of " + p.a + " lives in"}};
    corpus.queries.push_back(std::move(q));
  }
  return corpus;
}

nlohmann::json TwoHopGenerator::describe() const {
  return {{"generator", kTwoHopTask}, {"target_tokens", cfg_.target_tokens}, {"samples", cfg_.samples},
          {"queries_per_memory", cfg_.queries}, {"seed", cfg_.seed}, {"doc_tokens", cfg_.doc_tokens},
          {"haystack", cfg_.haystack}, {"tokenizer", counter_.label()}};
}

}  // namespace msabench
