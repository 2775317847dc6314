#include "datasets/dataset_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/io.h"
#include "core/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

DatasetDirWriter::DatasetDirWriter(std::string dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  corpus_path_ = (fs::path(dir_) / "corpus.jsonl").string();
  queries_path_ = (fs::path(dir_) / "queries.jsonl").string();
  fs::remove(fs::path(dir_) / "meta.json");  // an unfinished directory must not look complete
  corpus_f_ = std::fopen(corpus_path_.c_str(), "wb");
  if (!corpus_f_) throw Error(corpus_path_ + ": cannot create (" + std::strerror(errno) + ")");
  queries_f_ = std::fopen(queries_path_.c_str(), "wb");
  if (!queries_f_) {
    std::fclose(corpus_f_);
    corpus_f_ = nullptr;
    throw Error(queries_path_ + ": cannot create (" + std::strerror(errno) + ")");
  }
  buf_.resize(1 << 20);  // fewer write syscalls for 100M-token corpora
  std::setvbuf(corpus_f_, buf_.data(), _IOFBF, buf_.size());
}

DatasetDirWriter::~DatasetDirWriter() {
  if (corpus_f_) std::fclose(corpus_f_);
  if (queries_f_) std::fclose(queries_f_);
}

void DatasetDirWriter::put(std::FILE* f, const std::string& path, const std::string& line) {
  if (!f) throw Error(path + ": writer already finished");
  if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fputc('\n', f) == EOF)
    throw Error(path + ": write failed (" + std::strerror(errno) + ")");
}

void DatasetDirWriter::document(const std::string& group, const Document& d, int64_t tokens) {
  groups_.insert(group);
  // same key order as save_dataset_dir (nlohmann sorts object keys)
  put(corpus_f_, corpus_path_, json{{"id", d.id}, {"group", group}, {"text", d.text}}.dump());
  ++documents_;
  tokens_ += tokens;
}

void DatasetDirWriter::query(const std::string& group, const Query& q) {
  groups_.insert(group);
  put(queries_f_, queries_path_,
      json{{"id", q.id},
           {"group", group},
           {"text", q.text},
           {"answers", q.answers},
           {"gold_doc_ids", q.gold_doc_ids},
           {"meta", q.meta}}
          .dump());
  ++queries_;
}

void DatasetDirWriter::finish(const std::string& name, const std::string& tokenizer, const std::string& tokenizer_spec,
                              int64_t target_tokens,
                              const json& generator) {
  auto close = [](std::FILE*& f, const std::string& path) {
    bool bad = std::ferror(f) != 0;
    bad |= std::fclose(f) != 0;
    f = nullptr;
    if (bad) throw Error(path + ": write failed (disk full?)");
  };
  close(corpus_f_, corpus_path_);
  close(queries_f_, queries_path_);
  if (documents_ == 0) throw Error(corpus_path_ + ": no documents were written");
  json meta = {{"format", "msabench.dataset/1"}, {"name", name},
               {"tokenizer", tokenizer},         {"tokenizer_spec", tokenizer_spec.empty() ? tokenizer : tokenizer_spec},
               {"target_tokens", target_tokens},
               {"corpora", groups_.size()},      {"queries", queries_},
               {"documents", documents_},        {"tokens", tokens_},
               {"generator", generator}};
  write_json_atomic((fs::path(dir_) / "meta.json").string(), meta);
}

WrittenDataset write_niah_dir(const NiahGenerator& gen, const std::string& dir,
                              const std::function<void(int64_t)>& progress) {
  const NiahConfig& cfg = gen.config();
  DatasetDirWriter w(dir);
  for (int i = 0; i < cfg.samples; ++i) {
    const std::string group = gen.corpus_id(i);
    MemoryCorpus c = gen.generate(i, [&](Document&& d) {
      w.document(group, d, gen.counter().count(d.text));
      if (progress) progress(w.tokens());
    });
    for (const auto& q : c.queries) w.query(group, q);
  }
  w.finish(cfg.task, gen.counter().label(), gen.counter().spec(), cfg.target_tokens, gen.describe());
  return {cfg.task, w.corpora(), w.documents(), w.queries(), w.tokens()};
}

