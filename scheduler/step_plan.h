// StepPlan: the only thing the scheduler hands a model runner, and the only thing rank 0 sends to
// the other ranks. StepResult: what comes back. Plain, serializable values with delta semantics:
// a sequence travels in full once (NewSequence), then only as changes (SequenceWork). A runner
// keeps per-sequence state (block table, token ids, counts for penalties) keyed by SeqId from the
// NewSequence until the SeqId appears in `freed`.
// Must never hold pointers into scheduler state or depend on a device.
#pragma once

#include <cstdint>
#include <vector>
#include <utility>

#include "scheduler/sampling_params.h"
#include "scheduler/types.h"

namespace tessera {

// A sequence the runner has not seen (or saw before it was freed, e.g. after preemption).
struct NewSequence {
  SeqId seq_id = 0;
  std::vector<TokenId> token_ids;   // every token known now: prompt, then outputs generated before a
                                    // preemption (recompute). Length >= 1.
  int32_t num_prompt_tokens = 0;    // token_ids[0, num_prompt_tokens) is the prompt; the rest are
                                    // outputs (counted by presence/frequency penalties)
  int32_t num_computed_tokens = 0;  // tokens whose KV is already in the cache (prefix-cache hit);
                                    // a multiple of the block size, < token_ids.size()
  std::vector<BlockId> block_ids;   // initial block table, covering at least num_computed_tokens
  SamplingParams sampling;
};

// Work for one sequence in this step. The batch's rows are the concatenation, in this order, of
// each entry's num_tokens tokens.
struct SequenceWork {
  SeqId seq_id = 0;
  std::vector<TokenId> appended_token_ids;  // tokens appended to the sequence since the runner last
                                            // saw it (normally the one sampled last step); empty
                                            // for a NewSequence in its first step
  int32_t num_tokens = 0;                   // tokens to compute now, starting at the sequence's
                                            // computed count (> 0)
  std::vector<BlockId> new_block_ids;       // appended to the block table before computing
  bool sample = false;                      // the chunk ends at the last known token: sample one
};

struct StepPlan {
  uint64_t step_id = 0;                     // increases by one per plan
  std::vector<SeqId> freed;                 // drop runner state for these first (finished,
                                            // cancelled or preempted sequences)
  std::vector<NewSequence> new_sequences;   // then register these
  std::vector<SequenceWork> scheduled;      // then compute these, in this row order
  int32_t block_size = 16;                  // tokens per KV block (constant for a runner's life)

  int32_t num_tokens() const {
    int32_t n = 0;
    for (const auto& w : scheduled) n += w.num_tokens;
    return n;
  }
};

struct TokenLogprob {
  TokenId token = 0;
  float logprob = 0.0f;  // natural log, after temperature/penalties as sampled (vLLM's "processed")
};

// The token sampled for one sequence that had sample = true.
struct SampledToken {
  SeqId seq_id = 0;
  TokenId token = 0;
  float logprob = 0.0f;                  // of `token`; valid when sampling.logprobs >= 0
  std::vector<TokenLogprob> top;         // top `sampling.logprobs` alternatives, most likely first
};

// Logprobs of prompt tokens covered by one chunk: entry i is for the token at position
// first_position + i, conditioned on the tokens before it. Position 0 has none (never listed).
struct PromptLogprobs {
  SeqId seq_id = 0;
  int32_t first_position = 1;
  std::vector<TokenLogprob> chosen;               // the prompt's own token at each position
  std::vector<std::vector<TokenLogprob>> top;     // top `sampling.prompt_logprobs` at each position
};

struct StepResult {
  uint64_t step_id = 0;
  std::vector<SampledToken> sampled;         // one per SequenceWork with sample = true, same order
  std::vector<PromptLogprobs> prompt_logprobs;
};

// What runs a StepPlan: the CPU or CUDA model runner, or rank 0's tensor-parallel driver.
class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  // Executes one plan. Throws tessera::Error on failure (kUnavailable when a rank is lost).
  virtual StepResult execute(const StepPlan& plan) = 0;

  // The same in two halves, so the caller can do host work while a device runs the step:
  // begin_execute starts the plan (a GPU runner enqueues it and returns), end_execute waits for it
  // and returns its result. Exactly one end_execute follows each begin_execute, and nothing else is
  // called in between. By default the whole step runs in begin_execute.
  virtual void begin_execute(const StepPlan& plan) { pending_result_ = execute(plan); }
  virtual StepResult end_execute() { return std::move(pending_result_); }
  // True when begin_execute returns before the step is done (host work then overlaps it).
  virtual bool executes_asynchronously() const { return false; }

 private:
  StepResult pending_result_;
};

}  // namespace tessera
