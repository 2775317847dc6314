#include "datasets/loaders.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/io.h"
#include "core/text.h"
#include "datasets/pickle_reader.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace msabench {

namespace {

std::string type_name(const json& j) { return j.is_null() ? "null" : j.type_name(); }

const json& field(const json& j, const char* key) {
  if (!j.is_object()) throw Error("record is a JSON " + type_name(j) + ", not an object");
  auto it = j.find(key);
  if (it == j.end()) throw Error(std::string("missing field \"") + key + "\"");
  return *it;
}
std::string str_field(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_string()) throw Error(std::string("field \"") + key + "\" must be a string, not " + type_name(v));
  return v.get<std::string>();
}
std::string id_value(const json& v, const char* key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  throw Error(std::string("field \"") + key + "\" must be a string or an integer, not " + type_name(v));
}
const json& array_field(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_array()) throw Error(std::string("field \"") + key + "\" must be a list, not " + type_name(v));
  return v;
}
// answers: a string or a list of strings (numbers are written as text)
void add_answers(std::vector<std::string>& out, const json& v, const char* key) {
  auto one = [&](const json& a) {
    if (a.is_string())
      out.push_back(a.get<std::string>());
    else if (a.is_number())
      out.push_back(a.dump());
    else
      throw Error(std::string("field \"") + key + "\" must hold strings, not " + type_name(a));
  };
  if (v.is_array())
    for (const auto& a : v) one(a);
  else
    one(v);
}

json parse_json_file(const std::string& path) {
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(path + ": invalid JSON (" + e.what() + ")");
  }
}
const json& expect_list(const json& j, const std::string& path) {
  if (!j.is_array()) throw Error(path + ": top level must be a JSON list, not " + type_name(j));
  return j;
}

// Runs fn on each element of a JSON list, prefixing errors with "FILE: record N (id X): ".
template <class Fn>
void each_record(const json& list, const std::string& path, Fn fn) {
  for (size_t i = 0; i < list.size(); ++i) {
    try {
      fn(list[i], i);
    } catch (const Error& e) {
      std::string id;
      if (list[i].is_object())
        for (const char* k : {"_id", "id", "query_id"})
          if (list[i].contains(k) && (list[i][k].is_string() || list[i][k].is_number_integer())) {
            id = " (" + std::string(k) + " " + id_value(list[i][k], k) + ")";
            break;
          }
      throw Error(path + ": record " + std::to_string(i) + id + ": " + e.what());
    } catch (const json::exception& e) {
      throw Error(path + ": record " + std::to_string(i) + ": " + e.what());
    }
  }
}

// One shared corpus; identical texts are one document.
class CorpusBuilder {
 public:
  CorpusBuilder(Dataset& ds, const TokenCounter& counter) : counter_(counter) {
    ds.corpora.emplace_back();
    c_ = &ds.corpora.back();
    c_->id = "all";
  }
  // Returns the id of the document with this text, adding it under `id_hint` (made unique).
  std::string add(const std::string& id_hint, const std::string& text) {
    auto it = by_text_.find(text);
    if (it != by_text_.end()) return c_->documents[it->second].id;
    if (!valid_utf8(text)) throw Error("document '" + id_hint + "' is not valid UTF-8");
    std::string id = id_hint;
    for (int n = 2; ids_.count(id); ++n) id = id_hint + " (" + std::to_string(n) + ")";
    ids_.insert(id);
    by_text_.emplace(text, c_->documents.size());
    c_->documents.push_back({id, text});
    c_->tokens += counter_.count(text);
    return id;
  }
  void query(Query q) { c_->queries.push_back(std::move(q)); }
  MemoryCorpus& corpus() { return *c_; }

 private:
  const TokenCounter& counter_;
  MemoryCorpus* c_;
  std::unordered_map<std::string, size_t> by_text_;
  std::set<std::string> ids_;
};

Dataset new_dataset(const std::string& name, const std::string& loader, const std::vector<std::string>& files,
                    const TokenCounter& counter) {
  Dataset ds;
  ds.name = name;
  ds.tokenizer = counter.label();
  ds.tokenizer_spec = counter.spec();
  ds.meta = {{"loader", loader}, {"files", files}};
  return ds;
}

