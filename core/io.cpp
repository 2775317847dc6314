#include "core/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/text.h"
#include "core/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return ss.str();
}

namespace {
// The reason a write failed, in the user's words (ENOSPC and EFBIG are the common ones).
std::string write_problem(int err) {
  if (err == ENOSPC || err == EDQUOT) return "disk full (" + std::string(std::strerror(err)) + ")";
  if (err == EFBIG) return "file too large (" + std::string(std::strerror(err)) + "; ulimit -f?)";
  return std::strerror(err);
}
}  // namespace

void replace_directory_atomic(const std::string& staging, const std::string& final_dir) {
  if (!fs::exists(final_dir)) {
    std::error_code ec;
    fs::rename(staging, final_dir, ec);
    if (ec) throw Error(final_dir + ": cannot move the new results in place (" + ec.message() + ")");
    return;
  }
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0)
    throw Error(final_dir + ": cannot swap in the new results (" + std::string(std::strerror(errno)) + ")");
  std::error_code ec;
  fs::remove_all(staging, ec);  // now the previous version
}

void write_file_atomic(const std::string& path, const std::string& content) {
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot create temporary file " + tmp + " (" + write_problem(errno) + ")");
  size_t done = 0;
  int err = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(path + ": write failed: " + write_problem(err));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(path + ": cannot rename temporary file: " + ec.message());
  }
}

void require_known_keys(const json& obj, const std::set<std::string>& known, const std::string& where) {
  if (!obj.is_object()) throw Error(where + " must be a JSON object");
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!known.count(it.key())) throw Error("unknown key \"" + it.key() + "\" in " + where);
}

void write_json_atomic(const std::string& path, const json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

void read_jsonl(const std::string& path, const std::function<void(const json&, size_t)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw Error(path + ":" + std::to_string(lineno) + ": invalid JSON (" + e.what() + ")");
    }
    try {
      fn(j, lineno);
    } catch (const Error& e) {
      throw Error(path + ":" + std::to_string(lineno) + ": " + e.what());
    } catch (const json::exception& e) {
      throw Error(path + ":" + std::to_string(lineno) + ": " + e.what());
    }
  }
  if (in.bad()) throw Error(path + ": read error");
}

namespace {

std::string id_field(const json& j, const char* what) {
  if (!j.is_object()) throw Error(std::string(what) + " line is not a JSON object");
  auto it = j.find("id");
  if (it == j.end()) throw Error(std::string(what) + " has no \"id\" field");
  if (it->is_string()) {
    if (it->get<std::string>().empty()) throw Error(std::string(what) + " has an empty \"id\"");
    return it->get<std::string>();
  }
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  throw Error(std::string(what) + " \"id\" must be a string or an integer");
}

std::string text_field(const json& j, const char* what) {
  auto it = j.find("text");
  if (it == j.end() || !it->is_string()) throw Error(std::string(what) + " needs a string \"text\" field");
  const auto& s = it->get_ref<const std::string&>();
  if (!valid_utf8(s)) throw Error(std::string(what) + " \"text\" is not valid UTF-8");
  return s;
}

std::vector<std::string> string_list(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  auto one = [&](const json& v) {
    if (v.is_string()) out.push_back(v.get<std::string>());
    else if (v.is_number_integer()) out.push_back(std::to_string(v.get<long long>()));
    else throw Error(std::string("\"") + key + "\" entries must be strings or integers");
  };
  if (it->is_array()) for (const auto& v : *it) one(v);
  else one(*it);
  return out;
}

std::string group_field(const json& j) {
  auto it = j.find("group");
  if (it == j.end() || it->is_null()) return "all";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  throw Error("\"group\" must be a string or an integer");
}

}  // namespace

