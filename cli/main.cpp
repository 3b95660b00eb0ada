// The `tessera` binary: global flags (logging), then one subcommand. Errors reach the user as one
// line naming what was wrong, and a non-zero exit code; never a stack trace or an abort.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <exception>

#include "cli/registered_commands.h"
#include "common/error.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"Tessera: a C++/CUDA inference server for Llama-family language models"};
  app.require_subcommand(1);
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.add_option("--log-format", log_format, "text or json (one JSON object per line)")->capture_default_str();

  tessera::cli::CommandRunner runner;
  // `tessera bench ...`: each benchmark registers itself under this parent.
  auto* bench = app.add_subcommand("bench", "Benchmarks; each prints its figures next to the limit measured in the same run");
  bench->require_subcommand(1);
  tessera::cli::register_all_commands(app, *bench, runner);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    tessera::init_logging(tessera::parse_log_level(log_level), tessera::parse_log_format(log_format));
    return runner.run ? runner.run() : 0;
  } catch (const tessera::Error& e) {
    spdlog::error("{}: {}", tessera::error_code_name(e.code()), e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return 2;
  }
}
