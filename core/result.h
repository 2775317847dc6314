// Result files: versioned JSON (schema "msabench.result/1"), one per backend x dataset x
// memory size. Also the environment facts every result carries (machine, git, peak RSS).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace msabench {

inline constexpr const char* kResultSchema = "msabench.result/1";

nlohmann::json machine_info();   // cpu model, cores, memory, os, compiler, build type
nlohmann::json git_info();       // commit, dirty flag (of the source tree the binary was built from)
std::string utc_timestamp();     // ISO 8601

// Peak resident set size of this process in bytes (VmHWM). reset_peak_rss() restarts the
// measurement (Linux clear_refs); returns false if the kernel refused.
int64_t peak_rss_bytes();
int64_t current_rss_bytes();
bool reset_peak_rss();

// Validates the shape of a result document; throws Error naming `source` and the field.
void validate_result(const nlohmann::json& j, const std::string& source);

}  // namespace msabench
