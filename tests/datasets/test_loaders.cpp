// Public-format loaders on hand-written fixtures: gold document ids, answers, and errors that
// name the file and the record or line.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "core/tokenizer.h"
#include "datasets/loaders.h"

using namespace msabench;

namespace {
const std::string kDir = MSABENCH_FIXTURES;
std::string F(const std::string& name) { return kDir + "/" + name; }

const Document& doc(const Dataset& ds, const std::string& id) {
  for (const auto& d : ds.corpora.at(0).documents)
    if (d.id == id) return d;
  throw std::runtime_error("no document " + id);
}
std::string load_error(const std::string& format, const std::vector<std::string>& files) {
  WhitespaceWordCounter counter;
  try {
    load_by_format(format, files, counter);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
#define EXPECT_CONTAINS(hay, needle) EXPECT_NE(std::string(hay).find(needle), std::string::npos) << (hay)
}  // namespace

TEST(Loaders, MsMarcoPassage) {
  WhitespaceWordCounter counter;
  Dataset ds =
      load_msmarco_passage(F("msmarco_collection.tsv"), F("msmarco_queries.tsv"), F("msmarco_qrels.tsv"), counter);
  ASSERT_EQ(ds.corpora.size(), 1u);
  const auto& c = ds.corpora[0];
  EXPECT_EQ(c.documents.size(), 4u);
  ASSERT_EQ(c.queries.size(), 2u);  // 102 has no qrels; relevance 0 is not gold
  EXPECT_EQ(c.queries[0].id, "100");
  EXPECT_EQ(c.queries[0].gold_doc_ids, std::vector<std::string>{"0"});
  EXPECT_EQ(c.queries[1].text, "capital of australia");
  EXPECT_EQ(c.queries[1].gold_doc_ids, std::vector<std::string>{"2"});
  EXPECT_EQ(ds.meta["queries_without_qrels"], 1);
  EXPECT_EQ(c.tokens, 17 + 10 + 8 + 9);
  EXPECT_CONTAINS(load_error("msmarco-passage",
                             {F("msmarco_collection_bad.tsv"), F("msmarco_queries.tsv"), F("msmarco_qrels.tsv")}),
                  "msmarco_collection_bad.tsv:2: expected 2 tab-separated columns (pid, passage), got 3");
  EXPECT_CONTAINS(load_error("msmarco-passage",
                             {F("msmarco_collection.tsv"), F("msmarco_queries.tsv"), F("msmarco_qrels_badpid.tsv")}),
                  "msmarco_qrels_badpid.tsv:1: pid 9 is not in");
  EXPECT_CONTAINS(load_error("msmarco-passage", {F("msmarco_collection.tsv"), F("msmarco_queries.tsv")}),
                  "format msmarco-passage takes 3 file(s)");
  auto only = load_msmarco_passage_queries(F("msmarco_queries.tsv"), F("msmarco_qrels_badpid.tsv"));  // pids unchecked
  EXPECT_EQ(only[0].gold_doc_ids, std::vector<std::string>{"9"});
}

TEST(Loaders, MsMarcoQaJsonLinesAndHuggingFaceRows) {
  WhitespaceWordCounter counter;
  Dataset ds = load_msmarco_qa(F("msmarco_qa_v11.jsonl"), counter);
  const auto& c = ds.corpora[0];
  EXPECT_EQ(c.documents.size(), 3u);  // the shared Sydney passage is one document
  ASSERT_EQ(c.queries.size(), 2u);
  EXPECT_EQ(c.queries[0].id, "19699");
  EXPECT_EQ(c.queries[0].answers, std::vector<std::string>{"Canberra"});
  ASSERT_EQ(c.queries[0].gold_doc_ids.size(), 1u);
  EXPECT_EQ(doc(ds, c.queries[0].gold_doc_ids[0]).text, "The capital of Australia is Canberra.");
  EXPECT_TRUE(c.queries[1].gold_doc_ids.empty());
  EXPECT_EQ(c.queries[1].answers, std::vector<std::string>{"No Answer Present."});
  Dataset hf = load_msmarco_qa(F("msmarco_qa_hf.json"), counter);
  EXPECT_EQ(doc(hf, hf.corpora[0].queries[0].gold_doc_ids.at(0)).text, "The capital of Australia is Canberra.");
  EXPECT_CONTAINS(load_error("msmarco-qa", {F("msmarco_qa_bad.jsonl")}),
                  "msmarco_qa_bad.jsonl:2: missing field \"passage_text\"");
  EXPECT_CONTAINS(load_error("msmarco-qa", {F("hotpotqa_truncated.json")}), "hotpotqa_truncated.json:1: invalid JSON");
}

TEST(Loaders, HotpotQaDistractor) {
  WhitespaceWordCounter counter;
  Dataset ds = load_hotpotqa(F("hotpotqa_distractor.json"), counter);
  const auto& c = ds.corpora[0];
  EXPECT_EQ(c.documents.size(), 3u);  // Tyler Bates / Scott Derrickson appear twice but are one document each
  ASSERT_EQ(c.queries.size(), 2u);
  const Query& q = c.queries[0];
  EXPECT_EQ(q.id, "5a8b57f25542995d1e6f1371");
  EXPECT_EQ(q.answers, std::vector<std::string>{"yes"});
  EXPECT_EQ(q.gold_doc_ids, (std::vector<std::string>{"Ed Wood", "Scott Derrickson"}));
  // HotpotQA sentences carry their own leading spaces and are joined with ""
  EXPECT_EQ(doc(ds, "Ed Wood").text,
            "Ed Wood\nEdward Davis Wood Jr. was an American filmmaker. He made low-budget films.");
  EXPECT_EQ(c.queries[1].gold_doc_ids, std::vector<std::string>{"Tyler Bates"});
  EXPECT_EQ(c.queries[1].meta["missing_gold_titles"], nlohmann::json::array({"Missing Page"}));
  EXPECT_CONTAINS(load_error("hotpotqa", {F("hotpotqa_bad_context.json")}),
                  "hotpotqa_bad_context.json: record 0 (_id a1): context entries must be [title, [sentences]]");
  EXPECT_CONTAINS(load_error("hotpotqa", {F("hotpotqa_truncated.json")}), "hotpotqa_truncated.json: invalid JSON");
  EXPECT_CONTAINS(load_error("hotpotqa", {F("musique_dev.jsonl")}), "musique_dev.jsonl: invalid JSON");
  EXPECT_CONTAINS(load_error("hotpotqa", {F("nope.json")}), "nope.json: cannot open file");
}

TEST(Loaders, TwoWikiMultiHopQa) {
  WhitespaceWordCounter counter;
  Dataset ds = load_2wikimultihopqa(F("2wiki_dev.json"), counter);
  const Query& q = ds.corpora[0].queries.at(0);
  EXPECT_EQ(q.answers, std::vector<std::string>{"Malgorzata Braunek"});
  EXPECT_EQ(q.gold_doc_ids, (std::vector<std::string>{"Polish-Russian War (film)", "Xawery Zulawski"}));
  EXPECT_EQ(doc(ds, "Xawery Zulawski").text,
            "Xawery Zulawski\nXawery Zulawski is a Polish film director. His mother is Malgorzata Braunek.");
  EXPECT_EQ(q.meta["type"], "compositional");
  EXPECT_CONTAINS(load_error("2wikimultihopqa", {F("2wiki_missing_question.json")}),
                  "2wiki_missing_question.json: record 0 (_id x1): missing field \"question\"");
  EXPECT_CONTAINS(load_error("2wikimultihopqa", {F("popqa.json")}),
                  "popqa.json: record 0 (id 4222362): missing field \"_id\"");
}

TEST(Loaders, MuSiQue) {
  WhitespaceWordCounter counter;
  Dataset ds = load_musique(F("musique_dev.jsonl"), counter);
  const auto& c = ds.corpora[0];
  EXPECT_EQ(c.documents.size(), 3u);  // Miami is shared
  ASSERT_EQ(c.queries.size(), 2u);
  EXPECT_EQ(c.queries[0].gold_doc_ids, (std::vector<std::string>{"Green", "Jump Starts"}));
  EXPECT_EQ(c.queries[0].answers, (std::vector<std::string>{"Green", "Al Green"}));
  EXPECT_EQ(doc(ds, "Miami").text, "Miami\nMiami is a city in Florida.");
  EXPECT_EQ(c.queries[1].gold_doc_ids, std::vector<std::string>{"Miami"});
  EXPECT_CONTAINS(load_error("musique", {F("musique_bad.jsonl")}),
                  "musique_bad.jsonl:2: \"is_supporting\" must be true or false, not string");
  EXPECT_CONTAINS(load_error("musique", {F("musique_badjson.jsonl")}), "musique_badjson.jsonl:2: invalid JSON");
}

TEST(Loaders, HippoRagPackaging) {
  WhitespaceWordCounter counter;
  Dataset ds = load_hipporag(F("popqa_corpus.json"), F("popqa.json"), counter);
  EXPECT_EQ(ds.name, "popqa");
  const auto& c = ds.corpora[0];
  EXPECT_EQ(c.documents.size(), 3u);
  EXPECT_EQ(doc(ds, "2").text, "Mumbai\nMumbai is the capital of Maharashtra.");
  ASSERT_EQ(c.queries.size(), 2u);
  EXPECT_EQ(c.queries[0].id, "4222362");
  EXPECT_EQ(c.queries[0].answers, (std::vector<std::string>{"politician", "political leader"}));
  EXPECT_EQ(c.queries[0].gold_doc_ids, std::vector<std::string>{"0"});  // is_supporting false is not gold
  EXPECT_EQ(c.queries[1].answers, (std::vector<std::string>{"Mumbai", "Bombay"}));
  EXPECT_EQ(c.queries[1].gold_doc_ids, std::vector<std::string>{"2"});
  EXPECT_CONTAINS(load_error("hipporag", {F("popqa_corpus.json"), F("popqa_wrongtype.json")}),
                  "popqa_wrongtype.json: record 0 (id 1): field \"question\" must be a string, not array");
  EXPECT_CONTAINS(load_error("hipporag", {F("popqa.json"), F("popqa.json")}),
                  "popqa.json: record 0 (id 4222362): missing field \"title\"");
  EXPECT_CONTAINS(load_error("hipporag", {F("msa_mdata.json"), F("popqa.json")}),
                  "msa_mdata.json: record 0: record is a JSON string, not an object");
  // queries whose gold passages are not in this corpus: the wrong corpus file
  EXPECT_CONTAINS(load_error("hipporag", {F("popqa_corpus.json"), F("hotpotqa_distractor.json")}),
                  "no query's gold passage matches a document of");
}

TEST(Loaders, FormatRegistryAndSummary) {
  WhitespaceWordCounter counter;
  EXPECT_CONTAINS(load_error("nq320k", {F("x")}), "unknown dataset format 'nq320k'");
  for (const auto& f : dataset_formats()) EXPECT_FALSE(f.summary.empty()) << f.name;
  Dataset ds = load_by_format("musique", {F("musique_dev.jsonl")}, counter);
  std::string s = dataset_summary(ds, counter, 1);
  EXPECT_CONTAINS(s, "documents   3 (7..8 tokens, mean 7.7)");
  EXPECT_CONTAINS(s, "queries     2 (2 with gold documents)");
  EXPECT_CONTAINS(s, "[2hop__1_2] Who performed on Jump Starts?");
  EXPECT_CONTAINS(s, "  Green: Green Green is a performer on the album.");
  EXPECT_EQ(s.find("[2hop__3_4]"), std::string::npos);
  std::string p = pickle_summary(F("msa_qdata.pkl"));
  EXPECT_CONTAINS(p, "msa_qdata.pkl: pickle, top level array of 2 entries");
  EXPECT_CONTAINS(p, "first record keys: answer (string) query (string) reference_list (array)");
}
