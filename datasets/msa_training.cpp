#include "datasets/msa_training.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "datasets/haystack.h"
#include "datasets/niah.h"
#include "datasets/pointer_chain.h"
#include "datasets/twohop.h"

namespace msabench {

namespace interleave {
MemoryDocumentPieces memory_document_pieces(int64_t id, const std::string& text) {
  const std::string tag = document_tag(id);
  return {"<|im_start|>" + tag + ". " + text, tag, kImEnd};
}
std::string memory_document(int64_t id, const std::string& text) {
  const MemoryDocumentPieces p = memory_document_pieces(id, text);
  return p.head_and_text + p.closing_tag + p.end;
}
std::string routing_query(const std::string& question) { return kRoutingPrefix + question + kRoutingSuffix; }
std::string question_restatement(const std::string& question) {
  return std::string("<|im_start|>The user's question is: ") + question + "\n" + kObjectRefEnd;
}
}  // namespace interleave

namespace {

uint64_t draw(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

// Haystack text of about `words` words from the essay or noise source.
std::string filler(std::mt19937_64& rng, int words) {
  auto src = make_sentence_source(draw(rng, 4) == 0 ? "noise" : "essay", draw(rng, 1u << 30));
  std::string out;
  int n = 0;
  while (n < words) {
    const std::string& s = src->next();
    out += (out.empty() ? "" : " ") + s;
    n += static_cast<int>(std::count(s.begin(), s.end(), ' ')) + 1;
  }
  return out;
}

// Inserts a sentence at a random sentence boundary of `text`.
std::string insert_sentence(std::mt19937_64& rng, const std::string& text, const std::string& sentence) {
  std::vector<size_t> cuts = {0};
  for (size_t i = 0; i + 1 < text.size(); ++i)
    if ((text[i] == '.' || text[i] == '!' || text[i] == '?') && text[i + 1] == ' ') cuts.push_back(i + 2);
  cuts.push_back(text.size());
  const size_t at = cuts[draw(rng, cuts.size())];
  std::string out = text.substr(0, at);
  if (!out.empty() && out.back() != ' ') out += ' ';
  out += sentence;
  if (at < text.size()) out += " " + text.substr(at);
  return out;
}

int document_words(std::mt19937_64& rng, const TrainingDataConfig& cfg) {
  if (cfg.doc_words_min <= 0) return cfg.doc_words;
  return cfg.doc_words_min + static_cast<int>(draw(rng, cfg.doc_words - cfg.doc_words_min + 1));
}

// The ids of ndocs documents (TrainingDataConfig::max_doc_id, doc_id_range).
void fill_documents_ids(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs, TrainingSample& s) {
  if (cfg.max_doc_id <= 0) {
    for (int i = 0; i < ndocs; ++i) s.ids.push_back(i);
    return;
  }
  const double lo = std::log(static_cast<double>(ndocs)), hi = std::log(static_cast<double>(cfg.max_doc_id));
  const double u = static_cast<double>(draw(rng, 1u << 20)) / (1u << 20);
  const auto range = cfg.doc_id_range == "uniform"
                         ? cfg.max_doc_id
                         : std::max<int64_t>(ndocs, static_cast<int64_t>(std::exp(lo + u * (hi - lo))));
  std::set<int64_t> ids;
  while (ids.size() < static_cast<size_t>(ndocs)) ids.insert(static_cast<int64_t>(draw(rng, range)));
  s.ids.assign(ids.begin(), ids.end());
}

void fill_documents(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs, TrainingSample& s) {
  for (int i = 0; i < ndocs; ++i) s.documents.push_back(filler(rng, document_words(rng, cfg)));
  fill_documents_ids(rng, cfg, ndocs, s);
}

// One retrieval round: the model names the document ("[id]<|object_ref_end|>"; untrained when it
// is an earlier call's output given as context) and the system injects "[id]. TEXT\n<|object_ref_end|>".
// injection_routes: the injected text (without the delimiter) joins the next call's router query.
void add_retrieval_round(TrainingSample& s, int doc, bool naming_trained = true, bool injection_routes = false) {
  const std::string tag = interleave::document_tag(s.ids[doc]);
  s.response.push_back({tag + interleave::kObjectRefEnd, naming_trained,
                        naming_trained ? TrainingSegment::Kind::RetrievalStep : TrainingSegment::Kind::Text});
  const std::string injected = tag + ". " + s.documents[doc] + "\n";
  if (!injection_routes) {
    s.response.push_back({injected + interleave::kObjectRefEnd, false});
    return;
  }
  s.response.push_back({injected, false, TrainingSegment::Kind::Text, /*routes=*/true});
  s.response.push_back({interleave::kObjectRefEnd, false});
}

// The model's answer: "The answer to the question is: VALUE<|im_end|>".
TrainingSegment answer_segment(const std::string& value) {
  return {std::string(interleave::kAnswerPrefix) + value + interleave::kImEnd, true, TrainingSegment::Kind::Answer};
}

void add_answer(TrainingSample& s) {
  s.response.push_back({interleave::kEndOfRetrieve, true});
  s.response.push_back({interleave::question_restatement(s.question), false});
  s.response.push_back(answer_segment(s.answer));
}

// A needle key in the config's key_style (TrainingDataConfig::key_style).
std::string needle_key(std::mt19937_64& rng, const TrainingDataConfig& cfg) {
  return cfg.key_style == "ids" ? interleave::document_tag(static_cast<int64_t>(draw(rng, 4096))) : niah_word_key(rng());
}

TrainingSample niah_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  // Distractor needles with other keys make the key, not the template, the routing signal.
  std::set<std::string> keys;
  const int distractors = static_cast<int>(draw(rng, cfg.max_distractors + 1));
  std::string key;
  while (keys.size() < static_cast<size_t>(distractors + 1 + cfg.extra_questions)) keys.insert(needle_key(rng, cfg));
  std::vector<std::string> kv(keys.begin(), keys.end());
  std::shuffle(kv.begin(), kv.end(), rng);
  key = kv[0];
  const std::vector<std::string> extra(kv.end() - cfg.extra_questions, kv.end());
  kv.resize(kv.size() - cfg.extra_questions);
  const int gold = static_cast<int>(draw(rng, ndocs));
  s.answer = std::to_string(1000000 + draw(rng, 9000000));
  const std::string needle = niah_needle_sentence("numbers", key, s.answer);
  if (cfg.needle_position == "random") s.documents[gold] = insert_sentence(rng, s.documents[gold], needle);
  s.needle_keys.push_back({gold, key});
  for (size_t i = 1; i < kv.size(); ++i) {
    int d = static_cast<int>(draw(rng, ndocs));
    s.needle_keys.push_back({d, kv[i]});
    s.documents[d] = insert_sentence(rng, s.documents[d],
                                     niah_needle_sentence("numbers", kv[i], std::to_string(1000000 + draw(rng, 9000000))));
  }
  std::vector<std::string> extra_values;
  for (const auto& k : extra) {
    extra_values.push_back(std::to_string(1000000 + draw(rng, 9000000)));
    s.documents[gold] = insert_sentence(rng, s.documents[gold], niah_needle_sentence("numbers", k, extra_values.back()));
    s.needle_keys.push_back({gold, k});
  }
  if (cfg.needle_position == "end") s.documents[gold] += " " + needle;  // after any distractor
  s.positives = {gold};
  auto question = [](const std::string& k) { return niah_single_question("number", k); };
  s.question = question(key);
  add_retrieval_round(s, gold);
  add_answer(s);
  for (size_t i = 0; i < extra.size(); ++i) {
    s.response.push_back({interleave::question_restatement(question(extra[i])), false});
    s.response.push_back(answer_segment(extra_values[i]));
  }
  return s;
}

// Two facts in two documents: "<person> works with <person2>." and "<person2> lives in <city>."
TrainingSample twohop_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) {
  auto person = [&] { return twohop_person(rng()); };
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  std::string a = person(), b = person();
  while (b == a) b = person();
  s.answer = twohop_city(rng());
  int da = static_cast<int>(draw(rng, ndocs)), db = static_cast<int>(draw(rng, ndocs));
  while (db == da) db = static_cast<int>(draw(rng, ndocs));
  s.documents[da] = insert_sentence(rng, s.documents[da], twohop_colleague_fact(a, b));
  s.documents[db] = insert_sentence(rng, s.documents[db], twohop_city_fact(b, s.answer));
  s.question = twohop_question(a);
  if (!cfg.per_hop_samples) {
    s.positives = {da, db};
    add_retrieval_round(s, da);  // hop 1 names the colleague; hop 2 needs that name
    add_retrieval_round(s, db);
    add_answer(s);
    return s;
  }
  if (draw(rng, 2) == 0) {  // hop 1: the call ends after the first injection
    s.positives = {da};
    add_retrieval_round(s, da);
    return s;
  }
  s.positives = {db};
  add_retrieval_round(s, da, /*naming_trained=*/false, /*injection_routes=*/true);
  add_retrieval_round(s, db);
  add_answer(s);
  return s;
}

// A pointer chain (synth_pointer's sentence forms): the question's document holds only "... is
// kept in document [j] under code NNNNNNN.", document j the word, every other document a decoy
// word. The transcript names the first document (found by routing), reads it, names the second
// (copied from the injected text), reads it and answers. The routing loss's positive is the first
// document only: the question says nothing that tells the second from the decoys.
TrainingSample pointer_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  const std::string key = needle_key(rng, cfg);
  const std::string code = std::to_string(1000000 + draw(rng, 9000000));
  auto word = [&] {
    std::string w;
    do w = niah_word_key(rng());
    while (w == key || w == s.answer);
    return w;
  };
  s.answer = word();
  const int da = static_cast<int>(draw(rng, ndocs));
  int db = static_cast<int>(draw(rng, ndocs - 1));
  db += db >= da;
  s.documents[da] = insert_sentence(rng, s.documents[da], pointer_fact(key, code, interleave::document_tag(s.ids[db])));
  s.documents[db] = insert_sentence(rng, s.documents[db], pointer_value_fact(s.answer));
  for (int k = 0; k < ndocs; ++k)  // decoy records: the target is told apart only by the pointer
    if (k != da && k != db) s.documents[k] = insert_sentence(rng, s.documents[k], pointer_value_fact(word()));
  s.question = pointer_question(key);
  s.positives = {da};
  add_retrieval_round(s, da);
  add_retrieval_round(s, db);
  add_answer(s);
  return s;
}

