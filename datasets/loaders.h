// Loaders for public QA / retrieval formats and the reference's benchmark pickles, each mapped
// to a Dataset with one shared memory corpus (id "all") and gold document ids per query.
// Malformed input throws Error naming the file and the record (JSON lists: "record N",
// JSONL/TSV: line number) and the problem. Document ids are stable for a given input file.
#pragma once
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/tokenizer.h"

namespace msabench {

// The reference's benchmark pair (EverMind-AI/MSA src/benchmarks.py): qdata = list of
// {query, reference_list: [gold document text], answer} (.pkl, or .json with question/labels/
// answer), mdata = list of document strings (.pkl or .json). Document id = 0-based position
// (the number MSA writes as [i]); gold ids = position of each reference text (last wins for
// duplicate texts, as in the reference).
Dataset load_msa_benchmark(const std::string& qdata_path, const std::string& mdata_path, const TokenCounter& counter);

// MS MARCO passage ranking: collection.tsv (pid \t passage), queries.*.tsv (qid \t query),
// qrels (qid \t 0 \t pid \t rel). Only queries with a relevant passage are kept.
Dataset load_msmarco_passage(const std::string& collection_tsv, const std::string& queries_tsv,
                             const std::string& qrels_tsv, const TokenCounter& counter);

// Queries and qrels only (gold pids unchecked): for streaming the collection, see scaling.h.
std::vector<Query> load_msmarco_passage_queries(const std::string& queries_tsv, const std::string& qrels_tsv);

// MS MARCO QA (v1.1 one JSON object per line, a JSON list of them, or v2.1's column-oriented
// object). Passages become documents (identical texts merged); gold = is_selected == 1.
Dataset load_msmarco_qa(const std::string& path, const TokenCounter& counter);

// HotpotQA (distractor / fullwiki) and 2WikiMultiHopQA: JSON list of {_id, question, answer?,
// supporting_facts: [[title, sent]], context: [[title, [sentences]]]}. Document = title + "\n" +
// sentences joined by "" (HotpotQA) or " " (2Wiki), as HippoRAG builds them; identical
// documents across questions are merged; gold = context paragraphs whose title is supporting.
Dataset load_hotpotqa(const std::string& path, const TokenCounter& counter);
Dataset load_2wikimultihopqa(const std::string& path, const TokenCounter& counter);

// MuSiQue JSONL: {id, question, answer, answer_aliases?, paragraphs: [{idx, title,
// paragraph_text, is_supporting}]}. Document = title + "\n" + paragraph_text.
Dataset load_musique(const std::string& path, const TokenCounter& counter);

// HippoRAG 2 packaging (NQ, TriviaQA, PopQA, NarrativeQA, ...): {name}_corpus.json = list of
// {title, text[, idx]} (document = title + "\n" + text) and {name}.json = list of queries.
// Gold texts come from supporting_facts+context, contexts[is_supporting] or
// paragraphs[is_supporting != false] and are matched to corpus documents by exact text;
// answers from possible_answers | answer | gold_ans | reference | obj, plus answer_aliases.
Dataset load_hipporag(const std::string& corpus_path, const std::string& queries_path, const TokenCounter& counter);

// Format names accepted by load_by_format and how many files each takes.
struct DatasetFormat {
  std::string name, files, summary;
};
const std::vector<DatasetFormat>& dataset_formats();
Dataset load_by_format(const std::string& format, const std::vector<std::string>& files, const TokenCounter& counter);

}  // namespace msabench

namespace msabench {
// Counts, token sizes (total, per document min/mean/max), gold coverage and `show` sample
// queries with their gold documents, as printed by `msabench data inspect`.
std::string dataset_summary(const Dataset& ds, const TokenCounter& counter, int show);
// Top-level shape of a pickle file (type, length, keys of the first record) for inspection.
std::string pickle_summary(const std::string& path);
}  // namespace msabench
