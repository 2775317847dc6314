// Registers every backend compiled into this build with the BackendRegistry.
#pragma once

namespace msabench {
void register_builtin_backends();
}
