// Memory-bank directories (manifest.json, template.bin, segments) as load_bank, verify_bank and
// bank_info read them. Input: manifest, template bytes, then segment bytes, separated by
// fuzz_util.h's separator line. Sizes and CRC-32s in the manifest are rewritten to match the
// given bytes (and the fingerprint is taken from it) so that the parsing behind the checksum
// checks is reached: a consistent manifest that lies about shapes must still be an Error.
#include <zlib.h>

#include "backends/msa/bank_store.h"
#include "tests/fuzz/fuzz_util.h"

using namespace msabench;
using nlohmann::json;

namespace {

uint32_t crc(std::string_view s) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

bool plain_name(const std::string& f) {
  return !f.empty() && f.find('/') == std::string::npos && f != "." && f != ".." && f != "manifest.json" &&
         f != "template.bin" && f.size() < 64;
}

std::string str_or_empty(const json& m, const char* key) {
  return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : std::string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_parts(fuzz::as_view(data, size), 64);
  const std::string dir = fuzz::fresh_dir("bank");
  const std::string_view tmpl = parts.size() > 1 ? parts[1] : std::string_view();
  fuzz::write_scratch("bank/template.bin", tmpl);
  std::string manifest(parts[0]);
  BankFingerprint fp;
  json m = json::parse(manifest, nullptr, false);
  if (m.is_object()) {
    m["template_crc32"] = crc(tmpl);
    if (m.contains("segments") && m["segments"].is_array()) {
      size_t i = 2;
      for (auto& seg : m["segments"]) {
        if (!seg.is_object() || !seg.contains("file") || !seg["file"].is_string()) continue;
        const std::string f = seg["file"].get<std::string>();
        if (!plain_name(f)) continue;
        const std::string_view bytes = i < parts.size() ? parts[i] : std::string_view();
        ++i;
        fuzz::write_scratch("bank/" + f, bytes);
        seg["bytes"] = bytes.size();
        seg["crc32"] = crc(bytes);
      }
    }
    fp = {str_or_empty(m, "model"), str_or_empty(m, "tokenizer"), str_or_empty(m, "corpus")};
    manifest = m.dump();
  }
  fuzz::write_scratch("bank/manifest.json", manifest);
  fuzz::expect_error_or_success([&] { load_bank(dir, fp); });
  fuzz::expect_error_or_success([&] { load_bank(dir, fp, /*content_mmap=*/true); });
  fuzz::expect_error_or_success([&] { verify_bank(dir); });
  fuzz::expect_error_or_success([&] { bank_info(dir); });
  return 0;
}
