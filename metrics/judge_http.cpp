// OpenAI-compatible chat-completions client for the judge. The only library translation unit
// that includes httplib.h (its CPPHTTPLIB_*_SUPPORT defines come from pkg-config, see
// metrics/CMakeLists.txt, and must match Debian's compiled libcpp-httplib).
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "metrics/judge.h"

using nlohmann::json;

namespace msabench {

std::atomic<long> g_http_judge_requests{0};

namespace {

class HttpChatModel : public ChatModel {
 public:
  explicit HttpChatModel(const HttpJudgeConfig& c) : cfg_(c) {
    const auto scheme_end = c.base_url.find("://");
    if (scheme_end == std::string::npos)
      throw Error("judge: base URL '" + c.base_url + "' has no scheme (expected http://HOST[:PORT]/PATH or https://...)");
    const std::string scheme = c.base_url.substr(0, scheme_end);
    if (scheme != "http" && scheme != "https")
      throw Error("judge: base URL '" + c.base_url + "': scheme must be http or https");
    const auto path_start = c.base_url.find('/', scheme_end + 3);
    origin_ = c.base_url.substr(0, path_start);
    if (origin_.size() <= scheme_end + 3) throw Error("judge: base URL '" + c.base_url + "' has no host");
    std::string prefix = path_start == std::string::npos ? "" : c.base_url.substr(path_start);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    path_ = prefix + "/chat/completions";
    if (c.model.empty()) throw Error("judge: no model name given");
    if (c.timeout_s <= 0) throw Error("judge: timeout must be positive");
    if (c.max_retries < 0) throw Error("judge: max_retries must be at least 0");
    if (!c.api_key_env.empty()) {
      const char* key = std::getenv(c.api_key_env.c_str());
      if (!key || !*key)
        throw Error("judge: environment variable " + c.api_key_env + " is not set (it must hold the API key of " +
                    origin_ + ")");
      key_ = key;
    }
  }

  std::string id() const override { return cfg_.model; }

  std::string complete(const std::string& prompt) override {
    json body = {{"model", cfg_.model},
                 {"messages", json::array({{{"role", "user"}, {"content", prompt}}})},
                 {"temperature", cfg_.temperature}};
    if (cfg_.max_tokens > 0) body["max_tokens"] = cfg_.max_tokens;
    const std::string payload = body.dump();
    std::string last_error;
    for (int attempt = 0;; ++attempt) {
      double wait = cfg_.backoff_s * std::pow(2.0, attempt);
      bool retryable = false;
      {
        // One client per request: httplib serialises requests on a shared client.
        httplib::Client cli(origin_);
        set_timeouts(cli);
        httplib::Headers headers;
        if (!key_.empty()) headers.emplace("Authorization", "Bearer " + key_);
        ++g_http_judge_requests;
        auto res = cli.Post(path_.c_str(), headers, payload, "application/json");
        if (!res) {
          const auto err = res.error();
          last_error = err == httplib::Error::Read || err == httplib::Error::Write ||
                               err == httplib::Error::ConnectionTimeout
                           ? "timed out or connection lost after " + fmt(cfg_.timeout_s) + " s (" +
                                 httplib::to_string(err) + ")"
                           : "request failed: " + httplib::to_string(err);
          retryable = true;
        } else if (res->status == 200) {
          return reply_of(res->body);  // throws JudgeError on a malformed body
        } else {
          last_error = "HTTP " + std::to_string(res->status) + ": " + snippet(res->body);
          retryable = res->status == 429 || res->status >= 500;
          if (retryable && res->has_header("Retry-After")) {
            const std::string ra = res->get_header_value("Retry-After");
            char* end = nullptr;
            const double s = std::strtod(ra.c_str(), &end);
            if (end != ra.c_str() && s >= 0) wait = s;
          }
        }
      }
      if (!retryable || attempt >= cfg_.max_retries)
        throw JudgeError(redact("judge " + cfg_.model + " at " + origin_ + path_ + ": " + last_error +
                                (attempt > 0 ? " (after " + std::to_string(attempt + 1) + " attempts)" : "")));
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(wait, cfg_.max_backoff_s)));
    }
  }

 private:
  static std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
  }

  void set_timeouts(httplib::Client& cli) const {
    const time_t sec = static_cast<time_t>(cfg_.timeout_s);
    const time_t usec = static_cast<time_t>(std::lround((cfg_.timeout_s - static_cast<double>(sec)) * 1e6));
    cli.set_connection_timeout(sec, usec);
    cli.set_read_timeout(sec, usec);
    cli.set_write_timeout(sec, usec);
  }

  std::string snippet(const std::string& body) const {
    std::string s = body.substr(0, 300);
    for (auto& c : s)
      if (c == '\n' || c == '\r') c = ' ';
    return redact(s) + (body.size() > 300 ? "..." : "");
  }

  // A server that echoes the request must not make the key appear in messages.
  std::string redact(std::string s) const {
    if (key_.empty()) return s;
    for (size_t p; (p = s.find(key_)) != std::string::npos;) s.replace(p, key_.size(), "[redacted]");
    return s;
  }

  std::string reply_of(const std::string& body) const {
    json j;
    try {
      j = json::parse(body);
    } catch (const json::parse_error&) {
      throw JudgeError(redact("judge " + cfg_.model + ": malformed response (not JSON): " + snippet(body)));
    }
    if (j.is_object() && j.contains("error")) {
      const json& e = j["error"];
      throw JudgeError(redact("judge " + cfg_.model + ": error response: " +
                              (e.is_object() && e.contains("message") ? e["message"].dump() : e.dump())));
    }
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
        !j["choices"][0].is_object() || !j["choices"][0].contains("message") ||
        !j["choices"][0]["message"].is_object() || !j["choices"][0]["message"].contains("content") ||
        !j["choices"][0]["message"]["content"].is_string())
      throw JudgeError(redact("judge " + cfg_.model + ": malformed response (no choices[0].message.content): " +
                              snippet(body)));
    return j["choices"][0]["message"]["content"].get<std::string>();
  }

  HttpJudgeConfig cfg_;
  std::string origin_, path_, key_;
};

}  // namespace

std::unique_ptr<ChatModel> make_http_chat_model(const HttpJudgeConfig& config) {
  return std::make_unique<HttpChatModel>(config);
}

}  // namespace msabench
