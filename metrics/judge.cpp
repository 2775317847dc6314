#include "metrics/judge.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/io.h"
#include "core/text.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

const char* const kTemplateFields[] = {"{question}", "{gold}", "{prediction}"};

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

void erase_all(std::string& s, const std::string& what) {
  for (size_t p; (p = s.find(what)) != std::string::npos;) s.erase(p, what.size());
}

void keep_after_last(std::string& s, const std::string& marker) {
  const auto p = s.rfind(marker);
  if (p != std::string::npos) s = s.substr(p + marker.size());
}

}  // namespace

std::string default_judge_prompt() {
  return "You are grading an answer to a question by comparing it with a reference answer.\n"
         "\n"
         "Question: {question}\n"
         "Reference answer: {gold}\n"
         "Answer to grade: {prediction}\n"
         "\n"
         "Grade the answer on this scale:\n"
         "5 - It agrees with the reference answer and answers the question correctly; differences in wording do "
         "not matter.\n"
         "4 - It contains every essential fact of the reference answer without any mistake, plus a little "
         "unnecessary extra text.\n"
         "3 - It gets the main point but differs in some respects: somewhat incomplete or imprecise, yet without "
         "mistakes.\n"
         "2 - It is only partly relevant: much of the reference information is missing, or it strays from the core "
         "of the question.\n"
         "1 - It stays on topic but states wrong facts; it does not contradict the central claim of the reference "
         "answer, but shows an incomplete or inaccurate understanding.\n"
         "0 - It is unrelated to the reference answer, meaningless, or made-up content with no logical connection "
         "to it.\n"
         "\n"
         "Reply with one digit from 0 to 5 and nothing else.\n";
}

std::string load_judge_prompt(const std::string& path) {
  std::string t = read_file(path);
  for (const char* p : kTemplateFields)
    if (t.find(p) == std::string::npos)
      throw Error(path + ": judge prompt has no " + p +
                  " template field (a prompt needs {question}, {gold} and {prediction})");
  return t;
}

std::string render_judge_prompt(const std::string& tmpl, const JudgeItem& item) {
  const std::string* values[] = {&item.question, &item.gold, &item.prediction};
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    bool replaced = false;
    if (tmpl[i] == '{') {
      for (int k = 0; k < 3; ++k) {
        const std::string p = kTemplateFields[k];
        if (tmpl.compare(i, p.size(), p) == 0) {
          out += *values[k];
          i += p.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += tmpl[i++];
  }
  return out;
}

int parse_judge_score(const std::string& reply) {
  for (char c : strip(reply))
    if (c >= '0' && c <= '5') return c - '0';
  return 0;
}

std::string clean_prediction(const std::string& raw) {
  std::string s = raw;
  erase_all(s, "<|im_end|>");
  erase_all(s, "<|endoftext|>");
  keep_after_last(s, "<answer>");
  keep_after_last(s, "The answer to the question is: ");
  erase_all(s, "</answer>");
  erase_all(s, "The user's question is:");
  keep_after_last(s, "</think>");
  const auto a = s.find("Answer:");
  if (a != std::string::npos) s = s.substr(a + 7);
  return strip(s);
}

std::string gold_text(const std::vector<std::string>& answers) {
  std::string o;
  for (const auto& a : answers) o += (o.empty() ? "" : " | ") + a;
  return o;
}

// ------------------------------------------------------------------------------------ cache

JudgmentCache::JudgmentCache(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) throw Error(dir_ + ": cannot create judge cache directory (" + ec.message() + ")");
}

std::string JudgmentCache::path_for(const std::string& model, const std::string& tmpl, const JudgeItem& item) const {
  // Length-prefixed fields, so no two keys serialise alike.
  std::string key;
  for (const std::string* f : {&model, &tmpl, &item.question, &item.gold, &item.prediction})
    key += std::to_string(f->size()) + ":" + *f + ";";
  const std::string h = hex64(fnv1a64(key)) + hex64(fnv1a64(key, 0x84222325cbf29ce4ULL));
  return (fs::path(dir_) / h.substr(0, 2) / (h + ".json")).string();
}

std::optional<std::string> JudgmentCache::get(const std::string& model, const std::string& tmpl,
                                              const JudgeItem& item) const {
  const std::string path = path_for(model, tmpl, item);
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error&) {
    return std::nullopt;  // unreadable entry: judged again and overwritten
  }
  if (!j.is_object() || j.value("judge_model", "") != model || j.value("prompt_template", "") != tmpl ||
      j.value("question", "") != item.question || j.value("gold", "") != item.gold ||
      j.value("prediction", "") != item.prediction || !j.contains("reply") || !j["reply"].is_string())
    return std::nullopt;
  return j["reply"].get<std::string>();
}

