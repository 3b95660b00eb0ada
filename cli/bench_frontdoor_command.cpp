// `tessera bench frontdoor`: streamed tokens/s and per-token latency of the HTTP door with many
// concurrent SSE clients over an instant executor, next to the in-process engine limit.
#include <memory>

#include "bench/frontdoor/frontdoor_bench.h"
#include "cli/commands.h"

namespace tessera::cli {

void register_bench_frontdoor_command(CLI::App& bench, CommandRunner& runner) {
  auto* cmd = bench.add_subcommand("frontdoor", "HTTP/SSE front-door overhead with many concurrent streams");
  auto o = std::make_shared<bench::FrontdoorOptions>();
  cmd->add_option("--tokenizer", o->tokenizer_dir, "Tokenizer folder (default: the built-in default model's)");
  cmd->add_option("--clients", o->clients, "Concurrent SSE streams")->capture_default_str();
  cmd->add_option("--requests", o->requests, "Measured requests")->capture_default_str();
  cmd->add_option("--input-len", o->input_len, "Prompt tokens")->capture_default_str();
  cmd->add_option("--output-len", o->output_len, "Streamed tokens per request")->capture_default_str();
  cmd->add_option("--http-threads", o->http_threads, "HTTP io threads")->capture_default_str();
  cmd->add_option("--json", o->json_out, "Write the summary JSON here");
  cmd->callback([&runner, o] { runner.run = [o] { return bench::run_frontdoor_bench(*o); }; });
}

}  // namespace tessera::cli
