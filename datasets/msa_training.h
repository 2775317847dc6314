// Training samples for the suite's own MSA model, written in the memory-interleave format the
// model must produce at inference (msa-reference.md §9): the model names documents "[i]" and ends
// each retrieval step with <|object_ref_end|>; the system injects "[i]. TEXT\n<|object_ref_end|>";
// the model ends retrieval with <End-of-Retrieve>; the system restates the question; the model
// answers "The answer to the question is: ...<|im_end|>".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace msabench {

// Exact protocol strings.
namespace interleave {
inline constexpr const char* kRoutingPrefix = "\nPlease answer the question based on the above historical document information\n\n";
inline constexpr const char* kRoutingSuffix = "\nPlease return all documents related to the question\n";
inline constexpr const char* kTemplateHead = "<|im_start|>user\n";  // stage-1 template prefix
inline constexpr const char* kTemplateTail = "<|im_end|>\n";        // role -2
inline constexpr const char* kResponseHead = "<|im_start|>";        // role -1
inline constexpr const char* kObjectRefEnd = "<|object_ref_end|>";
inline constexpr const char* kEndOfRetrieve = "<End-of-Retrieve>";
inline constexpr const char* kAnswerPrefix = "The answer to the question is: ";
inline constexpr const char* kImEnd = "<|im_end|>";
// "[i]": how a document is named (one token with the bytes+ids tokenizer). Inline, so that the
// datasets library (synth_pointer) names documents the same way without linking the trainer's data.
inline std::string document_tag(int64_t id) { return "[" + std::to_string(id) + "]"; }
// "<|im_start|>[i]. TEXT[i]<|im_end|>"
std::string memory_document(int64_t id, const std::string& text);
// The same document as its three pieces (they concatenate to memory_document): the head and text
// "<|im_start|>[i]. TEXT", the closing tag "[i]" (a training target when documents are inline) and
// "<|im_end|>".
struct MemoryDocumentPieces {
  std::string head_and_text, closing_tag, end;
};
MemoryDocumentPieces memory_document_pieces(int64_t id, const std::string& text);
// "\nPlease answer ...\n\n" + question + "\nPlease return all documents related to the question\n"
std::string routing_query(const std::string& question);
// "<|im_start|>The user's question is: Q\n<|object_ref_end|>"
std::string question_restatement(const std::string& question);
}  // namespace interleave

struct TrainingSegment {
  // What a model-written segment is, set by the generator that writes it (the trainer masks
  // retrieval steps under the "lm" objective and scores answer values).
  enum class Kind : uint8_t { Text, RetrievalStep, Answer };
  std::string text;
  bool trained;  // LM loss on these tokens (model output) or not (system-injected)
  Kind kind = Kind::Text;  // RetrievalStep: "[i]<|object_ref_end|>"; Answer: interleave::kAnswerPrefix + value + <|im_end|>
  // System-injected document text that is part of the router query, as the engine routes a later
  // round with the question plus the documents injected in the round before (msa-reference §9.3).
  bool routes = false;
};

struct TrainingSample {
  std::vector<std::string> documents;  // texts; document i is wrapped by interleave::memory_document(ids[i], ...)
  std::vector<int64_t> ids;            // the ids the model sees for them ("[id]"), ascending like corpus indices
  std::vector<int> positives;          // documents the question needs (aux-loss positives)
  std::string question;
  std::vector<TrainingSegment> response;  // after the response head <|im_start|>
  std::string answer;
  // niah: every needle's document and key, the asked one first (read by the trainer's
  // key_match_weight; the needle sentence holds "for KEY is:"). Empty for other tasks.
  struct NeedleKey {
    int document;
    std::string key;
  };
  std::vector<NeedleKey> needle_keys;
};

struct TrainingDataConfig {
  std::string task = "niah";     // niah | twohop | pointer | pointer_read (the pointer's reading and answer, dense) | mix | repeat, repeat_chars, copy_chars, copy_ids, copy_only_ids, copy_find, periodic, copy_mix, niah_copy, kv_direct, kv_question, lookup_chars, induct_chars (copy and lookup warm-ups for the "lm" objective)
  int min_docs = 8, max_docs = 32;  // documents per sample; pointer_read has 2 per round (copy_pairs) instead
  int doc_words = 40;            // haystack words per document (about); the most when doc_words_min > 0
  int doc_words_min = 0;         // > 0: each document draws its length from [doc_words_min, doc_words]
  // > 0: document ids are distinct random numbers below R, R log-uniform in [ndocs, max_doc_id], so
  // the model learns to name ids as large as a memory of max_doc_id documents has (eval ids are
  // corpus indices). 0: ids 0..ndocs-1.
  int64_t max_doc_id = 0;
  // "log_uniform" (above) or "uniform": R = max_doc_id always. Log-uniform ranges make most ids
  // small, so a model can name small ids from a prior; uniform ones make every id a copy.
  std::string doc_id_range = "log_uniform";
  // Where the gold needle goes in its document: "random" (a sentence boundary) or "end" (last
  // sentence, next to the trailing "[id]", so the id and the key share a pooled chunk: a curriculum
  // step for small models that must name the document).
  std::string needle_position = "random";
  // niah: this many more needles (other keys and values) go into the gold document, and after the
  // answer the sample asks each of them again ("The user's question is: ..." then the answer), so
  // one memory pass trains several answer copies from the injected text. 0 = the protocol only.
  int extra_questions = 0;
  // twohop: false = one transcript per chain, routed once by the question with both facts'
  // documents positive. true = one sample per retrieval step, as the paper splits multi-hop chains
  // (msa-reference §7): hop 1 routes by the question (positive: the first fact's document) and
  // trains naming it; hop 2 is conditioned on hop 1 (its naming and injected fact, untrained),
  // routes by the question plus that injected fact (the engine's round-2 query), has the second
  // fact's document as its positive, and trains naming it, <End-of-Retrieve> and the answer.
  bool per_hop_samples = false;
  // niah, kv_*: what a needle's key is: "words" (RULER's word keys, several byte tokens each) or
  // "ids" (a document-id tag "[i]", i < 4096: one token with a bytes+ids tokenizer). "ids" tells
  // apart failing to match multi-token keys from failing to match keys at all.
  std::string key_style = "words";
  // niah: each sample has 0..max_distractors needles with other keys in random documents.
  int max_distractors = 3;
  // copy_chars, copy_ids: 1..copy_max_lines lines of copy_min_len..copy_max_len symbols. Short
  // blocks first put the copy a few tokens back, where the induction circuit is found sooner.
  int copy_min_len = 4, copy_max_len = 40, copy_max_lines = 6;
  int copy_pairs = 1;  // blocks (each with its copy) per transcript; kv_*: the most needles; pointer_read: rounds
  // 0..copy_gap_words haystack words between a block and its copy: copying across prose at the
  // distances of a needle from its answer (a copy learnt a few tokens back does not reach there).
  // pointer_read: each document's 0..copy_gap_words haystack words around its fact.
  int copy_gap_words = 0;
  uint64_t seed = 1;
};

// Throws Error for values no generator accepts (the trainer calls it at config load).
void validate_training_data(const TrainingDataConfig& cfg);
// Deterministic: sample(i) depends only on the config and i (so training resumes exactly).
// Validates cfg first.
TrainingSample make_training_sample(const TrainingDataConfig& cfg, uint64_t index);

}  // namespace msabench