void finish(Dataset& ds, const std::string& path) {
  if (ds.corpora.empty() || ds.corpora[0].documents.empty()) throw Error(path + ": no documents");
  if (ds.corpora[0].queries.empty()) throw Error(path + ": no queries");
}

std::string stem(const std::string& path) { return fs::path(path).stem().string(); }

// ---- HotpotQA / 2Wiki
Dataset load_hotpot_like(const std::string& path, const TokenCounter& counter, const std::string& name,
                         const char* joiner) {
  Dataset ds = new_dataset(name, name, {path}, counter);
  CorpusBuilder cb(ds, counter);
  json root = parse_json_file(path);
  each_record(expect_list(root, path), path, [&](const json& r, size_t) {
    Query q;
    q.id = id_value(field(r, "_id"), "_id");
    q.text = str_field(r, "question");
    if (r.contains("answer") && !r["answer"].is_null()) add_answers(q.answers, r["answer"], "answer");
    std::set<std::string> support;
    for (const auto& sf : array_field(r, "supporting_facts")) {
      if (!sf.is_array() || sf.size() < 1 || !sf[0].is_string())
        throw Error("supporting_facts entries must be [title, sentence_index]");
      support.insert(sf[0].get<std::string>());
    }
    std::set<std::string> found;
    for (const auto& para : array_field(r, "context")) {
      if (!para.is_array() || para.size() != 2 || !para[0].is_string() || !para[1].is_array())
        throw Error("context entries must be [title, [sentences]]");
      const std::string title = para[0].get<std::string>();
      std::string text = title + "\n";
      bool first = true;
      for (const auto& s : para[1]) {
        if (!s.is_string()) throw Error("context sentences of '" + title + "' must be strings");
        if (!first) text += joiner;
        text += s.get<std::string>();
        first = false;
      }
      std::string id = cb.add(title, text);
      if (support.count(title) && found.insert(title).second) q.gold_doc_ids.push_back(id);
    }
    json missing = json::array();
    for (const auto& t : support)
      if (!found.count(t)) missing.push_back(t);  // fullwiki: the gold paragraph may not be retrieved
    q.meta = {{"type", r.value("type", "")}};
    if (!missing.empty()) q.meta["missing_gold_titles"] = missing;
    cb.query(std::move(q));
  });
  finish(ds, path);
  return ds;
}

// ---- MS MARCO QA record -> corpus/query
void msmarco_qa_record(const json& r, CorpusBuilder& cb) {
  Query q;
  q.id = id_value(field(r, "query_id"), "query_id");
  q.text = str_field(r, "query");
  add_answers(q.answers, array_field(r, "answers"), "answers");
  const json& p = field(r, "passages");
  std::vector<std::pair<std::string, bool>> passages;
  auto selected = [](const json& v) {
    if (v.is_number_integer()) return v.get<long long>() == 1;
    if (v.is_boolean()) return v.get<bool>();
    throw Error("\"is_selected\" must be 0 or 1, not " + type_name(v));
  };
  if (p.is_array()) {  // raw Microsoft JSON: list of {is_selected, passage_text, url}
    for (const auto& e : p) passages.emplace_back(str_field(e, "passage_text"), selected(field(e, "is_selected")));
  } else if (p.is_object()) {  // Hugging Face rows: {is_selected: [...], passage_text: [...], url: [...]}
    const json& texts = array_field(p, "passage_text");
    const json& sel = array_field(p, "is_selected");
    if (texts.size() != sel.size()) throw Error("passages.passage_text and passages.is_selected differ in length");
    for (size_t i = 0; i < texts.size(); ++i) {
      if (!texts[i].is_string()) throw Error("passages.passage_text entries must be strings");
      passages.emplace_back(texts[i].get<std::string>(), selected(sel[i]));
    }
  } else {
    throw Error("field \"passages\" must be a list or an object, not " + type_name(p));
  }
  for (size_t i = 0; i < passages.size(); ++i) {
    std::string id = cb.add(q.id + "-p" + std::to_string(i), passages[i].first);
    if (passages[i].second) q.gold_doc_ids.push_back(id);
  }
  cb.query(std::move(q));
}

