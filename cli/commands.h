// The `tessera` subcommands. Each lives in its own file and registers itself on the root app;
// the callback it sets runs the command and returns the process exit code through CommandResult.
// A command must never parse another command's flags.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace tessera::cli {

// Where a subcommand stores the function main() runs after parsing succeeded.
struct CommandRunner {
  std::function<int()> run;
};

void register_version_command(CLI::App& app, CommandRunner& runner);
// Benchmarks register under the `bench` parent: void register_bench_X_command(CLI::App& bench, CommandRunner&).
void register_bench_serve_command(CLI::App& bench, CommandRunner& runner);
void register_bench_allreduce_command(CLI::App& bench, CommandRunner& runner);

}  // namespace tessera::cli