// "pointer_read": the pointer transcript's reading half, dense. copy_pairs rounds, each with its own
// pointer document and target document of 0..copy_gap_words haystack words around the fact (the
// sample's documents, 2 per round; min_docs/max_docs do not apply). A round names the pointer
// document (trained in round 1 only; later rounds have no routing cue of their own, so their first
// name is given as context), reads it, names the target (copied from the injected text), reads it,
// ends retrieval and answers with the target's word. In pointer transcripts the answer is a few
// tokens among a thousand and is never copied (session 26: the model writes one fixed word); here
// it is most of what is trained, and short documents keep a round inside one packed row of the
// "lm" objective.
TrainingSample pointer_read_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int) {
  TrainingSample s;
  const int rounds = cfg.copy_pairs;
  std::set<std::string> used;
  auto fresh_word = [&] {
    std::string w;
    do w = niah_word_key(rng());
    while (!used.insert(w).second);
    return w;
  };
  auto doc_with = [&](const std::string& fact) {
    const int words = static_cast<int>(draw(rng, cfg.copy_gap_words + 1));
    return words > 0 ? insert_sentence(rng, filler(rng, words), fact) : fact;
  };
  fill_documents_ids(rng, cfg, 2 * rounds, s);
  s.documents.resize(2 * rounds);
  for (int r = 0; r < rounds; ++r) {
    const std::string key = fresh_word(), value = fresh_word();
    const std::string code = std::to_string(1000000 + draw(rng, 9000000));
    // ids ascend with the index: either document of the pair may have the smaller id.
    const int da = 2 * r + static_cast<int>(draw(rng, 2)), db = 4 * r + 1 - da;
    s.documents[da] = doc_with(pointer_fact(key, code, interleave::document_tag(s.ids[db])));
    s.documents[db] = doc_with(pointer_value_fact(value));
    const std::string question = pointer_question(key);
    if (r == 0) {
      s.question = question;
      s.answer = value;
      s.positives = {da};
    }
    add_retrieval_round(s, da, /*naming_trained=*/r == 0);
    add_retrieval_round(s, db);
    s.response.push_back({interleave::kEndOfRetrieve, true});
    s.response.push_back({interleave::question_restatement(question), false});
    s.response.push_back(answer_segment(value));
  }
  return s;
}

