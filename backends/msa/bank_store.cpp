#include "backends/msa/bank_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
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

// Sizes and shapes come from the manifest: a consistent but lying one must be an Error, not an
// overflow or an out-of-bounds read (found by fuzz_bank).
int64_t manifest_size(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (int64_t{1} << 40))
    throw Error(where + ": \"" + key + "\" is not a valid size");
  return v.get<int64_t>();
}

size_t shape_bytes(const std::vector<int64_t>& shape, torch::Dtype dt, const std::string& where) {
  int64_t n = 1;
  for (auto s : shape) {
    if (s < 0 || (s > 0 && n > (int64_t{1} << 40) / s)) throw Error(where + ": tensor shape out of range");
    n *= s;
  }
  return static_cast<size_t>(n) * torch::elementSize(dt);
}

torch::Tensor take(const std::string& in, size_t& off, std::vector<int64_t> shape, torch::Dtype dt, const std::string& where) {
  const size_t bytes = shape_bytes(shape, dt, where);
  if (off + bytes > in.size()) throw Error(where + ": truncated (needs " + std::to_string(off + bytes) + " bytes)");
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dt));
  if (bytes > 0) std::memcpy(t.data_ptr(), in.data() + off, bytes);
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
  // Absent in whole-corpus banks; a sub-bank of another shard layout holds other documents.
  const std::string shard = m.value("shard", std::string());
  if (shard != fp.shard)
    throw Error(dir + "/manifest.json: bank was built for shard layout " + (shard.empty() ? "(whole corpus)" : shard) +
                ", this run has " + (fp.shard.empty() ? "(whole corpus)" : fp.shard) +
                " (rebuild the bank or point to another directory)");
}

// A read-only mapping of a whole segment file, kept alive by the tensors that view it.
struct Mapping {
  void* p = MAP_FAILED;
  size_t n = 0;
  ~Mapping() {
    if (p != MAP_FAILED) munmap(p, n);
  }
};

std::shared_ptr<Mapping> map_segment(const std::string& path, const json& seg) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(path + ": segment file missing");
  struct stat st {};
  fstat(fd, &st);
  auto m = std::make_shared<Mapping>();
  m->n = static_cast<size_t>(st.st_size);
  if (m->n != seg.at("bytes").get<size_t>()) {
    ::close(fd);
    throw Error(path + ": truncated segment (size differs from manifest)");
  }
  m->p = m->n ? mmap(nullptr, m->n, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (m->n && m->p == MAP_FAILED) throw Error(path + ": cannot memory-map the segment");
  const uint32_t c = static_cast<uint32_t>(crc32(0L, static_cast<const Bytef*>(m->p), static_cast<uInt>(m->n)));
  if (c != seg.at("crc32").get<uint32_t>()) throw Error(path + ": checksum mismatch (corrupt segment)");
  return m;
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
                       int64_t segment_docs, const std::function<void(int64_t, int64_t)>& progress,
                       bool content_mmap) {
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
    if (!fp.shard.empty()) m["shard"] = fp.shard;
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
  return load_bank(dir, fp, content_mmap);
}

