// The `tessera` subcommands. Each lives in its own file and registers itself on the root app (or on
// the `bench` parent); the callback it sets stores the function main() runs after parsing.
// Registration is by file name (see cli/CMakeLists.txt): a new command never edits this file.
// A command must never parse another command's flags.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace tessera::cli {

// Where a subcommand stores the function main() runs after parsing succeeded.
struct CommandRunner {
  std::function<int()> run;
};

}  // namespace tessera::cli
