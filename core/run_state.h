// Resumable staging for `msabench run`. Cells are written into OUT.partial/ next to
// run_state.json, which holds a hash of everything that determines the results (the run's
// arguments and the source commit). A run killed at any point leaves OUT untouched; the same
// command run again reuses every completed cell file (written atomically, so each is whole or
// absent) and computes only the rest, so no cell is computed twice and none is duplicated.
// Different arguments discard the old staging directory. commit() replaces OUT atomically.
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace msabench {

class RunStaging {
 public:
  // identity: what the results depend on; two runs resume each other iff their identities match.
  // Throws Error if another process is writing the same OUT.
  RunStaging(const std::string& final_dir, const nlohmann::json& identity);
  ~RunStaging();
  RunStaging(const RunStaging&) = delete;
  RunStaging& operator=(const RunStaging&) = delete;

  const std::string& path() const { return staging_; }
  int resumed_cells() const { return resumed_; }
  // The result at `file` (inside path()) if an earlier attempt of this run completed it.
  std::optional<nlohmann::json> completed(const std::string& file);
  // Moves the staging directory to OUT (replacing any previous OUT).
  void commit();

 private:
  std::string final_, staging_;
  int lock_fd_ = -1;
  int resumed_ = 0;
  bool committed_ = false;
};

}  // namespace msabench
