// `tessera tokenize --model DIR [--no-special] TEXT|-`: prints the token ids of TEXT (or of standard
// input with `-`) as one JSON array. Needs only tokenizer.json (+ tokenizer_config.json) in DIR.
// It must never print anything but the JSON array on standard output.
#include <fmt/format.h>

#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace tessera::cli {

namespace {

struct TokenizeOptions {
  std::string model_dir;
  std::string text;
  bool no_special = false;
};

int run_tokenize(const TokenizeOptions& opts) {
  auto tokenizer = Tokenizer::from_directory(opts.model_dir);
  std::string text = opts.text;
  if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  auto ids = tokenizer->encode(text, !opts.no_special);
  fmt::print("[{}]\n", fmt::join(ids, ","));
  return 0;
}

}  // namespace

void register_tokenize_command(CLI::App& app, CommandRunner& runner) {
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  auto opts = std::make_shared<TokenizeOptions>();
  cmd->add_option("--model", opts->model_dir, "Directory holding tokenizer.json (and tokenizer_config.json)")
      ->required();
  cmd->add_flag("--no-special", opts->no_special, "Do not add special tokens (BOS/EOS of the post-processor)");
  cmd->add_option("text", opts->text, "The text, or - to read standard input")->required();
  cmd->callback([&runner, opts] { runner.run = [opts] { return run_tokenize(*opts); }; });
}

}  // namespace tessera::cli
