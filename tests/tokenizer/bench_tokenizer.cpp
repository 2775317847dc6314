// Encode throughput: tokenizer_bench SPEC TEXT_FILE [MB]
// Repeats TEXT_FILE up to MB megabytes (default 10), encodes it in ~64 KB documents on one
// thread, with and without the word cache, and prints tokens/s.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "core/error.h"
#include "core/io.h"
#include "core/tokenizer/bpe_tokenizer.h"

using namespace msabench;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tokenizer_bench SPEC TEXT_FILE [MB]\n";
    return 2;
  }
  try {
    std::string base = read_file(argv[2]);
    if (base.empty()) throw Error(std::string(argv[2]) + ": empty file");
    size_t target = static_cast<size_t>((argc > 3 ? std::atof(argv[3]) : 10.0) * 1e6);
    std::string text;
    while (text.size() < target) text += base;
    text.resize(target);
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
    // split into documents at spaces so no UTF-8 sequence is cut
    std::vector<std::string_view> docs;
    for (size_t i = 0; i < text.size();) {
      size_t j = std::min(text.size(), i + 65536);
      while (j < text.size() && text[j] != ' ') ++j;
      docs.emplace_back(text.data() + i, j - i);
      i = j;
    }
    for (size_t cache : {size_t{1} << 18, size_t{0}}) {
      BpeOptions opts;
      opts.cache_entries = cache;
      std::unique_ptr<TextTokenizer> t;
      std::string spec = argv[1];
      if (spec == "bytes") t = load_tokenizer(spec);
      else t = BpeTokenizer::load(spec.size() > 5 && spec.substr(spec.size() - 5) == ".json" ? spec : spec + "/tokenizer.json", opts);
      auto t0 = std::chrono::steady_clock::now();
      int64_t tokens = 0;
      for (auto d : docs) tokens += static_cast<int64_t>(t->encode(d, false).size());
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%s cache=%zu: %.1f MB, %lld tokens in %.3f s: %.2f M tokens/s, %.1f MB/s\n", t->name().c_str(), cache,
                  text.size() / 1e6, static_cast<long long>(tokens), s, tokens / s / 1e6, text.size() / s / 1e6);
      if (spec == "bytes") break;
    }
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
