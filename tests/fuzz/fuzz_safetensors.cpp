// safetensors files and checkpoint directories from arbitrary bytes. Input: a safetensors file,
// optionally followed by a config.json (the two separated by fuzz_util.h's separator line).
#include <cstring>

#include "core/model/config.h"
#include "core/model/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

using namespace msabench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_parts(fuzz::as_view(data, size), 2);
  const std::string dir = fuzz::fresh_dir("ckpt");
  fuzz::write_scratch("ckpt/model.safetensors", parts[0]);
  fuzz::expect_error_or_success([&] {
    Checkpoint ck(dir);
    for (const auto& name : ck.names()) {
      const TensorView& t = ck.get(name);
      // every byte a view claims must be inside the mapping
      volatile uint8_t sink = 0;
      if (t.bytes > 0) sink = sink ^ t.data[0] ^ t.data[t.bytes - 1];
      if (static_cast<size_t>(t.numel()) * dtype_size(t.dtype) != t.bytes) __builtin_trap();
    }
  });
  if (parts.size() > 1) {
    fuzz::write_scratch("ckpt/config.json", parts[1]);
    fuzz::expect_error_or_success([&] { ModelConfig::load(dir); });
  }
  return 0;
}
