// "bm25" backend: retrieval-only BM25 over Lucene++ (no generator until the RAG issue lands).
#pragma once
#include "core/backend.h"

namespace msabench {
void register_bm25_backend(BackendRegistry& registry);
}
