#include "datasets/pointer_chain.h"

#include <algorithm>
#include <random>

#include "core/error.h"
#include "core/text.h"
#include "datasets/haystack.h"
#include "datasets/haystack_stream.h"
#include "datasets/msa_training.h"
#include "datasets/niah.h"

namespace msabench {

std::string pointer_fact(const std::string& key, const std::string& code, const std::string& tag) {
  return "The special magic word for " + key + " is kept in document " + tag + " under code " + code + ".";
}
std::string pointer_value_fact(const std::string& word) { return "The word kept in this document is: " + word + "."; }
std::string pointer_question(const std::string& key) { return niah_single_question("word", key); }

PointerChainGenerator::PointerChainGenerator(PointerChainConfig cfg, const TokenCounter& counter)
    : cfg_(std::move(cfg)), counter_(counter) {
  if (cfg_.doc_tokens < 8) throw Error("synth_pointer: doc_tokens must be at least 8");
  if (cfg_.haystack != "essay" && cfg_.haystack != "noise") throw Error("synth_pointer: haystack must be essay or noise");
}

MemoryCorpus PointerChainGenerator::sample(int index) const {
  return collect_documents([&](const auto& sink) { return generate(index, sink); });
}

MemoryCorpus PointerChainGenerator::generate(int index, const std::function<void(Document&&)>& on_document) const {
  const std::string id = std::string(kPointerTask) + "-" + format_token_count(cfg_.target_tokens) + "-s" + std::to_string(index);
  std::mt19937_64 rng(fnv1a64(id, cfg_.seed * 0x9E3779B97F4A7C15ULL + 3));
  const std::string key = niah_word_key(rng());
  const std::string code = std::to_string(1000000 + rng() % 9000000);
  std::string value;
  do value = niah_word_key(rng());
  while (value == key);
  PlacedSentence pointer, target;
  target.sentence = pointer_value_fact(value);
  // Budget with the widest tag this memory can need (a document holds at least one token).
  const int64_t facts = counter_.count(pointer_fact(key, code, interleave::document_tag(cfg_.target_tokens))) + counter_.count(target.sentence);
  // Decoys: about one value fact per document, so that the target looks like every other record
  // and only the pointer tells it apart. The budget subtracts their actual lengths.
  const int64_t decoys =
      std::max<int64_t>(0, (cfg_.target_tokens - facts) / (cfg_.doc_tokens + counter_.count(target.sentence)) - 2);
  std::vector<PlacedSentence> decoy(static_cast<size_t>(decoys));
  int64_t decoy_tokens = 0;
  for (auto& d : decoy) {
    std::string w;
    do w = niah_word_key(rng());
    while (w == value || w == key);
    d.sentence = pointer_value_fact(w);
    decoy_tokens += counter_.count(d.sentence);
  }
  const int64_t budget = cfg_.target_tokens - facts - decoy_tokens;
  // The two facts must land in different documents: more than a document's worth of haystack apart.
  if (budget < 2 * cfg_.doc_tokens + 2)
    throw Error("synth_pointer: memory size " + std::to_string(cfg_.target_tokens) +
                " is too small for two fact documents of " + std::to_string(cfg_.doc_tokens) + " tokens");
  auto draw_offset = [&] { return static_cast<int64_t>(rng() % static_cast<uint64_t>(budget + 1)); };
  // Offsets more than a document apart usually give different documents; the passes below check.
  auto draw_target = [&] {
    do target.offset = draw_offset();
    while (std::abs(target.offset - pointer.offset) <= cfg_.doc_tokens);
  };
  pointer.offset = draw_offset();
  draw_target();
  for (auto& d : decoy) d.offset = draw_offset();
  const size_t source_start = rng() % (1u << 30);
  std::vector<PlacedSentence*> placed;
  auto place_all = [&] {
    placed = {&pointer, &target};
    for (auto& d : decoy)
      if (!d.sentence.empty()) placed.push_back(&d);  // an empty sentence: a dropped decoy
    std::stable_sort(placed.begin(), placed.end(), [](auto* x, auto* y) { return x->offset < y->offset; });
  };

  // Sentences go in at the first sentence boundary at or after their offset, so where each lands
  // is known only after streaming. Dry passes (nothing written) check and repair, deterministically:
  // - the pointer and the target must be in different documents (else the target is redrawn);
  // - no decoy may share a document with either (the target's would hold two words): redrawn for
  //   a few passes, then dropped;
  // - the pointer names the target's corpus position, which its own length can shift when it
  //   comes first (a longer tag can push a sentence into the next document).
  constexpr int kRedrawPasses = 8, kMaxPasses = 32;
  int64_t assumed = 0;
  for (int pass = 0;; ++pass) {
    if (pass == kMaxPasses)
      throw Error("synth_pointer: " + id + ": the pointer and the target did not settle in different documents in " +
                  std::to_string(kMaxPasses) + " passes (memory " + std::to_string(cfg_.target_tokens) +
                  " tokens, documents of " + std::to_string(cfg_.doc_tokens) + "); use a larger memory or smaller documents");
    pointer.sentence = pointer_fact(key, code, interleave::document_tag(assumed));
    place_all();
    MemoryCorpus dry;
    dry.id = id;
    auto source = make_sentence_source(cfg_.haystack, source_start);
    stream_documents(*source, placed, budget, cfg_.doc_tokens, counter_, dry, [](Document&&) {});
    bool moved = false;
    if (pointer.doc_index == target.doc_index) {
      draw_target();
      moved = true;
    }
    for (auto& d : decoy)
      if (!d.sentence.empty() && (d.doc_index == pointer.doc_index || d.doc_index == target.doc_index)) {
        if (pass < kRedrawPasses) d.offset = draw_offset();
        else d.sentence.clear();
        moved = true;
      }
    if (!moved && target.doc_index == assumed) break;
    assumed = target.doc_index;
  }
  MemoryCorpus corpus;
  corpus.id = id;
  auto source = make_sentence_source(cfg_.haystack, source_start);
  stream_documents(*source, placed, budget, cfg_.doc_tokens, counter_, corpus, on_document);
  if (target.doc_index != assumed || pointer.doc_index == target.doc_index)  // the last dry pass, repeated
    throw Error("synth_pointer: " + id + ": the written memory differs from its dry run (pointer document " +
                std::to_string(pointer.doc_index) + ", target " + std::to_string(target.doc_index) + ", named " +
                std::to_string(assumed) + ")");
  const int64_t decoys_placed = static_cast<int64_t>(placed.size()) - 2;

  Query q;
  q.id = id + "-q0";
  q.text = pointer_question(key);
  q.answers = {value};
  q.gold_doc_ids = {pointer.doc_id, target.doc_id};
  q.meta = {{"task", kPointerTask},
            {"hops", {{{"fact", pointer.sentence}, {"doc_id", pointer.doc_id}, {"doc_index", pointer.doc_index}},
                      {{"fact", target.sentence}, {"doc_id", target.doc_id}, {"doc_index", target.doc_index}}}},
            {"decoys", decoys_placed},
            {"code", code},
            {"answer_prefix", "The special magic word for " + key + " mentioned in the provided text is"}};
  corpus.queries.push_back(std::move(q));
  return corpus;
}

nlohmann::json PointerChainGenerator::describe() const {
  return {{"generator", kPointerTask}, {"target_tokens", cfg_.target_tokens}, {"samples", cfg_.samples},
          {"queries_per_memory", 1}, {"seed", cfg_.seed}, {"doc_tokens", cfg_.doc_tokens},
          {"haystack", cfg_.haystack}, {"tokenizer", counter_.label()}};
}

}  // namespace msabench
