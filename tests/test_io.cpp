#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tests/test_util.h"
#include "core/io.h"
#include "core/result.h"

namespace fs = std::filesystem;
using namespace msabench;
using msabench::testing::error_of;

namespace {
std::string write_tmp(const std::string& name, const std::string& content) {
  fs::path p = fs::temp_directory_path() / ("msabench-io-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(p) << content;
  return p.string();
}
}  // namespace

TEST(Io, LoadsGroupedJsonl) {
  auto c = write_tmp("c.jsonl", "{\"id\":\"a\",\"text\":\"x y\",\"group\":\"g1\"}\n\n{\"id\":2,\"text\":\"z\",\"group\":\"g2\"}\n");
  auto q = write_tmp("q.jsonl", "{\"id\":\"q1\",\"text\":\"x\",\"group\":\"g1\",\"answers\":\"y\",\"gold_doc_ids\":[\"a\"]}\n");
  Dataset ds = load_jsonl_dataset(c, q, "whitespace-words");
  ASSERT_EQ(ds.corpora.size(), 2u);
  EXPECT_EQ(ds.corpora[0].tokens, 2);
  EXPECT_EQ(ds.corpora[1].documents[0].id, "2");
  EXPECT_EQ(ds.corpora[0].queries[0].answers, std::vector<std::string>{"y"});
}

TEST(Io, MalformedLinesNameFileAndLine) {
  auto q = write_tmp("q2.jsonl", "{\"id\":\"q\",\"text\":\"x\"}\n");
  auto bad_json = write_tmp("bad1.jsonl", "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\": oops}\n");
  EXPECT_NE(error_of([&] { load_jsonl_dataset(bad_json, q, "whitespace-words"); }).find(bad_json + ":2: invalid JSON"),
            std::string::npos);
  auto no_text = write_tmp("bad2.jsonl", "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\"}\n");
  EXPECT_NE(error_of([&] { load_jsonl_dataset(no_text, q, "whitespace-words"); }).find(no_text + ":2:"),
            std::string::npos);
  auto dup = write_tmp("bad3.jsonl", "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"a\",\"text\":\"y\"}\n");
  EXPECT_NE(error_of([&] { load_jsonl_dataset(dup, q, "whitespace-words"); }).find("duplicate document id"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_jsonl_dataset("/nonexistent.jsonl", q, "whitespace-words"); })
                .find("/nonexistent.jsonl: cannot open"),
            std::string::npos);
}

TEST(Io, AtomicWriteLeavesNoTempFile) {
  fs::path dir = fs::temp_directory_path() / ("msabench-atomic-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  write_file_atomic((dir / "out.txt").string(), "hello");
  EXPECT_EQ(read_file((dir / "out.txt").string()), "hello");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) (void)e, ++files;
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(Io, ResultValidation) {
  nlohmann::json r = {{"schema", kResultSchema},
                      {"backend", {{"spec", "bm25"}}},
                      {"dataset", {{"memory_tokens", 16384}}},
                      {"aggregates", nlohmann::json::object()},
                      {"records", nlohmann::json::array()},
                      {"timings", nlohmann::json::object()}};
  EXPECT_NO_THROW(validate_result(r, "r.json"));
  r["schema"] = "msabench.result/99";
  EXPECT_THROW(validate_result(r, "r.json"), Error);
  EXPECT_GT(peak_rss_bytes(), 0);
}
