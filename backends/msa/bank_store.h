// Persistent memory bank (format "msabench.bank/1"): a directory with
//   manifest.json   model/tokenizer/corpus fingerprints, geometry, and one entry per segment
//                   {file, first_doc, docs, chunks, bytes, crc32}; rewritten atomically per segment
//   template.bin    template-prefix K/V of every layer
//   seg-NNNNN.bin   the pooled K, V and router K of every router layer for a fixed range of
//                   documents, plus their chunk counts
// Segments cover fixed document ranges, and documents are encoded independently, so an encode
// killed at any point resumes from the last complete segment and produces the same bytes as an
// uninterrupted run. Opening a bank built by another model, tokenizer or corpus is an Error.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dataset.h"
#include "core/model/msa.h"
#include "core/model/routing_kernel.h"

namespace msabench {

struct BankFingerprint {
  std::string model;      // hash of config.json and the checkpoint's tensor headers and edges
  std::string tokenizer;  // tokenizer label
  std::string corpus;     // hash of document ids and texts
  std::string shard = "";  // Memory Parallel sub-bank: rank, world and its documents; "" for a whole corpus
};

std::string model_fingerprint(const std::string& model_dir);
std::string corpus_fingerprint(const std::vector<Document>& docs);

// Encodes docs (token ids, already wrapped) into dir, resuming from complete segments already
// there. progress(done_docs, total_docs). Returns the bank (loaded from the segments).
MemoryBank encode_bank(const MsaModel& model, const std::vector<std::vector<int64_t>>& docs,
                       const std::vector<int64_t>& template_ids, const BankFingerprint& fp, const std::string& dir,
                       int64_t segment_docs, const std::function<void(int64_t, int64_t)>& progress = {},
                       bool content_mmap = false);

// Loads a complete bank; verifies fingerprints and every segment's size and CRC-32. content_mmap:
// content K/V stay in the segment files, memory-mapped read-only (MemoryBank::k_parts/v_parts);
// routing keys, document map and template are read into RAM either way.
MemoryBank load_bank(const std::string& dir, const BankFingerprint& expect, bool content_mmap = false);

// Bytes of a bank by tier, from the geometry alone (the layout encode_bank writes and load_bank
// holds), so that budgets are checked before any encoding. Tiers: routing keys (the scoring tier:
// RAM on a CPU build; the scan layout when key_dtype is set, else [Hk, C, D] tensors), content
// K/V (RAM, or memory-mapped from the segment files), document map, template K/V, document text.
struct BankGeometry {
  int64_t layers = 0, router_layers = 0, kv_heads = 0, head_dim = 0, pooling = 0, template_tokens = 0;
  int64_t element_bytes = 4;  // model dtype of the stored tensors
};
BankGeometry bank_geometry(const ModelConfig& cfg, int64_t pooling, int64_t template_tokens, torch::Dtype dtype);

struct BankTierBytes {
  int64_t tokens = 0, documents = 0, chunks = 0;
  int64_t routing_keys_ram = 0;  // scoring tier
  int64_t content_kv = 0;        // K and V of every router layer (RAM or disk)
  int64_t doc_map_ram = 0, doc_map_disk = 0;
  int64_t template_kv = 0;
  int64_t text_ram = 0;        // document texts kept for original-text injection
  int64_t segment_files = 0;   // exact total size of seg-*.bin
  int64_t template_file = 0;   // exact size of template.bin
  nlohmann::json to_json() const;  // the totals and bytes per memory token
};
// doc_tokens: token count of every document (after wrapping); key_dtype: routing keys in the scan
// layout (routing_kernel.h), or nullopt for the model-dtype tensors.
BankTierBytes bank_tier_bytes(const BankGeometry& g, const std::vector<int64_t>& doc_tokens, int64_t text_bytes,
                              std::optional<KeyDtype> key_dtype);

// Where a bank's tiers go under memory budgets (bytes; 0 = no budget). The scoring tier (routing
// keys, with the document map, template K/V and texts that every query touches) must fit RAM on
// a CPU build; content K/V go to RAM when everything fits, else are memory-mapped from the bank
// files. gpu_budget is recorded only: this build has no GPU tier. content: auto | ram | mmap.
// Throws Error naming the numbers when the scoring tier fits no budget, before any work starts.
struct TierPlan {
  bool content_mmap = false;
  nlohmann::json to_json() const { return json_; }
  nlohmann::json json_;
};
TierPlan plan_tiers(const BankTierBytes& t, int64_t ram_budget, int64_t gpu_budget, const std::string& content,
                    bool have_bank_files);

// manifest.json plus derived totals (for `msabench bank info`); no fingerprint check.
nlohmann::json bank_info(const std::string& dir);
// Reads every file of the bank and checks sizes and CRC-32s; throws Error naming the bad segment.
void verify_bank(const std::string& dir);

}  // namespace msabench