// ---- TSV helpers (MS MARCO passage)
template <class Fn>
void each_tsv_line(const std::string& path, Fn fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cols;
    size_t start = 0;
    while (true) {
      size_t tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    try {
      fn(cols, lineno);
    } catch (const Error& e) {
      throw Error(path + ":" + std::to_string(lineno) + ": " + e.what());
    }
  }
  if (in.bad()) throw Error(path + ": read error");
}

// qrels: "qid 0 pid rel" separated by tabs or spaces
std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------ MSA reference benchmark
Dataset load_msa_benchmark(const std::string& qdata_path, const std::string& mdata_path, const TokenCounter& counter) {
  auto load_any = [](const std::string& path) {
    const std::string ext = fs::path(path).extension().string();
    if (ext == ".json") return parse_json_file(path);
    return read_pickle_file(path);  // .pkl and anything else: the restricted reader checks the bytes
  };
  std::string name = stem(qdata_path);
  if (name.rfind("qdata_", 0) == 0) name = name.substr(6);
  Dataset ds = new_dataset(name, "msa_benchmark", {qdata_path, mdata_path}, counter);
  ds.corpora.emplace_back();
  MemoryCorpus& c = ds.corpora.back();
  c.id = "all";
  json mem = load_any(mdata_path);
  expect_list(mem, mdata_path);
  std::unordered_map<std::string, size_t> by_text;
  c.documents.reserve(mem.size());
  for (size_t i = 0; i < mem.size(); ++i) {
    if (!mem[i].is_string())
      throw Error(mdata_path + ": record " + std::to_string(i) + ": memory entries must be str, not " +
                  type_name(mem[i]));
    c.documents.push_back({std::to_string(i), std::move(mem[i].get_ref<std::string&>())});
    c.tokens += counter.count(c.documents.back().text);
    by_text[c.documents.back().text] = i;  // duplicates: the last index wins, as in the reference
  }
  mem = json();
  if (c.documents.empty()) throw Error(mdata_path + ": memory list is empty");
  json qs = load_any(qdata_path);
  const bool json_variant = fs::path(qdata_path).extension() == ".json";
  each_record(expect_list(qs, qdata_path), qdata_path, [&](const json& r, size_t i) {
    Query q;
    q.id = std::to_string(i);
    q.text = str_field(r, json_variant ? "question" : "query");
    const json& ans = field(r, "answer");
    if (!ans.is_null()) add_answers(q.answers, ans, "answer");
    const char* refs_key = json_variant ? "labels" : "reference_list";
    for (const auto& t : array_field(r, refs_key)) {
      if (!t.is_string()) throw Error(std::string("\"") + refs_key + "\" entries must be str, not " + type_name(t));
      auto it = by_text.find(t.get<std::string>());
      if (it == by_text.end())
        throw Error(std::string("a \"") + refs_key + "\" text is not in the memory file " + mdata_path + ": \"" +
                    t.get<std::string>().substr(0, 80) + "\"");
      const std::string id = std::to_string(it->second);
      if (std::find(q.gold_doc_ids.begin(), q.gold_doc_ids.end(), id) == q.gold_doc_ids.end())
        q.gold_doc_ids.push_back(id);
    }
    c.queries.push_back(std::move(q));
  });
  if (c.queries.empty()) throw Error(qdata_path + ": no queries");
  return ds;
}

