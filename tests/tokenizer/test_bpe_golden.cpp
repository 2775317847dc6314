// Golden tests against Hugging Face tokenizers. The data is made at test-setup time by
// scripts/tokenizer_goldens.sh into the directory named by MSABENCH_TOKENIZER_GOLDENS.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/io.h"
#include "core/tokenizer/bpe_tokenizer.h"

using namespace msabench;
using nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

std::string golden_dir() {
  const char* d = std::getenv("MSABENCH_TOKENIZER_GOLDENS");
  if (!d || !*d) {
    ADD_FAILURE() << "MSABENCH_TOKENIZER_GOLDENS is not set (run through ctest, or scripts/tokenizer_goldens.sh DIR)";
    return "";
  }
  return d;
}

std::vector<json> read_lines(const std::string& path) {
  std::vector<json> v;
  read_jsonl(path, [&](const json& j, size_t) { v.push_back(j); });
  return v;
}

std::string show(const std::string& s) { return json(s).dump(); }

// Compares every golden line; returns the number of encodings checked.
// round_trip: decode(encode(text)) must give back NFC text (not so with lstrip/rstrip tokens).
size_t check_goldens(const BpeTokenizer& t, const std::vector<json>& lines, bool round_trip) {
  size_t encodings = 0, decodes = 0, failures = 0;
  for (const json& g : lines) {
    if (failures > 20) break;  // enough to diagnose
    if (g.contains("text")) {
      std::string text = g["text"];
      Ids want = g["ids"].get<Ids>(), want_ns = g["ids_nospecial"].get<Ids>();
      Ids got = t.encode(text, true), got_ns = t.encode(text, false);
      ++encodings;
      if (got != want) {
        ++failures;
        ADD_FAILURE() << "encode " << show(text) << "\n  got  " << json(got).dump() << "\n  want " << json(want).dump();
      }
      if (got_ns != want_ns) {
        ++failures;
        ADD_FAILURE() << "encode(allow_special=false) " << show(text) << "\n  got  " << json(got_ns).dump() << "\n  want "
                      << json(want_ns).dump();
      }
      EXPECT_EQ(t.count(text, true), static_cast<int64_t>(want.size()));
      std::string dec = t.decode(want, false), dec_skip = t.decode(want, true);
      if (dec != g["decoded"].get<std::string>() || dec_skip != g["decoded_skip"].get<std::string>()) {
        ++failures;
        ADD_FAILURE() << "decode of " << show(text) << ": got " << show(dec) << " / " << show(dec_skip) << ", want "
                      << g["decoded"].dump() << " / " << g["decoded_skip"].dump();
      }
      if (round_trip && g["nfc"].get<bool>() && dec != text) {
        ++failures;
        ADD_FAILURE() << "round trip of NFC text " << show(text) << " gave " << show(dec);
      }
    } else {
      Ids ids = g["decode_ids"].get<Ids>();
      ++decodes;
      std::string dec = t.decode(ids, false), dec_skip = t.decode(ids, true);
      if (dec != g["decoded"].get<std::string>() || dec_skip != g["decoded_skip"].get<std::string>()) {
        ++failures;
        ADD_FAILURE() << "decode " << json(ids).dump() << ": got " << show(dec) << " / " << show(dec_skip) << ", want "
                      << g["decoded"].dump() << " / " << g["decoded_skip"].dump();
      }
    }
  }
  std::cout << "[goldens] " << encodings << " encodings and " << decodes << " decodes checked against Hugging Face, "
            << failures << " failures\n";
  return encodings;
}

}  // namespace

