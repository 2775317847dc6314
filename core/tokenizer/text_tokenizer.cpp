#include "core/tokenizer/text_tokenizer.h"

#include "core/io.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/error.h"
#include "core/tokenizer/bpe_tokenizer.h"
#include "core/tokenizer/byte_tokenizer.h"

namespace fs = std::filesystem;

namespace msabench {

std::unique_ptr<TextTokenizer> load_tokenizer(const std::string& spec) {
  if (auto bytes = ByteTokenizer::from_spec(spec)) return bytes;
  std::error_code ec;
  fs::path p(spec);
  if (fs::is_directory(p, ec)) {
    fs::path f = p / "tokenizer.json";
    if (!fs::is_regular_file(f, ec)) throw Error(spec + ": directory has no tokenizer.json");
    return BpeTokenizer::load(f.string());
  }
  if (!fs::exists(p, ec))
    throw Error(spec + ": no such tokenizer (expected \"bytes\", a tokenizer.json file or a model directory)");
  return BpeTokenizer::load(spec);
}

std::string model_tokenizer_spec(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir), spec = dir / "tokenizer_spec.json";
  if (std::filesystem::exists(spec)) {
    try {
      return nlohmann::json::parse(read_file(spec.string())).value("tokenizer", std::string("bytes"));
    } catch (const nlohmann::json::exception& e) {
      throw Error(spec.string() + ": invalid (" + e.what() + ")");
    }
  }
  if (std::filesystem::exists(dir / "tokenizer.json")) return model_dir;
  throw Error(model_dir + ": no tokenizer_spec.json or tokenizer.json next to the model");
}

std::unique_ptr<TokenCounter> make_model_token_counter(const std::string& spec) {
  return std::make_unique<TextTokenCounter>(std::shared_ptr<const TextTokenizer>(load_tokenizer(spec)), spec);
}

}  // namespace msabench
