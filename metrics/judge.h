// LLM judge for the paper's 0-5 answer score (msa-reference.md section 10.5).
//
// LlmJudge renders the rubric prompt for (question, gold answer, prediction), asks a ChatModel,
// parses the reply with the reference's rule and caches the judgment on disk by (judge model,
// prompt template, question, gold, prediction). ChatModel is the plug-in point: the HTTP client
// for OpenAI-compatible chat-completions endpoints lives in judge_http.cpp (the only translation
// unit with httplib); a local judge on the suite's own engine implements the same interface.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace msabench {

// A judge request failed (HTTP error after retries, timeout, malformed response, ...).
class JudgeError : public Error {
 public:
  using Error::Error;
};

// Turns one user message into the model's reply. Must be safe to call from several threads.
class ChatModel {
 public:
  virtual ~ChatModel() = default;
  // Names the judge model in cache keys and reports, e.g. "google/gemini-2.5-flash".
  virtual std::string id() const = 0;
  // Throws JudgeError when no reply could be obtained (after the model's own retries).
  virtual std::string complete(const std::string& prompt) = 0;
};

struct HttpJudgeConfig {
  std::string base_url = "https://openrouter.ai/api/v1";  // POST {base_url}/chat/completions
  std::string model = "google/gemini-2.5-flash";
  std::string api_key_env = "OPENROUTER_API_KEY";  // name of the variable; empty: no Authorization header
  double temperature = 0.0;
  int max_tokens = 0;          // 0: not sent
  double timeout_s = 60;       // connect, send and receive, each
  int max_retries = 4;         // extra attempts on 429, 5xx, connection errors and timeouts
  double backoff_s = 1.0;      // wait before retry i: backoff_s * 2^i (or Retry-After), at most max_backoff_s
  double max_backoff_s = 30;
};

// OpenAI-compatible chat-completions client (http and https). Reads the API key from the
// environment once; the key is never printed, logged or written, and is redacted from errors.
// Throws Error for a bad URL or a missing key variable.
std::unique_ptr<ChatModel> make_http_chat_model(const HttpJudgeConfig& config);
// Requests sent so far by models from make_http_chat_model, retries included (for tests/stats).
extern std::atomic<long> g_http_judge_requests;

struct JudgeItem {
  std::string question, gold, prediction;
};

struct Judgment {
  std::optional<int> score;  // 0-5; nullopt when the request failed (see error)
  std::string reply;         // the judge's raw reply
  std::string error;         // why there is no score
  bool cached = false;       // answered from the on-disk cache, no request sent
};

// The suite's own wording of the reference's six-level rubric, with the template fields
// {question}, {gold} and {prediction}.
std::string default_judge_prompt();
// A user prompt file (for exact reproduction of another rubric); must contain all three
// template fields. Throws Error naming the file otherwise.
std::string load_judge_prompt(const std::string& path);
// Single pass, so a template field inside the question or prediction is not substituted again.
std::string render_judge_prompt(const std::string& tmpl, const JudgeItem& item);

// Reference rule: scan the stripped reply left to right; the first digit with value <= 5 is the
// score (6-9 are skipped); no such digit gives 0.
int parse_judge_score(const std::string& reply);
// Reference clean-up of a generated answer before judging (special tokens, <answer>,
// "The answer to the question is: ", </think>, "Answer:").
std::string clean_prediction(const std::string& raw);
// Gold answers as one string for the prompt.
std::string gold_text(const std::vector<std::string>& answers);

// One JSON file per judgment under dir/xx/<hash>.json, written atomically (temp file + rename),
// so concurrent writers and interrupted runs never leave a partial entry. The file stores the
// full key and is only used when it matches exactly.
class JudgmentCache {
 public:
  explicit JudgmentCache(std::string dir);
  std::optional<std::string> get(const std::string& model, const std::string& prompt_template,
                                 const JudgeItem& item) const;  // the cached reply
  void put(const std::string& model, const std::string& prompt_template, const JudgeItem& item,
           const std::string& reply, int score) const;

 private:
  std::string path_for(const std::string& model, const std::string& prompt_template, const JudgeItem& item) const;
  std::string dir_;
};

struct JudgeOptions {
  std::string prompt_template = default_judge_prompt();
  std::string cache_dir;         // empty: no cache
  int concurrency = 8;           // requests in flight (the reference used 32)
  bool clean_predictions = true;  // apply clean_prediction() first
  bool errors_score_zero = false;  // reference behaviour: a failed request scores 0
};

class LlmJudge {
 public:
  LlmJudge(ChatModel& model, JudgeOptions options);
  Judgment judge(const JudgeItem& item);
  // In input order; up to `concurrency` requests at once.
  std::vector<Judgment> judge_all(const std::vector<JudgeItem>& items);

 private:
  ChatModel& model_;
  JudgeOptions opt_;
  std::unique_ptr<JudgmentCache> cache_;
};

// Judges every record of a result document that has a generated answer and gold answers:
// sets records[].metrics.judge_score (or records[].judge_error) and aggregates.judge_score
// (mean over judged records, null if none). Returns the number of failed judgments.
int judge_result_records(nlohmann::json& result, LlmJudge& judge);

}  // namespace msabench
