#include "metrics/calibration.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace msabench {

namespace {

constexpr size_t kWords = size_t{4} << 20;   // 32 MiB of uint64: larger than typical L2/L3 share
constexpr uint64_t kIterations = 4'000'000;  // dependent multiply-xorshift chain

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

nlohmann::json calibration_probe(int repeats) {
  if (repeats < 1) throw Error("calibration probe: repeats must be at least 1");
  std::vector<uint64_t> buf(kWords);
  for (size_t i = 0; i < kWords; ++i) buf[i] = i * 0x9e3779b97f4a7c15ULL;  // also faults the pages in
  double best_mem = 1e300, best_cpu = 1e300;
  uint64_t checksum = 0;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // independent sums: bound by bandwidth, not latency
    for (size_t i = 0; i < kWords; i += 4) {
      s0 += buf[i];
      s1 ^= buf[i + 1];
      s2 += buf[i + 2];
      s3 ^= buf[i + 3];
    }
    const uint64_t mem_sum = s0 ^ s1 ^ s2 ^ s3;
    best_mem = std::min(best_mem, seconds_since(t0));

    t0 = std::chrono::steady_clock::now();
    uint64_t x = 0x2545f4914f6cdd1dULL + mem_sum;  // depends on the pass so neither is optimised out
    for (uint64_t i = 0; i < kIterations; ++i) {
      x ^= x >> 29;
      x *= 0xbf58476d1ce4e5b9ULL;
      x += i;
    }
    best_cpu = std::min(best_cpu, seconds_since(t0));
    checksum = x;  // identical every repeat: the workload is fixed
  }
  return nlohmann::json{{"schema", "msabench.calibration/1"},
                        {"seconds", best_mem + best_cpu},
                        {"memory_s", best_mem},
                        {"compute_s", best_cpu},
                        {"repeats", repeats},
                        {"bytes", kWords * sizeof(uint64_t)},
                        {"iterations", kIterations},
                        {"checksum", checksum}};
}

}  // namespace msabench
