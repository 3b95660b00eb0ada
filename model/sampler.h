// Sampler: picks the next token from one row of logits following SamplingParams (logit bias,
// repetition/presence/frequency penalties, greedy or temperature with top-k, top-p and min-p), and
// computes logprobs. Randomness for token i of a sequence comes only from (seed, i), so a sequence
// samples the same tokens whatever batch it runs in and after preemption.
// It must never allocate per call after the first (scratch is sized to the vocabulary once), nor
// keep state between calls that changes results.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "scheduler/sampling_params.h"
#include "scheduler/step_plan.h"
#include "scheduler/types.h"

namespace tessera {

// The uniform draw in [0, 1) that token `index` of a sequence with `seed` uses.
double sampling_uniform(uint64_t seed, uint64_t index);

class Sampler {
 public:
  explicit Sampler(int32_t vocab_size);

  // Samples token number `index` (0 = first output) of a sequence. `prompt` and `outputs` are the
  // sequence's tokens so far (penalties). Logprobs (when params.logprobs >= 0) are of the processed
  // distribution: after bias, penalties and temperature, before top-k/top-p/min-p truncation
  // (temperature 1 when greedy).
  SampledToken sample(const float* logits, const SamplingParams& params, std::span<const TokenId> prompt,
                      std::span<const TokenId> outputs, uint64_t index);

  // Log-softmax of raw logits: the logprob of `chosen` and the `top` most likely tokens (prompt
  // logprobs).
  TokenLogprob logprob_of(const float* logits, TokenId chosen, int32_t top, std::vector<TokenLogprob>& top_out);

  int32_t vocab_size() const { return vocab_; }

 private:
  void apply_penalties(const SamplingParams& p, std::span<const TokenId> prompt, std::span<const TokenId> outputs);
  // Draws from work_ (already divided by the temperature) after top-k/top-p/min-p.
  TokenId draw(const SamplingParams& p, double u);
  // logprob_ = log_softmax(work_).
  void log_softmax();
  void top_logprobs(int32_t k, std::vector<TokenLogprob>& out);

  int32_t vocab_;
  std::vector<float> work_;       // processed logits
  std::vector<float> logprob_;    // log_softmax(work_)
  std::vector<float> prob_;       // candidate probabilities (unnormalised), by candidate position
  std::vector<int32_t> index_;    // candidate token ids
  std::vector<int32_t> counts_;   // output-token counts (zero between calls)
  std::vector<uint8_t> seen_;     // prompt/output token marks for repetition penalty (zero between calls)
};

}  // namespace tessera
