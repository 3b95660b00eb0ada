// The front-door benchmark: the real engine over an InstantExecutor, served in-process by the real
// HTTP door, driven by N concurrent SSE clients (bench/serve's Beast load runner). It prints the
// streamed tokens/s and per-token latency next to the limit measured in the same run: the same
// engine consumed directly in-process, with no HTTP at all.
#pragma once

#include <cstdint>
#include <string>

namespace tessera::bench {

struct FrontdoorOptions {
  std::string tokenizer_dir;     // empty: the built-in default model's (Qwen3) tokenizer
  int32_t clients = 1000;        // concurrent SSE streams
  int32_t requests = 2000;       // measured requests (each client sends requests / clients in turn)
  int32_t input_len = 16;        // prompt tokens
  int32_t output_len = 128;      // streamed tokens per request
  int http_threads = 2;
  std::string json_out;          // optional: write the summary JSON here
};

int run_frontdoor_bench(const FrontdoorOptions& options);

}  // namespace tessera::bench
