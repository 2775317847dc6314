#include "core/backend.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace msabench {

BackendSpec BackendSpec::parse(const std::string& spec) {
  BackendSpec out;
  auto colon = spec.find(':');
  out.name = spec.substr(0, colon);
  if (out.name.empty()) throw Error("backend spec '" + spec + "': missing backend name");
  if (colon == std::string::npos) return out;
  std::string rest = spec.substr(colon + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t comma = rest.find(',', pos);
    std::string item = rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) {
      auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error("backend spec '" + spec + "': option '" + item + "' is not key=value");
      std::string key = item.substr(0, eq);
      if (out.options.count(key)) throw Error("backend spec '" + spec + "': option '" + key + "' given twice");
      out.options[key] = item.substr(eq + 1);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string BackendSpec::to_string() const {
  std::string s = name;
  char sep = ':';
  for (const auto& [k, v] : options) {
    s += sep;
    s += k + "=" + v;
    sep = ',';
  }
  return s;
}

double BackendSpec::get_double(const std::string& key, double fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0')
    throw Error("backend '" + name + "': option " + key + "='" + it->second + "' is not a number");
  return v;
}

int64_t BackendSpec::get_int(const std::string& key, int64_t fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0')
    throw Error("backend '" + name + "': option " + key + "='" + it->second + "' is not an integer");
  return v;
}

std::string BackendSpec::get_string(const std::string& key, const std::string& fallback) const {
  auto it = options.find(key);
  return it == options.end() ? fallback : it->second;
}

void BackendSpec::check_known(const std::vector<std::string>& known) const {
  for (const auto& [k, v] : options) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      throw Error("backend '" + name + "': unknown option '" + k + "' (known: " + list + ")");
    }
  }
}

BackendRegistry& BackendRegistry::instance() {
  static BackendRegistry registry;
  return registry;
}

void BackendRegistry::add(BackendInfo info) { backends_[info.name] = std::move(info); }

std::unique_ptr<Backend> BackendRegistry::create(const std::string& spec) const {
  BackendSpec parsed = BackendSpec::parse(spec);
  auto it = backends_.find(parsed.name);
  if (it == backends_.end()) {
    std::string names;
    for (const auto& [n, i] : backends_) names += (names.empty() ? "" : ", ") + n;
    throw Error("unknown backend '" + parsed.name + "' (registered: " + names + ")");
  }
  return it->second.factory(parsed);
}

std::vector<BackendInfo> BackendRegistry::list() const {
  std::vector<BackendInfo> out;
  for (const auto& [n, i] : backends_) out.push_back(i);
  return out;
}

}  // namespace msabench