DatasetDirStats inspect_dataset_dir(const std::string& dir, int show) {
  DatasetDirStats st;
  const std::string meta_path = (fs::path(dir) / "meta.json").string();
  if (!fs::exists(meta_path)) throw Error(meta_path + ": missing (not a dataset directory)");
  try {
    st.meta = json::parse(read_file(meta_path));
  } catch (const json::exception& e) {
    throw Error(meta_path + ": invalid JSON (" + e.what() + ")");
  }
  if (!st.meta.is_object() || st.meta.value("format", "") != "msabench.dataset/1")
    throw Error(meta_path + ": not a msabench.dataset/1 meta file");
  st.tokenizer = st.meta.value("tokenizer", "whitespace-words");
  auto counter = make_token_counter(st.meta.value("tokenizer_spec", st.tokenizer));

  auto str_field = [](const json& j, const char* key) -> std::string {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return "all";
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number_integer()) return std::to_string(it->get<long long>());
    throw Error(std::string("\"") + key + "\" must be a string or an integer");
  };
  // queries first: they are small, and their gold ids say which corpus ids to look for
  std::map<std::string, std::map<std::string, bool>> gold;  // group -> id -> seen in corpus
  std::set<std::string> sample_gold;
  read_jsonl((fs::path(dir) / "queries.jsonl").string(), [&](const json& j, size_t) {
    if (!j.is_object()) throw Error("query line is not a JSON object");
    Query q;
    q.id = str_field(j, "id");
    if (!j.contains("text") || !j["text"].is_string()) throw Error("query needs a string \"text\"");
    q.text = j["text"].get<std::string>();
    const std::string g = str_field(j, "group");
    if (j.contains("gold_doc_ids") && j["gold_doc_ids"].is_array())
      for (const auto& v : j["gold_doc_ids"]) q.gold_doc_ids.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    if (j.contains("answers") && j["answers"].is_array())
      for (const auto& v : j["answers"]) q.answers.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    ++st.queries;
    if (!q.gold_doc_ids.empty()) ++st.queries_with_gold;
    for (const auto& id : q.gold_doc_ids) gold[g][id] = false;
    if (static_cast<int>(st.sample_queries.size()) < show) {
      for (const auto& id : q.gold_doc_ids) sample_gold.insert(g + "\n" + id);
      st.sample_queries.push_back(std::move(q));
    }
  });
  std::set<std::string> groups;
  bool first = true;
  read_jsonl((fs::path(dir) / "corpus.jsonl").string(), [&](const json& j, size_t) {
    if (!j.is_object()) throw Error("document line is not a JSON object");
    const std::string id = str_field(j, "id"), g = str_field(j, "group");
    if (!j.contains("text") || !j["text"].is_string()) throw Error("document needs a string \"text\"");
    const auto& text = j["text"].get_ref<const std::string&>();
    const int64_t n = counter->count(text);
    groups.insert(g);
    ++st.documents;
    st.tokens += n;
    st.min_doc_tokens = first ? n : std::min(st.min_doc_tokens, n);
    st.max_doc_tokens = first ? n : std::max(st.max_doc_tokens, n);
    first = false;
    auto git = gold.find(g);
    if (git != gold.end()) {
      auto it = git->second.find(id);
      if (it != git->second.end()) it->second = true;
    }
    if (sample_gold.count(g + "\n" + id)) st.sample_documents.push_back({id, text});
  });
  st.corpora = groups.size();
  for (const auto& [g, ids] : gold)
    for (const auto& [id, seen] : ids)
      if (!seen) ++st.gold_ids_missing;
  return st;
}

}  // namespace msabench
