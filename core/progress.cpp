#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace msabench {

std::string format_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      tty_(::isatty(2)), start_(std::chrono::steady_clock::now()), last_draw_(start_) {
  if (enabled_) draw(true);
}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n, int64_t tokens) {
  done_ += n;
  tokens_ += tokens;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  draw(true);
  if (tty_) std::fputc('\n', stderr);
}

void Progress::draw(bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (!force && since < (tty_ ? 0.2 : 10.0)) return;
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double rate = elapsed > 0 ? (done_ - resumed_) / elapsed : 0;
  const int width = 24;
  int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : 0;
  std::string bar(filled, '#');
  bar.resize(width, '.');
  char line[512];
  int n = std::snprintf(line, sizeof line, "%s [%s] %lld/%lld %s %.2f/s", label_.c_str(), bar.c_str(),
                        (long long)done_, (long long)total_, unit_.c_str(), rate);
  std::string s(line, n > 0 ? std::min<size_t>(n, sizeof line - 1) : 0);
  if (tokens_ > 0 && elapsed > 0) {
    std::snprintf(line, sizeof line, " %.0f tok/s", tokens_ / elapsed);
    s += line;
  }
  if (done_ < total_ && rate > 0) s += " ETA " + format_duration((total_ - done_) / rate);
  else s += " " + format_duration(elapsed);
  if (tty_) std::fprintf(stderr, "\r\033[K%s", s.c_str());
  else std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

}  // namespace msabench
