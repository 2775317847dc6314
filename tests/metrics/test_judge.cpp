// Judge client tests against a real cpp-httplib server on 127.0.0.1 (random free port). The
// scenario is chosen by a word in the question, so one server covers all cases.
#include <httplib.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "metrics/judge.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace msabench;

namespace {

const char* kKey = "sk-test-SECRET-4711";

class FakeServer {
 public:
  FakeServer() {
    svr_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    for (int i = 0; i < 500 && !svr_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~FakeServer() {
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/"; }
  int count(const std::string& scenario) {
    std::lock_guard<std::mutex> l(mu_);
    return counts_[scenario];
  }
  int max_in_flight() const { return max_in_flight_; }
  std::string last_model() {
    std::lock_guard<std::mutex> l(mu_);
    return last_model_;
  }

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    const int now = ++in_flight_;
    for (int m = max_in_flight_; now > m && !max_in_flight_.compare_exchange_weak(m, now);) {
    }
    struct Done {
      std::atomic<int>& n;
      ~Done() { --n; }
    } done{in_flight_};
    if (req.get_header_value("Authorization") != std::string("Bearer ") + kKey) {
      res.status = 401;
      res.set_content("bad key: " + req.get_header_value("Authorization"), "text/plain");
      return;
    }
    json body = json::parse(req.body);
    const std::string prompt = body["messages"][0]["content"];
    std::string scenario = "normal";
    for (const char* s : {"malformed", "nochoices", "flaky429", "flaky500", "always500", "slow", "concurrent", "echo401",
                          "apierror", "tenreply"})
      if (prompt.find(std::string("Question: ") + s) != std::string::npos) scenario = s;
    int n;
    {
      std::lock_guard<std::mutex> l(mu_);
      n = ++counts_[scenario];
      last_model_ = body["model"];
      if (body["temperature"] != 0.0 || body["messages"].size() != 1 || body["messages"][0]["role"] != "user") {
        res.status = 400;
        return;
      }
    }
    auto reply = [&](const std::string& content) {
      res.set_content(json{{"choices", {{{"message", {{"role", "assistant"}, {"content", content}}}}}}}.dump(),
                      "application/json");
    };
    if (scenario == "malformed") return res.set_content("<html>not json</html>", "text/html");
    if (scenario == "nochoices") return res.set_content(R"({"choices": []})", "application/json");
    if (scenario == "apierror") return res.set_content(R"({"error": {"message": "quota exceeded"}})", "application/json");
    if (scenario == "echo401") {
      res.status = 401;
      return res.set_content("invalid key " + std::string(kKey), "text/plain");
    }
    if (scenario == "flaky429" && n <= 2) {
      res.status = 429;
      res.set_header("Retry-After", "0");
      return;
    }
    if (scenario == "flaky500" && n <= 1) {
      res.status = 500;
      return;
    }
    if (scenario == "always500") {
      res.status = 503;
      return res.set_content("overloaded", "text/plain");
    }
    if (scenario == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    if (scenario == "concurrent") std::this_thread::sleep_for(std::chrono::milliseconds(60));
    if (scenario == "flaky429") return reply("5");
    if (scenario == "flaky500") return reply("3");
    if (scenario == "tenreply") return reply("Score: 10/10");
    reply(" Score: 4 (mostly right)");
  }

  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> counts_;
  std::string last_model_;
  std::atomic<int> in_flight_{0}, max_in_flight_{0};
};

struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() / ("msabench-judge-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

HttpJudgeConfig config(const FakeServer& s, const std::string& model = "judge-model-a") {
  ::setenv("MSABENCH_TEST_JUDGE_KEY", kKey, 1);
  HttpJudgeConfig c;
  c.base_url = s.url();
  c.model = model;
  c.api_key_env = "MSABENCH_TEST_JUDGE_KEY";
  c.timeout_s = 5;
  c.max_retries = 3;
  c.backoff_s = 0.01;
  c.max_backoff_s = 0.05;
  return c;
}

JudgeItem item(const std::string& q) { return {q, "Paris", "The capital is Paris."}; }

}  // namespace

TEST(JudgeHttp, NormalAnswerIsParsedAndCacheHitAvoidsSecondRequest) {
  FakeServer s;
  TempDir dir;
  auto model = make_http_chat_model(config(s));
  JudgeOptions o;
  o.cache_dir = dir.path.string();
  {
    LlmJudge judge(*model, o);
    Judgment j = judge.judge(item("normal: capital of France?"));
    ASSERT_TRUE(j.score) << j.error;
    EXPECT_EQ(*j.score, 4);
    EXPECT_EQ(j.reply, " Score: 4 (mostly right)");
    EXPECT_FALSE(j.cached);
    EXPECT_EQ(s.count("normal"), 1);
    EXPECT_EQ(s.last_model(), "judge-model-a");
    Judgment again = judge.judge(item("normal: capital of France?"));
    EXPECT_TRUE(again.cached);
    EXPECT_EQ(again.score, 4);
    EXPECT_EQ(s.count("normal"), 1);
  }
  // a new judge on the same cache directory (a later run) still sends nothing
  LlmJudge later(*model, o);
  EXPECT_TRUE(later.judge(item("normal: capital of France?")).cached);
  EXPECT_EQ(s.count("normal"), 1);
  // the cache key includes the judge model and the prediction
  auto other = make_http_chat_model(config(s, "judge-model-b"));
  LlmJudge judge_b(*other, o);
  EXPECT_FALSE(judge_b.judge(item("normal: capital of France?")).cached);
  EXPECT_EQ(s.count("normal"), 2);
  JudgeItem changed = item("normal: capital of France?");
  changed.prediction = "Lyon";
  EXPECT_FALSE(later.judge(changed).cached);
  EXPECT_EQ(s.count("normal"), 3);
  // no cache file contains the key; entries are complete JSON
  for (const auto& e : fs::recursive_directory_iterator(dir.path))
    if (e.is_regular_file()) {
      std::ifstream in(e.path());
      std::string text((std::istreambuf_iterator<char>(in)), {});
      EXPECT_EQ(text.find(kKey), std::string::npos);
      EXPECT_EQ(json::parse(text)["score"], 4);
      EXPECT_EQ(e.path().extension(), ".json");
    }
}

TEST(JudgeHttp, MalformedAnswersAreErrorsAndNotCached) {
  FakeServer s;
  TempDir dir;
  auto model = make_http_chat_model(config(s));
  JudgeOptions o;
  o.cache_dir = dir.path.string();
  LlmJudge judge(*model, o);
  for (const char* scenario : {"malformed", "nochoices", "apierror"}) {
    Judgment j = judge.judge(item(std::string(scenario) + " case"));
    EXPECT_FALSE(j.score) << scenario;
    EXPECT_NE(j.error.find(scenario == std::string("apierror") ? "quota exceeded" : "malformed response"),
              std::string::npos)
        << j.error;
    EXPECT_EQ(s.count(scenario), 1) << "malformed replies are not retried";
  }
  judge.judge(item("malformed case"));
  EXPECT_EQ(s.count("malformed"), 2) << "failures must not be cached";
  // a well-formed reply without a usable digit scores 0; "10" scores 1 (first digit <= 5)
  EXPECT_EQ(judge.judge(item("tenreply")).score, 1);
  JudgeOptions zero = o;
  zero.errors_score_zero = true;  // the reference's behaviour
  LlmJudge ref(*model, zero);
  Judgment z = ref.judge(item("malformed case"));
  EXPECT_EQ(z.score, 0);
  EXPECT_FALSE(z.error.empty());
}

TEST(JudgeHttp, RetriesOn429And5xx) {
  FakeServer s;
  auto model = make_http_chat_model(config(s));
  LlmJudge judge(*model, JudgeOptions{});
  Judgment a = judge.judge(item("flaky429"));
  ASSERT_TRUE(a.score) << a.error;
  EXPECT_EQ(*a.score, 5);
  EXPECT_EQ(s.count("flaky429"), 3);
  Judgment b = judge.judge(item("flaky500"));
  EXPECT_EQ(b.score, 3);
  EXPECT_EQ(s.count("flaky500"), 2);
  Judgment c = judge.judge(item("always500"));
  EXPECT_FALSE(c.score);
  EXPECT_NE(c.error.find("HTTP 503: overloaded"), std::string::npos) << c.error;
  EXPECT_NE(c.error.find("after 4 attempts"), std::string::npos) << c.error;
  EXPECT_EQ(s.count("always500"), 4);  // 1 + max_retries
}

TEST(JudgeHttp, TimeoutFailsFast) {
  FakeServer s;
  HttpJudgeConfig c = config(s);
  c.timeout_s = 0.2;
  c.max_retries = 1;
  auto model = make_http_chat_model(c);
  LlmJudge judge(*model, JudgeOptions{});
  const auto t0 = std::chrono::steady_clock::now();
  Judgment j = judge.judge(item("slow"));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(j.score);
  EXPECT_NE(j.error.find("timed out"), std::string::npos) << j.error;
  EXPECT_EQ(s.count("slow"), 2);
  EXPECT_LT(took, 1.0);
}

TEST(JudgeHttp, ConcurrentRequestsKeepOrder) {
  FakeServer s;
  auto model = make_http_chat_model(config(s));
  JudgeOptions o;
  o.concurrency = 4;
  LlmJudge judge(*model, o);
  std::vector<JudgeItem> items;
  for (int i = 0; i < 12; ++i) items.push_back(item("concurrent " + std::to_string(i)));
  items[5] = item("malformed in the middle");
  auto out = judge.judge_all(items);
  ASSERT_EQ(out.size(), 12u);
  for (int i = 0; i < 12; ++i) {
    if (i == 5) EXPECT_FALSE(out[i].score);
    else EXPECT_EQ(out[i].score, 4) << i << ": " << out[i].error;
  }
  EXPECT_EQ(s.count("concurrent"), 11);
  EXPECT_GT(s.max_in_flight(), 1);
  EXPECT_LE(s.max_in_flight(), 4);
}

TEST(JudgeHttp, KeyFromEnvironmentNeverAppearsInErrors) {
  FakeServer s;
  HttpJudgeConfig c = config(s);
  c.api_key_env = "MSABENCH_TEST_UNSET_KEY_VARIABLE";
  ::unsetenv("MSABENCH_TEST_UNSET_KEY_VARIABLE");
  try {
    make_http_chat_model(c);
    FAIL() << "missing key accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MSABENCH_TEST_UNSET_KEY_VARIABLE is not set"), std::string::npos);
  }
  auto model = make_http_chat_model(config(s));
  LlmJudge judge(*model, JudgeOptions{});
  Judgment j = judge.judge(item("echo401"));
  EXPECT_FALSE(j.score);
  EXPECT_NE(j.error.find("HTTP 401"), std::string::npos) << j.error;
  EXPECT_NE(j.error.find("[redacted]"), std::string::npos) << j.error;
  EXPECT_EQ(j.error.find(kKey), std::string::npos);
  EXPECT_EQ(s.count("echo401"), 1) << "401 is not retried";
  HttpJudgeConfig bad = config(s);
  bad.base_url = "127.0.0.1:80/v1";
  EXPECT_THROW(make_http_chat_model(bad), Error);
}

TEST(JudgeRules, ScoreParsingFollowsTheReference) {
  EXPECT_EQ(parse_judge_score("5"), 5);
  EXPECT_EQ(parse_judge_score("  4.\n"), 4);
  EXPECT_EQ(parse_judge_score("Score: 3/5"), 3);
  EXPECT_EQ(parse_judge_score("7 8 2"), 2);  // 6-9 skipped
  EXPECT_EQ(parse_judge_score("10"), 1);
  EXPECT_EQ(parse_judge_score("9"), 0);
  EXPECT_EQ(parse_judge_score("no digit"), 0);
  EXPECT_EQ(parse_judge_score(""), 0);
}

TEST(JudgeRules, PredictionCleanupFollowsTheReference) {
  EXPECT_EQ(clean_prediction("<think>hmm 3</think> Paris<|im_end|>"), "Paris");
  EXPECT_EQ(clean_prediction("x <answer>a</answer><answer>The answer to the question is: Rome</answer><|endoftext|>"),
            "Rome");
  EXPECT_EQ(clean_prediction("reasoning... Answer: Berlin Answer: no"), "Berlin Answer: no");
  EXPECT_EQ(clean_prediction("The user's question is: plain"), "plain");
}

TEST(JudgeRules, PromptHasSixLevelsAndUserFileIsValidated) {
  const std::string p = default_judge_prompt();
  for (const char* level : {"\n5 - ", "\n4 - ", "\n3 - ", "\n2 - ", "\n1 - ", "\n0 - "})
    EXPECT_NE(p.find(level), std::string::npos) << level;
  JudgeItem it{"Q {gold}?", "G", "P {question}"};
  EXPECT_EQ(render_judge_prompt("[{question}|{gold}|{prediction}]", it), "[Q {gold}?|G|P {question}]");
  TempDir dir;
  fs::create_directories(dir.path);
  const std::string f = (dir.path / "prompt.txt").string();
  std::ofstream(f) << "Q={question} P={prediction}";
  try {
    load_judge_prompt(f);
    FAIL() << "prompt without {gold} accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(f + ": judge prompt has no {gold}"), std::string::npos) << e.what();
  }
  std::ofstream(f) << "Q={question} G={gold} P={prediction}";
  EXPECT_EQ(render_judge_prompt(load_judge_prompt(f), {"q", "g", "p"}), "Q=q G=g P=p");
}

namespace {
// Scores by whether the prediction contains the gold answer; for result-level tests.
class ContainsModel : public ChatModel {
 public:
  std::string id() const override { return "contains"; }
  std::string complete(const std::string& prompt) override {
    ++calls;
    return prompt.find("Answer to grade: Paris") != std::string::npos ? "5" : "1";
  }
  std::atomic<int> calls{0};
};
}  // namespace

TEST(JudgeRules, JudgeResultRecordsSetsMetricAndAggregate) {
  json r = {{"aggregates", {{"recall@1", 1.0}}},
            {"records",
             {{{"question", "capital?"}, {"gold_answers", {"Paris"}}, {"answer", "Paris"}, {"metrics", json::object()}},
              {{"question", "capital?"}, {"gold_answers", {"Paris"}}, {"answer", "Lyon"}, {"metrics", json::object()}},
              {{"question", "capital?"}, {"gold_answers", {"Paris"}}, {"answer", nullptr}, {"metrics", json::object()}}}}};
  ContainsModel m;
  LlmJudge judge(m, JudgeOptions{});
  EXPECT_EQ(judge_result_records(r, judge), 0);
  EXPECT_EQ(m.calls, 2);
  EXPECT_EQ(r["records"][0]["metrics"]["judge_score"], 5);
  EXPECT_EQ(r["records"][1]["metrics"]["judge_score"], 1);
  EXPECT_FALSE(r["records"][2]["metrics"].contains("judge_score"));
  EXPECT_DOUBLE_EQ(r["aggregates"]["judge_score"].get<double>(), 3.0);
}
