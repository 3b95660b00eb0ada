// StepPlans for the CUDA tensor-parallel tests: one greedy sequence's prefill (its prompt in cache
// blocks 0-7, 128 tokens) and its one-token decode steps. Shared by tp_cuda_test and
// tp_cuda_host_staged_test so both drive the runners through the same plans. Never allocates on a device.
#pragma once

#include <cstdint>
#include <vector>

#include "scheduler/step_plan.h"

namespace tessera::parallel::testing {

inline StepPlan prefill(SeqId id, const std::vector<TokenId>& prompt) {
  StepPlan p;
  p.step_id = 1;
  NewSequence n;
  n.seq_id = id;
  n.token_ids = prompt;
  n.num_prompt_tokens = static_cast<int32_t>(prompt.size());
  for (BlockId b = 0; b < 8; ++b) n.block_ids.push_back(b);  // 128 tokens
  n.sampling.temperature = 0.0f;
  p.new_sequences.push_back(n);
  p.scheduled.push_back(SequenceWork{id, {}, n.num_prompt_tokens, {}, true});
  return p;
}

inline StepPlan decode(uint64_t step, SeqId id, TokenId last) {
  StepPlan p;
  p.step_id = step;
  p.scheduled.push_back(SequenceWork{id, {last}, 1, {}, true});
  return p;
}

}  // namespace tessera::parallel::testing
