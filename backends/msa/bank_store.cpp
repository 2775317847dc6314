#include "backends/msa/bank_store.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/io.h"
#include "core/text.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

constexpr const char* kFormat = "msabench.bank/1";

uint32_t crc(const std::string& s) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

// Tensors are stored as raw contiguous CPU bytes in a fixed order; shapes live in the manifest.
void put(std::string& out, const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).contiguous();
  out.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

torch::Tensor take(const std::string& in, size_t& off, std::vector<int64_t> shape, torch::Dtype dt, const std::string& where) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  const size_t bytes = static_cast<size_t>(n) * torch::elementSize(dt);
  if (off + bytes > in.size()) throw Error(where + ": truncated (needs " + std::to_string(off + bytes) + " bytes)");
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dt));
  std::memcpy(t.data_ptr(), in.data() + off, bytes);
  off += bytes;
  return t;
}

json read_manifest(const std::string& dir) {
  const std::string p = (fs::path(dir) / "manifest.json").string();
  if (!fs::exists(p)) throw Error(p + ": missing (not a memory bank)");
  json m;
  try {
    m = json::parse(read_file(p));
  } catch (const json::parse_error& e) {
    throw Error(p + ": invalid JSON (" + e.what() + ")");
  }
  if (m.value("format", "") != kFormat) throw Error(p + ": not a " + std::string(kFormat) + " manifest");
  return m;
}

// A segment's bytes after checking them against its manifest entry (size, then CRC-32).
std::string read_segment(const std::string& path, const json& seg) {
  if (!fs::exists(path)) throw Error(path + ": segment file missing");
  std::string bytes = read_file(path);
  if (bytes.size() != seg.at("bytes").get<size_t>()) throw Error(path + ": truncated segment (size differs from manifest)");
  if (crc(bytes) != seg.at("crc32").get<uint32_t>()) throw Error(path + ": checksum mismatch (corrupt segment)");
  return bytes;
}

void check_fingerprint(const json& m, const BankFingerprint& fp, const std::string& dir) {
  auto chk = [&](const char* key, const std::string& want) {
    const std::string got = m.value(key, std::string());
    if (got != want)
      throw Error(dir + "/manifest.json: bank was built with " + key + " " + got + ", this run has " + want +
                  " (rebuild the bank or point to another directory)");
  };
  chk("model", fp.model);
  chk("tokenizer", fp.tokenizer);
  chk("corpus", fp.corpus);
}

}  // namespace

std::string model_fingerprint(const std::string& dir) {
  uint64_t h = fnv1a64(read_file((fs::path(dir) / "config.json").string()));
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const auto size = fs::file_size(f);
    std::string head(std::min<uintmax_t>(size, 1 << 20), '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    h = fnv1a64(head, fnv1a64(std::to_string(size), h));
    if (size > (2u << 20)) {
      std::string tail(1 << 20, '\0');
      in.seekg(static_cast<std::streamoff>(size - tail.size()));
      in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
      h = fnv1a64(tail, h);
    }
  }
  return hex64(h);
}

std::string corpus_fingerprint(const std::vector<Document>& docs) {
  uint64_t h = fnv1a64("msabench.bank/1");
  for (const auto& d : docs) {
    h = fnv1a64(d.id, h);
    h = fnv1a64(std::string_view("\0", 1), h);
    h = fnv1a64(d.text, h);
    h = fnv1a64(std::string_view("\1", 1), h);
  }
  return hex64(h);
}

MemoryBank encode_bank(const MsaModel& model, const std::vector<std::vector<int64_t>>& docs,
                       const std::vector<int64_t>& template_ids, const BankFingerprint& fp, const std::string& dir,
                       int64_t segment_docs, const std::function<void(int64_t, int64_t)>& progress) {
  if (segment_docs < 1) throw Error("bank: segment size must be >= 1 document");
  fs::create_directories(dir);
  const auto& cfg = model.base().config();
  json m;
  if (fs::exists(fs::path(dir) / "manifest.json")) {
    m = read_manifest(dir);
    check_fingerprint(m, fp, dir);
    if (m.value("segment_docs", int64_t{0}) != segment_docs || m.value("documents", int64_t{-1}) != static_cast<int64_t>(docs.size()))
      throw Error(dir + "/manifest.json: bank layout differs (segment size or document count); use a new directory");
  } else {
    m = {{"format", kFormat},          {"model", fp.model},
         {"tokenizer", fp.tokenizer},  {"corpus", fp.corpus},
         {"documents", docs.size()},   {"segment_docs", segment_docs},
         {"pooling", model.options().pooling_kernel_size},
         {"router_layers", cfg.msa->router_layers},
         {"kv_heads", cfg.num_key_value_heads}, {"head_dim", cfg.head_dim},
         {"layers", cfg.num_hidden_layers},    {"dtype", std::string(c10::toString(model.base().dtype()))},
         {"template_tokens", template_ids.size()}, {"segments", json::array()}, {"complete", false}};
  }
  // Template K/V (from a one-document bank: encode_memory needs no documents for it).
  if (!fs::exists(fs::path(dir) / "template.bin")) {
    MemoryBank t = model.encode_memory({}, template_ids);
    std::string bytes;
    for (size_t l = 0; l < t.template_k.size(); ++l) {
      put(bytes, t.template_k[l]);
      put(bytes, t.template_v[l]);
    }
    write_file_atomic((fs::path(dir) / "template.bin").string(), bytes);
    m["template_crc32"] = crc(bytes);
    write_json_atomic((fs::path(dir) / "manifest.json").string(), m);
  }
  const int64_t N = static_cast<int64_t>(docs.size());
  int64_t seg = static_cast<int64_t>(m["segments"].size());
  for (int64_t first = seg * segment_docs; first < N; first += segment_docs, ++seg) {
    const int64_t n = std::min(segment_docs, N - first);
    std::vector<std::vector<int64_t>> part(docs.begin() + first, docs.begin() + first + n);
    MemoryBank b = model.encode_memory(part, template_ids);
    std::string bytes;
    for (auto c : b.doc_chunks) bytes.append(reinterpret_cast<const char*>(&c), sizeof c);
    for (size_t s = 0; s < b.k.size(); ++s) {
      put(bytes, b.k[s]);
      put(bytes, b.v[s]);
      put(bytes, b.router_k[s]);
    }
    char name[32];
    std::snprintf(name, sizeof name, "seg-%05lld.bin", static_cast<long long>(seg));
    write_file_atomic((fs::path(dir) / name).string(), bytes);
    m["segments"].push_back({{"file", name}, {"first_doc", first}, {"docs", n}, {"chunks", b.num_chunks()},
                             {"bytes", bytes.size()}, {"crc32", crc(bytes)}});
    write_json_atomic((fs::path(dir) / "manifest.json").string(), m);  // the segment counts once listed here
    if (progress) progress(first + n, N);
  }
  m["complete"] = true;
  write_json_atomic((fs::path(dir) / "manifest.json").string(), m);
  return load_bank(dir, fp);
}

