// Chat-completions request validation: messages, tools, and the chat-only OpenAI fields.
// See request_validator.h for which known fields are ignored and why.
#include <string>

#include "server/api_error.h"
#include "server/generation_fields.h"
#include "server/json_fields.h"
#include "server/request_validator.h"

namespace tessera::server {

namespace {

std::vector<std::string_view> chat_fields() {
  std::vector<std::string_view> f = common_generation_fields();
  for (std::string_view k :
       {"messages", "audio", "function_call", "functions", "logprobs", "top_logprobs", "max_completion_tokens",
        "metadata", "modalities", "parallel_tool_calls", "prediction", "prompt_cache_key", "reasoning_effort",
        "response_format", "safety_identifier", "service_tier", "store", "tool_choice", "tools", "verbosity",
        "web_search_options",
        // vLLM-compatible extensions
        "add_generation_prompt", "continue_final_message", "chat_template_kwargs"}) {
    f.push_back(k);
  }
  return f;
}

// Content is a string or an array of parts; only text parts are supported. Returns the text.
std::string message_text(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  API_CHECK(content.is_array(), kInvalidArgument, where, "{} must be a string or an array of content parts, got {}",
            where, json_type_name(content));
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string pw = fmt::format("{}[{}]", where, i);
    API_CHECK(part.is_object(), kInvalidArgument, where, "{} must be an object, got {}", pw, json_type_name(part));
    auto type = get_string(part, "type", pw);
    API_CHECK(type.has_value(), kInvalidArgument, where, "{}.type is required", pw);
    if (*type == "text" || *type == "refusal") {
      const std::string key = *type == "text" ? "text" : "refusal";
      auto t = get_string(part, key, pw);
      API_CHECK(t.has_value(), kInvalidArgument, where, "{}.{} is required", pw, key);
      text += *t;
    } else {
      API_THROW(kUnimplemented, where, "{}.type '{}' is not supported: this model takes text only", pw,
                type->substr(0, 64));
    }
  }
  return text;
}

json normalize_messages(const json& body, const ApiLimits& limits) {
  const json* m = find_field(body, "messages");
  API_CHECK(m, kInvalidArgument, "messages", "messages is required");
  API_CHECK(m->is_array(), kInvalidArgument, "messages", "messages must be an array, got {}", json_type_name(*m));
  API_CHECK(!m->empty(), kInvalidArgument, "messages", "messages must not be empty");
  API_CHECK(m->size() <= static_cast<size_t>(limits.max_messages), kInvalidArgument, "messages",
            "messages has {} entries; at most {}", m->size(), limits.max_messages);
  json out = json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string where = fmt::format("messages[{}]", i);
    API_CHECK(msg.is_object(), kInvalidArgument, "messages", "{} must be an object, got {}", where,
              json_type_name(msg));
    auto role = get_string(msg, "role", where);
    API_CHECK(role.has_value(), kInvalidArgument, "messages", "{}.role is required", where);
    const bool known_role = *role == "system" || *role == "developer" || *role == "user" || *role == "assistant" ||
                            *role == "tool" || *role == "function";
    API_CHECK(known_role, kInvalidArgument, "messages",
              "{}.role '{}' is not one of system, developer, user, assistant, tool, function", where,
              role->substr(0, 64));
    json norm = json::object();
    norm["role"] = *role;
    const json* content = find_field(msg, "content");
    const bool has_tool_calls = find_field(msg, "tool_calls") != nullptr;
    API_CHECK(content || (*role == "assistant" && has_tool_calls), kInvalidArgument, "messages",
              "{}.content is required", where);
    norm["content"] = content ? message_text(*content, where + ".content") : std::string();
    for (auto it = msg.begin(); it != msg.end(); ++it) {
      const std::string& k = it.key();
      if (k == "role" || k == "content") continue;
      if (k == "name" || k == "tool_call_id" || k == "refusal") {
        API_CHECK(it->is_string() || it->is_null(), kInvalidArgument, "messages", "{}.{} must be a string", where, k);
        if (it->is_string()) norm[k] = *it;
      } else if (k == "tool_calls" || k == "function_call") {
        API_CHECK(it->is_array() || it->is_object() || it->is_null(), kInvalidArgument, "messages",
                  "{}.{} must be {}", where, k, k == "tool_calls" ? "an array" : "an object");
        if (!it->is_null()) norm[k] = *it;
      } else if (k == "audio") {
        API_CHECK(it->is_null(), kUnimplemented, "messages", "{}.audio is not supported", where);
      } else {
        API_THROW(kInvalidArgument, "messages", "unknown field '{}.{}'", where, k.substr(0, 64));
      }
    }
    out.push_back(std::move(norm));
  }
  return out;
}

