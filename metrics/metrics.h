// Retrieval and answer metrics.
//  recall@k   fraction of the query's gold documents among the top-k retrieved (NIAH: hit@k)
//  mrr@10     1/rank of the first gold document within the top 10, else 0
//  ruler_string_match_all  RULER niah score: fraction of gold strings that occur in the answer
//             (case-insensitive substring) -- needs a generated answer
//  exact_match, token_f1   SQuAD v1.1 normalisation, max over gold answers -- need an answer
#pragma once
#include <string>
#include <vector>

#include "core/metric.h"

namespace msabench {

double recall_at_k(const std::vector<std::string>& gold, const std::vector<ScoredDoc>& ranked, int k);
double mrr_at_k(const std::vector<std::string>& gold, const std::vector<ScoredDoc>& ranked, int k);
double string_match_all(const std::vector<std::string>& gold, const std::string& prediction);
double exact_match(const std::vector<std::string>& gold, const std::string& prediction);
double token_f1(const std::vector<std::string>& gold, const std::string& prediction);

// recall@1, recall@5, recall@10, mrr@10, ruler_string_match_all, exact_match, token_f1.
MetricList default_metrics();

}  // namespace msabench
