// Helpers shared by the test executables.
#pragma once
#include <functional>
#include <string>

#include "core/error.h"

namespace msabench::testing {

// The message of the msabench::Error that fn throws, or "" if it throws none.
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace msabench::testing