Dataset load_jsonl_dataset(const std::string& corpus_path, const std::string& queries_path,
                           const std::string& tokenizer_label) {
  auto counter = make_token_counter(tokenizer_label);
  Dataset ds;
  ds.name = fs::path(corpus_path).stem().string();
  ds.tokenizer = counter->label();
  ds.tokenizer_spec = counter->spec();
  ds.meta = {{"corpus", corpus_path}, {"queries", queries_path}};
  std::map<std::string, size_t> group_index;
  auto corpus_for = [&](const std::string& g) -> MemoryCorpus& {
    auto it = group_index.find(g);
    if (it == group_index.end()) {
      it = group_index.emplace(g, ds.corpora.size()).first;
      ds.corpora.push_back(MemoryCorpus{});
      ds.corpora.back().id = g;
    }
    return ds.corpora[it->second];
  };
  std::set<std::string> doc_ids;
  read_jsonl(corpus_path, [&](const json& j, size_t) {
    Document d{id_field(j, "document"), text_field(j, "document")};
    if (!doc_ids.insert(d.id).second) throw Error("duplicate document id '" + d.id + "'");
    MemoryCorpus& c = corpus_for(group_field(j));
    c.tokens += counter->count(d.text);
    c.documents.push_back(std::move(d));
  });
  if (doc_ids.empty()) throw Error(corpus_path + ": corpus has no documents");
  std::set<std::string> query_ids;
  read_jsonl(queries_path, [&](const json& j, size_t) {
    Query q;
    q.id = id_field(j, "query");
    q.text = text_field(j, "query");
    if (!query_ids.insert(q.id).second) throw Error("duplicate query id '" + q.id + "'");
    q.answers = string_list(j, "answers");
    q.gold_doc_ids = string_list(j, "gold_doc_ids");
    if (j.contains("meta")) q.meta = j["meta"];
    std::string g = group_field(j);
    if (!group_index.count(g)) throw Error("query group '" + g + "' has no documents in " + corpus_path);
    corpus_for(g).queries.push_back(std::move(q));
  });
  if (query_ids.empty()) throw Error(queries_path + ": no queries");
  return ds;
}

void save_dataset_dir(const Dataset& ds, const std::string& dir) {
  fs::create_directories(dir);
  std::string corpus, queries;
  for (const auto& c : ds.corpora) {
    for (const auto& d : c.documents)
      corpus += json{{"id", d.id}, {"group", c.id}, {"text", d.text}}.dump() + "\n";
    for (const auto& q : c.queries)
      queries += json{{"id", q.id}, {"group", c.id}, {"text", q.text}, {"answers", q.answers},
                      {"gold_doc_ids", q.gold_doc_ids}, {"meta", q.meta}}.dump() + "\n";
  }
  json meta = {{"format", "msabench.dataset/1"}, {"name", ds.name}, {"tokenizer", ds.tokenizer},
               {"tokenizer_spec", ds.tokenizer_spec.empty() ? ds.tokenizer : ds.tokenizer_spec},
               {"target_tokens", ds.target_tokens}, {"corpora", ds.corpora.size()},
               {"queries", ds.num_queries()}, {"tokens", ds.total_tokens()}, {"generator", ds.meta}};
  write_file_atomic((fs::path(dir) / "corpus.jsonl").string(), corpus);
  write_file_atomic((fs::path(dir) / "queries.jsonl").string(), queries);
  write_json_atomic((fs::path(dir) / "meta.json").string(), meta);  // last: marks the set complete
}

Dataset load_dataset_dir(const std::string& dir) {
  fs::path meta_path = fs::path(dir) / "meta.json";
  if (!fs::exists(meta_path)) throw Error(meta_path.string() + ": missing (not a dataset directory)");
  json meta;
  try {
    meta = json::parse(read_file(meta_path.string()));
  } catch (const json::exception& e) {
    throw Error(meta_path.string() + ": invalid JSON (" + e.what() + ")");
  }
  if (meta.value("format", "") != "msabench.dataset/1")
    throw Error(meta_path.string() + ": unknown format '" + meta.value("format", "") + "'");
  Dataset ds = load_jsonl_dataset((fs::path(dir) / "corpus.jsonl").string(),
                                  (fs::path(dir) / "queries.jsonl").string(),
                                  meta.value("tokenizer_spec", meta.value("tokenizer", "whitespace-words")));
  ds.name = meta.value("name", ds.name);
  ds.target_tokens = meta.value("target_tokens", int64_t{0});
  ds.meta = meta.value("generator", json::object());
  return ds;
}

}  // namespace msabench
