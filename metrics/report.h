// Report: collects result files and writes
//  report.md   tables in the shapes of the paper's Table 2 (datasets x backends, R@1/5/10 for RAG,
//              "adaptive" for MSA), Figure 4 (NIAH accuracy vs length) and Figure 1 (score vs
//              memory size) with the paper's numbers beside them labelled "published", then
//              per-dataset metric tables with 95% bootstrap CIs, paired bootstrap tests between
//              backends on the same queries, and throughput/memory;
//  report.csv  every number of report.md in long form (source = measured | published);
//  report.tex  the three paper-shaped tables for LaTeX (booktabs);
//  report.png  Figure 4 / Figure 1 shaped plots (scripts/plot_results.py).
// Everything is derived from the result JSON only (no clock, no environment), so the same
// inputs regenerate byte-identical files.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace msabench {

struct ReportFiles {
  std::string markdown, csv, latex, png;  // png empty if plotting was unavailable
};

// `inputs`: result .json files or directories searched recursively. Throws Error if a file is
// not a valid result or nothing is found.
std::vector<nlohmann::json> load_results(const std::vector<std::string>& inputs);
// Same, with the path each result was read from.
std::vector<std::pair<std::string, nlohmann::json>> load_result_files(const std::vector<std::string>& inputs);

std::string report_markdown(const std::vector<nlohmann::json>& results);
std::string report_csv(const std::vector<nlohmann::json>& results);
std::string report_latex(const std::vector<nlohmann::json>& results);
// One line naming model, data, sizes, machine and git commit of the results (plot caption).
std::string report_caption(const std::vector<nlohmann::json>& results);

// Writes report.md, report.csv, report.tex and (via scripts/plot_results.py) report.png.
ReportFiles write_report(const std::vector<nlohmann::json>& results, const std::string& out_dir, bool plot);

}  // namespace msabench
