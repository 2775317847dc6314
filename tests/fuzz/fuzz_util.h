// Shared by the libFuzzer targets: a per-process scratch directory (tmpfs when there is one) for
// parsers that take paths, splitting one input into several files, and the accepted outcome.
// A target may end normally, with msabench::Error (the user-facing failure) or with a
// nlohmann::json::exception from a field of the wrong type deep in a consumer (the CLI reports
// both as "error: ..." and exit 1). Any other exception reaches std::terminate and libFuzzer
// reports it as a crash, as it does sanitizer reports, leaks, timeouts and out-of-memory.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace msabench::fuzz {

inline const std::string& scratch_dir() {
  struct Scratch {
    std::string dir;
    Scratch() {
      const char* base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
      dir = std::string(base ? base : "/tmp") + "/msabench-fuzz-XXXXXX";
      if (!::mkdtemp(dir.data())) std::abort();
    }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static const Scratch s;
  return s.dir;
}

// Writes bytes to NAME inside the scratch directory (creating subdirectories) and returns the path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const auto p = std::filesystem::path(scratch_dir()) / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p.string();
}

// A fresh empty subdirectory of the scratch directory.
inline std::string fresh_dir(const std::string& name) {
  const auto p = std::filesystem::path(scratch_dir()) / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// Inputs holding several files separate them with this line; seeds use it too.
inline constexpr std::string_view kSeparator = "\n--8<--\n";

inline std::vector<std::string_view> split_parts(std::string_view data, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t at = data.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(data.substr(0, at));
    data.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(data);
  return parts;
}

template <class F>
void expect_error_or_success(F&& fn) {
  try {
    fn();
  } catch (const Error&) {
  } catch (const nlohmann::json::exception&) {
  }
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace msabench::fuzz
