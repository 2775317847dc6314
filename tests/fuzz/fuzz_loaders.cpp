// Dataset loaders on arbitrary files. Input: one selector byte (which loader), then the loader's
// files separated by fuzz_util.h's separator line. A loaded dataset is also summarised.
#include "core/io.h"
#include "datasets/loaders.h"
#include "tests/fuzz/fuzz_util.h"

using namespace msabench;

namespace {

struct Variant {
  const char* format;                   // load_by_format name, or "dir" for a dataset directory
  std::vector<const char*> files;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"msmarco-qa", {"msmarco_qa.jsonl"}},
      {"hotpotqa", {"hotpot.json"}},
      {"2wikimultihopqa", {"2wiki.json"}},
      {"musique", {"musique.jsonl"}},
      {"hipporag", {"popqa_corpus.json", "popqa.json"}},
      {"msa", {"qdata_x.pkl", "mdata_x.pkl"}},
      {"msa", {"qdata_x.json", "mdata_x.json"}},
      {"msmarco-passage", {"collection.tsv", "queries.tsv", "qrels.tsv"}},
      {"dir", {"corpus.jsonl", "queries.jsonl", "meta.json"}},
  };
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const WhitespaceWordCounter counter;
  const Variant& v = variants()[data[0] % variants().size()];
  const auto parts = fuzz::split_parts(fuzz::as_view(data + 1, size - 1), v.files.size());
  const std::string dir = fuzz::fresh_dir("data");
  std::vector<std::string> paths;
  for (size_t i = 0; i < v.files.size(); ++i)
    paths.push_back(fuzz::write_scratch(std::string("data/") + v.files[i], i < parts.size() ? parts[i] : ""));
  fuzz::expect_error_or_success([&] {
    Dataset ds = std::string(v.format) == "dir" ? load_dataset_dir(dir) : load_by_format(v.format, paths, counter);
    dataset_summary(ds, counter, 2);
  });
  return 0;
}
