// ChatTemplate (tokenizer/chat_template.h): parses the template once at load and renders it with
// the conversation as @huggingface/jinja's Template.render would (trim_blocks and lstrip_blocks on).
#include "tokenizer/chat_template.h"

#include "common/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

#include <set>

namespace tessera {

class ChatTemplateImpl {
 public:
  ChatTemplateImpl(const std::string& source, std::string bos, std::string eos)
      : program_(jinja::parse(jinja::tokenize(source))), bos_(std::move(bos)), eos_(std::move(eos)) {}

  template <typename Json>
  std::string render(const Json& messages, const Json& tools, bool add_generation_prompt, const Json& extra) const {
    TS_CHECK(messages.is_array(), kInvalidArgument, "chat messages must be a JSON array, got {}", messages.type_name());
    TS_CHECK(tools.is_null() || tools.is_array(), kInvalidArgument, "chat tools must be a JSON array or null, got {}",
             tools.type_name());
    TS_CHECK(extra.is_object() || extra.is_null(), kInvalidArgument, "chat template context must be a JSON object, got {}",
             extra.type_name());
    auto globals = std::make_shared<jinja::Env>();
    jinja::install_globals(*globals);
    globals->set("messages", jinja::from_json(messages));
    globals->set("tools", jinja::from_json(tools));
    globals->set("add_generation_prompt", jinja::make_bool(add_generation_prompt));
    globals->set("bos_token", jinja::make_string(bos_));
    globals->set("eos_token", jinja::make_string(eos_));
    if (extra.is_object()) {
      for (auto it = extra.begin(); it != extra.end(); ++it) {
        TS_CHECK(globals->vars.count(it.key()) == 0, kInvalidArgument,
                 "chat template context variable '{}' is already defined", it.key());
        globals->set(it.key(), jinja::from_json(it.value()));
      }
    }
    jinja::Interpreter interpreter{jinja::RenderLimits{}};
    try {
      return interpreter.run(*program_, globals);
    } catch (const Error& e) {
      if (interpreter.raised() || e.code() != ErrorCode::kInvalidArgument) throw;
      TS_THROW(kInvalidArgument, "chat template line {}: {}", interpreter.line(), e.what());
    }
  }

 private:
  jinja::NodePtr program_;
  std::string bos_, eos_;
};

ChatTemplate::ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token)
    : impl_(std::make_unique<ChatTemplateImpl>(source, std::move(bos_token), std::move(eos_token))) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const nlohmann::json& messages, const nlohmann::json& tools, bool add_generation_prompt,
                                 const nlohmann::json& extra_context) const {
  return impl_->render(messages, tools, add_generation_prompt, extra_context);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra_context) const {
  return impl_->render(messages, tools, add_generation_prompt, extra_context);
}

}  // namespace tessera
