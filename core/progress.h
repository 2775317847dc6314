// Progress line on stderr: items done/total, rate, ETA. Redraws in place on a terminal,
// prints a line every few seconds otherwise (CI logs).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace msabench {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "items", bool enabled = true);
  ~Progress();
  void set_label(std::string label) { label_ = std::move(label); }
  void advance(int64_t n = 1, int64_t tokens = 0);  // tokens: optional throughput counter
  // Work already done before this run (a resumed job): counted as done, excluded from the rate.
  void resume_from(int64_t done) { done_ = resumed_ = done; }
  void finish();

 private:
  void draw(bool force);
  std::string label_, unit_;
  int64_t total_, done_ = 0, resumed_ = 0, tokens_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);

}  // namespace msabench
