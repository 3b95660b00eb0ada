// `tessera bench tokenizer --model DIR`: flags for the tokenizer encode benchmark.
// It must never parse another command's flags.
#include <memory>

#include "bench/tokenizer/tokenizer_bench.h"
#include "cli/commands.h"

namespace tessera::cli {

void register_bench_tokenizer_command(CLI::App& bench, CommandRunner& runner) {
  auto* cmd = bench.add_subcommand("tokenizer", "Encode throughput (MB/s, one thread) next to @lenml/tokenizers");
  auto opts = std::make_shared<bench::TokenizerBenchOptions>();
  cmd->add_option("--model", opts->model_dir, "Directory holding tokenizer.json")->required();
  cmd->add_option("--corpus", opts->corpus, "JSONL corpus (one JSON string per line); default: generated");
  cmd->add_option("--bytes", opts->bytes, "Size of the generated corpus in bytes")->capture_default_str();
  cmd->add_flag("!--no-reference", opts->reference, "Skip the JavaScript reference");
  cmd->callback([&runner, opts] { runner.run = [opts] { return bench::run_tokenizer_bench(*opts); }; });
}

}  // namespace tessera::cli
