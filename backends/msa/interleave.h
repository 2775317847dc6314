// Memory Interleave as a text-level state machine (msa-reference.md §9), separate from the model so
// tests can drive it with scripted token streams. The backend feeds it every decoded piece of text
// and performs what it asks: keep decoding, start a new round with a regenerate prompt (after a
// retrieval step), inject text into the running call, or stop.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace msabench {

struct InterleaveOptions {
  bool interleave = true;     // false: one retrieval round, then answer (Table 4 "w/o memory interleave")
  bool inject_text = true;    // false: inject only the delimiter (Table 4 "w/o original text")
  int max_rounds = 6;         // retrieval rounds before the answer is forced
  int max_call_tokens = 256;  // tokens generated per engine call
  size_t max_ret_chars = 1000;  // characters of a retrieval step before it is force-ended (reference)
};

class InterleaveSession {
 public:
  enum class Action {
    Continue,     // keep decoding in this call
    NewRound,     // retrieval step finished: re-prefill with regenerate_prompt()
    Inject,       // feed injection() into the running call, then keep decoding (answer phase)
    Done,         // answer complete (or limits reached)
  };

  // doc_text: corpus index -> original text (ids the model may name).
  InterleaveSession(std::string question, const std::map<int64_t, std::string>* doc_text, InterleaveOptions opt);

  // Text of piece A (routing query), B and C of the first prompt.
  std::string routing_text() const;
  // The generated + injected text of previous rounds (appended after A, B, C in a regenerate prompt),
  // and the character range in it of the latest injected documents (they route in the next round).
  const std::string& transcript() const { return transcript_; }
  std::pair<size_t, size_t> routing_region() const { return region_; }

  void start_call();                       // a new engine call begins (prefill done)
  Action on_text(const std::string& piece);  // one decoded token's text
  Action on_call_limit();                  // max_call_tokens reached in this call
  const std::string& injection() const { return injection_; }

  // Outcome
  const std::string& response() const { return response_; }  // everything generated and injected
  // After the last "The answer to the question is:"; without it, the model-written text only.
  std::string answer() const;
  std::vector<int64_t> named_ids() const;    // ids the model wrote, in first-named order
  std::vector<int64_t> predicted_ids() const;  // reference §9.5: every [n] in the response (sorted set)
  int rounds() const { return rounds_; }
  bool answering() const { return answering_; }  // past the retrieval steps
  std::string stop_reason() const { return stop_reason_; }        // answer | max_call_tokens | im_end_without_retrieval_end
  std::string retrieval_end() const { return retrieval_end_; }    // end_of_retrieve | max_rounds | single_round | max_ret_chars | max_call_tokens

  // [n] ids in text, in order of appearance (no dedup).
  static std::vector<int64_t> bracket_ids(const std::string& text);

 private:
  Action finish_round();
  Action begin_answer(const std::string& why);
  std::string question_;
  const std::map<int64_t, std::string>* docs_;
  InterleaveOptions opt_;
  std::string transcript_, response_, generated_, call_text_, round_text_, injection_, stop_reason_, retrieval_end_;
  std::pair<size_t, size_t> region_{0, 0};
  std::vector<int64_t> named_;
  int rounds_ = 0;
  bool answering_ = false, injected_in_call_ = false;
};

}  // namespace msabench
