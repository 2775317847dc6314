// The Memory Interleave state machine driven by scripted model output.
#include <gtest/gtest.h>

#include "backends/msa/interleave.h"

using namespace msabench;
using Action = InterleaveSession::Action;

namespace {
const std::map<int64_t, std::string> kDocs = {{3, "Bill Watts was born May 5, 1939."}, {7, "Erik Watts is the son of Bill Watts."}};

// Feeds text one character at a time (like a byte-level model); returns the first non-Continue action.
Action feed(InterleaveSession& s, const std::string& text) {
  for (char c : text) {
    Action a = s.on_text(std::string(1, c));
    if (a != Action::Continue) return a;
  }
  return Action::Continue;
}

// A max_rounds=1 session after its one retrieval step "[3]": the system has injected document 3 and
// forced the end of retrieval, so the next call writes the answer.
InterleaveSession after_the_only_round(const std::string& question) {
  InterleaveOptions o;
  o.max_rounds = 1;
  InterleaveSession s(question, &kDocs, o);
  s.start_call();
  EXPECT_EQ(feed(s, "[3]<|object_ref_end|>"), Action::NewRound);
  return s;
}
}  // namespace

TEST(Interleave, TwoRoundsThenAnswer) {
  InterleaveSession s("When was Erik Watts' father born?", &kDocs, {});
  EXPECT_NE(s.routing_text().find("historical document information\n\nWhen was Erik"), std::string::npos);
  s.start_call();
  EXPECT_EQ(feed(s, "[7]<|object_ref_end|>"), Action::NewRound);
  EXPECT_EQ(s.injection(), "[7]. Erik Watts is the son of Bill Watts.\n<|object_ref_end|>");
  auto [b, e] = s.routing_region();
  EXPECT_EQ(s.transcript().substr(b, e - b), "[7]. Erik Watts is the son of Bill Watts.\n");
  s.start_call();
  EXPECT_EQ(feed(s, "[3]<|object_ref_end|>"), Action::NewRound);
  s.start_call();
  EXPECT_EQ(feed(s, "<End-of-Retrieve>"), Action::Inject);
  EXPECT_EQ(s.injection(), "<|im_start|>The user's question is: When was Erik Watts' father born?\n<|object_ref_end|>");
  EXPECT_EQ(feed(s, "The answer to the question is: May 5, 1939<|im_end|>"), Action::Done);
  EXPECT_EQ(s.answer(), "May 5, 1939");
  EXPECT_EQ(s.named_ids(), (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(s.predicted_ids(), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(s.rounds(), 2);
  EXPECT_EQ(s.stop_reason(), "answer");
}

TEST(Interleave, MalformedAndUnknownIdsInjectOnlyTheDelimiter) {
  InterleaveSession s("q?", &kDocs, {});
  s.start_call();
  EXPECT_EQ(feed(s, "[x][99]<|object_ref_end|>"), Action::NewRound);
  EXPECT_EQ(s.injection(), "<|object_ref_end|>");
  EXPECT_EQ(s.named_ids(), (std::vector<int64_t>{99}));  // named, but not in memory
  EXPECT_EQ(InterleaveSession::bracket_ids("a [12] b [x] [3][007]"), (std::vector<int64_t>{12, 3, 7}));
}

TEST(Interleave, MissingDelimiterIsForceEndedAndCallLimitsBound) {
  InterleaveOptions o;
  o.max_ret_chars = 20;
  InterleaveSession s("q?", &kDocs, o);
  s.start_call();
  EXPECT_EQ(feed(s, std::string(50, 'z')), Action::Inject);  // retrieval step too long: answer
  EXPECT_EQ(s.retrieval_end(), "max_ret_chars");
  EXPECT_EQ(s.on_call_limit(), Action::Done);  // answer phase cut by the token limit
  InterleaveSession t("q?", &kDocs, {});
  t.start_call();
  EXPECT_EQ(feed(t, "[3"), Action::Continue);
  EXPECT_EQ(t.on_call_limit(), Action::Inject);  // retrieval cut by the limit: go to the answer
}

TEST(Interleave, MaxRoundsAndSingleRoundForceTheAnswer) {
  InterleaveSession s = after_the_only_round("q?");
  EXPECT_NE(s.transcript().find("<End-of-Retrieve><|im_start|>The user's question is: q?\n<|object_ref_end|>"),
            std::string::npos);
  s.start_call();
  EXPECT_EQ(feed(s, "The answer to the question is: x<|im_end|>"), Action::Done);
  EXPECT_EQ(s.retrieval_end(), "max_rounds");
  EXPECT_EQ(s.stop_reason(), "answer");
  InterleaveOptions single;
  single.interleave = false;
  InterleaveSession t("q?", &kDocs, single);
  t.start_call();
  EXPECT_EQ(feed(t, "[3]<|object_ref_end|>"), Action::NewRound);
  EXPECT_EQ(t.retrieval_end(), "single_round");
}

TEST(Interleave, WithoutOriginalTextAndWithoutProtocol) {
  InterleaveOptions o;
  o.inject_text = false;
  InterleaveSession s("q?", &kDocs, o);
  s.start_call();
  EXPECT_EQ(feed(s, "[3]<|object_ref_end|>"), Action::NewRound);
  EXPECT_EQ(s.injection(), "<|object_ref_end|>");
  InterleaveSession t("q?", &kDocs, {});
  t.start_call();
  EXPECT_EQ(feed(t, "just an answer<|im_end|>"), Action::Done);
  EXPECT_EQ(t.stop_reason(), "im_end_without_retrieval_end");
  EXPECT_EQ(t.answer(), "just an answer");
}

// A response cut off before "The answer to the question is:" is scored on what the model wrote: the
// injected document (here the gold fact) must not count as its answer.
TEST(Interleave, AnswerWithoutTheMarkerExcludesInjectedText) {
  InterleaveSession s = after_the_only_round("When was Bill Watts born?");
  EXPECT_NE(s.response().find("May 5, 1939"), std::string::npos);  // injected
  s.start_call();
  EXPECT_EQ(feed(s, "He was"), Action::Continue);
  EXPECT_EQ(s.on_call_limit(), Action::Done);
  EXPECT_EQ(s.answer().find("May 5, 1939"), std::string::npos) << s.answer();
  EXPECT_NE(s.answer().find("He was"), std::string::npos) << s.answer();
}
