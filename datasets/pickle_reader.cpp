#include "datasets/pickle_reader.h"

#include <cstring>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "core/text.h"

using nlohmann::json;

namespace msabench {

namespace {

// clang-format off
const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";          case '.': return "STOP";          case '0': return "POP";
    case '1': return "POP_MARK";      case '2': return "DUP";           case 'F': return "FLOAT";
    case 'I': return "INT";           case 'J': return "BININT";        case 'K': return "BININT1";
    case 'L': return "LONG";          case 'M': return "BININT2";       case 'N': return "NONE";
    case 'P': return "PERSID";        case 'Q': return "BINPERSID";     case 'R': return "REDUCE";
    case 'S': return "STRING";        case 'T': return "BINSTRING";     case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";       case 'X': return "BINUNICODE";    case 'a': return "APPEND";
    case 'b': return "BUILD";         case 'c': return "GLOBAL";        case 'd': return "DICT";
    case '}': return "EMPTY_DICT";    case 'e': return "APPENDS";       case 'g': return "GET";
    case 'h': return "BINGET";        case 'i': return "INST";          case 'j': return "LONG_BINGET";
    case 'l': return "LIST";          case ']': return "EMPTY_LIST";    case 'o': return "OBJ";
    case 'p': return "PUT";           case 'q': return "BINPUT";        case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";       case 't': return "TUPLE";         case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";      case 'G': return "BINFLOAT";      case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";       case 0x82: return "EXT1";         case 0x83: return "EXT2";
    case 0x84: return "EXT4";         case 0x85: return "TUPLE1";       case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";       case 0x88: return "NEWTRUE";      case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";        case 0x8b: return "LONG4";        case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES"; case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";    case 0x8f: return "EMPTY_SET";    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";    case 0x92: return "NEWOBJ_EX";    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";      case 0x95: return "FRAME";        case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";  case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}
// clang-format on

struct Node;
using NodeP = std::shared_ptr<Node>;
struct Node {
  enum Kind { Scalar, List, Tuple, Dict } kind = Scalar;
  json value;                               // Scalar
  std::vector<NodeP> items;                 // List, Tuple
  std::vector<std::pair<NodeP, NodeP>> kv;  // Dict, in insertion order
};

NodeP scalar(json v) {
  auto n = std::make_shared<Node>();
  n->value = std::move(v);
  return n;
}

class Reader {
 public:
  Reader(std::string_view data, const std::string& name) : d_(data), name_(name) {}
  // A container that holds itself is a shared_ptr cycle: empty every container so none leaks.
  ~Reader() {
    for (auto& w : containers_)
      if (auto n = w.lock()) {
        n->items.clear();
        n->kv.clear();
      }
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  json run() {
    while (true) {
      if (pos_ >= d_.size()) fail(pos_, "truncated: no STOP opcode before the end of the data");
      op_at_ = pos_;
      const uint8_t op = static_cast<uint8_t>(d_[pos_++]);
      if (op == '.') break;
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty())
      fail(op_at_, "malformed: STOP with " + std::to_string(stack_.size()) + " values on the stack");
    memo_.clear();  // so use_count() shows real sharing and unshared strings are moved, not copied
    NodeP root = std::move(stack_.back());
    stack_.clear();
    std::unordered_set<const Node*> active;
    return to_json(root, active, 0);
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw Error(name_ + ": byte " + std::to_string(at) + ": " + what);
  }
  [[noreturn]] void refuse(uint8_t op) const {
    const char* n = opcode_name(op);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op);
    if (!n) fail(op_at_, std::string("unknown opcode ") + hex + " (not a pickle, or a newer protocol)");
    static const std::string code_ops =
        " GLOBAL STACK_GLOBAL REDUCE BUILD INST OBJ NEWOBJ NEWOBJ_EX EXT1 EXT2 EXT4 "
        "PERSID BINPERSID ";
    const bool code = code_ops.find(std::string(" ") + n + " ") != std::string::npos;
    fail(op_at_, std::string("opcode ") + n + " (" + hex +
                     ") refused: " + (code ? "it would import or call Python code; " : "not supported; ") +
                     "only str/bytes/int/float/bool/None/list/dict/tuple pickles are read");
  }
  // protocol 0 UNICODE: latin-1 bytes with \uXXXX / \UXXXXXXXX escapes (raw-unicode-escape)
  void push_raw_unicode(std::string_view s) {
    std::string out;
    auto put = [&](uint32_t cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) fail(op_at_, "UNICODE holds a lone surrogate");
      if (cp < 0x80)
        out.push_back(static_cast<char>(cp));
      else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x110000) {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        fail(op_at_, "UNICODE escape beyond U+10FFFF");
      }
    };
    for (size_t i = 0; i < s.size(); ++i) {
      const uint8_t c = static_cast<uint8_t>(s[i]);
      if (c == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
        const size_t w = s[i + 1] == 'u' ? 4 : 8;
        if (i + 2 + w > s.size()) fail(op_at_, "truncated \\u escape in UNICODE");
        uint32_t cp = 0;
        for (size_t k = 0; k < w; ++k) {
          char h = s[i + 2 + k];
          int v = h >= '0' && h <= '9'   ? h - '0'
                  : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                         : -1;
          if (v < 0) fail(op_at_, "bad \\u escape in UNICODE");
          cp = cp * 16 + static_cast<uint32_t>(v);
        }
        put(cp);
        i += 1 + w;
      } else {
        put(c);
      }
    }
    push(scalar(std::move(out)));
  }
  std::string_view take(uint64_t n) {
    if (n > d_.size() - pos_)
      fail(op_at_, std::string("truncated inside ") + opcode_name(static_cast<uint8_t>(d_[op_at_])));
    std::string_view s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t le(int bytes) {
    std::string_view s = take(bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[i]);
    return v;
  }
  std::string_view line() {  // protocol-0 argument, up to '\n'
    size_t e = d_.find('\n', pos_);
    if (e == std::string_view::npos) fail(op_at_, "truncated: argument line without newline");
    std::string_view s = d_.substr(pos_, e - pos_);
    pos_ = e + 1;
    return s;
  }
  void push(NodeP n) { stack_.push_back(std::move(n)); }
  NodeP pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail(op_at_, "malformed: stack underflow");
    NodeP n = std::move(stack_.back());
    stack_.pop_back();
    return n;
  }
  NodeP& top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail(op_at_, "malformed: stack underflow");
    return stack_.back();
  }
  std::vector<NodeP> pop_mark() {
    if (marks_.empty()) fail(op_at_, "malformed: no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<NodeP> items(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  NodeP container(Node::Kind k, std::vector<NodeP> items = {}) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    n->items = std::move(items);
    containers_.push_back(n);
    return n;
  }
  void push_text(std::string_view s, bool py2_str) {
    if (valid_utf8(s))
      push(scalar(std::string(s)));
    else if (py2_str)
      push(scalar(json::binary(std::vector<uint8_t>(s.begin(), s.end()))));
    else
      fail(op_at_, "str is not valid UTF-8");
  }
  void push_bytes(std::string_view s) { push(scalar(json::binary(std::vector<uint8_t>(s.begin(), s.end())))); }
  void push_long(std::string_view s) {  // little-endian two's complement
    if (s.empty()) return push(scalar(0));
    if (s.size() > 8) fail(op_at_, "integer wider than 64 bits");
    uint64_t v = 0;
    for (size_t i = s.size(); i-- > 0;) v = (v << 8) | static_cast<uint8_t>(s[i]);
    const bool neg = static_cast<uint8_t>(s.back()) & 0x80;
    if (neg && s.size() < 8) v |= ~0ULL << (8 * s.size());
    push(scalar(static_cast<int64_t>(v)));
  }
  void push_decimal(std::string_view s, bool allow_bool) {
    std::string t(s);
    if (!t.empty() && t.back() == 'L') t.pop_back();
    if (allow_bool && t == "00") return push(scalar(false));
    if (allow_bool && t == "01") return push(scalar(true));
    try {
      size_t idx = 0;
      long long v = std::stoll(t, &idx, 10);
      if (idx != t.size()) throw std::invalid_argument(t);
      push(scalar(static_cast<int64_t>(v)));
    } catch (const std::exception&) {
      fail(op_at_, "bad or too large integer '" + t + "'");
    }
  }
  void memo_put(uint64_t idx) { memo_[idx] = top(); }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail(op_at_, "memo key " + std::to_string(idx) + " was never stored");
    push(it->second);
  }
  void set_items(Node& dict, std::vector<NodeP>& kv) {
    if (kv.size() % 2) fail(op_at_, "malformed: odd number of items for a dict");
    for (size_t i = 0; i < kv.size(); i += 2) dict.kv.emplace_back(std::move(kv[i]), std::move(kv[i + 1]));
  }
  Node& expect(NodeP& n, Node::Kind k, const char* what) {
    if (n->kind != k)
      fail(op_at_, std::string("malformed: ") + opcode_name(static_cast<uint8_t>(d_[op_at_])) +
                       " applied to something that is not a " + what);
    return *n;
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        uint64_t v = le(1);
        if (v > 5) fail(op_at_, "unsupported pickle protocol " + std::to_string(v));
        return;
      }
      case 0x95:
        le(8);
        return;  // FRAME: only a hint for buffered readers
      case '(':
        marks_.push_back(stack_.size());
        return;
      case '0':  // like CPython: POP right after a MARK discards the mark
        if (!marks_.empty() && stack_.size() == marks_.back())
          pop_mark();
        else
          pop();
        return;
      case '1':
        pop_mark();
        return;
      case '2':
        push(top());
        return;
      case 'N':
        push(scalar(nullptr));
        return;
      case 0x88:
        push(scalar(true));
        return;
      case 0x89:
        push(scalar(false));
        return;
      case 'J':
        push(scalar(static_cast<int64_t>(static_cast<int32_t>(le(4)))));
        return;
      case 'K':
        push(scalar(static_cast<int64_t>(le(1))));
        return;
      case 'M':
        push(scalar(static_cast<int64_t>(le(2))));
        return;
      case 0x8a: {
        uint64_t n = le(1);
        push_long(take(n));
        return;
      }
      case 0x8b: {
        int64_t n = static_cast<int32_t>(le(4));
        if (n < 0) fail(op_at_, "negative LONG4 length");
        push_long(take(static_cast<uint64_t>(n)));
        return;
      }
      case 'I':
        push_decimal(line(), true);
        return;
      case 'L':
        push_decimal(line(), false);
        return;
      case 'G': {
        uint64_t bits = 0;
        for (char c : take(8)) bits = (bits << 8) | static_cast<uint8_t>(c);  // big-endian
        double v;
        std::memcpy(&v, &bits, sizeof v);
        push(scalar(v));
        return;
      }
      case 'F': {
        std::string t(line());
        try {
          size_t idx = 0;
          double v = std::stod(t, &idx);
          if (idx != t.size()) throw std::invalid_argument(t);
          push(scalar(v));
        } catch (const std::exception&) {
          fail(op_at_, "bad float '" + t + "'");
        }
        return;
      }
      case 'V':
        push_raw_unicode(line());
        return;
      case 0x8c: {
        uint64_t n = le(1);
        push_text(take(n), false);
        return;
      }
      case 'X': {
        uint64_t n = le(4);
        push_text(take(n), false);
        return;
      }
      case 0x8d: {
        uint64_t n = le(8);
        push_text(take(n), false);
        return;
      }
      case 'U': {
        uint64_t n = le(1);
        push_text(take(n), true);
        return;
      }
      case 'T': {
        int64_t n = static_cast<int32_t>(le(4));
        if (n < 0) fail(op_at_, "negative BINSTRING length");
        push_text(take(static_cast<uint64_t>(n)), true);
        return;
      }
      case 'C': {
        uint64_t n = le(1);
        push_bytes(take(n));
        return;
      }
      case 'B': {
        uint64_t n = le(4);
        push_bytes(take(n));
        return;
      }
      case 0x8e:
      case 0x96: {
        uint64_t n = le(8);
        push_bytes(take(n));
        return;
      }
      case ']':
        push(container(Node::List));
        return;
      case 'l':
        push(container(Node::List, pop_mark()));
        return;
      case ')':
        push(container(Node::Tuple));
        return;
      case 't':
        push(container(Node::Tuple, pop_mark()));
        return;
      case 0x85:
      case 0x86:
      case 0x87: {
        size_t n = op - 0x84;
        std::vector<NodeP> items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop();
        push(container(Node::Tuple, std::move(items)));
        return;
      }
      case 'a': {
        NodeP v = pop();
        expect(top(), Node::List, "list").items.push_back(std::move(v));
        return;
      }
      case 'e': {
        std::vector<NodeP> items = pop_mark();
        Node& l = expect(top(), Node::List, "list");
        for (auto& v : items) l.items.push_back(std::move(v));
        return;
      }
      case '}':
        push(container(Node::Dict));
        return;
      case 'd': {
        std::vector<NodeP> kv = pop_mark();
        NodeP d = container(Node::Dict);
        set_items(*d, kv);
        push(std::move(d));
        return;
      }
      case 's': {
        NodeP v = pop(), k = pop();
        expect(top(), Node::Dict, "dict").kv.emplace_back(std::move(k), std::move(v));
        return;
      }
      case 'u': {
        std::vector<NodeP> kv = pop_mark();
        set_items(expect(top(), Node::Dict, "dict"), kv);
        return;
      }
      case 'p': {
        std::string t(line());
        try {
          memo_put(std::stoull(t));
        } catch (const std::logic_error&) {
          fail(op_at_, "bad PUT index '" + t + "'");
        }
        return;
      }
      case 'q':
        memo_put(le(1));
        return;
      case 'r':
        memo_put(le(4));
        return;
      case 0x94:
        memo_put(memo_.size());
        return;
      case 'g': {
        std::string t(line());
        uint64_t idx = 0;
        try {
          idx = std::stoull(t);
        } catch (const std::logic_error&) {
          fail(op_at_, "bad GET index '" + t + "'");
        }
        memo_get(idx);
        return;
      }
      case 'h':
        memo_get(le(1));
        return;
      case 'j':
        memo_get(le(4));
        return;
      default:
        refuse(op);
    }
  }

  // Values reachable along one path only are moved out (big string lists are not copied);
  // anything under a shared node is copied, since it is visited again.
  json to_json(const NodeP& n, std::unordered_set<const Node*>& active, int depth, bool movable = true) {
    if (depth > 10000) fail(d_.size(), "nesting deeper than 10000 levels");
    movable = movable && n.use_count() == 1;
    if (n->kind == Node::Scalar) return movable ? std::move(n->value) : n->value;
    if (!active.insert(n.get()).second) fail(d_.size(), "recursive structure (a container holds itself)");
    json out;
    if (n->kind == Node::Dict) {
      out = json::object();
      for (auto& [k, v] : n->kv) {
        std::string key;
        if (k->kind == Node::Scalar && k->value.is_string())
          key = k->value.get<std::string>();
        else if (k->kind == Node::Scalar && k->value.is_number_integer())
          key = k->value.dump();
        else
          fail(d_.size(), "dict key is neither str nor int");
        out[key] = to_json(v, active, depth + 1, movable);
      }
    } else {
      out = json::array();
      out.get_ref<json::array_t&>().reserve(n->items.size());
      for (auto& v : n->items) out.push_back(to_json(v, active, depth + 1, movable));
    }
    active.erase(n.get());
    return out;
  }

  std::string_view d_;
  const std::string& name_;
  size_t pos_ = 0, op_at_ = 0;
  std::vector<NodeP> stack_;
  std::vector<std::weak_ptr<Node>> containers_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, NodeP> memo_;
};

}  // namespace

json parse_pickle(std::string_view data, const std::string& name) { return Reader(data, name).run(); }

json read_pickle_file(const std::string& path) {
  const std::string data = read_file(path);
  return parse_pickle(data, path);
}

}  // namespace msabench
