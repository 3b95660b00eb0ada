// ChatTemplate: renders tokenizer_config.json's Jinja chat_template with messages, tools and
// add_generation_prompt, identically to @huggingface/jinja / transformers' apply_chat_template.
// CONTRACT for the server and CLI. Templates come only from the model directory, never from a
// request. It must never execute anything but the template language, and bounds its work.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace tessera {

class ChatTemplateImpl;

class ChatTemplate {
 public:
  // Parses the template; unknown syntax throws tessera::Error(kUnimplemented) naming the construct
  // and its line. bos_token / eos_token are exposed to the template as variables.
  ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;

  // messages: array of {role, content, ...}; tools: array or null. Template errors (raise_exception,
  // wrong message shapes) throw tessera::Error(kInvalidArgument) with the template's message.
  std::string render(const nlohmann::json& messages, const nlohmann::json& tools, bool add_generation_prompt,
                     const nlohmann::json& extra_context = nlohmann::json::object()) const;
  // The same with insertion-ordered JSON: object keys keep the request's order (as JSON.parse and
  // Python's json do), so `tool | tojson` prints tool schemas byte-identically. Prefer this one;
  // nlohmann::json sorts keys alphabetically.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object()) const;

 private:
  std::unique_ptr<ChatTemplateImpl> impl_;
};

}  // namespace tessera
