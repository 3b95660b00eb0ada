// The ONE request validator both doors share: OpenAI completions / chat-completions JSON (the gRPC
// door converts its messages into the same JSON) is checked field by field at parse time and mapped
// into plain data close to GenerationRequest. Everything that needs the tokenizer (prompt length vs
// context, token ids vs vocabulary) is checked later by ServingCore with the same ApiLimits.
// It must never accept an unknown field, a value of the wrong type or out of range, or a feature it
// would silently ignore with a different result (response_format json, suffix, audio...).
//
// Known fields that are accepted and ignored, because they cannot change the output:
//   completions: user.
//   chat: user, metadata, store, service_tier, parallel_tool_calls, prediction, prompt_cache_key
//         (prefix caching is automatic), reasoning_effort, verbosity, safety_identifier, modalities
//         (["text"] only), stream_options.include_obfuscation.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/sampling_params.h"
#include "scheduler/types.h"

namespace tessera::server {

// Limits of one served model; checked before anything is allocated for a request.
struct ApiLimits {
  std::vector<std::string> model_names;  // names the server answers to (the first is reported)
  int32_t max_model_len = 4096;          // prompt + output tokens
  int32_t vocab_size = 0;                // token ids must be < this (checked when > 0)
  int32_t max_n = 16;                    // n (choices) per prompt
  int32_t max_logprobs = 20;             // logprobs / top_logprobs / prompt_logprobs
  int32_t max_prompts = 64;              // prompts in one completions request
  int32_t max_stop = 16;                 // stop strings
  int32_t max_stop_bytes = 256;          // bytes of one stop string
  int32_t max_logit_bias = 1024;         // entries of logit_bias
  int32_t max_messages = 4096;           // chat messages
};

// One prompt: text to tokenize, or token ids used as given.
struct PromptInput {
  std::optional<std::string> text;
  std::vector<TokenId> token_ids;
};

// Fields common to both endpoints after validation.
struct ParsedGeneration {
  std::string model;                       // the name the client asked for (validated)
  SamplingParams sampling;                 // seed filled in only when seed_given
  StoppingParams stopping;                 // max_tokens filled in only when max_tokens_given
  bool max_tokens_given = false;
  bool seed_given = false;
  int32_t n = 1;
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage
  bool skip_special_tokens = true;
};

struct ParsedCompletion {
  ParsedGeneration gen;
  std::vector<PromptInput> prompts;        // 1..max_prompts
  bool echo = false;                       // prepend the prompt (and its logprobs) to each choice
  int32_t logprobs = -1;                   // -1 = none; k = the sampled token and top k
  bool add_special_tokens = true;          // when tokenizing text prompts
};

struct ParsedChat {
  ParsedGeneration gen;
  nlohmann::json messages;                 // normalised: content is a string; at least one message
  nlohmann::json tools;                    // array, or null
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  nlohmann::json chat_template_kwargs = nlohmann::json::object();
  bool logprobs = false;
  int32_t top_logprobs = 0;
};

// Throw ApiError (kInvalidArgument, or kNotFound for an unknown model, kUnimplemented for a
// recognised feature Tessera does not have) naming the field.
ParsedCompletion validate_completion_request(const nlohmann::json& body, const ApiLimits& limits);
ParsedChat validate_chat_request(const nlohmann::json& body, const ApiLimits& limits);

// Tokenize / detokenize endpoints (vLLM-compatible shapes).
struct ParsedTokenize {
  std::string model;
  std::optional<std::string> prompt;       // either prompt ...
  std::optional<ParsedChat> chat;          // ... or messages (rendered with the chat template)
  bool add_special_tokens = true;
};
struct ParsedDetokenize {
  std::string model;
  std::vector<TokenId> tokens;
  bool skip_special_tokens = false;
};
ParsedTokenize validate_tokenize_request(const nlohmann::json& body, const ApiLimits& limits);
ParsedDetokenize validate_detokenize_request(const nlohmann::json& body, const ApiLimits& limits);

// The request's "model" (may be absent when only one model is served); kNotFound for others.
std::string validate_model_name(const nlohmann::json& body, const ApiLimits& limits);

}  // namespace tessera::server
