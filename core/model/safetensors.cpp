#include "core/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {
const std::pair<const char*, DType> kDTypes[] = {
    {"BF16", DType::BF16}, {"F16", DType::F16}, {"F32", DType::F32}, {"F64", DType::F64}, {"I64", DType::I64},
    {"I32", DType::I32},   {"I16", DType::I16}, {"I8", DType::I8},   {"U8", DType::U8},   {"BOOL", DType::BOOL}};
constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit is 100 MB
}  // namespace

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: case DType::I16: return 2;
    default: return 1;
  }
}

std::string dtype_name(DType t) {
  for (const auto& [n, d] : kDTypes)
    if (d == t) return n;
  return "?";
}

DType parse_dtype(const std::string& name) {
  for (const auto& [n, d] : kDTypes)
    if (name == n) return d;
  throw Error("unsupported tensor dtype '" + name + "'");
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(path + ": cannot stat");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw Error(path + ": too small to be a safetensors file (" + std::to_string(size_) + " bytes)");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error(path + ": mmap failed");
  }
  try {
    const auto* base = static_cast<const uint8_t*>(map_);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];
    if (n > kMaxHeader || n > size_ - 8)
      throw Error(path + ": header length " + std::to_string(n) + " exceeds the file (" + std::to_string(size_) +
                  " bytes)");
    std::string header(reinterpret_cast<const char*>(base + 8), n);
    std::set<std::string> seen;
    bool dup = false;
    std::string dup_name;
    json h;
    try {
      h = json::parse(header, [&](int depth, json::parse_event_t ev, json& parsed) {
        if (depth == 1 && ev == json::parse_event_t::key) {
          auto k = parsed.get<std::string>();
          if (!seen.insert(k).second) {
            dup = true;
            dup_name = k;
          }
        }
        return true;
      });
    } catch (const json::exception& e) {
      throw Error(path + ": header is not valid JSON (" + e.what() + ")");
    }
    if (dup) throw Error(path + ": duplicate tensor name '" + dup_name + "' in header");
    if (!h.is_object()) throw Error(path + ": header is not a JSON object");
    const uint64_t data_size = size_ - 8 - n;
    const uint8_t* data = base + 8 + n;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (auto it = h.begin(); it != h.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (!it->is_object()) throw Error(path + ": __metadata__ must be an object");
        for (auto m = it->begin(); m != it->end(); ++m) {
          if (!m->is_string()) throw Error(path + ": __metadata__ value '" + m.key() + "' is not a string");
          metadata_[m.key()] = m->get<std::string>();
        }
        continue;
      }
      const std::string where = path + ": tensor '" + it.key() + "'";
      const json& t = *it;
      if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") || !t.contains("data_offsets"))
        throw Error(where + " needs dtype, shape and data_offsets");
      if (!t["dtype"].is_string()) throw Error(where + ": dtype is not a string");
      TensorView v;
      v.name = it.key();
      try {
        v.dtype = parse_dtype(t["dtype"].get<std::string>());
      } catch (const Error& e) {
        throw Error(where + ": " + e.what());
      }
      if (!t["shape"].is_array()) throw Error(where + ": shape is not an array");
      for (const auto& d : t["shape"]) {
        if (!d.is_number_unsigned()) throw Error(where + ": shape entries must be non-negative integers");
        v.shape.push_back(d.get<int64_t>());
      }
      const auto& off = t["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw Error(where + ": data_offsets must be [begin, end]");
      uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
      if (b > e || e > data_size)
        throw Error(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                    "] outside the data region (" + std::to_string(data_size) + " bytes)");
      const uint64_t want = static_cast<uint64_t>(v.numel()) * dtype_size(v.dtype);
      if (e - b != want)
        throw Error(where + ": " + std::to_string(e - b) + " bytes for shape/dtype needing " + std::to_string(want));
      v.data = data + b;
      v.bytes = e - b;
      if (e > b) ranges.emplace_back(b, e);
      tensors_.emplace(v.name, std::move(v));
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i)
      if (ranges[i].first < ranges[i - 1].second) throw Error(path + ": tensor data regions overlap");
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

const TensorView& SafetensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(path_ + ": no tensor named '" + name + "'");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [n, v] : tensors_) out.push_back(n);
  return out;
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw Error(dir + ": model directory does not exist");
  const fs::path index = d / "model.safetensors.index.json";
  if (fs::exists(index)) {
    json j;
    try {
      j = json::parse(read_file(index.string()));
    } catch (const json::exception& e) {
      throw Error(index.string() + ": invalid JSON (" + e.what() + ")");
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": missing \"weight_map\" object");
    std::map<std::string, const SafetensorsFile*> by_file;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it->is_string()) throw Error(index.string() + ": weight_map entry '" + it.key() + "' is not a file name");
      const std::string file = it->get<std::string>();
      if (file.find('/') != std::string::npos) throw Error(index.string() + ": shard name '" + file + "' has a path");
      auto f = by_file.find(file);
      if (f == by_file.end()) {
        files_.push_back(std::make_unique<SafetensorsFile>((d / file).string()));
        f = by_file.emplace(file, files_.back().get()).first;
      }
      if (!f->second->contains(it.key()))
        throw Error(index.string() + ": tensor '" + it.key() + "' is mapped to " + file + " but is not in it");
      where_[it.key()] = f->second;
    }
  } else if (fs::exists(d / "model.safetensors")) {
    files_.push_back(std::make_unique<SafetensorsFile>((d / "model.safetensors").string()));
    for (const auto& n : files_.back()->names()) where_[n] = files_.back().get();
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
}

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(dir_ + ": checkpoint has no tensor '" + name + "'");
  return it->second->get(name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [n, f] : where_) out.push_back(n);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (!names.insert(t.name).second) throw Error(path + ": duplicate tensor name '" + t.name + "'");
    int64_t numel = 1;
    for (auto s : t.shape) {
      if (s < 0) throw Error(path + ": tensor '" + t.name + "' has a negative dimension");
      numel *= s;
    }
    if (static_cast<uint64_t>(numel) * dtype_size(t.dtype) != t.bytes)
      throw Error(path + ": tensor '" + t.name + "' byte size does not match its shape and dtype");
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string header = h.dump();
  while (header.size() % 8) header.push_back(' ');  // keep the data region 8-byte aligned
  std::string out;
  out.reserve(8 + header.size() + offset);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out += header;
  // nlohmann orders keys alphabetically, and offsets were assigned in input order: that is fine,
  // the data region order is ours.
  for (const auto& t : tensors) out.append(static_cast<const char*>(t.data), t.bytes);
  write_file_atomic(path, out);
}

}  // namespace msabench
