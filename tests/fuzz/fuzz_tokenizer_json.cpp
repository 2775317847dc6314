// tokenizer.json text from arbitrary bytes; a tokenizer that loads must encode and decode.
#include "core/tokenizer/bpe_tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

using namespace msabench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_error_or_success([&] {
    BpeOptions opts;
    opts.cache_entries = 64;
    auto tok = BpeTokenizer::from_json_text(std::string(fuzz::as_view(data, size)), "fuzz/tokenizer.json", opts);
    const std::string text = "Hello wörld <mask> [W] café 123\n\t  x";
    const auto ids = tok->encode(text);
    if (tok->count(text) != static_cast<int64_t>(ids.size())) __builtin_trap();
    tok->decode(ids);
    tok->decode(ids, true);
    for (int32_t id : ids) tok->token_text(id);
  });
  return 0;
}
