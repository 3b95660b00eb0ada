// `tessera version`: the build's version, compiler, and which backends it carries.
#include <fmt/format.h>

#include <memory>

#include "cli/build_info.h"
#include "cli/commands.h"

namespace tessera::cli {

void register_version_command(CLI::App& app, CommandRunner& runner) {
  auto* cmd = app.add_subcommand("version", "Print the version and the backends this build carries");
  // Options live as long as the callbacks that read them.
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([&runner, json] {
    runner.run = [json] {
      if (*json) {
        fmt::print("{{\"version\":\"{}\",\"cuda\":{},\"compiler\":\"{}\"}}\n", kVersion, kBuiltWithCuda ? "true" : "false",
                   kCompiler);
      } else {
        fmt::print("tessera {}\ncuda backend: {}\ncompiler: {}\n", kVersion, kBuiltWithCuda ? "built" : "not built",
                   kCompiler);
      }
      return 0;
    };
  });
}

}  // namespace tessera::cli
