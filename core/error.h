// One exception type for user-facing failures: the message names the file and the problem.
#pragma once
#include <stdexcept>
#include <string>

namespace msabench {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace msabench
