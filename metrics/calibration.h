// Calibration probe: a fixed, deterministic workload (a memory-bandwidth pass and a dependent
// integer compute chain) timed in the same process as a run. `msabench compare` divides timings
// by it, so a run on a slower or busier machine is not reported as a code regression.
#pragma once
#include <nlohmann/json.hpp>

namespace msabench {

// {"schema": "msabench.calibration/1", "seconds": memory_s + compute_s, "memory_s", "compute_s",
//  "repeats", "bytes", "iterations", "checksum"}. Each part is the minimum over `repeats`
// (the least disturbed measurement); about 10 ms per repeat on a current CPU.
nlohmann::json calibration_probe(int repeats = 5);

}  // namespace msabench
