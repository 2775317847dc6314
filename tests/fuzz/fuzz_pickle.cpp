// The restricted pickle reader on arbitrary bytes. Whatever it returns must serialise as JSON
// (strings valid UTF-8, as parse_pickle promises).
#include "datasets/pickle_reader.h"
#include "tests/fuzz/fuzz_util.h"

using namespace msabench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_error_or_success([&] {
    const nlohmann::json j = parse_pickle(fuzz::as_view(data, size), "fuzz.pkl");
    j.dump();
  });
  return 0;
}
