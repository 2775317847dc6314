// Result files (schema msabench.result/1) as `report` and `compare` read them: a cell file and a
// suite.json (separated by fuzz_util.h's separator line) in a run directory's layout.
#include "metrics/compare.h"
#include "metrics/report.h"
#include "tests/fuzz/fuzz_util.h"

using namespace msabench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_parts(fuzz::as_view(data, size), 2);
  const std::string dir = fuzz::fresh_dir("run");
  fuzz::write_scratch("run/cells/a.json", parts[0]);
  if (parts.size() > 1) fuzz::write_scratch("run/suite.json", parts[1]);
  fuzz::expect_error_or_success([&] {
    const auto results = load_results({dir});
    report_markdown(results);
    report_csv(results);
    report_latex(results);
    report_caption(results);
  });
  fuzz::expect_error_or_success([&] {
    const auto cells = load_compared({dir});
    compare_results(cells, cells, Tolerances{}, true);
  });
  return 0;
}
