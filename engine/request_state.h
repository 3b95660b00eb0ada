// RequestState / ChoiceState: the engine loop's bookkeeping of one request in flight (its stream,
// per-choice detokenizer and stop-string matcher, the news gathered for the next output, timing).
// Owned and touched by the engine loop thread only; it must never be shared with a front door.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "engine/engine.h"
#include "engine/stop_string_matcher.h"
#include "engine/text_decoder.h"

namespace tessera {

struct ChoiceState {
  SeqId seq_id = 0;
  bool finished = false;
  std::unique_ptr<TextDecoder> decoder;      // null in a token-only engine
  std::optional<StopStringMatcher> matcher;  // set when the request has stop strings
  ChoiceDelta delta;                         // news since the last output
  bool has_news = false;
  std::chrono::steady_clock::time_point last_token_at{};
};

struct RequestState {
  GenerationRequest request;
  std::shared_ptr<RequestStream> stream;
  std::chrono::steady_clock::time_point submitted_at{};
  std::vector<ChoiceState> choices;
  int32_t num_unfinished = 0;
  bool first_token_seen = false;
  bool has_news = false;
  Usage usage;
  std::optional<PromptLogprobs> prompt_logprobs;  // accumulating, positions [1, next_prompt_position)
  int32_t next_prompt_position = 1;
  bool prompt_logprobs_sent = false;
};

}  // namespace tessera
