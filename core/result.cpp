#include "core/result.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <thread>

#include "core/error.h"

using nlohmann::json;

namespace msabench {

namespace {
std::string run_command(const std::string& cmd) {
  std::array<char, 256> buf{};
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(cmd.c_str(), "r"), ::pclose);
  if (!pipe) return out;
  while (std::fgets(buf.data(), buf.size(), pipe.get())) out += buf.data();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string proc_field(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

int64_t status_kb(const std::string& key) {
  std::string v = proc_field("/proc/self/status", key);
  return v.empty() ? -1 : std::stoll(v) * 1024;
}
}  // namespace

json machine_info() {
  json m;
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  m["hostname"] = host;
  m["cpu"] = proc_field("/proc/cpuinfo", "model name");
  m["logical_cores"] = std::thread::hardware_concurrency();
  std::string mem = proc_field("/proc/meminfo", "MemTotal");
  m["memory_bytes"] = mem.empty() ? 0 : std::stoll(mem) * 1024;
  std::string os;
  std::ifstream rel("/etc/os-release");
  std::string line;
  while (std::getline(rel, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0) os = line.substr(12);
  if (os.size() >= 2 && os.front() == '"') os = os.substr(1, os.size() - 2);
  m["os"] = os;
  struct utsname u {};
  if (::uname(&u) == 0) m["kernel"] = std::string(u.release);
  m["compiler"] = std::string("g++ ") + __VERSION__;
  m["build_type"] = MSABENCH_BUILD_TYPE;
  m["msabench_version"] = MSABENCH_VERSION;
  m["gpu"] = nullptr;  // CPU-only build path; CUDA results record their device separately
  return m;
}

json git_info() {
  std::string dir = MSABENCH_SOURCE_DIR;
  std::string commit = run_command("git -C '" + dir + "' rev-parse HEAD 2>/dev/null");
  if (commit.size() != 40 || commit.find_first_not_of("0123456789abcdef") != std::string::npos)
    return json{{"commit", nullptr}, {"dirty", nullptr}};
  std::string status = run_command("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null");
  return json{{"commit", commit}, {"dirty", !status.empty()}};
}

std::string utc_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t peak_rss_bytes() { return status_kb("VmHWM"); }
int64_t current_rss_bytes() { return status_kb("VmRSS"); }

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

void validate_result(const json& j, const std::string& source) {
  auto need = [&](const char* key, json::value_t type) {
    if (!j.contains(key)) throw Error(source + ": result has no \"" + key + "\" field");
    if (j[key].type() != type && !(type == json::value_t::number_float && j[key].is_number()))
      throw Error(source + ": result field \"" + std::string(key) + "\" has the wrong type");
  };
  if (!j.is_object()) throw Error(source + ": result is not a JSON object");
  need("schema", json::value_t::string);
  if (j["schema"] != kResultSchema)
    throw Error(source + ": unsupported result schema '" + j["schema"].get<std::string>() + "' (expected " +
                kResultSchema + ")");
  need("backend", json::value_t::object);
  need("dataset", json::value_t::object);
  need("aggregates", json::value_t::object);
  need("records", json::value_t::array);
  need("timings", json::value_t::object);
  if (!j["dataset"].contains("memory_tokens") || !j["dataset"]["memory_tokens"].is_number_integer())
    throw Error(source + ": result dataset.memory_tokens missing or not an integer");
  if (!j["backend"].contains("spec") || !j["backend"]["spec"].is_string())
    throw Error(source + ": result backend.spec missing");
  if (!j["dataset"].contains("name") || !j["dataset"]["name"].is_string())
    throw Error(source + ": result dataset.name missing or not a string");
}

}  // namespace msabench