// Induction warm-up for the "lm" objective: a block of needle-like lines, 7-digit numbers and
// haystack words written twice, so every token of the second copy is predictable only by copying
// from the first (the circuit the protocol's answers and ids need, with a dense signal).
// "repeat_chars" (chars=true): the block is 24 random lowercase letters, the simplest copy check.
// Its fixed length lets a head that attends a fixed 24 tokens back do the copying; such a model
// fails on any other length (session 5), so it teaches no content-based copying.
// "copy_chars": copy_pairs blocks of 1-6 lines of 4-40 random letters and digits (the copy_*
// knobs), each followed by "Again:" and the block again. The varying length rules out a fixed
// offset, but not copying character k from k places after the block's start (an anchor): the
// session-5 models that learnt it did not copy a source placed inside prose (copy_find).
// "copy_ids": the same with each symbol a document id "[i]" (i < max_doc_id, or 4096) half of
// the time. With a bytes+ids tokenizer an id is one token of thousands, so matching the current
// token finds the one right place to copy from.
// "copy_only_ids": the same with every symbol a document id, so no letter or digit is a copy
// target. Aimed at the digit copy NIAH's answers use: in session 24's joint stages copy_ids in the
// mix broke NIAH's first digit (in-context 8/32 at 450 steps, 32/32 without it); copy_only_ids in
// its place read 31/32 at 400 (24/32 at 250), on one 32-sample probe per checkpoint.
// "periodic": a random string of 1-8 letters and digits repeated to 40-160 characters. Each
// sample is predictable from the token a fixed distance back, which rewards the previous-token
// (short-offset) heads that an induction head composes with.
// Session 5 (results/msa-small-copy/README.md): this copy was learnt only with short blocks, many
// pairs per transcript and rope_theta 1e6 (Qwen3's value; with head_dim 32 and 1e4 few rotary
// frequencies stay steady over a copy's distance): the tiny model within about 2M tokens. The
// same data with 1e4, or long blocks one pair at a time, stayed at the no-copy loss for 4-33M tokens.
char random_symbol(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  return kAlphabet[draw(rng, sizeof(kAlphabet) - 1)];
}