// ------------------------------------------------------------------ MS MARCO passage
static std::vector<Query> read_msmarco_queries(const std::string& queries_tsv, const std::string& qrels_tsv,
                                               const std::set<std::string>* pids, size_t* without,
                                               const std::string& collection_tsv) {
  std::vector<Query> out;
  std::map<std::string, std::string> queries;
  each_tsv_line(queries_tsv, [&](const std::vector<std::string>& cols, size_t) {
    if (cols.size() != 2)
      throw Error("expected 2 tab-separated columns (qid, query), got " + std::to_string(cols.size()));
    if (!queries.emplace(cols[0], cols[1]).second) throw Error("duplicate qid " + cols[0]);
  });
  std::map<std::string, std::vector<std::string>> rel;
  std::vector<std::string> order;
  each_tsv_line(qrels_tsv, [&](const std::vector<std::string>& line_cols, size_t) {
    std::string joined;
    for (size_t i = 0; i < line_cols.size(); ++i) joined += (i ? "\t" : "") + line_cols[i];
    auto cols = split_ws(joined);
    if (cols.size() != 4) throw Error("expected 4 columns (qid 0 pid relevance), got " + std::to_string(cols.size()));
    int r = 0;
    try {
      size_t idx = 0;
      r = std::stoi(cols[3], &idx);
      if (idx != cols[3].size()) throw std::invalid_argument(cols[3]);
    } catch (const std::exception&) {
      throw Error("relevance '" + cols[3] + "' is not an integer");
    }
    if (!queries.count(cols[0])) throw Error("qid " + cols[0] + " is not in " + queries_tsv);
    if (pids && !pids->count(cols[2])) throw Error("pid " + cols[2] + " is not in " + collection_tsv);
    if (r <= 0) return;
    if (!rel.count(cols[0])) order.push_back(cols[0]);
    auto& v = rel[cols[0]];
    if (std::find(v.begin(), v.end(), cols[2]) == v.end()) v.push_back(cols[2]);
  });
  for (const auto& qid : order) {
    Query q;
    q.id = qid;
    q.text = queries[qid];
    q.gold_doc_ids = rel[qid];
    out.push_back(std::move(q));
  }
  if (out.empty()) throw Error(qrels_tsv + ": no query has a relevant passage");
  if (without) *without = queries.size() - order.size();
  return out;
}

std::vector<Query> load_msmarco_passage_queries(const std::string& queries_tsv, const std::string& qrels_tsv) {
  return read_msmarco_queries(queries_tsv, qrels_tsv, nullptr, nullptr, "");
}

Dataset load_msmarco_passage(const std::string& collection_tsv, const std::string& queries_tsv,
                             const std::string& qrels_tsv, const TokenCounter& counter) {
  Dataset ds = new_dataset("msmarco_passage", "msmarco_passage", {collection_tsv, queries_tsv, qrels_tsv}, counter);
  ds.corpora.emplace_back();
  MemoryCorpus& c = ds.corpora.back();
  c.id = "all";
  std::set<std::string> pids;
  each_tsv_line(collection_tsv, [&](const std::vector<std::string>& cols, size_t) {
    if (cols.size() != 2)
      throw Error("expected 2 tab-separated columns (pid, passage), got " + std::to_string(cols.size()));
    if (cols[0].empty()) throw Error("empty pid");
    if (!pids.insert(cols[0]).second) throw Error("duplicate pid " + cols[0]);
    // the raw collection has mis-encoded bytes; keep the text but make it valid UTF-8 for JSON output
    std::string text = cols[1];
    if (!valid_utf8(text)) {
      std::string fixed;
      for (unsigned char ch : text) {
        if (ch < 0x80)
          fixed.push_back(static_cast<char>(ch));
        else {
          fixed.push_back(static_cast<char>(0xC0 | (ch >> 6)));
          fixed.push_back(static_cast<char>(0x80 | (ch & 0x3F)));
        }
      }
      text = std::move(fixed);  // latin-1 -> UTF-8
    }
    c.tokens += counter.count(text);
    c.documents.push_back({cols[0], std::move(text)});
  });
  if (c.documents.empty()) throw Error(collection_tsv + ": no passages");
  size_t without = 0;
  c.queries = read_msmarco_queries(queries_tsv, qrels_tsv, &pids, &without, collection_tsv);
  ds.meta["queries_without_qrels"] = without;
  return ds;
}

// ------------------------------------------------------------------ MS MARCO QA
Dataset load_msmarco_qa(const std::string& path, const TokenCounter& counter) {
  Dataset ds = new_dataset(stem(path), "msmarco_qa", {path}, counter);
  CorpusBuilder cb(ds, counter);
  const std::string text = read_file(path);
  json root;
  bool whole = true;
  try {
    root = json::parse(text);
  } catch (const json::exception&) {
    whole = false;  // v1.1 downloads: one JSON object per line
  }
  if (whole && root.is_array()) {
    each_record(root, path, [&](const json& r, size_t) { msmarco_qa_record(r, cb); });
  } else if (whole && root.is_object() && root.contains("query") && root["query"].is_object()) {
    // v2.1 column layout: every field is a dict keyed by row index strings
    const json& qcol = root["query"];
    size_t row = 0;
    for (auto it = qcol.begin(); it != qcol.end(); ++it, ++row) {
      json r = json::object();
      for (const char* k : {"query", "query_id", "answers", "passages", "query_type"})
        if (root.contains(k) && root[k].is_object() && root[k].contains(it.key())) r[k] = root[k][it.key()];
      try {
        msmarco_qa_record(r, cb);
      } catch (const Error& e) {
        throw Error(path + ": row \"" + it.key() + "\": " + e.what());
      }
    }
  } else {
    if (whole && !root.is_object())
      throw Error(path + ": expected JSON lines, a list or a column object, not " + type_name(root));
    read_jsonl(path, [&](const json& r, size_t) { msmarco_qa_record(r, cb); });
  }
  finish(ds, path);
  return ds;
}

