// Text utilities shared by backends and metrics: the retrieval analyzer, SQuAD answer
// normalisation, memory-size strings ("64K", "1M") and a stable content hash.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace msabench {

// Retrieval analyzer used by every lexical backend and by the tests' reference BM25:
// ASCII letters lower-cased, tokens are maximal runs of [a-z0-9] or non-ASCII bytes
// (so UTF-8 words stay whole); everything else separates tokens.
std::vector<std::string> analyze(std::string_view text);

// SQuAD v1.1 normalisation: lower case, drop punctuation and articles (a, an, the),
// collapse whitespace.
std::string squad_normalize(std::string_view text);
std::vector<std::string> squad_tokens(std::string_view text);

std::string to_lower_ascii(std::string_view text);

// "16K" -> 16384, "1M" -> 1048576, "100M", "2048", "1.5M"; throws Error on junk.
int64_t parse_token_count(const std::string& text);
// "512M", "8G", "1.5G", "8GB", "1048576" (binary suffixes K, M, G, T) -> bytes.
int64_t parse_byte_size(const std::string& text);
// 16384 -> "16K", 1048576 -> "1M", 1500 -> "1500".
std::string format_token_count(int64_t tokens);

// FNV-1a 64-bit; stable across platforms, used for corpus fingerprints and seeds.
uint64_t fnv1a64(std::string_view data, uint64_t seed = 0xcbf29ce484222325ULL);
std::string hex64(uint64_t v);

bool valid_utf8(std::string_view s);

}  // namespace msabench