// A length in [copy_min_len, copy_max_len] and a string of that many random symbols: the copy
// tasks' block, code and text lengths.
int copy_length(std::mt19937_64& rng, const TrainingDataConfig& cfg) {
  return cfg.copy_min_len + static_cast<int>(draw(rng, cfg.copy_max_len - cfg.copy_min_len + 1));
}

std::string random_symbols(std::mt19937_64& rng, int n) {
  std::string out;
  for (; n > 0; --n) out += random_symbol(rng);
  return out;
}

TrainingSample periodic_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  const std::string period = random_symbols(rng, 1 + static_cast<int>(draw(rng, 8)));
  std::string text;
  for (size_t n = 40 + draw(rng, 121); text.size() < n;) text += period[text.size() % period.size()];
  s.positives = {static_cast<int>(draw(rng, ndocs))};
  s.question = "Continue the pattern.";
  s.response.push_back({text + interleave::kImEnd, true});
  s.answer = text;
  return s;
}

// The symbols of a copy block (see above).
enum class CopySymbols { Chars, HalfIds, Ids };

// One block of copy_chars / copy_ids / copy_only_ids.
std::string copy_block(std::mt19937_64& rng, const TrainingDataConfig& cfg, CopySymbols symbols) {
  const uint64_t id_range = cfg.max_doc_id > 0 ? static_cast<uint64_t>(cfg.max_doc_id) : 4096;
  std::string block;
  for (int line = 1 + static_cast<int>(draw(rng, cfg.copy_max_lines)); line > 0; --line) {
    const int len = copy_length(rng, cfg);
    for (int i = 0; i < len; ++i) {
      if (symbols == CopySymbols::Ids || (symbols == CopySymbols::HalfIds && draw(rng, 2) == 0))
        block += interleave::document_tag(draw(rng, id_range));
      else
        block += random_symbol(rng);
    }
    block += "\n";
  }
  return block;
}

// copy_pairs blocks, each followed by up to copy_gap_words haystack words, "Again:" (a mark
// where the copy starts, as "is: " marks where an answer value starts) and its trained copy.
// Several pairs per transcript keep the routing template from being most of every packed row.
TrainingSample copy_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs, CopySymbols symbols) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  for (int pair = 0; pair < cfg.copy_pairs; ++pair) {
    const std::string block = copy_block(rng, cfg, symbols);
    std::string gap;
    if (cfg.copy_gap_words > 0)
      if (const int words = static_cast<int>(draw(rng, cfg.copy_gap_words + 1)); words > 0) gap = filler(rng, words) + "\n";
    s.response.push_back({block + gap + "Again:\n", false});
    s.response.push_back({pair + 1 == cfg.copy_pairs ? block + interleave::kImEnd : block, true});
    s.answer = block;
  }
  s.positives = {static_cast<int>(draw(rng, ndocs))};
  s.question = "Repeat the text.";
  return s;
}

