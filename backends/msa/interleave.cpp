#include "backends/msa/interleave.h"

#include <algorithm>
#include <regex>

#include "datasets/msa_training.h"

namespace msabench {

InterleaveSession::InterleaveSession(std::string question, const std::map<int64_t, std::string>* doc_text,
                                     InterleaveOptions opt)
    : question_(std::move(question)), docs_(doc_text), opt_(opt) {}

std::string InterleaveSession::routing_text() const { return interleave::routing_query(question_); }

std::vector<int64_t> InterleaveSession::bracket_ids(const std::string& text) {
  static const std::regex re("\\[(\\d+)\\]");
  std::vector<int64_t> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    const std::string digits = (*it)[1].str();
    if (digits.size() > 15) continue;  // not a corpus index
    out.push_back(std::stoll(digits));
  }
  return out;
}

void InterleaveSession::start_call() {
  call_text_.clear();
  round_text_.clear();
  injected_in_call_ = false;
}

InterleaveSession::Action InterleaveSession::on_text(const std::string& piece) {
  call_text_ += piece;
  round_text_ += piece;
  response_ += piece;
  generated_ += piece;
  if (answering_) {
    if (round_text_.find(interleave::kImEnd) != std::string::npos) {
      stop_reason_ = "answer";
      return Action::Done;
    }
    return Action::Continue;
  }
  if (round_text_.find(interleave::kImEnd) != std::string::npos) {  // answered without the protocol
    stop_reason_ = "im_end_without_retrieval_end";
    return Action::Done;
  }
  if (round_text_.find(interleave::kEndOfRetrieve) != std::string::npos) return begin_answer("end_of_retrieve");
  if (round_text_.find(interleave::kObjectRefEnd) != std::string::npos) return finish_round();
  if (!injected_in_call_ && round_text_.size() > opt_.max_ret_chars) return begin_answer("max_ret_chars");
  return Action::Continue;
}

InterleaveSession::Action InterleaveSession::finish_round() {
  ++rounds_;
  for (auto id : bracket_ids(round_text_))
    if (std::find(named_.begin(), named_.end(), id) == named_.end()) named_.push_back(id);
  // "[id]. TEXT\n" for each distinct known id, ascending, then the delimiter (unknown ids skipped).
  std::string inj;
  if (opt_.inject_text) {
    std::set<int64_t> ids;
    for (auto id : bracket_ids(round_text_))
      if (docs_ && docs_->count(id)) ids.insert(id);
    for (auto id : ids) inj += "[" + std::to_string(id) + "]. " + docs_->at(id) + "\n";
  }
  inj += interleave::kObjectRefEnd;
  transcript_ += round_text_;
  region_ = {transcript_.size(), transcript_.size() + inj.size() - std::string(interleave::kObjectRefEnd).size()};
  transcript_ += inj;
  response_ += inj;
  injection_ = inj;
  if (!opt_.interleave || rounds_ >= opt_.max_rounds) {
    // No further routing rounds: append the end of retrieval ourselves and answer in a new call.
    transcript_ += interleave::kEndOfRetrieve;
    response_ += interleave::kEndOfRetrieve;
    const std::string restate = interleave::question_restatement(question_);
    transcript_ += restate;
    response_ += restate;
    answering_ = true;
    retrieval_end_ = opt_.interleave ? "max_rounds" : "single_round";
  }
  return Action::NewRound;
}

InterleaveSession::Action InterleaveSession::begin_answer(const std::string& why) {
  answering_ = true;
  injection_ = interleave::question_restatement(question_);
  response_ += injection_;
  transcript_ += round_text_ + injection_;
  round_text_.clear();
  injected_in_call_ = true;
  retrieval_end_ = why;
  return Action::Inject;
}

InterleaveSession::Action InterleaveSession::on_call_limit() {
  if (answering_) {
    stop_reason_ = "max_call_tokens";
    return Action::Done;
  }
  return begin_answer("max_call_tokens");
}

std::string InterleaveSession::answer() const {
  const std::string marker = interleave::kAnswerPrefix;
  const std::string trimmed_marker = marker.substr(0, marker.size() - 1);  // without the trailing space
  size_t at = response_.rfind(trimmed_marker);
  // Without the marker only what the model wrote counts: the injected documents hold the needle, and
  // a response cut off after an injection must not be credited with its text.
  std::string tail = at == std::string::npos ? generated_ : response_.substr(at + trimmed_marker.size());
  size_t end = tail.find(interleave::kImEnd);
  if (end != std::string::npos) tail = tail.substr(0, end);
  auto b = tail.find_first_not_of(" \t\n");
  auto e = tail.find_last_not_of(" \t\n");
  return b == std::string::npos ? "" : tail.substr(b, e - b + 1);
}

std::vector<int64_t> InterleaveSession::named_ids() const { return named_; }

std::vector<int64_t> InterleaveSession::predicted_ids() const {
  auto ids = bracket_ids(response_);
  std::set<int64_t> s(ids.begin(), ids.end());
  return std::vector<int64_t>(s.begin(), s.end());
}

}  // namespace msabench
