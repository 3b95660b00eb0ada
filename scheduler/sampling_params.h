// How the next token is picked from logits, and when a sequence stops. Plain data that crosses
// every boundary (front doors -> scheduler -> runners -> other ranks). Validated once, at parse
// time, by the front doors' shared validator; runners trust it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "scheduler/types.h"

namespace tessera {

struct SamplingParams {
  float temperature = 1.0f;          // 0 means greedy (argmax); > 0 scales logits by 1/temperature
  int32_t top_k = 0;                 // keep the k most likely tokens; 0 = off
  float top_p = 1.0f;                // nucleus: smallest set with cumulative probability >= top_p; 1 = off
  float min_p = 0.0f;                // drop tokens with p < min_p * p_max; 0 = off
  float repetition_penalty = 1.0f;   // HF-style over prompt and output tokens; 1 = off
  float presence_penalty = 0.0f;     // OpenAI-style over output tokens; 0 = off
  float frequency_penalty = 0.0f;    // OpenAI-style over output tokens; 0 = off
  std::vector<std::pair<TokenId, float>> logit_bias;  // added to the raw logits before anything else
  uint64_t seed = 0;                 // always set (the engine draws one when the user gave none);
                                     // token i of a sequence uses a stream derived from (seed, i)
  int32_t logprobs = -1;             // -1: none; k >= 0: the sampled token's logprob and the top k
  int32_t prompt_logprobs = -1;      // -1: none; k >= 0: logprob of every prompt token and top k

  bool greedy() const { return temperature == 0.0f; }
};

struct StoppingParams {
  int32_t max_tokens = 16;                 // output tokens at most (>= 1)
  int32_t min_tokens = 0;                  // EOS and stop ids are ignored before this many outputs
  std::vector<TokenId> stop_token_ids;     // stop after emitting one of these (it is not shown as text)
  std::vector<std::string> stop;           // stop strings, matched across token boundaries, not included
  bool ignore_eos = false;                 // keep going past the model's EOS tokens
  bool include_stop_str_in_output = false;
};

}  // namespace tessera