// "copy_find": 10 to 10 + copy_gap_words haystack words with "The special code is: CODE." at a
// random sentence boundary (CODE: copy_min_len..copy_max_len letters and digits), the question,
// and the answer in the protocol's form. The source is inside prose and found by its content, as
// a needle's value is: the bridge from copy_chars to NIAH.
TrainingSample copy_find_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  const std::string code = random_symbols(rng, copy_length(rng, cfg));
  const std::string prose = filler(rng, 10 + static_cast<int>(draw(rng, cfg.copy_gap_words + 1)));
  s.question = "What is the special code?";
  s.response.push_back({insert_sentence(rng, prose, "The special code is: " + code + ".") + "\n" + s.question + "\n", false});
  s.response.push_back(answer_segment(code));
  s.answer = code;
  s.positives = {static_cast<int>(draw(rng, ndocs))};
  return s;
}

// "kv_direct" / "kv_question": associative recall, the NIAH answer's lookup with a dense signal.
// 1..copy_pairs needles "One of the special magic numbers for KEY is: VALUE." (distinct keys,
// 0..copy_gap_words haystack words before each), then every key is asked once in random order:
// kv_direct writes "The special magic number for KEY is: " and trains "VALUE"; kv_question
// restates the NIAH question exactly as the interleave protocol does and trains the answer.
// Every value follows the same "is: ", so no fixed offset or anchor finds it: only matching the
// asked key against the needles' keys (content) does, which copy_chars does not force (session 5).
TrainingSample kv_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs, bool question_form) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  const int pairs = 1 + static_cast<int>(draw(rng, cfg.copy_pairs));
  std::set<std::string> seen;
  std::vector<std::pair<std::string, std::string>> kv;
  while (static_cast<int>(kv.size()) < pairs) {
    std::string key = needle_key(rng, cfg);
    if (seen.insert(key).second) kv.emplace_back(key, std::to_string(1000000 + draw(rng, 9000000)));
  }
  std::string context;
  for (const auto& [key, value] : kv) {
    if (cfg.copy_gap_words > 0)
      if (const int words = static_cast<int>(draw(rng, cfg.copy_gap_words + 1)); words > 0) context += filler(rng, words) + " ";
    context += niah_needle_sentence("numbers", key, value) + "\n";
  }
  std::vector<int> order(kv.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), rng);
  auto question = [](const std::string& k) { return niah_single_question("number", k); };
  s.question = question(kv[order[0]].first);
  s.answer = kv[order[0]].second;
  s.response.push_back({context, false});
  for (int i : order) {
    if (question_form) {
      s.response.push_back({interleave::question_restatement(question(kv[i].first)), false});
      s.response.push_back(answer_segment(kv[i].second));
    } else {
      s.response.push_back({"The special magic number for " + kv[i].first + " is: ", false});
      s.response.push_back({kv[i].second + "\n", true, TrainingSegment::Kind::Answer});
    }
  }
  s.positives = {static_cast<int>(draw(rng, ndocs))};
  return s;
}

// "lookup_chars": the bare induction task. A random string of copy_min_len..copy_max_len letters
// and digits, then copy_pairs lines, each a 3-symbol piece of the string at a random place
// (not trained) followed by the 6 symbols after it there (trained, scored as answer tokens).
// The source is found only by matching the piece's content: neither a fixed offset nor an anchor
// (line or block start) points at it, which rules out the shortcuts copy_chars allows.
TrainingSample lookup_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) {
  constexpr int kKey = 3, kValue = 6;
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  const std::string text = random_symbols(rng, std::max(kKey + kValue, copy_length(rng, cfg)));
  s.response.push_back({text + "\n", false});
  for (int q = 0; q < cfg.copy_pairs; ++q) {
    const size_t at = draw(rng, text.size() - kKey - kValue + 1);
    s.response.push_back({text.substr(at, kKey), false});
    s.response.push_back({text.substr(at + kKey, kValue) + "\n", true, TrainingSegment::Kind::Answer});
    if (q == 0) s.answer = text.substr(at + kKey, kValue);
  }
  s.question = "Continue each piece of the text.";
  s.positives = {static_cast<int>(draw(rng, ndocs))};
  return s;
}

