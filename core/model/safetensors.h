// safetensors reader (mmap, strict validation) and writer (atomic). No LibTorch here:
// tensors are raw byte views; the model code converts them.
// Format: u64 little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data region; offsets are relative to its start.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace msabench {

enum class DType { BF16, F16, F32, F64, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType t);
std::string dtype_name(DType t);
DType parse_dtype(const std::string& name);  // throws Error for unknown names

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // valid while the owning file is open
  size_t bytes = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates the whole header; throws Error("PATH: problem") on any defect.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  const TensorView& get(const std::string& name) const;  // throws Error naming file and tensor
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory: model.safetensors, or shards listed in model.safetensors.index.json.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const TensorView& get(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t bytes;
};

// Writes one safetensors file atomically (temp + rename). Validates sizes and unique names.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace msabench
