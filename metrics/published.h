// The paper's published numbers (msa-reference.md section 11), shown next to measured results
// in reports and plots and always labelled "published". All Table 2 / Figure 1 values are LLM
// judge scores (0-5); Figure 4 values are RULER NIAH accuracies (0-1) averaged over 8 sub-tasks.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace msabench {

// Table 2: MSA vs same-backbone RAG (Qwen3-4B retriever + generator), per dataset.
struct PublishedTable2Row {
  std::string dataset;   // MSA-Bench / reference registry name, e.g. "msmarco_v1"
  std::string title;     // paper's name, e.g. "MS MARCO v1"
  std::string tokens;    // memory size as printed in the paper, e.g. "7.34M"
  double q4b[3];         // Qwen3-4B RAG, R@1 / R@5 / R@10 (documents given to the generator)
  double q4b_rr[3];      // with Qwen3-4B reranker
  double hipporag2[3];   // HippoRAG2
  double msa;            // MSA-S2 (adaptive)
};
const std::vector<PublishedTable2Row>& published_table2();
const PublishedTable2Row* published_table2_row(const std::string& dataset);

// A curve of Figure 4 or Figure 1: value per memory size (binary K/M, as the paper's axis labels).
struct PublishedPoint {
  int64_t tokens;
  double value;
  bool approximate;  // Figure 1: point hidden under another marker in the released plot
};
struct PublishedCurve {
  std::string model;
  std::vector<PublishedPoint> points;
};
const std::vector<PublishedCurve>& published_figure4();  // NIAH accuracy, 32K..1M
const std::vector<PublishedCurve>& published_figure1();  // MS MARCO judge score, 16K..100M (read off the plot, +-0.01)

}  // namespace msabench
