#include "backends/builtin.h"

#include "backends/full/full_backend.h"
#include "backends/msa/msa_backend.h"
#include "baselines/bm25/bm25_backend.h"
#include "baselines/dense/dense_backend.h"

namespace msabench {

void register_builtin_backends() {
  static bool done = false;
  if (done) return;
  done = true;
  auto& r = BackendRegistry::instance();
  register_bm25_backend(r);
  register_msa_backend(r);
  register_full_backend(r);
  register_dense_backends(r);
}

}  // namespace msabench
