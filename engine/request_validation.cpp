// validate_request: sizes and ranges of a GenerationRequest, overflow-safe.
#include "engine/request_validation.h"

#include <cmath>

namespace tessera {

namespace {

void check_token(TokenId t, int64_t vocab_size, const char* what, size_t index) {
  TS_CHECK(t >= 0 && (vocab_size <= 0 || t < vocab_size), kInvalidArgument,
           "{}[{}] = {} is outside the vocabulary [0, {})", what, index, t, vocab_size);
}

}  // namespace

void validate_request(const GenerationRequest& r, const EngineConfig& config, int64_t vocab_size, bool has_text) {
  TS_CHECK(!r.prompt_token_ids.empty(), kInvalidArgument, "prompt is empty (request '{}')", r.request_id);
  for (size_t i = 0; i < r.prompt_token_ids.size(); ++i) check_token(r.prompt_token_ids[i], vocab_size, "prompt", i);
  const StoppingParams& st = r.stopping;
  TS_CHECK(st.max_tokens >= 1, kInvalidArgument, "max_tokens must be >= 1, got {}", st.max_tokens);
  TS_CHECK(st.min_tokens >= 0 && st.min_tokens <= st.max_tokens, kInvalidArgument,
           "min_tokens must be in [0, max_tokens = {}], got {}", st.max_tokens, st.min_tokens);
  const int64_t total = static_cast<int64_t>(r.prompt_token_ids.size()) + st.max_tokens;
  TS_CHECK(total <= config.max_model_len, kInvalidArgument,
           "prompt ({} tokens) + max_tokens ({}) = {} exceeds max_model_len {}", r.prompt_token_ids.size(),
           st.max_tokens, total, config.max_model_len);
  TS_CHECK(r.n >= 1 && r.n <= config.max_num_seqs, kInvalidArgument, "n must be in [1, {}], got {}",
           config.max_num_seqs, r.n);
  for (size_t i = 0; i < st.stop_token_ids.size(); ++i) {
    check_token(st.stop_token_ids[i], vocab_size, "stop_token_ids", i);
  }
  for (size_t i = 0; i < st.stop.size(); ++i) {
    TS_CHECK(!st.stop[i].empty(), kInvalidArgument, "stop[{}] is an empty string", i);
  }
  TS_CHECK(st.stop.empty() || has_text, kInvalidArgument,
           "stop strings need a tokenizer; this engine is token-only ({} stop strings given)", st.stop.size());
  const SamplingParams& s = r.sampling;
  TS_CHECK(std::isfinite(s.temperature) && s.temperature >= 0.0f, kInvalidArgument,
           "temperature must be finite and >= 0, got {}", s.temperature);
  TS_CHECK(s.top_k >= 0, kInvalidArgument, "top_k must be >= 0, got {}", s.top_k);
  TS_CHECK(s.top_p > 0.0f && s.top_p <= 1.0f, kInvalidArgument, "top_p must be in (0, 1], got {}", s.top_p);
  TS_CHECK(s.min_p >= 0.0f && s.min_p <= 1.0f, kInvalidArgument, "min_p must be in [0, 1], got {}", s.min_p);
  TS_CHECK(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0.0f, kInvalidArgument,
           "repetition_penalty must be finite and > 0, got {}", s.repetition_penalty);
  TS_CHECK(std::isfinite(s.presence_penalty) && std::isfinite(s.frequency_penalty), kInvalidArgument,
           "presence/frequency penalties must be finite, got {} and {}", s.presence_penalty, s.frequency_penalty);
  TS_CHECK(s.logprobs >= -1 && s.prompt_logprobs >= -1, kInvalidArgument,
           "logprobs and prompt_logprobs must be >= -1, got {} and {}", s.logprobs, s.prompt_logprobs);
  for (size_t i = 0; i < s.logit_bias.size(); ++i) {
    check_token(s.logit_bias[i].first, vocab_size, "logit_bias", i);
    TS_CHECK(std::isfinite(s.logit_bias[i].second), kInvalidArgument, "logit_bias[{}] value is not finite: {}", i,
             s.logit_bias[i].second);
  }
}

}  // namespace tessera