// "induct_chars": copy_min_len..copy_max_len symbols where, from the eighth on, each step either
// draws a random letter or digit or (probability 1/8) repeats a span of 4-12 earlier symbols from a
// random place. No delimiter marks a repeat: its symbols after the second are predictable only by
// matching the symbols before them against the earlier text (an induction head), whatever the
// layout around them. lookup_chars' fixed lines let a model learn a line-bound lookup that does
// not carry over to a needle's digits (session 6); this has no lines to lean on.
// Repeated symbols from the third on are trained as answer tokens (the span's last one unscored).
TrainingSample induct_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  const auto n = static_cast<size_t>(copy_length(rng, cfg));
  std::string text, pending;
  while (text.size() < n) {
    if (text.size() < 8 || draw(rng, 8) != 0) {
      const char c = random_symbol(rng);
      text += c;
      pending += c;
      continue;
    }
    const size_t len = std::min<size_t>(4 + draw(rng, 9), n - text.size());
    const size_t from = draw(rng, text.size() - 2);
    std::string span;
    for (size_t i = 0; i < len; ++i) span += (from + i < text.size() ? text[from + i] : span[from + i - text.size()]);
    text += span;
    pending += span.substr(0, std::min<size_t>(2, span.size()));
    if (span.size() > 2) {
      s.response.push_back({pending, false});
      s.response.push_back({span.substr(2), true, TrainingSegment::Kind::Answer});
      pending.clear();
    }
  }
  if (!pending.empty()) s.response.push_back({pending, false});
  s.response.push_back({"\n", false});
  s.question = "Continue the text.";
  s.answer = text;
  s.positives = {static_cast<int>(draw(rng, ndocs))};
  return s;
}

TrainingSample repeat_sample(std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs, bool chars) {
  TrainingSample s;
  fill_documents(rng, cfg, ndocs, s);
  std::string block;
  if (chars)
    for (int i = 0; i < 24; ++i) block += static_cast<char>('a' + draw(rng, 26));
  const int lines = chars ? 0 : 2 + static_cast<int>(draw(rng, 5));
  for (int i = 0; i < lines; ++i) {
    switch (draw(rng, 3)) {
      case 0:
        block += niah_needle_sentence("numbers", niah_word_key(rng()), std::to_string(1000000 + draw(rng, 9000000)));
        break;
      case 1:
        block += std::to_string(1000000 + draw(rng, 9000000)) + " " + niah_word_key(rng()) + ".";
        break;
      default:
        block += filler(rng, 4 + static_cast<int>(draw(rng, 8)));
    }
    block += "\n";
  }
  s.positives = {static_cast<int>(draw(rng, ndocs))};
  s.question = "Repeat the text.";
  s.response.push_back({block, false});
  s.response.push_back({block + interleave::kImEnd, true});
  s.answer = block;
  return s;
}

// Every task by name: dispatch, mixture checks and the error message read this one table.
using Generator = TrainingSample (*)(std::mt19937_64&, const TrainingDataConfig&, int);
#define MSABENCH_TASK(expr) [](std::mt19937_64& rng, const TrainingDataConfig& cfg, int ndocs) { return expr; }
const std::map<std::string, Generator> kTasks = {
    {"niah", niah_sample},
    {"twohop", twohop_sample},
    {"pointer", pointer_sample},
    {"pointer_read", pointer_read_sample},
    {"repeat", MSABENCH_TASK(repeat_sample(rng, cfg, ndocs, false))},
    {"repeat_chars", MSABENCH_TASK(repeat_sample(rng, cfg, ndocs, true))},
    {"periodic", periodic_sample},
    {"copy_find", copy_find_sample},
    {"induct_chars", induct_sample},
    {"lookup_chars", lookup_sample},
    {"kv_direct", MSABENCH_TASK(kv_sample(rng, cfg, ndocs, false))},
    {"kv_question", MSABENCH_TASK(kv_sample(rng, cfg, ndocs, true))},
    {"copy_chars", MSABENCH_TASK(copy_sample(rng, cfg, ndocs, CopySymbols::Chars))},
    {"copy_ids", MSABENCH_TASK(copy_sample(rng, cfg, ndocs, CopySymbols::HalfIds))},
    {"copy_only_ids", MSABENCH_TASK(copy_sample(rng, cfg, ndocs, CopySymbols::Ids))},
};
#undef MSABENCH_TASK