Dataset load_hotpotqa(const std::string& path, const TokenCounter& counter) {
  return load_hotpot_like(path, counter, "hotpotqa", "");
}
Dataset load_2wikimultihopqa(const std::string& path, const TokenCounter& counter) {
  return load_hotpot_like(path, counter, "2wikimultihopqa", " ");
}

// ------------------------------------------------------------------ MuSiQue
Dataset load_musique(const std::string& path, const TokenCounter& counter) {
  Dataset ds = new_dataset("musique", "musique", {path}, counter);
  CorpusBuilder cb(ds, counter);
  read_jsonl(path, [&](const json& r, size_t) {
    Query q;
    q.id = id_value(field(r, "id"), "id");
    q.text = str_field(r, "question");
    add_answers(q.answers, field(r, "answer"), "answer");
    if (r.contains("answer_aliases") && !r["answer_aliases"].is_null())
      add_answers(q.answers, r["answer_aliases"], "answer_aliases");
    for (const auto& p : array_field(r, "paragraphs")) {
      const std::string title = str_field(p, "title");
      std::string id = cb.add(title, title + "\n" + str_field(p, "paragraph_text"));
      const json& sup = field(p, "is_supporting");
      if (!sup.is_boolean()) throw Error("\"is_supporting\" must be true or false, not " + type_name(sup));
      if (sup.get<bool>()) q.gold_doc_ids.push_back(id);
    }
    if (r.contains("answerable") && r["answerable"].is_boolean()) q.meta["answerable"] = r["answerable"];
    cb.query(std::move(q));
  });
  finish(ds, path);
  return ds;
}