MemoryBank load_bank(const std::string& dir, const BankFingerprint& expect, bool content_mmap) {
  json m = read_manifest(dir);
  check_fingerprint(m, expect, dir);
  if (!m.value("complete", false)) throw Error(dir + "/manifest.json: bank is incomplete (resume the encode)");
  const std::string mpath = dir + "/manifest.json";
  const int64_t L = manifest_size(m, "layers", mpath), Hk = manifest_size(m, "kv_heads", mpath),
                D = manifest_size(m, "head_dim", mpath), T = manifest_size(m, "template_tokens", mpath);
  for (const auto& l : m.at("router_layers"))
    if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() >= L)
      throw Error(mpath + ": router_layers entry is not a layer index");
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
  std::vector<std::pair<std::shared_ptr<Mapping>, std::string>> mapped;  // for drop_cached_content
  if (content_mmap) {
    bank.k_parts.assign(S, {});
    bank.v_parts.assign(S, {});
  }
  for (const auto& seg : m.at("segments")) {
    const std::string path = (fs::path(dir) / seg.at("file").get<std::string>()).string();
    std::shared_ptr<Mapping> map;
    std::string bytes;
    if (content_mmap) {
      map = map_segment(path, seg);
      mapped.emplace_back(map, path);
      const size_t count_bytes = static_cast<size_t>(8 * manifest_size(seg, "docs", path));
      if (count_bytes > map->n) throw Error(path + ": truncated (document chunk counts)");
      bytes.assign(static_cast<const char*>(map->p), count_bytes);
    } else {
      bytes = read_segment(path, seg);
    }
    const int64_t n = manifest_size(seg, "docs", path), C = manifest_size(seg, "chunks", path),
                  first = manifest_size(seg, "first_doc", path);
    int64_t counted = 0;
    if (content_mmap) bank.part_first_chunk.push_back(bank.num_chunks());
    size_t o = 0;
    for (int64_t d = 0; d < n; ++d) {
      int64_t c;
      if (o + sizeof c > bytes.size()) throw Error(path + ": truncated (document chunk counts)");
      std::memcpy(&c, bytes.data() + o, sizeof c);
      o += sizeof c;
      if (c < 0 || c > C - counted) throw Error(path + ": document chunk counts disagree with the manifest");
      counted += c;
      bank.doc_first_chunk.push_back(bank.num_chunks());
      bank.doc_chunks.push_back(c);
      for (int64_t j = 0; j < c; ++j) bank.chunk_doc.push_back(first + d);
    }
    if (counted != C) throw Error(path + ": document chunk counts disagree with the manifest");
    const size_t tensor_bytes = shape_bytes({Hk, C, D}, dt, path);
    for (size_t s = 0; s < S; ++s) {
      if (content_mmap) {
        // K and V viewed in place (read-only pages; never written); the router keys are copied.
        if (o + 3 * tensor_bytes > map->n) throw Error(path + ": truncated (needs " + std::to_string(o + 3 * tensor_bytes) + " bytes)");
        auto* base = static_cast<char*>(map->p) + o;
        auto keep = [map](void*) {};
        bank.k_parts[s].push_back(torch::from_blob(base, {Hk, C, D}, keep, torch::TensorOptions().dtype(dt)));
        bank.v_parts[s].push_back(torch::from_blob(base + tensor_bytes, {Hk, C, D}, keep, torch::TensorOptions().dtype(dt)));
        r[s].push_back(torch::from_blob(base + 2 * tensor_bytes, {Hk, C, D}, torch::TensorOptions().dtype(dt)).clone());
        o += 3 * tensor_bytes;
      } else {
        k[s].push_back(take(bytes, o, {Hk, C, D}, dt, path));
        v[s].push_back(take(bytes, o, {Hk, C, D}, dt, path));
        r[s].push_back(take(bytes, o, {Hk, C, D}, dt, path));
      }
    }
  }
  if (content_mmap)
    bank.drop_cached_content = [mapped] {
      for (const auto& [map, path] : mapped) {
        if (map->p == MAP_FAILED) continue;
        madvise(map->p, map->n, MADV_DONTNEED);  // drop this process's pages first: mapped pages stay cached
        const int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) continue;
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
      }
    };
  for (size_t s = 0; s < S && !r[s].empty(); ++s) {
    bank.k.push_back(content_mmap ? torch::Tensor() : torch::cat(k[s], 1));
    bank.v.push_back(content_mmap ? torch::Tensor() : torch::cat(v[s], 1));
    bank.router_k.push_back(torch::cat(r[s], 1));
  }
  return bank;
}

BankGeometry bank_geometry(const ModelConfig& cfg, int64_t pooling, int64_t template_tokens, torch::Dtype dtype) {
  if (!cfg.msa) throw Error("bank: not an MSA config");
  BankGeometry g;
  g.layers = cfg.num_hidden_layers;
  g.router_layers = static_cast<int64_t>(cfg.msa->router_layers.size());
  g.kv_heads = cfg.num_key_value_heads;
  g.head_dim = cfg.head_dim;
  g.pooling = pooling;
  g.template_tokens = template_tokens;
  g.element_bytes = static_cast<int64_t>(torch::elementSize(dtype));
  return g;
}

