// The tokenizers on arbitrary bytes: the BPE fixture tokenizer (normalizer, added tokens, regex
// pre-tokenizer) and the byte tokenizer (plain and bytes+splitids). Also decodes the input read as little-endian ids.
#include <cstring>

#include "core/tokenizer/bpe_tokenizer.h"
#include "core/tokenizer/byte_tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

using namespace msabench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto bpe = BpeTokenizer::load(TOKENIZER_FIXTURE);
  static const ByteTokenizer bytes;
  static const ByteTokenizer split = ByteTokenizer::split_ids();
  const std::string_view text = fuzz::as_view(data, size);
  for (const TextTokenizer* tok : {static_cast<const TextTokenizer*>(bpe.get()), static_cast<const TextTokenizer*>(&bytes),
                                   static_cast<const TextTokenizer*>(&split)}) {
    for (bool special : {true, false}) {
      fuzz::expect_error_or_success([&] {
        const auto ids = tok->encode(text, special);
        if (tok->count(text, special) != static_cast<int64_t>(ids.size())) __builtin_trap();
        const std::string back = tok->decode(ids);
        // the byte tokenizer is lossless on plain text; with split ids on any text
        if (tok == &bytes && !special && back != text) __builtin_trap();
        if (tok == &split && back != text) __builtin_trap();
      });
    }
    std::vector<int32_t> ids(size / 4);
    if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
    fuzz::expect_error_or_success([&] { tok->decode(ids, size > 0 && (data[0] & 1)); });
  }
  return 0;
}
