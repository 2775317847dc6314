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
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dataset.h"
#include "core/model/msa.h"

namespace msabench {

struct BankFingerprint {
  std::string model;      // hash of config.json and the checkpoint's tensor headers and edges
  std::string tokenizer;  // tokenizer label
  std::string corpus;     // hash of document ids and texts
};

std::string model_fingerprint(const std::string& model_dir);
std::string corpus_fingerprint(const std::vector<Document>& docs);

// Encodes docs (token ids, already wrapped) into dir, resuming from complete segments already
// there. progress(done_docs, total_docs). Returns the bank (loaded from the segments).
MemoryBank encode_bank(const MsaModel& model, const std::vector<std::vector<int64_t>>& docs,
                       const std::vector<int64_t>& template_ids, const BankFingerprint& fp, const std::string& dir,
                       int64_t segment_docs, const std::function<void(int64_t, int64_t)>& progress = {});

// Loads a complete bank; verifies fingerprints and every segment's size and CRC-32.
MemoryBank load_bank(const std::string& dir, const BankFingerprint& expect);

// manifest.json plus derived totals (for `msabench bank info`); no fingerprint check.
nlohmann::json bank_info(const std::string& dir);
// Reads every file of the bank and checks sizes and CRC-32s; throws Error naming the bad segment.
void verify_bank(const std::string& dir);

}  // namespace msabench
