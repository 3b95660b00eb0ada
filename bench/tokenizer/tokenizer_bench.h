// Registers `tessera bench tokenizer` under the bench parent command.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace tessera::bench {

void register_bench_tokenizer_command(CLI::App& bench, cli::CommandRunner& runner);

}  // namespace tessera::bench