void refuse_unsupported(const json& body) {
  if (const json* rf = find_field(body, "response_format")) {
    API_CHECK(rf->is_object(), kInvalidArgument, "response_format", "response_format must be an object, got {}",
              json_type_name(*rf));
    auto type = get_string(*rf, "type", "response_format");
    API_CHECK(type.has_value(), kInvalidArgument, "response_format", "response_format.type is required");
    API_CHECK(*type == "text", kUnimplemented, "response_format",
              "response_format type '{}' is not supported yet (no constrained decoding); only 'text' is accepted",
              type->substr(0, 64));
  }
  if (const json* a = find_field(body, "audio")) {
    API_THROW(kUnimplemented, "audio", "audio output is not supported, got {}", describe_value(*a));
  }
  if (const json* w = find_field(body, "web_search_options")) {
    API_THROW(kUnimplemented, "web_search_options", "web search is not supported, got {}", describe_value(*w));
  }
  if (const json* f = find_field(body, "functions")) {
    API_CHECK(f->is_array() && f->empty(), kUnimplemented, "functions",
              "the deprecated functions field is not supported; pass tools instead");
  }
  if (const json* fc = find_field(body, "function_call")) {
    API_CHECK(fc->is_string() && (*fc == "none" || *fc == "auto"), kUnimplemented, "function_call",
              "function_call {} is not supported; only \"none\" or \"auto\"", describe_value(*fc));
  }
  if (const json* tc = find_field(body, "tool_choice")) {
    API_CHECK(tc->is_string() && (*tc == "none" || *tc == "auto"), kUnimplemented, "tool_choice",
              "tool_choice {} is not supported (no forced tool calls); only \"none\" or \"auto\"", describe_value(*tc));
  }
  if (const json* mod = find_field(body, "modalities")) {
    API_CHECK(mod->is_array(), kInvalidArgument, "modalities", "modalities must be an array, got {}",
              json_type_name(*mod));
    for (const json& m : *mod) {
      API_CHECK(m == "text", kUnimplemented, "modalities", "modality {} is not supported; only \"text\"",
                describe_value(m));
    }
  }
}

void accept_ignored(const json& body) {
  // Type-checked so that a malformed value is still refused, then ignored (see request_validator.h).
  (void)get_bool(body, "store", "");
  (void)get_bool(body, "parallel_tool_calls", "");
  (void)get_string(body, "service_tier", "");
  (void)get_string(body, "prompt_cache_key", "");
  (void)get_string(body, "reasoning_effort", "");
  (void)get_string(body, "verbosity", "");
  (void)get_string(body, "safety_identifier", "");
  if (const json* md = find_field(body, "metadata")) {
    API_CHECK(md->is_object(), kInvalidArgument, "metadata", "metadata must be an object, got {}", json_type_name(*md));
  }
  if (const json* p = find_field(body, "prediction")) {
    API_CHECK(p->is_object(), kInvalidArgument, "prediction", "prediction must be an object, got {}",
              json_type_name(*p));
  }
}

}  // namespace

ParsedChat validate_chat_request(const json& body, const ApiLimits& limits) {
  static const std::vector<std::string_view> known = chat_fields();
  check_known_fields(body, known, "");
  ParsedChat req;
  req.gen = parse_generation_fields(body, limits, {"max_tokens", "max_completion_tokens"});
  req.messages = normalize_messages(body, limits);
  refuse_unsupported(body);
  accept_ignored(body);
  if (const json* tools = find_field(body, "tools")) {
    API_CHECK(tools->is_array(), kInvalidArgument, "tools", "tools must be an array, got {}", json_type_name(*tools));
    for (size_t i = 0; i < tools->size(); ++i) {
      API_CHECK((*tools)[i].is_object(), kInvalidArgument, "tools", "tools[{}] must be an object", i);
    }
    if (!tools->empty()) req.tools = *tools;
  }
  req.logprobs = get_bool(body, "logprobs", "").value_or(false);
  if (auto k = get_int(body, "top_logprobs", "", 0, limits.max_logprobs)) {
    API_CHECK(req.logprobs, kInvalidArgument, "top_logprobs", "top_logprobs requires logprobs to be true");
    req.top_logprobs = static_cast<int32_t>(*k);
  }
  req.gen.sampling.logprobs = req.logprobs ? req.top_logprobs : -1;
  req.add_generation_prompt = get_bool(body, "add_generation_prompt", "").value_or(true);
  req.continue_final_message = get_bool(body, "continue_final_message", "").value_or(false);
  API_CHECK(!(req.add_generation_prompt && req.continue_final_message), kInvalidArgument, "continue_final_message",
            "continue_final_message and add_generation_prompt cannot both be true");
  if (const json* kw = find_field(body, "chat_template_kwargs")) {
    API_CHECK(kw->is_object(), kInvalidArgument, "chat_template_kwargs", "chat_template_kwargs must be an object, got {}",
              json_type_name(*kw));
    req.chat_template_kwargs = *kw;
  }
  return req;
}

}  // namespace tessera::server