// Named mixtures. NIAH transcripts alone wear a copy circuit down before answers use it
// (session 5): niah_copy keeps it trained while the needle lookup is learnt.
const std::map<std::string, std::string> kNamedMixtures = {
    {"mix", "twohop+niah+niah"}, {"niah_copy", "copy_chars+niah"}, {"copy_mix", "periodic+copy_chars"}};

std::string known_tasks() {
  std::string out;
  for (const auto& [name, gen] : kTasks) out += name + ", ";
  for (const auto& [name, parts] : kNamedMixtures) out += name + ", ";
  return out + "or a mixture a+b";
}

}  // namespace

namespace {
// "a+b+..." (or a named mixture) as its task names.
std::vector<std::string> task_parts(const std::string& task_or_mixture) {
  std::string task = task_or_mixture;
  if (auto named = kNamedMixtures.find(task); named != kNamedMixtures.end()) task = named->second;
  std::vector<std::string> parts(1);
  for (char c : task) {
    if (c == '+')
      parts.emplace_back();
    else
      parts.back().push_back(c);
  }
  return parts;
}
}  // namespace

void validate_training_data(const TrainingDataConfig& cfg) {
  if (cfg.min_docs < 2 || cfg.max_docs < cfg.min_docs) throw Error("training data: need 2 <= min_docs <= max_docs");
  if (cfg.doc_words_min > cfg.doc_words) throw Error("training data: need doc_words_min <= doc_words");
  if (cfg.needle_position != "random" && cfg.needle_position != "end")
    throw Error("training data: needle_position must be random or end");
  if (cfg.max_distractors < 0 || cfg.max_distractors > 16) throw Error("training data: max_distractors must be in [0, 16]");
  if (cfg.extra_questions < 0 || cfg.extra_questions > 16) throw Error("training data: extra_questions must be in [0, 16]");
  if (cfg.key_style != "words" && cfg.key_style != "ids") throw Error("training data: key_style must be words or ids");
  if (cfg.copy_min_len < 1 || cfg.copy_max_len < cfg.copy_min_len || cfg.copy_max_lines < 1 || cfg.copy_pairs < 1 ||
      cfg.copy_gap_words < 0)
    throw Error("training data: need 1 <= copy_min_len <= copy_max_len, copy_max_lines >= 1, copy_pairs >= 1, copy_gap_words >= 0");
  if (cfg.max_doc_id > 0 && cfg.max_doc_id < cfg.max_docs)
    throw Error("training data: max_doc_id must be 0 or at least max_docs");
  if (cfg.doc_id_range != "log_uniform" && cfg.doc_id_range != "uniform")
    throw Error("training data: doc_id_range must be log_uniform or uniform");
  for (const auto& p : task_parts(cfg.task)) {
    if (!kTasks.count(p))
      throw Error("training data: unknown task '" + p + "'" + (p == cfg.task ? "" : " in mixture '" + cfg.task + "'") +
                  " (" + known_tasks() + ")");
    if (p == "pointer_read" && cfg.max_doc_id > 0 && cfg.max_doc_id < 2 * cfg.copy_pairs)
      throw Error("training data: pointer_read has 2 documents per round: max_doc_id must be 0 or at least 2 * copy_pairs");
  }
}

TrainingSample make_training_sample(const TrainingDataConfig& cfg, uint64_t index) {
  validate_training_data(cfg);
  std::mt19937_64 rng(fnv1a64(std::to_string(index), cfg.seed * 0x9E3779B97F4A7C15ULL + 7));
  const int ndocs = cfg.min_docs + static_cast<int>(draw(rng, cfg.max_docs - cfg.min_docs + 1));
  // A mixture "a+b+..." draws one of its tasks uniformly per sample; a task listed twice is drawn
  // twice as often.
  const std::vector<std::string> parts = task_parts(cfg.task);
  const std::string& task = parts.size() > 1 ? parts[draw(rng, parts.size())] : parts[0];
  return kTasks.at(task)(rng, cfg, ndocs);
}

}  // namespace msabench