void JudgmentCache::put(const std::string& model, const std::string& tmpl, const JudgeItem& item,
                        const std::string& reply, int score) const {
  static std::atomic<unsigned long> counter{0};
  const fs::path path = path_for(model, tmpl, item);
  fs::create_directories(path.parent_path());
  const json j = {{"schema", "msabench.judgment/1"}, {"judge_model", model}, {"prompt_template", tmpl},
                  {"question", item.question},       {"gold", item.gold},    {"prediction", item.prediction},
                  {"reply", reply},                  {"score", score}};
  // unique temp name per process and call: threads may write the same key at once
  const std::string tmp = path.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << j.dump(1) << "\n";
    if (!out) throw Error(tmp + ": cannot write judge cache entry");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(path.string() + ": cannot write judge cache entry");
  }
}

// ------------------------------------------------------------------------------------ judge

LlmJudge::LlmJudge(ChatModel& model, JudgeOptions options) : model_(model), opt_(std::move(options)) {
  if (opt_.concurrency < 1) throw Error("judge: concurrency must be at least 1");
  for (const char* p : kTemplateFields)
    if (opt_.prompt_template.find(p) == std::string::npos)
      throw Error(std::string("judge: prompt template has no ") + p + " template field");
  if (!opt_.cache_dir.empty()) cache_ = std::make_unique<JudgmentCache>(opt_.cache_dir);
}

Judgment LlmJudge::judge(const JudgeItem& raw) {
  JudgeItem item = raw;
  if (opt_.clean_predictions) item.prediction = clean_prediction(item.prediction);
  Judgment j;
  const std::string model = model_.id();
  if (cache_) {
    if (auto reply = cache_->get(model, opt_.prompt_template, item)) {
      j.reply = *reply;
      j.score = parse_judge_score(*reply);
      j.cached = true;
      return j;
    }
  }
  try {
    j.reply = model_.complete(render_judge_prompt(opt_.prompt_template, item));
    j.score = parse_judge_score(j.reply);
    if (cache_) cache_->put(model, opt_.prompt_template, item, j.reply, *j.score);
  } catch (const Error& e) {  // failures are not cached: a later run asks again
    j.error = e.what();
    if (opt_.errors_score_zero) j.score = 0;
  }
  return j;
}

std::vector<Judgment> LlmJudge::judge_all(const std::vector<JudgeItem>& items) {
  std::vector<Judgment> out(items.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < items.size();) out[i] = judge(items[i]);
  };
  const size_t n = std::min(items.size(), static_cast<size_t>(opt_.concurrency));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return out;
}

int judge_result_records(json& result, LlmJudge& judge) {
  if (!result.contains("records") || !result["records"].is_array())
    throw Error("judge: result has no records array");
  std::vector<JudgeItem> items;
  std::vector<json*> recs;
  for (auto& r : result["records"]) {
    if (!r.contains("answer") || !r["answer"].is_string()) continue;  // retrieval-only
    if (!r.contains("gold_answers") || !r["gold_answers"].is_array() || r["gold_answers"].empty()) continue;
    items.push_back({r.value("question", ""), gold_text(r["gold_answers"].get<std::vector<std::string>>()),
                     r["answer"].get<std::string>()});
    recs.push_back(&r);
  }
  const auto judged = judge.judge_all(items);
  int errors = 0;
  double sum = 0;
  int n = 0;
  for (size_t i = 0; i < judged.size(); ++i) {
    json& r = *recs[i];
    if (!r.contains("metrics") || !r["metrics"].is_object()) r["metrics"] = json::object();
    if (judged[i].score) {
      r["metrics"]["judge_score"] = *judged[i].score;
      sum += *judged[i].score;
      ++n;
    }
    if (!judged[i].error.empty()) {
      r["judge_error"] = judged[i].error;
      ++errors;
    }
  }
  if (!result.contains("aggregates") || !result["aggregates"].is_object()) result["aggregates"] = json::object();
  result["aggregates"]["judge_score"] = n ? json(sum / n) : json(nullptr);
  return errors;
}

}  // namespace msabench
