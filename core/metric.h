// A Metric scores one answered query. Metrics that need gold data the query lacks (no gold
// documents, no gold answers) or a generated answer the backend did not produce return nullopt
// and are left out of that record's aggregate.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/dataset.h"

namespace msabench {

class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;          // key in result files, e.g. "recall@5"
  virtual std::string description() const = 0;
  virtual std::optional<double> score(const Query& query, const Answer& answer) const = 0;
};

using MetricList = std::vector<std::unique_ptr<Metric>>;

}  // namespace msabench
