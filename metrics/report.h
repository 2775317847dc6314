// Report: collects result files and writes Markdown and CSV tables (rows: backend; columns:
// memory sizes; one table per dataset and metric) plus a PNG of accuracy vs memory size.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace msabench {

struct ReportFiles {
  std::string markdown, csv, png;  // png empty if plotting was unavailable
};

// `inputs`: result .json files or directories searched recursively. Throws Error if a file is
// not a valid result or nothing is found.
std::vector<nlohmann::json> load_results(const std::vector<std::string>& inputs);

std::string report_markdown(const std::vector<nlohmann::json>& results);
std::string report_csv(const std::vector<nlohmann::json>& results);

// Writes report.md, report.csv and (via scripts/plot_results.py) report.png into out_dir.
ReportFiles write_report(const std::vector<nlohmann::json>& results, const std::string& out_dir, bool plot);

}  // namespace msabench