MemoryBank load_bank(const std::string& dir, const BankFingerprint& expect) {
  json m = read_manifest(dir);
  check_fingerprint(m, expect, dir);
  if (!m.value("complete", false)) throw Error(dir + "/manifest.json: bank is incomplete (resume the encode)");
  const int64_t L = m.at("layers"), Hk = m.at("kv_heads"), D = m.at("head_dim"), T = m.at("template_tokens");
  const std::string dts = m.at("dtype");
  const torch::Dtype dt = dts == "BFloat16" ? torch::kBFloat16 : dts == "Half" ? torch::kFloat16 : torch::kFloat32;
  MemoryBank bank;
  bank.router_layers = m.at("router_layers").get<std::vector<int>>();
  const std::string tpath = (fs::path(dir) / "template.bin").string();
  const std::string tbytes = read_file(tpath);
  if (crc(tbytes) != m.value("template_crc32", 0u)) throw Error(tpath + ": checksum mismatch (corrupt segment)");
  size_t off = 0;
  for (int64_t l = 0; l < L; ++l) {
    bank.template_k.push_back(take(tbytes, off, {Hk, T, D}, dt, tpath));
    bank.template_v.push_back(take(tbytes, off, {Hk, T, D}, dt, tpath));
  }
  const size_t S = bank.router_layers.size();
  std::vector<std::vector<torch::Tensor>> k(S), v(S), r(S);
  for (const auto& seg : m.at("segments")) {
    const std::string path = (fs::path(dir) / seg.at("file").get<std::string>()).string();
    const std::string bytes = read_segment(path, seg);
    const int64_t n = seg.at("docs"), C = seg.at("chunks"), first = seg.at("first_doc");
    size_t o = 0;
    for (int64_t d = 0; d < n; ++d) {
      int64_t c;
      std::memcpy(&c, bytes.data() + o, sizeof c);
      o += sizeof c;
      bank.doc_first_chunk.push_back(bank.num_chunks());
      bank.doc_chunks.push_back(c);
      for (int64_t j = 0; j < c; ++j) bank.chunk_doc.push_back(first + d);
    }
    for (size_t s = 0; s < S; ++s) {
      k[s].push_back(take(bytes, o, {Hk, C, D}, dt, path));
      v[s].push_back(take(bytes, o, {Hk, C, D}, dt, path));
      r[s].push_back(take(bytes, o, {Hk, C, D}, dt, path));
    }
  }
  for (size_t s = 0; s < S && !k[s].empty(); ++s) {
    bank.k.push_back(torch::cat(k[s], 1));
    bank.v.push_back(torch::cat(v[s], 1));
    bank.router_k.push_back(torch::cat(r[s], 1));
  }
  return bank;
}

void verify_bank(const std::string& dir) {
  json m = read_manifest(dir);
  const std::string tpath = (fs::path(dir) / "template.bin").string();
  if (!fs::exists(tpath) || crc(read_file(tpath)) != m.value("template_crc32", 0u))
    throw Error(tpath + ": missing or checksum mismatch (corrupt segment)");
  for (const auto& seg : m.at("segments")) {
    read_segment((fs::path(dir) / seg.at("file").get<std::string>()).string(), seg);
  }
}

json bank_info(const std::string& dir) {
  json m = read_manifest(dir);
  int64_t chunks = 0, bytes = 0;
  for (const auto& s : m["segments"]) {
    chunks += s.value("chunks", int64_t{0});
    bytes += s.value("bytes", int64_t{0});
  }
  m["total_chunks"] = chunks;
  m["segment_bytes"] = bytes;
  m["segments_done"] = m["segments"].size();
  m.erase("segments");
  return m;
}

}  // namespace msabench
