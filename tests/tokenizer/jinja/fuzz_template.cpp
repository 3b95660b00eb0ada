// libFuzzer target over the chat template lexer, parser and interpreter. The input is a template,
// optionally followed by a NUL byte and a JSON list of messages. Any tessera::Error is an accepted
// outcome; a crash, sanitizer report, other exception, hang or unbounded allocation is a bug.
#include "common/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace {

const nlohmann::ordered_json& default_messages() {
  static const auto m = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi 👋 <think>x</think>"},
    {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, null]}}}]},
    {"role": "tool", "content": "{\"ok\": true}"}])");
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string source = input.substr(0, nul);
  nlohmann::ordered_json messages = default_messages();
  if (nul != std::string::npos) {
    auto parsed = nlohmann::ordered_json::parse(input.substr(nul + 1), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_array()) messages = std::move(parsed);
  }
  try {
    auto program = tessera::jinja::parse(tessera::jinja::tokenize(source));
    tessera::jinja::RenderLimits limits;
    limits.max_steps = 200000;
    limits.max_work_bytes = size_t{8} << 20;
    limits.max_output_bytes = size_t{1} << 20;
    tessera::jinja::Interpreter interpreter(limits);
    auto env = std::make_shared<tessera::jinja::Env>();
    tessera::jinja::install_globals(*env);
    env->set("messages", tessera::jinja::from_json(messages));
    env->set("tools", tessera::jinja::from_json(nlohmann::ordered_json::parse(
                          R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])")));
    env->set("add_generation_prompt", tessera::jinja::make_bool(true));
    env->set("bos_token", tessera::jinja::make_string("<s>"));
    env->set("eos_token", tessera::jinja::make_string("</s>"));
    interpreter.run(*program, env);
  } catch (const tessera::Error&) {
  }
  return 0;
}
