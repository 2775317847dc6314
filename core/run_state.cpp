#include "core/run_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>

#include "core/error.h"
#include "core/io.h"
#include "core/result.h"
#include "core/text.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {
constexpr const char* kStateFile = "run_state.json";
constexpr const char* kLockFile = ".lock";
constexpr const char* kStateSchema = "msabench.run_state/1";
}  // namespace

namespace {
// "out/" names the directory "out": its staging area must sit beside it, not inside.
std::string without_trailing_slash(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  return p.string();
}
}  // namespace

RunStaging::RunStaging(const std::string& final_dir, const json& identity)
    : final_(without_trailing_slash(final_dir)), staging_(final_ + ".partial") {
  fs::create_directories(staging_);
  const std::string lock = (fs::path(staging_) / kLockFile).string();
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw Error(lock + ": cannot create lock file");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw Error(final_ + ": another msabench run is writing this output directory (" + staging_ + ")");
  }
  const std::string key = hex64(fnv1a64(identity.dump()));
  const fs::path state = fs::path(staging_) / kStateFile;
  bool same = false;
  if (fs::exists(state)) {
    const json old = json::parse(read_file(state.string()), nullptr, false);
    same = old.is_object() && old.value("key", std::string()) == key;
  }
  for (const auto& e : fs::directory_iterator(staging_)) {
    const std::string name = e.path().filename().string();
    if (name == kLockFile) continue;
    // another run's cells, or temporary files of a killed write
    if (!same || name.find(".tmp-") != std::string::npos) fs::remove_all(e.path());
  }
  if (same && fs::is_directory(fs::path(staging_) / "cells"))
    for (const auto& e : fs::directory_iterator(fs::path(staging_) / "cells"))
      if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(e.path());
  if (!same) write_json_atomic(state.string(), {{"schema", kStateSchema}, {"key", key}, {"identity", identity}});
}

RunStaging::~RunStaging() {
  if (!committed_ && std::uncaught_exceptions() > 0) {
    int cells = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(staging_) / "cells", ec))
      if (e.path().extension() == ".json") ++cells;
    if (cells > 0)
      std::fprintf(stderr, "note: %s keeps %d completed cell(s); the same command resumes from them\n",
                   staging_.c_str(), cells);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::optional<json> RunStaging::completed(const std::string& file) {
  if (!fs::exists(file)) return std::nullopt;
  try {
    json r = json::parse(read_file(file));
    validate_result(r, file);
    ++resumed_;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable: computed again and overwritten
  }
}

void RunStaging::commit() {
  fs::remove(fs::path(staging_) / kStateFile);
  fs::remove(fs::path(staging_) / kLockFile);
  replace_directory_atomic(staging_, final_);
  committed_ = true;
}

}  // namespace msabench
