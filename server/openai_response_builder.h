// Turns engine outputs (RequestOutput, one stream per prompt) into OpenAI completions /
// chat-completions JSON: streamed chunks or one final response. One builder per HTTP request.
// Choice indices are global: prompt p's choice c is p * n + c. It must never block or touch
// sockets; it only formats what it is given.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace tessera::server {

enum class ApiKind { kCompletion, kChat };

struct ResponseShape {
  ApiKind kind = ApiKind::kCompletion;
  std::string id;                 // "cmpl-..." or "chatcmpl-..."
  std::string model;
  int64_t created = 0;            // unix seconds
  int32_t n = 1;                  // choices per prompt
  int32_t num_prompts = 1;
  bool echo = false;              // completions: prepend the prompt
  int32_t logprobs = -1;          // completions: k; chat: top_logprobs (>= 0 when logprobs is true)
  bool include_usage = false;     // streaming: a final usage chunk
};

// The prompt of one stream, for echo and prompt logprobs.
struct PromptEcho {
  std::string text;
  std::vector<TokenId> token_ids;
};

// Renders one token as text (for logprobs entries). Usually Tokenizer::decode of the single id.
using TokenText = std::function<std::string(TokenId)>;

class OpenAiResponseBuilder {
 public:
  OpenAiResponseBuilder(ResponseShape shape, std::vector<PromptEcho> prompts, TokenText token_text);

  // Streaming. Events to send before any engine output (chat: the role delta of every choice).
  std::vector<nlohmann::json> start_events();
  // Events for one output of prompt `prompt_index`'s stream (possibly none).
  std::vector<nlohmann::json> stream_events(int32_t prompt_index, const RequestOutput& out);
  // The usage chunk (choices empty), when include_usage; call after every stream finished.
  std::optional<nlohmann::json> usage_event() const;

  // Non-streaming: accumulate every output, then build the response.
  void accumulate(int32_t prompt_index, const RequestOutput& out);
  nlohmann::json final_response() const;

  Usage total_usage() const;

 private:
  struct ChoiceState {
    std::string text;
    nlohmann::json logprobs;        // completions: {tokens, token_logprobs, top_logprobs, text_offset}; chat: [..]
    std::optional<std::string> finish_reason;
    std::optional<std::string> stop_reason;
    bool echoed = false;
  };

  nlohmann::json chunk_base() const;
  nlohmann::json completion_logprobs(const std::vector<SampledToken>& lps, size_t text_offset) const;
  nlohmann::json chat_logprobs(const std::vector<SampledToken>& lps) const;
  nlohmann::json echo_logprobs(int32_t prompt_index, const std::optional<PromptLogprobs>& plp) const;
  void append_logprobs(ChoiceState& c, const nlohmann::json& lp);
  std::string echo_text(int32_t prompt_index) const;
  void record_usage(int32_t prompt_index, const RequestOutput& out);

  ResponseShape shape_;
  std::vector<PromptEcho> prompts_;
  TokenText token_text_;
  std::vector<ChoiceState> choices_;
  std::vector<Usage> usage_;        // per prompt (running totals)
  std::vector<std::optional<PromptLogprobs>> prompt_logprobs_;
};

// "stop", "length", or the engine's name for others.
std::string finish_reason_string(FinishReason r);

}  // namespace tessera::server