// ------------------------------------------------------------------ HippoRAG packaging
Dataset load_hipporag(const std::string& corpus_path, const std::string& queries_path, const TokenCounter& counter) {
  std::string name = stem(corpus_path);
  if (name.size() > 7 && name.compare(name.size() - 7, 7, "_corpus") == 0) name = name.substr(0, name.size() - 7);
  Dataset ds = new_dataset(name, "hipporag", {corpus_path, queries_path}, counter);
  CorpusBuilder cb(ds, counter);
  std::unordered_map<std::string, std::string> id_of;  // document text -> id
  json corpus = parse_json_file(corpus_path);
  each_record(expect_list(corpus, corpus_path), corpus_path, [&](const json& r, size_t i) {
    std::string id = std::to_string(i);
    if (r.is_object() && r.contains("idx") && !r["idx"].is_null()) id = id_value(r["idx"], "idx");
    std::string text = str_field(r, "title");  // separate statements: fields are checked in order
    text += "\n" + str_field(r, "text");
    id_of.emplace(text, cb.add(id, text));
  });
  corpus = json();
  const bool hotpot_join = name.rfind("hotpotqa", 0) == 0;  // HippoRAG joins HotpotQA sentences with ""
  size_t unmatched = 0, with_gold = 0;
  json queries = parse_json_file(queries_path);
  each_record(expect_list(queries, queries_path), queries_path, [&](const json& r, size_t i) {
    Query q;
    q.id = std::to_string(i);
    for (const char* k : {"id", "_id"})
      if (r.is_object() && r.contains(k)) {
        q.id = id_value(r[k], k);
        break;
      }
    q.text = str_field(r, "question");
    std::vector<std::string> gold_texts;
    if (r.contains("supporting_facts")) {
      std::set<std::string> titles;
      for (const auto& sf : array_field(r, "supporting_facts")) {
        if (!sf.is_array() || sf.empty() || !sf[0].is_string())
          throw Error("supporting_facts entries must be [title, sentence_index]");
        titles.insert(sf[0].get<std::string>());
      }
      for (const auto& para : array_field(r, "context")) {
        if (!para.is_array() || para.size() != 2 || !para[0].is_string() || !para[1].is_array())
          throw Error("context entries must be [title, [sentences]]");
        if (!titles.count(para[0].get<std::string>())) continue;
        std::string t = para[0].get<std::string>() + "\n";
        for (size_t s = 0; s < para[1].size(); ++s) {
          if (!para[1][s].is_string()) throw Error("context sentences must be strings");
          t += (s && !hotpot_join ? " " : "") + para[1][s].get<std::string>();
        }
        gold_texts.push_back(t);
      }
    } else if (r.contains("contexts")) {
      for (const auto& c : array_field(r, "contexts"))
        if (c.is_object() && c.value("is_supporting", false)) {
          std::string t = str_field(c, "title");
          gold_texts.push_back(t + "\n" + str_field(c, "text"));
        }
    } else if (r.contains("paragraphs")) {
      for (const auto& p : array_field(r, "paragraphs")) {
        if (p.is_object() && p.contains("is_supporting") && p["is_supporting"] == false) continue;
        const char* tk = p.is_object() && p.contains("text") ? "text" : "paragraph_text";
        std::string t = str_field(p, "title");
        gold_texts.push_back(t + "\n" + str_field(p, tk));
      }
    }
    json missing = json::array();
    for (const auto& t : gold_texts) {
      auto it = id_of.find(t);
      if (it == id_of.end()) {
        missing.push_back(t.substr(0, t.find('\n')));
        continue;
      }
      if (std::find(q.gold_doc_ids.begin(), q.gold_doc_ids.end(), it->second) == q.gold_doc_ids.end())
        q.gold_doc_ids.push_back(it->second);
    }
    unmatched += missing.size();
    if (!missing.empty()) q.meta["unmatched_gold_titles"] = missing;
    if (!q.gold_doc_ids.empty()) ++with_gold;
    // answers, in HippoRAG's order of preference
    if (r.contains("possible_answers")) {
      json pa = r["possible_answers"];
      if (pa.is_string()) {
        try {
          pa = json::parse(pa.get<std::string>());
        } catch (const json::exception&) {
          throw Error("\"possible_answers\" is a string but not a JSON list");
        }
      }
      add_answers(q.answers, pa, "possible_answers");
    } else {
      bool found = false;
      for (const char* k : {"answer", "gold_ans", "reference", "obj"})
        if (r.contains(k) && !r[k].is_null()) {
          add_answers(q.answers, r[k], k);
          found = true;
          break;
        }
      if (!found) throw Error("no answer field (possible_answers, answer, gold_ans, reference or obj)");
    }
    if (r.contains("answer_aliases") && !r["answer_aliases"].is_null())
      add_answers(q.answers, r["answer_aliases"], "answer_aliases");
    cb.query(std::move(q));
  });
  finish(ds, queries_path);
  if (with_gold == 0)
    throw Error(queries_path + ": no query's gold passage matches a document of " + corpus_path +
                " (wrong corpus file?)");
  ds.meta["unmatched_gold"] = unmatched;
  return ds;
}

// ------------------------------------------------------------------ by name
const std::vector<DatasetFormat>& dataset_formats() {
  static const std::vector<DatasetFormat> f = {
      {"msa", "QDATA MDATA", "the reference's benchmark pair (qdata_*.pkl|.json, mdata_*.pkl|.json)"},
      {"msmarco-passage", "COLLECTION QUERIES QRELS", "MS MARCO passage ranking TSV files"},
      {"msmarco-qa", "FILE", "MS MARCO QA v1.1 (JSON lines or list) / v2.1 (column JSON)"},
      {"hotpotqa", "FILE", "HotpotQA distractor/fullwiki JSON"},
      {"2wikimultihopqa", "FILE", "2WikiMultiHopQA JSON"},
      {"musique", "FILE", "MuSiQue JSONL"},
      {"hipporag", "CORPUS QUERIES",
       "HippoRAG 2 packaging: {name}_corpus.json + {name}.json (NQ, TriviaQA, PopQA, NarrativeQA, ...)"},
  };
  return f;
}

