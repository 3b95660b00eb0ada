// The tokenizer encode benchmark behind `tessera bench tokenizer` (see tokenizer_bench.cpp).
#pragma once

#include <cstddef>
#include <string>

namespace tessera::bench {

struct TokenizerBenchOptions {
  std::string model_dir;       // holds tokenizer.json (+ tokenizer_config.json)
  std::string corpus;          // JSONL of strings; empty: generate one with tests/tokenizer/corpus.mjs
  size_t bytes = 10'000'000;   // size of the generated corpus
  bool reference = true;       // also run @lenml/tokenizers under node on the same corpus
};

// Prints the figures; returns the exit code (1 when the reference produced different ids).
int run_tokenizer_bench(const TokenizerBenchOptions& opts);

}  // namespace tessera::bench
