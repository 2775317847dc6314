// "dense": embedder + Faiss retrieval (retrieval only).
// "rag":   retrieve (bm25 or dense) the top k documents, then generate the answer with a Qwen3
//          generator from a prompt holding those documents and the question (same chat template
//          as MSA), recording retrieved ids, answer and per-stage timings.
#pragma once
#include "core/backend.h"

namespace msabench {
void register_dense_backends(BackendRegistry& registry);
}
