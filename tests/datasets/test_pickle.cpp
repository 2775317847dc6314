// The restricted pickle reader: values in every protocol, refusal of code-running opcodes,
// malformed input, and the reference's benchmark record shape.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/io.h"
#include "core/tokenizer.h"
#include "datasets/loaders.h"
#include "datasets/pickle_reader.h"

using namespace msabench;
using nlohmann::json;

namespace {
const std::string kDir = MSABENCH_FIXTURES;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}
// Error message of parse_pickle, or "" when it does not throw.
std::string error_of(const std::string& data) {
  try {
    parse_pickle(data, "mem.pkl");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

// values_p{0..5}.pkl are pickle.dumps(obj, protocol=p) of one object (see expected below),
// written by CPython 3: protocol 0 exercises text opcodes (INT, LONG, FLOAT, UNICODE, PUT/GET),
// 1-3 binary ones (BININT*, LONG1, BINFLOAT, BINUNICODE, BINPUT/BINGET, TUPLE2/3, NEWTRUE),
// 4-5 FRAME, MEMOIZE and SHORT_BINUNICODE.
TEST(Pickle, ReadsTheSameValueInEveryProtocol) {
  json expected = {
      {"s", "h\u00e9llo \u4e16"},
      {"long", std::string(300, 'x')},
      {"i",
       {0, 1, 255, 256, 65535, 65536, -1, -2147483648LL, 2147483648LL, 4611686018427387904LL, INT64_MIN, INT64_MAX}},
      {"f", 1.5},
      {"neg", -0.25},
      {"t", {1, "a"}},
      {"t0", json::array()},
      {"t3", {1, 2, 3}},
      {"t4", {1, 2, 3, 4}},
      {"b", {true, false}},
      {"n", nullptr},
      {"e", json::array()},
      {"d", json::object()},
      {"7", "intkey"},
      {"shared", {{1}, {1}}}};
  for (int p = 0; p <= 5; ++p) {
    SCOPED_TRACE("protocol " + std::to_string(p));
    json got = read_pickle_file(kDir + "/values_p" + std::to_string(p) + ".pkl");
    EXPECT_EQ(got, expected);
    EXPECT_TRUE(got["i"][11].is_number_integer());
    EXPECT_TRUE(got["f"].is_number_float());
  }
}

TEST(Pickle, BytesAndByteArraysBecomeBinary) {
  // pickle.dumps({"bytes": b"\x00\xff"}, protocol=3): SHORT_BINBYTES
  json j = parse_pickle(bytes({0x80, 0x03, '}', 'q',  0x00, 'X',  0x05, 0,    0,   0,    'b', 'y', 't',
                               'e',  's',  'q', 0x01, 'C',  0x02, 0x00, 0xff, 'q', 0x02, 's', '.'}),
                        "b.pkl");
  ASSERT_TRUE(j["bytes"].is_binary());
  EXPECT_EQ(j["bytes"].get_binary(), (std::vector<uint8_t>{0x00, 0xff}));
  // pickle.dumps(bytearray(b"ab"), protocol=5): FRAME + BYTEARRAY8
  json ba = parse_pickle(
      bytes({0x80, 0x05, 0x95, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0x96, 0x02, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 0x94, '.'}),
      "ba.pkl");
  EXPECT_EQ(ba.get_binary(), (std::vector<uint8_t>{'a', 'b'}));
}

TEST(Pickle, RefusesGlobalAndReduceNamingFileOffsetAndOpcode) {
  // pickle.dumps([obj whose __reduce__ is (os.system, ("echo pwned",))], protocol=2)
  try {
    read_pickle_file(kDir + "/evil_reduce.pkl");
    FAIL() << "GLOBAL accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("evil_reduce.pkl: byte 5: opcode GLOBAL (0x63) refused"), std::string::npos) << m;
    EXPECT_NE(m.find("import or call Python code"), std::string::npos) << m;
  }
  // protocol 4: STACK_GLOBAL for builtins.print, then REDUCE
  std::string p4 = bytes({0x80, 0x04, 0x95, 0x1e, 0,    0,    0,   0,    0,    0,    0,   0x8c, 0x08, 'b',
                          'u',  'i',  'l',  't',  'i',  'n',  's', 0x94, 0x8c, 0x05, 'p', 'r',  'i',  'n',
                          't',  0x94, 0x93, 0x94, 0x8c, 0x01, 'x', 0x94, 0x85, 0x94, 'R', 0x94, '.'});
  EXPECT_NE(error_of(p4).find("mem.pkl: byte 30: opcode STACK_GLOBAL (0x93) refused"), std::string::npos)
      << error_of(p4);
  // REDUCE itself is refused even when no GLOBAL precedes it
  EXPECT_NE(error_of(bytes({0x80, 0x02, 'N', ')', 'R', '.'})).find("byte 4: opcode REDUCE (0x52) refused"),
            std::string::npos);
  for (int op : std::initializer_list<int>{'b', 'i', 'o', 0x81, 0x92, 0x82, 0x83, 0x84, 'P', 'Q'}) {
    std::string m = error_of(bytes({0x80, 0x02, 'N', op, '.'}));
    EXPECT_NE(m.find("byte 3: opcode "), std::string::npos) << op << ": " << m;
    EXPECT_NE(m.find("import or call Python code"), std::string::npos) << op << ": " << m;
  }
  // sets are data, but outside the allowed types
  std::string m = error_of(bytes({0x80, 0x04, 0x8f, '.'}));
  EXPECT_NE(m.find("opcode EMPTY_SET (0x8f) refused: not supported"), std::string::npos) << m;
}

TEST(Pickle, MalformedInputIsAClearError) {
  EXPECT_NE(error_of(bytes({0x80, 0x04, 'K', 0x01})).find("no STOP"), std::string::npos);
  EXPECT_NE(error_of(bytes({0x80, 0x04, 'X', 0x10, 0, 0, 0, 'a', '.'})).find("byte 2: truncated inside BINUNICODE"),
            std::string::npos);
  EXPECT_NE(error_of(bytes({0x80, 0x04, 'h', 0x07, '.'})).find("memo key 7 was never stored"), std::string::npos);
  EXPECT_NE(error_of(bytes({0x80, 0x04, 'a', '.'})).find("stack underflow"), std::string::npos);
  EXPECT_NE(
      error_of(bytes({0x80, 0x04, 'K', 1, 'K', 2, 'a', '.'})).find("APPEND applied to something that is not a list"),
      std::string::npos);
  EXPECT_NE(error_of(bytes({0x80, 0x04, 0x8c, 0x02, 0xc3, 0x28, '.'})).find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(error_of(bytes({0x80, 0x04, 0xff, '.'})).find("unknown opcode 0xff"), std::string::npos);
  EXPECT_NE(error_of(bytes({0x80, 0x09, 'N', '.'})).find("unsupported pickle protocol 9"), std::string::npos);
  EXPECT_NE(error_of(bytes({0x80, 0x04, 'N', 'N', '.'})).find("STOP with 2 values"), std::string::npos);
  // a list that contains itself: EMPTY_LIST, MEMOIZE, BINGET 0, APPEND
  EXPECT_NE(error_of(bytes({0x80, 0x04, ']', 0x94, 'h', 0x00, 'a', '.'})).find("recursive structure"),
            std::string::npos);
  // 9-byte LONG1 does not fit in 64 bits
  EXPECT_NE(error_of(bytes({0x80, 0x02, 0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, '.'})).find("wider than 64 bits"),
            std::string::npos);
  EXPECT_NE(error_of("").find("no STOP"), std::string::npos);
}

// Found by fuzz_pickle (tests/fuzz/regressions/fuzz_pickle): a self-holding dict left a shared_ptr
// cycle behind after the error. The leak itself is caught by `scripts/test.sh --sanitize`.
TEST(Pickle, SelfHoldingContainersAreAnErrorAndFreed) {
  // EMPTY_DICT, MEMOIZE, SHORT_BINUNICODE "k", BINGET 0, SETITEM, STOP
  EXPECT_NE(error_of(bytes({0x80, 0x04, '}', 0x94, 0x8c, 1, 'k', 'h', 0x00, 's', '.'})).find("recursive structure"),
            std::string::npos);
  // the same cycle, then an error before STOP
  EXPECT_NE(error_of(bytes({0x80, 0x04, ']', 0x94, 'h', 0x00, 'a', 0xff})).find("unknown opcode"), std::string::npos);
}

// Found by fuzz_pickle: an overlong UTF-8 form passed the check and later broke json::dump().
TEST(Pickle, OverlongUtf8IsNotValidUtf8) {
  EXPECT_NE(error_of(bytes({0x80, 0x04, 0x8c, 0x02, 0xc1, 0xa9, '.'})).find("not valid UTF-8"), std::string::npos);
  // Python 2 str opcodes keep such bytes as binary
  EXPECT_TRUE(parse_pickle(std::string("U\x02\xc1\xa9."), "t.pkl").is_binary());
}

TEST(MsaBenchmark, LoadsTheReferenceRecordShapeWithGoldIds) {
  WhitespaceWordCounter counter;
  Dataset ds = load_msa_benchmark(kDir + "/msa_qdata.pkl", kDir + "/msa_mdata.pkl", counter);
  EXPECT_EQ(ds.name, "msa_qdata");
  ASSERT_EQ(ds.corpora.size(), 1u);
  const MemoryCorpus& c = ds.corpora[0];
  ASSERT_EQ(c.documents.size(), 4u);
  EXPECT_EQ(c.documents[3].id, "3");
  EXPECT_EQ(c.documents[3].text, "Caf\u00e9\nA caf\u00e9 serves coffee.");
  ASSERT_EQ(c.queries.size(), 2u);
  EXPECT_EQ(c.queries[0].text, "What is the capital of France?");
  EXPECT_EQ(c.queries[0].answers, std::vector<std::string>{"Paris"});
  EXPECT_EQ(c.queries[0].gold_doc_ids, std::vector<std::string>{"0"});
  EXPECT_EQ(c.queries[1].gold_doc_ids, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(c.tokens, 7 + 7 + 7 + 5);
  // the .json variant: question / labels / answer
  Dataset js = load_msa_benchmark(kDir + "/msa_qdata.json", kDir + "/msa_mdata.json", counter);
  EXPECT_EQ(js.corpora[0].queries[0].gold_doc_ids, std::vector<std::string>{"2"});
}

TEST(MsaBenchmark, BadRecordsNameFileAndRecord) {
  WhitespaceWordCounter counter;
  auto err = [&](const std::string& q, const std::string& m) -> std::string {
    try {
      load_msa_benchmark(kDir + "/" + q, kDir + "/" + m, counter);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  std::string e = err("msa_qdata_badref.pkl", "msa_mdata.pkl");
  EXPECT_NE(e.find("msa_qdata_badref.pkl: record 0: a \"reference_list\" text is not in the memory file"),
            std::string::npos)
      << e;
  e = err("msa_qdata_nokey.pkl", "msa_mdata.pkl");
  EXPECT_NE(e.find("msa_qdata_nokey.pkl: record 0: missing field \"reference_list\""), std::string::npos) << e;
  e = err("msa_qdata.pkl", "evil_reduce.pkl");
  EXPECT_NE(e.find("evil_reduce.pkl: byte 5: opcode GLOBAL"), std::string::npos) << e;
  e = err("msa_qdata.pkl", "msa_qdata.pkl");  // a query list where the memory list belongs
  EXPECT_NE(e.find("msa_qdata.pkl: record 0: memory entries must be str, not object"), std::string::npos) << e;
}