Dataset load_by_format(const std::string& format, const std::vector<std::string>& files, const TokenCounter& counter) {
  auto need = [&](size_t n, const char* what) {
    if (files.size() != n)
      throw Error("format " + format + " takes " + std::to_string(n) + " file(s): " + what + " (got " +
                  std::to_string(files.size()) + ")");
  };
  if (format == "msa") return need(2, "QDATA MDATA"), load_msa_benchmark(files[0], files[1], counter);
  if (format == "msmarco-passage")
    return need(3, "COLLECTION QUERIES QRELS"), load_msmarco_passage(files[0], files[1], files[2], counter);
  if (format == "msmarco-qa") return need(1, "FILE"), load_msmarco_qa(files[0], counter);
  if (format == "hotpotqa") return need(1, "FILE"), load_hotpotqa(files[0], counter);
  if (format == "2wikimultihopqa") return need(1, "FILE"), load_2wikimultihopqa(files[0], counter);
  if (format == "musique") return need(1, "FILE"), load_musique(files[0], counter);
  if (format == "hipporag") return need(2, "CORPUS QUERIES"), load_hipporag(files[0], files[1], counter);
  std::string known;
  for (const auto& f : dataset_formats()) known += (known.empty() ? "" : ", ") + f.name;
  throw Error("unknown dataset format '" + format + "' (" + known + ")");
}

}  // namespace msabench

namespace msabench {

std::string dataset_summary(const Dataset& ds, const TokenCounter& counter, int show) {
  size_t docs = 0, queries = 0, with_gold = 0, missing = 0;
  int64_t tokens = 0, mn = 0, mx = 0;
  std::unordered_map<std::string, const Document*> by_id;
  for (const auto& c : ds.corpora)
    for (const auto& d : c.documents) {
      const int64_t n = counter.count(d.text);
      mn = docs == 0 ? n : std::min(mn, n);
      mx = docs == 0 ? n : std::max(mx, n);
      tokens += n;
      ++docs;
      by_id[d.id] = &d;
    }
  for (const auto& c : ds.corpora)
    for (const auto& q : c.queries) {
      ++queries;
      with_gold += !q.gold_doc_ids.empty();
      for (const auto& id : q.gold_doc_ids) missing += by_id.count(id) == 0;
    }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "dataset     %s\ntokenizer   %s\ncorpora     %zu\ndocuments   %zu (%lld..%lld tokens, mean %.1f)\n"
                "tokens      %lld\nqueries     %zu (%zu with gold documents)\n",
                ds.name.c_str(), counter.label().c_str(), ds.corpora.size(), docs, (long long)mn, (long long)mx,
                docs ? static_cast<double>(tokens) / docs : 0.0, (long long)tokens, queries, with_gold);
  std::string out = buf;
  if (missing) out += "WARNING     " + std::to_string(missing) + " gold document ids are not in the corpus\n";
  int shown = 0;
  for (const auto& c : ds.corpora)
    for (const auto& q : c.queries) {
      if (shown++ >= show) return out;
      out += "\n[" + q.id + "] " + q.text + "\n  answers: " + json(q.answers).dump() +
             "\n  gold docs: " + json(q.gold_doc_ids).dump() + "\n";
      for (const auto& id : q.gold_doc_ids) {
        auto it = by_id.find(id);
        if (it == by_id.end()) continue;
        std::string t = it->second->text.substr(0, 160);
        for (char& ch : t)
          if (ch == '\n') ch = ' ';
        out += "  " + id + ": " + t + (it->second->text.size() > 160 ? "..." : "") + "\n";
      }
    }
  return out;
}

std::string pickle_summary(const std::string& path) {
  json j = read_pickle_file(path);
  std::string out = path + ": pickle, top level " + type_name(j);
  if (j.is_array() || j.is_object()) out += " of " + std::to_string(j.size()) + " entries";
  out += "\n";
  if (j.is_array() && !j.empty()) {
    const json& first = j[0];
    if (first.is_object()) {
      out += "first record keys:";
      for (auto it = first.begin(); it != first.end(); ++it) out += " " + it.key() + " (" + type_name(*it) + ")";
      out += "\n";
    } else if (first.is_string()) {
      out += "first entry: " + first.get<std::string>().substr(0, 160) + "\n";
    }
  }
  return out;
}

}  // namespace msabench
