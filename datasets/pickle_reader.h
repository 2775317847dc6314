// A restricted Python pickle reader for data files (the reference's benchmark pickles).
// It understands only the opcodes that build str, bytes, int, float, bool, None, list, dict
// and tuple values (protocols 0-5: memo ops, FRAME, MARK, ...), and refuses everything that
// can import or call Python code (GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ,
// EXT1/2/4, PERSID, out-of-band buffers, sets) with an Error naming the file, byte offset and
// opcode. Nothing in a pickle is ever executed.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace msabench {

// Mapping: str -> string (must be valid UTF-8), bytes/bytearray -> binary (Python 2 str
// opcodes -> string when valid UTF-8, else binary), int -> integer (must fit 64 bits),
// float -> number, bool, None -> null, list and tuple -> array, dict -> object (keys must be
// str or int; int keys become decimal strings). Shared references are copied.
nlohmann::json parse_pickle(std::string_view data, const std::string& name);
nlohmann::json read_pickle_file(const std::string& path);

}  // namespace msabench
