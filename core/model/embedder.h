// Text embedders for dense retrieval. The Qwen3 one follows Qwen3-Embedding: the text plus
// <|endoftext|>, the final hidden state of the last token (after the final norm), L2-normalised;
// queries get the instruction prefix "Instruct: {task}\nQuery:".
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

}  // namespace msabench
