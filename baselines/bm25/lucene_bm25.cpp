#include "baselines/bm25/lucene_bm25.h"

#include <lucene++/LuceneHeaders.h>
#include <lucene++/FieldCache.h>
#include <lucene++/TermDocs.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/text.h"

namespace fs = std::filesystem;

namespace msabench {

namespace {
const wchar_t* kBody = L"body";
const wchar_t* kId = L"id";
const wchar_t* kLen = L"len";

// A file-system directory whose commits do not fsync (LuceneBm25Index::Write::Scratch).
class NoSyncDirectory : public Lucene::SimpleFSDirectory {
 public:
  explicit NoSyncDirectory(const Lucene::String& path) : Lucene::SimpleFSDirectory(path) {}
  void sync(const Lucene::String&) override {}
};

std::string lucene_message(const Lucene::LuceneException& e) {
  return Lucene::StringUtils::toUTF8(e.getError());
}

std::string join_tokens(const std::vector<std::string>& toks) {
  std::string s;
  for (const auto& t : toks) {
    if (!s.empty()) s.push_back(' ');
    s += t;
  }
  return s;
}
}  // namespace

struct LuceneBm25Index::Impl {
  Lucene::IndexReaderPtr reader;
  std::vector<std::string> ids;      // by Lucene doc number
  std::vector<int32_t> lengths;      // exact analyzer token counts
  double avgdl = 0;
  mutable std::vector<double> acc;   // per-doc accumulator, reset via `touched`
  mutable std::vector<int32_t> touched;
};

IndexStats LuceneBm25Index::build(const std::string& dir, const std::vector<Document>& docs, Write mode) {
  auto t0 = std::chrono::steady_clock::now();
  IndexStats stats;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create index directory: " + ec.message());
  try {
    const Lucene::String path = Lucene::StringUtils::toUnicode(dir);
    Lucene::DirectoryPtr directory;
    if (mode == Write::Scratch) directory = Lucene::newLucene<NoSyncDirectory>(path);
    else directory = Lucene::FSDirectory::open(path);
    auto writer = Lucene::newLucene<Lucene::IndexWriter>(directory, Lucene::newLucene<Lucene::WhitespaceAnalyzer>(),
                                                         true, Lucene::IndexWriter::MaxFieldLengthUNLIMITED);
    writer->setRAMBufferSizeMB(128);
    for (const auto& d : docs) {
      auto toks = analyze(d.text);
      auto doc = Lucene::newLucene<Lucene::Document>();
      doc->add(Lucene::newLucene<Lucene::Field>(kId, Lucene::StringUtils::toUnicode(d.id), Lucene::Field::STORE_YES,
                                                Lucene::Field::INDEX_NOT_ANALYZED_NO_NORMS));
      doc->add(Lucene::newLucene<Lucene::Field>(kLen, Lucene::StringUtils::toString(static_cast<int32_t>(toks.size())),
                                                Lucene::Field::STORE_YES, Lucene::Field::INDEX_NOT_ANALYZED_NO_NORMS));
      doc->add(Lucene::newLucene<Lucene::Field>(kBody, Lucene::StringUtils::toUnicode(join_tokens(toks)),
                                                Lucene::Field::STORE_NO, Lucene::Field::INDEX_ANALYZED_NO_NORMS));
      writer->addDocument(doc);
      stats.tokens += static_cast<int64_t>(toks.size());
      ++stats.documents;
    }
    writer->close();
    directory->close();
  } catch (const Lucene::LuceneException& e) {
    throw Error(dir + ": Lucene++ indexing failed: " + lucene_message(e));
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

LuceneBm25Index::LuceneBm25Index(const std::string& dir) : impl_(std::make_unique<Impl>()) {
  if (!fs::is_directory(dir)) throw Error(dir + ": BM25 index directory does not exist");
  try {
    auto directory = Lucene::FSDirectory::open(Lucene::StringUtils::toUnicode(dir));
    impl_->reader = Lucene::IndexReader::open(directory, true);
    const int32_t n = impl_->reader->maxDoc();
    if (n != impl_->reader->numDocs()) throw Error(dir + ": index has deleted documents; rebuild it");
    auto ids = Lucene::FieldCache::DEFAULT()->getStrings(impl_->reader, kId);
    auto lens = Lucene::FieldCache::DEFAULT()->getInts(impl_->reader, kLen);
    impl_->ids.resize(n);
    impl_->lengths.resize(n);
    double total = 0;
    for (int32_t i = 0; i < n; ++i) {
      impl_->ids[i] = Lucene::StringUtils::toUTF8(ids[i]);
      impl_->lengths[i] = lens[i];
      total += lens[i];
    }
    impl_->avgdl = n > 0 ? total / n : 0;
    impl_->acc.assign(n, 0.0);
  } catch (const Lucene::LuceneException& e) {
    throw Error(dir + ": cannot open BM25 index (missing or corrupt): " + lucene_message(e));
  }
}

LuceneBm25Index::~LuceneBm25Index() {
  try {
    if (impl_ && impl_->reader) impl_->reader->close();
  } catch (...) {
  }
}

int64_t LuceneBm25Index::num_docs() const { return static_cast<int64_t>(impl_->ids.size()); }
double LuceneBm25Index::avg_doc_length() const { return impl_->avgdl; }

std::vector<ScoredDoc> LuceneBm25Index::search(const std::string& query, int k, const Bm25Params& p) const {
  auto& im = *impl_;
  std::map<std::string, int> qtf;
  for (auto& t : analyze(query)) ++qtf[t];
  const double N = static_cast<double>(im.ids.size());
  try {
    for (const auto& [term, count] : qtf) {
      auto lterm = Lucene::newLucene<Lucene::Term>(kBody, Lucene::StringUtils::toUnicode(term));
      const double df = im.reader->docFreq(lterm);
      if (df <= 0) continue;
      const double idf = std::log(1.0 + (N - df + 0.5) / (df + 0.5));
      Lucene::TermDocsPtr td = im.reader->termDocs(lterm);
      while (td->next()) {
        const int32_t d = td->doc();
        const double tf = td->freq();
        const double norm = p.k1 * (1.0 - p.b + p.b * im.lengths[d] / im.avgdl);
        if (im.acc[d] == 0.0) im.touched.push_back(d);
        im.acc[d] += count * idf * tf * (p.k1 + 1.0) / (tf + norm);
      }
      td->close();
    }
  } catch (const Lucene::LuceneException& e) {
    for (int32_t d : im.touched) im.acc[d] = 0.0;
    im.touched.clear();
    throw Error("BM25 search failed: " + lucene_message(e));
  }
  std::vector<std::pair<double, int32_t>> hits;
  hits.reserve(im.touched.size());
  for (int32_t d : im.touched) {
    hits.emplace_back(im.acc[d], d);
    im.acc[d] = 0.0;
  }
  im.touched.clear();
  auto better = [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; };
  size_t top = std::min<size_t>(hits.size(), static_cast<size_t>(std::max(k, 0)));
  std::partial_sort(hits.begin(), hits.begin() + top, hits.end(), better);
  std::vector<ScoredDoc> out;
  out.reserve(top);
  for (size_t i = 0; i < top; ++i) out.push_back({im.ids[hits[i].second], hits[i].first});
  return out;
}

}  // namespace msabench
