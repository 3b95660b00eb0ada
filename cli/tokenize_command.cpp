// `tessera tokenize --model DIR [--chat] [--no-special] TEXT|-`: prints the token ids of TEXT (or of
// standard input with `-`) as one JSON array. With --chat, the input is a JSON list of messages that
// the model's chat template renders (with the generation prompt) before encoding; like transformers'
// apply_chat_template, the rendered text is encoded without adding special tokens again.
// Needs only tokenizer.json (+ tokenizer_config.json) in DIR. It must never print anything but the
// JSON array on standard output.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tessera::cli {

namespace {

struct TokenizeOptions {
  std::string model_dir;
  std::string text;
  bool chat = false;
  bool no_special = false;
};

std::string render_chat(const Tokenizer& tokenizer, const std::string& messages_json) {
  const auto& source = tokenizer.chat_template_source();
  TS_CHECK(source.has_value(), kFailedPrecondition, "--chat: the model's tokenizer_config.json has no chat_template");
  nlohmann::ordered_json messages;  // keeps the keys' order, as the template's tojson expects
  try {
    messages = nlohmann::ordered_json::parse(messages_json);
  } catch (const nlohmann::json::exception& e) {
    TS_THROW(kInvalidArgument, "--chat: input is not JSON: {}", e.what());
  }
  TS_CHECK(messages.is_array(), kInvalidArgument, "--chat: input must be a JSON list of messages, got {}",
           messages.type_name());
  ChatTemplate chat_template(*source, tokenizer.bos_token(), tokenizer.eos_token());
  return chat_template.render(messages, nlohmann::ordered_json(), true);
}

int run_tokenize(const TokenizeOptions& opts) {
  auto tokenizer = Tokenizer::from_directory(opts.model_dir);
  std::string text = opts.text;
  if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  std::vector<TokenId> ids;
  if (opts.chat)
    ids = tokenizer->encode(render_chat(*tokenizer, text), false);
  else
    ids = tokenizer->encode(text, !opts.no_special);
  fmt::print("[{}]\n", fmt::join(ids, ","));
  return 0;
}

}  // namespace

void register_tokenize_command(CLI::App& app, CommandRunner& runner) {
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  auto opts = std::make_shared<TokenizeOptions>();
  cmd->add_option("--model", opts->model_dir, "Directory holding tokenizer.json (and tokenizer_config.json)")
      ->required();
  cmd->add_flag("--chat", opts->chat,
                "The input is a JSON list of messages; apply the chat template (with generation prompt) first");
  cmd->add_flag("--no-special", opts->no_special, "Do not add special tokens (BOS/EOS of the post-processor)");
  cmd->add_option("text", opts->text, "The text, or - to read standard input")->required();
  cmd->callback([&runner, opts] { runner.run = [opts] { return run_tokenize(*opts); }; });
}

}  // namespace tessera::cli
