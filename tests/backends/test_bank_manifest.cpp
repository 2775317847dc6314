// load_bank on hand-made banks whose manifest is consistent (sizes and CRC-32s match) but lies
// about the geometry: each must be a clear Error (found by fuzz_bank, tests/fuzz/regressions).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "backends/msa/bank_store.h"
#include "core/io.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace msabench;
using msabench::testing::error_of;
using nlohmann::json;

namespace {

std::string f32s(std::initializer_list<float> v) { return std::string(reinterpret_cast<const char*>(v.begin()), v.size() * 4); }
std::string i64(int64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
uint32_t crc(const std::string& s) { return crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())); }

// One layer, one KV head, head_dim 2, router layer 0, one segment of one document.
struct Bank {
  json m = {{"format", "msabench.bank/1"}, {"model", "m"}, {"tokenizer", "bytes"}, {"corpus", "c"},
            {"documents", 1}, {"segment_docs", 1}, {"layers", 1}, {"kv_heads", 1}, {"head_dim", 2},
            {"template_tokens", 1}, {"router_layers", {0}}, {"dtype", "Float"}, {"complete", true}};
  std::string tmpl = f32s({1, 2, 3, 4});
  std::string seg = i64(1) + f32s({1, 2, 3, 4, 5, 6});
  int64_t chunks = 1;

  std::string write() {
    const fs::path dir = fs::temp_directory_path() / ("msabench-bank-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_file_atomic((dir / "template.bin").string(), tmpl);
    write_file_atomic((dir / "seg-00000.bin").string(), seg);
    m["template_crc32"] = crc(tmpl);
    m["segments"] = {{{"file", "seg-00000.bin"}, {"first_doc", 0}, {"docs", 1}, {"chunks", chunks},
                      {"bytes", seg.size()}, {"crc32", crc(seg)}}};
    write_json_atomic((dir / "manifest.json").string(), m);
    return dir.string();
  }
};

const BankFingerprint kFp{"m", "bytes", "c"};

}  // namespace

TEST(BankManifest, LyingGeometryIsAClearError) {
  Bank good;
  const std::string dir = good.write();
  for (bool mmap : {false, true}) EXPECT_EQ(load_bank(dir, kFp, mmap).num_chunks(), 1);

  Bank empty_template;  // zero-size tensors: no memcpy into a null pointer
  empty_template.m["template_tokens"] = 0;
  empty_template.tmpl.clear();
  EXPECT_EQ(error_of([&] { load_bank(empty_template.write(), kFp); }), "");

  Bank huge;
  huge.m["layers"] = 1e300;
  EXPECT_NE(error_of([&] { load_bank(huge.write(), kFp); }).find("\"layers\" is not a valid size"), std::string::npos);

  Bank negative;
  negative.seg = i64(-5) + negative.seg.substr(8);
  EXPECT_NE(error_of([&] { load_bank(negative.write(), kFp); }).find("chunk counts disagree"), std::string::npos);

  Bank more_docs;  // the segment holds one count, the manifest claims more documents
  more_docs.chunks = 1;
  const std::string d = more_docs.write();
  json m = json::parse(read_file(d + "/manifest.json"));
  m["segments"][0]["docs"] = 4;
  write_json_atomic(d + "/manifest.json", m);
  for (bool mmap : {false, true})
    EXPECT_NE(error_of([&] { load_bank(d, kFp, mmap); }).find("seg-00000.bin: "), std::string::npos) << mmap;

  Bank bad_router;
  bad_router.m["router_layers"] = {7};
  EXPECT_NE(error_of([&] { load_bank(bad_router.write(), kFp); }).find("router_layers"), std::string::npos);
  fs::remove_all(dir);
}
