// Completions, tokenize and detokenize request validation; see request_validator.h.
#include "server/request_validator.h"

#include <limits>

#include "server/api_error.h"
#include "server/generation_fields.h"
#include "server/json_fields.h"

namespace tessera::server {

namespace {

std::vector<std::string_view> completion_fields() {
  std::vector<std::string_view> f = common_generation_fields();
  for (std::string_view k : {"prompt", "best_of", "echo", "logprobs", "suffix", "add_special_tokens",
                             "prompt_logprobs"}) {
    f.push_back(k);
  }
  return f;
}

std::vector<TokenId> parse_token_ids(const json& arr, const std::string& where, const ApiLimits& limits) {
  API_CHECK(!arr.empty(), kInvalidArgument, "prompt", "{} is an empty token list", where);
  API_CHECK(arr.size() <= static_cast<size_t>(limits.max_model_len), kInvalidArgument, "prompt",
            "{} has {} tokens; the context holds {}", where, arr.size(), limits.max_model_len);
  const int64_t hi = limits.vocab_size > 0 ? limits.vocab_size - 1 : std::numeric_limits<TokenId>::max();
  std::vector<TokenId> ids;
  ids.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& t = arr[i];
    API_CHECK(t.is_number_integer() || t.is_number_unsigned(), kInvalidArgument, "prompt",
              "{}[{}] must be an integer token id, got {} {}", where, i, json_type_name(t), describe_value(t));
    const bool ok = t.is_number_unsigned() ? t.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                           : t.get<int64_t>() >= 0 && t.get<int64_t>() <= hi;
    API_CHECK(ok, kInvalidArgument, "prompt", "{}[{}] = {} is not a token id in [0, {}]", where, i, describe_value(t),
              hi);
    ids.push_back(static_cast<TokenId>(t.get<int64_t>()));
  }
  return ids;
}

// prompt: a string, an array of strings, an array of token ids, or an array of token-id arrays.
std::vector<PromptInput> parse_prompts(const json& body, const ApiLimits& limits) {
  const json* p = find_field(body, "prompt");
  API_CHECK(p, kInvalidArgument, "prompt", "prompt is required");
  std::vector<PromptInput> prompts;
  if (p->is_string()) {
    prompts.push_back({p->get<std::string>(), {}});
  } else {
    API_CHECK(p->is_array(), kInvalidArgument, "prompt",
              "prompt must be a string, an array of strings, or token ids, got {}", json_type_name(*p));
    API_CHECK(!p->empty(), kInvalidArgument, "prompt", "prompt must not be an empty array");
    if ((*p)[0].is_number()) {
      prompts.push_back({std::nullopt, parse_token_ids(*p, "prompt", limits)});
    } else {
      API_CHECK(p->size() <= static_cast<size_t>(limits.max_prompts), kInvalidArgument, "prompt",
                "prompt has {} prompts; at most {}", p->size(), limits.max_prompts);
      for (size_t i = 0; i < p->size(); ++i) {
        const json& e = (*p)[i];
        const std::string where = fmt::format("prompt[{}]", i);
        if (e.is_string()) {
          prompts.push_back({e.get<std::string>(), {}});
        } else if (e.is_array()) {
          prompts.push_back({std::nullopt, parse_token_ids(e, where, limits)});
        } else {
          API_THROW(kInvalidArgument, "prompt", "{} must be a string or an array of token ids, got {}", where,
                    json_type_name(e));
        }
      }
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    API_CHECK(!prompts[i].text || !prompts[i].text->empty(), kInvalidArgument, "prompt",
              "prompt{} is an empty string", prompts.size() > 1 ? fmt::format("[{}]", i) : "");
  }
  return prompts;
}

}  // namespace

ParsedCompletion validate_completion_request(const json& body, const ApiLimits& limits) {
  static const std::vector<std::string_view> known = completion_fields();
  check_known_fields(body, known, "");
  ParsedCompletion req;
  req.gen = parse_generation_fields(body, limits, {"max_tokens"});
  req.prompts = parse_prompts(body, limits);
  API_CHECK(static_cast<int64_t>(req.prompts.size()) * req.gen.n <= static_cast<int64_t>(limits.max_prompts) * 4,
            kInvalidArgument, "n", "{} prompts x n = {} is {} choices; at most {}", req.prompts.size(), req.gen.n,
            req.prompts.size() * req.gen.n, limits.max_prompts * 4);
  if (!req.gen.max_tokens_given) {
    req.gen.stopping.max_tokens = 16;  // OpenAI's default for completions
  }
  if (auto best_of = get_int(body, "best_of", "", 1, limits.max_n)) {
    API_CHECK(*best_of == req.gen.n, kUnimplemented, "best_of",
              "best_of = {} with n = {} is not supported; best_of must equal n", *best_of, req.gen.n);
  }
  req.echo = get_bool(body, "echo", "").value_or(false);
  if (auto lp = get_int(body, "logprobs", "", 0, limits.max_logprobs)) req.logprobs = static_cast<int32_t>(*lp);
  req.gen.sampling.logprobs = req.logprobs;
  if (req.echo && req.logprobs >= 0) req.gen.sampling.prompt_logprobs = req.logprobs;
  if (auto plp = get_int(body, "prompt_logprobs", "", 0, limits.max_logprobs)) {
    req.gen.sampling.prompt_logprobs = static_cast<int32_t>(*plp);
  }
  if (auto suffix = get_string(body, "suffix", "")) {
    API_CHECK(suffix->empty(), kUnimplemented, "suffix", "suffix (fill-in-the-middle) is not supported");
  }
  req.add_special_tokens = get_bool(body, "add_special_tokens", "").value_or(true);
  return req;
}

ParsedTokenize validate_tokenize_request(const json& body, const ApiLimits& limits) {
  ParsedTokenize req;
  if (body.contains("messages")) {
    // Chat shape: the same validation as chat completions minus generation.
    static const std::string_view known[] = {"model", "messages", "add_generation_prompt", "continue_final_message",
                                             "add_special_tokens", "chat_template_kwargs", "tools"};
    check_known_fields(body, known, "");
    json chat_body = body;
    chat_body.erase("add_special_tokens");
    req.chat = validate_chat_request(chat_body, limits);
    req.model = req.chat->gen.model;
    req.add_special_tokens = get_bool(body, "add_special_tokens", "").value_or(false);
    return req;
  }
  static const std::string_view known[] = {"model", "prompt", "add_special_tokens"};
  check_known_fields(body, known, "");
  req.model = validate_model_name(body, limits);
  req.prompt = get_string(body, "prompt", "");
  API_CHECK(req.prompt.has_value(), kInvalidArgument, "prompt", "prompt (a string) or messages is required");
  req.add_special_tokens = get_bool(body, "add_special_tokens", "").value_or(true);
  return req;
}

ParsedDetokenize validate_detokenize_request(const json& body, const ApiLimits& limits) {
  static const std::string_view known[] = {"model", "tokens", "skip_special_tokens"};
  check_known_fields(body, known, "");
  ParsedDetokenize req;
  req.model = validate_model_name(body, limits);
  const json* t = find_field(body, "tokens");
  API_CHECK(t && t->is_array(), kInvalidArgument, "tokens", "tokens (an array of token ids) is required");
  if (!t->empty()) {
    // Reuse the prompt check: integers within the vocabulary, at most a context's worth.
    API_CHECK(t->size() <= static_cast<size_t>(limits.max_model_len) * 4, kInvalidArgument, "tokens",
              "tokens has {} entries; at most {}", t->size(), limits.max_model_len * 4);
    ApiLimits wide = limits;
    wide.max_model_len = static_cast<int32_t>(t->size());
    try {
      req.tokens = parse_token_ids(*t, "tokens", wide);
    } catch (const ApiError& e) {
      throw ApiError(e.code(), "tokens", e.what());
    }
  }
  req.skip_special_tokens = get_bool(body, "skip_special_tokens", "").value_or(false);
  return req;
}

}  // namespace tessera::server