BankTierBytes bank_tier_bytes(const BankGeometry& g, const std::vector<int64_t>& doc_tokens, int64_t text_bytes,
                              std::optional<KeyDtype> key_dtype) {
  if (g.pooling < 1) throw Error("bank: pooling size must be >= 1");
  BankTierBytes t;
  t.documents = static_cast<int64_t>(doc_tokens.size());
  for (auto n : doc_tokens) {
    t.tokens += n;
    t.chunks += (n + g.pooling - 1) / g.pooling;
  }
  const int64_t S = g.router_layers, row = g.kv_heads * g.head_dim, E = g.element_bytes, C = t.chunks, N = t.documents;
  const int64_t tensor = row * C * E;  // one [Hk, C, D] tensor of one router layer
  if (key_dtype) {
    const int64_t padded = (C + RouterKeyIndex::kBlock - 1) / RouterKeyIndex::kBlock * RouterKeyIndex::kBlock;
    t.routing_keys_ram = S * padded * router_key_bytes_per_chunk(*key_dtype, row);
  } else {
    t.routing_keys_ram = S * tensor;
  }
  t.content_kv = S * 2 * tensor;
  // chunk_doc, doc_first_chunk, doc_chunks (int64), plus the scan's document ends.
  t.doc_map_ram = 8 * (C + 2 * N + (key_dtype ? N : 0));
  t.doc_map_disk = 8 * N;  // chunk count of every document, at the head of its segment
  t.template_kv = g.layers * 2 * g.kv_heads * g.template_tokens * g.head_dim * E;
  t.text_ram = text_bytes;
  t.segment_files = t.doc_map_disk + S * 3 * tensor;  // encode_bank: counts, then K, V, K^R per slot
  t.template_file = t.template_kv;
  return t;
}

json BankTierBytes::to_json() const {
  const double n = tokens > 0 ? static_cast<double>(tokens) : 1.0;
  auto tier = [&](int64_t ram, int64_t disk) {
    return json{{"ram_bytes", ram}, {"disk_bytes", disk}, {"ram_bytes_per_token", ram / n}, {"disk_bytes_per_token", disk / n}};
  };
  return {{"tokens", tokens},
          {"documents", documents},
          {"chunks", chunks},
          {"routing_keys", tier(routing_keys_ram, segment_files - doc_map_disk - content_kv)},
          {"content_kv", tier(content_kv, content_kv)},
          {"doc_map", tier(doc_map_ram, doc_map_disk)},
          {"template_kv", tier(template_kv, template_file)},
          {"text", tier(text_ram, 0)},
          {"segment_files_bytes", segment_files},
          {"template_file_bytes", template_file}};
}

TierPlan plan_tiers(const BankTierBytes& t, int64_t ram_budget, int64_t gpu_budget, const std::string& content,
                    bool have_bank_files) {
  if (content != "auto" && content != "ram" && content != "mmap") throw Error("content tier must be auto, ram or mmap");
  const int64_t scoring = t.routing_keys_ram + t.doc_map_ram + t.template_kv + t.text_ram;
  auto mib = [](int64_t b) { return std::to_string(b / (1 << 20)) + " MiB (" + std::to_string(b) + " bytes)"; };
  if (ram_budget > 0 && scoring > ram_budget)
    throw Error("memory bank does not fit: routing keys " + mib(t.routing_keys_ram) + " + document map " +
                mib(t.doc_map_ram) + " + template K/V " + mib(t.template_kv) + " + texts " + mib(t.text_ram) +
                " = " + mib(scoring) + " must stay in RAM (the scoring tier of this CPU build), but the RAM budget is " +
                mib(ram_budget) + (gpu_budget > 0 ? "; the GPU budget " + mib(gpu_budget) + " does not apply: this build has no GPU tier" : "") +
                " (" + std::to_string(t.tokens) + " memory tokens, " + std::to_string(t.chunks) +
                " chunks; smaller routing keys: key_dtype=int8)");
  const bool fits = ram_budget <= 0 || scoring + t.content_kv <= ram_budget;
  TierPlan p;
  p.content_mmap = content == "mmap" || (content == "auto" && !fits);
  if (content == "ram" && !fits)
    throw Error("memory bank: content K/V " + mib(t.content_kv) + " do not fit the RAM budget " + mib(ram_budget) +
                " next to the scoring tier " + mib(scoring) + " (use content=mmap with a bank_dir)");
  if (p.content_mmap && !have_bank_files)
    throw Error("memory bank: content K/V " + mib(t.content_kv) + " do not fit the RAM budget " + mib(ram_budget) +
                " and can only be memory-mapped from a persistent bank (set bank_dir)");
  p.json_ = {{"ram_budget", ram_budget},
             {"gpu_budget", gpu_budget},
             {"gpu_budget_applied", false},
             {"scoring_tier_ram_bytes", scoring},
             {"content_kv_bytes", t.content_kv},
             {"content_kv_tier", p.content_mmap ? "mmap" : "ram"}};
  return p;
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
    chunks += manifest_size(s, "chunks", dir + "/manifest.json");
    bytes += manifest_size(s, "bytes", dir + "/manifest.json");
  }
  m["total_chunks"] = chunks;
  m["segment_bytes"] = bytes;
  m["segments_done"] = m["segments"].size();
  m.erase("segments");
  return m;
}

}  // namespace msabench
