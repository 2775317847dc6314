// Text embedders for dense retrieval and rerankers for RAG's reranking stage.
// The Qwen3 embedder follows Qwen3-Embedding: the text plus <|endoftext|>, the final hidden state
// of the last token (after the final norm), L2-normalised; queries get the instruction prefix
// "Instruct: {task}\nQuery:". The Qwen3 reranker follows Qwen3-Reranker: a yes/no judge prompt
// with the instruction, query and document; the score is P(yes) / (P(yes) + P(no)) at the next token.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace msabench {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual std::string name() const = 0;  // recorded in index manifests and results
  virtual int dim() const = 0;
  // Row-major [texts.size(), dim()], each row L2-normalised.
  virtual std::vector<float> embed(const std::vector<std::string>& texts, bool is_query) const = 0;
};

struct EmbedderOptions {
  int max_length = 512;  // tokens per text (longer texts are truncated)
  int batch = 16;
  std::string task = "Given a web search query, retrieve relevant passages that answer the query";
};

// A Qwen3 / Qwen3-Embedding checkpoint directory (or the suite's model, whose backbone is used the
// same way). The tokenizer comes from tokenizer.json or tokenizer_spec.json next to the weights.
std::unique_ptr<Embedder> load_qwen3_embedder(const std::string& dir, const EmbedderOptions& opt = {});

class Reranker {
 public:
  virtual ~Reranker() = default;
  virtual std::string name() const = 0;
  // Relevance in [0, 1] of each document to the query.
  virtual std::vector<double> score(const std::string& query, const std::vector<std::string>& docs) const = 0;
};

struct RerankerOptions {
  int max_length = 1024;  // tokens per prompt (the document is truncated to fit)
  int batch = 8;
  std::string instruction = "Given a web search query, retrieve relevant passages that answer the query";
};

// A Qwen3-Reranker checkpoint (or any Qwen3 causal LM, e.g. the suite's model). "yes" and "no" are
// the first token of each word in the model's tokenizer (single tokens in Qwen3's vocabulary).
std::unique_ptr<Reranker> load_qwen3_reranker(const std::string& dir, const RerankerOptions& opt = {});

}  // namespace msabench
