#include "datasets/haystack.h"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>

#include "core/error.h"
#include "datasets/haystack_stream.h"
#include "datasets/niah.h"

namespace msabench {

namespace {

const char* const kNoise[] = {"The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
                              "There and back again."};

class NoiseSource : public SentenceSource {
 public:
  explicit NoiseSource(size_t start) : i_(start % 5) {}
  std::string name() const override { return "noise"; }
  const std::string& next() override {
    cur_ = kNoise[i_];
    i_ = (i_ + 1) % 5;
    return cur_;
  }

 private:
  size_t i_;
  std::string cur_;
};

class EssaySource : public SentenceSource {
 public:
  explicit EssaySource(size_t start) : sentences_(essay_sentences()), i_(start % sentences_.size()) {}
  std::string name() const override { return "essay"; }
  const std::string& next() override {
    const std::string& s = sentences_[i_];
    i_ = (i_ + 1) % sentences_.size();
    return s;
  }

 private:
  const std::vector<std::string>& sentences_;
  size_t i_;
};

std::string read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // zlib reads plain files transparently too
  if (!f) throw Error(path + ": cannot open essay source (install dict-devil: scripts/setup.sh)");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string emsg = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) throw Error(path + ": corrupt essay source (" + emsg + ")");
  return out;
}

}  // namespace

std::string essay_source_path() {
  const char* env = std::getenv("MSABENCH_ESSAY_FILE");
  return env && *env ? env : "/usr/share/dictd/devil.dict.dz";
}

std::vector<std::string> split_sentences(const std::string& text) {
  std::string flat;
  flat.reserve(text.size());
  bool space = false;
  for (char c : text) {
    bool ws = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (ws) {
      space = true;
      continue;
    }
    if (space && !flat.empty()) flat.push_back(' ');
    space = false;
    flat.push_back(c);
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i + 2 < flat.size(); ++i) {
    char c = flat[i];
    if ((c == '.' || c == '!' || c == '?') && flat[i + 1] == ' ' && flat[i + 2] >= 'A' && flat[i + 2] <= 'Z') {
      out.push_back(flat.substr(start, i + 1 - start));
      start = i + 2;
    }
  }
  if (start < flat.size()) out.push_back(flat.substr(start));
  return out;
}

const std::vector<std::string>& essay_sentences() {
  static std::once_flag once;
  static std::vector<std::string> sentences;
  static std::string error;
  std::call_once(once, [] {
    try {
      std::string path = essay_source_path();
      std::string text = read_maybe_gzip(path);
      // dictd files start with database headers (00-database-*): begin at the preface.
      auto pos = text.find("PREFACE");
      if (pos != std::string::npos) text = text.substr(pos + 7);
      for (auto& s : split_sentences(text)) {
        // keep prose-like sentences; drop headword lines and tiny fragments
        if (s.size() >= 20) sentences.push_back(std::move(s));
      }
      if (sentences.size() < 100) throw Error(path + ": essay source has too little text (" +
                                              std::to_string(sentences.size()) + " sentences)");
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw Error(error);
  return sentences;
}

namespace {

class NeedleSource : public SentenceSource {
 public:
  NeedleSource(std::string key_type, std::string value_type, uint64_t seed, std::set<std::string> exclude)
      : key_type_(std::move(key_type)), value_type_(std::move(value_type)), rng_(seed), exclude_(std::move(exclude)) {
    if (key_type_ != "words" && key_type_ != "uuids")
      throw Error("needle haystack: unknown key type '" + key_type_ + "'");
    if (value_type_ != "numbers" && value_type_ != "uuids")
      throw Error("needle haystack: unknown value type '" + value_type_ + "'");
  }
  std::string name() const override { return "needle"; }
  const std::string& next() override {
    std::string key;
    do {
      key = key_type_ == "uuids" ? niah_uuid_from(rng_) : niah_word_key(rng_());
    } while (exclude_.count(key));
    std::string value = value_type_ == "uuids" ? niah_uuid_from(rng_) : std::to_string(1000000 + rng_() % 9000000);
    cur_ = niah_needle_sentence(value_type_, key, value);
    return cur_;
  }

 private:
  std::string key_type_, value_type_;
  std::mt19937_64 rng_;
  std::set<std::string> exclude_;
  std::string cur_;
};

}  // namespace

std::unique_ptr<SentenceSource> make_needle_source(const std::string& key_type, const std::string& value_type,
                                                   uint64_t seed, std::set<std::string> exclude) {
  return std::make_unique<NeedleSource>(key_type, value_type, seed, std::move(exclude));
}

std::unique_ptr<SentenceSource> make_sentence_source(const std::string& kind, size_t start_offset) {
  if (kind == "noise") return std::make_unique<NoiseSource>(start_offset);
  if (kind == "essay") return std::make_unique<EssaySource>(start_offset);
  throw Error("unknown haystack '" + kind + "' (noise, essay; needle via make_needle_source)");
}

MemoryCorpus collect_documents(const std::function<MemoryCorpus(const std::function<void(Document&&)>&)>& generate) {
  std::vector<Document> docs;
  MemoryCorpus corpus = generate([&](Document&& d) { docs.push_back(std::move(d)); });
  corpus.documents = std::move(docs);
  return corpus;
}

int64_t stream_documents(SentenceSource& source, const std::vector<PlacedSentence*>& by_offset, int64_t budget,
                         int64_t doc_tokens, const TokenCounter& counter, MemoryCorpus& corpus,
                         const std::function<void(Document&&)>& on_document) {
  size_t num_docs = 0;
  std::string doc_text;
  int64_t doc_len = 0;
  std::vector<PlacedSentence*> in_doc;
  auto flush = [&] {
    if (doc_text.empty()) return;
    char idbuf[32];
    std::snprintf(idbuf, sizeof idbuf, "-d%05zu", num_docs++);
    Document d{corpus.id + idbuf, std::move(doc_text)};
    for (PlacedSentence* p : in_doc) {
      p->doc_id = d.id;
      p->doc_index = static_cast<int64_t>(num_docs - 1);
    }
    corpus.tokens += doc_len;
    on_document(std::move(d));
    doc_text.clear();
    doc_len = 0;
    in_doc.clear();
  };
  auto append = [&](const std::string& sentence, int64_t len, PlacedSentence* placed) {
    if (doc_len > 0 && doc_len + len > doc_tokens) flush();
    if (!doc_text.empty()) doc_text.push_back(' ');
    doc_text += sentence;
    doc_len += len;
    if (placed) in_doc.push_back(placed);
  };
  size_t next = 0;
  int64_t hay = 0, sentences = 0;
  while (true) {
    while (next < by_offset.size() && by_offset[next]->offset <= hay) {
      PlacedSentence* p = by_offset[next++];
      append(p->sentence, counter.count(p->sentence), p);
    }
    const std::string& s = source.next();
    const int64_t len = counter.count(s);
    if (hay + len > budget) break;
    append(s, len, nullptr);
    hay += len;
    ++sentences;
  }
  while (next < by_offset.size()) {
    PlacedSentence* p = by_offset[next++];
    append(p->sentence, counter.count(p->sentence), p);
  }
  flush();
  return sentences;
}

}  // namespace msabench
