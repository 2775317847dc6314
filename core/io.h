// File I/O with the suite's guarantees: JSONL readers whose errors name file and line,
// atomic writes (temp file + rename, so no partial result is ever left behind).
#pragma once
#include <functional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/dataset.h"

namespace msabench {

// Calls fn(json, line_number) for each non-blank line. Parse errors and exceptions thrown by
// fn are rethrown as Error("FILE:LINE: problem").
void read_jsonl(const std::string& path, const std::function<void(const nlohmann::json&, size_t)>& fn);

// Corpus lines: {"id": str|int, "text": str, "group"?: str}. Duplicate ids are an error.
// Query lines: {"id", "text", "answers"?: [str]|str, "gold_doc_ids"?: [..], "group"?: str}.
// Both files may carry "group" to split the data into several memory corpora (one per group,
// as in per-sample NIAH haystacks); without it everything is one corpus named "all".
Dataset load_jsonl_dataset(const std::string& corpus_path, const std::string& queries_path,
                           const std::string& tokenizer_label);

// Dataset directory: corpus.jsonl, queries.jsonl, meta.json (written by `msabench data make`).
void save_dataset_dir(const Dataset& ds, const std::string& dir);
Dataset load_dataset_dir(const std::string& dir);

// Throws Error("unknown key \"K\" in WHERE") for a key of the JSON object `obj` not in `known`
// (config files: a misspelt key would otherwise fall back to its default silently).
void require_known_keys(const nlohmann::json& obj, const std::set<std::string>& known, const std::string& where);

std::string read_file(const std::string& path);
// Writes to PATH.tmp-PID then renames over PATH.
void write_file_atomic(const std::string& path, const std::string& content);
void write_json_atomic(const std::string& path, const nlohmann::json& j, int indent = 2);
// Moves the complete directory STAGING to FINAL. An existing FINAL is swapped out in one
// renameat2(RENAME_EXCHANGE) and then deleted, so a kill at any instant leaves FINAL complete.
void replace_directory_atomic(const std::string& staging, const std::string& final_dir);

}  // namespace msabench