TEST(Qwen3Golden, LoadsTheOfficialTokenizer) {
  std::string dir = golden_dir();
  ASSERT_FALSE(dir.empty());
  auto t = load_tokenizer(dir);  // a directory containing tokenizer.json
  EXPECT_EQ(t->name(), "qwen3-bpe:151669");
  EXPECT_EQ(t->vocab_size(), 151669);
  EXPECT_EQ(t->token_id("<|endoftext|>"), 151643);
  EXPECT_EQ(t->token_id("<|im_start|>"), 151644);
  EXPECT_EQ(t->token_id("<|im_end|>"), 151645);
  EXPECT_TRUE(t->is_special(151645));
  EXPECT_FALSE(t->is_special(151667));  // <think> is an added, non-special token
  EXPECT_EQ(t->token_text(151667), "<think>");
}

TEST(Qwen3Golden, MatchesHuggingFace) {
  std::string dir = golden_dir();
  ASSERT_FALSE(dir.empty());
  auto t = BpeTokenizer::load(dir + "/tokenizer.json");
  auto lines = read_lines(dir + "/goldens.jsonl");
  EXPECT_GE(check_goldens(*t, lines, true), 300u);
}

TEST(Qwen3Golden, MatchesHuggingFaceWithoutCache) {
  std::string dir = golden_dir();
  ASSERT_FALSE(dir.empty());
  BpeOptions none;
  none.cache_entries = 0;
  auto t = BpeTokenizer::load(dir + "/tokenizer.json", none);
  check_goldens(*t, read_lines(dir + "/goldens.jsonl"), true);
}

TEST(Qwen3Golden, ConcurrentEncodeMatchesHuggingFace) {
  std::string dir = golden_dir();
  ASSERT_FALSE(dir.empty());
  BpeOptions small;
  small.cache_entries = 512;  // frequent eviction while threads share the cache
  auto t = BpeTokenizer::load(dir + "/tokenizer.json", small);
  std::vector<std::pair<std::string, Ids>> cases;
  for (const json& g : read_lines(dir + "/goldens.jsonl"))
    if (g.contains("text")) cases.emplace_back(g["text"].get<std::string>(), g["ids"].get<Ids>());
  std::atomic<int> bad{0};
  std::vector<std::thread> th;
  for (int w = 0; w < 4; ++w)
    th.emplace_back([&, w] {
      for (size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[(i * 7 + w * 131) % cases.size()];
        if (t->encode(c.first) != c.second) ++bad;
      }
    });
  for (auto& x : th) x.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(FixtureGolden, MatchesHuggingFace) {
  std::string dir = golden_dir();
  ASSERT_FALSE(dir.empty());
  // variants of the fixture, edited exactly as scripts/tokenizer_goldens.mjs does
  std::map<std::string, std::function<void(json&)>> variants = {
      {"", [](json&) {}},
      {"ignore_merges", [](json& j) { j["model"]["ignore_merges"] = true; }},
      {"gpt2_bytelevel",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
       }},
      {"split_removed",
       [](json& j) {
         j["pre_tokenizer"]["pretokenizers"][0] = {
             {"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Removed"}, {"invert", false}};
       }},
      {"split_removed_inverted",
       [](json& j) {
         j["pre_tokenizer"]["pretokenizers"][0] = {
             {"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+|\\s+"}}}, {"behavior", "Removed"}, {"invert", true}};
       }},
  };
  std::map<std::string, std::vector<json>> lines;
  for (json& g : read_lines(dir + "/fixture_goldens.jsonl")) lines[g["variant"].get<std::string>()].push_back(g);
  ASSERT_EQ(lines.size(), variants.size());
  for (const char* f : {"tiny_pairs.json", "tiny_strings.json"}) {
    for (const auto& [name, edit] : variants) {
      SCOPED_TRACE(std::string(f) + " variant '" + name + "'");
      json j = json::parse(read_file(std::string(TOKENIZER_FIXTURES_DIR) + "/" + f));
      edit(j);
      auto t = BpeTokenizer::from_json_text(j.dump(), std::string(f) + "[" + name + "]");
      EXPECT_GE(check_goldens(*t, lines[name], false), 100u);
    }
  }
}
