// SequenceTable and StepBatch: the device-independent half of executing a StepPlan. The table
// keeps each sequence's state (tokens, computed count, block table, sampling) keyed by SeqId and
// applies a plan's deltas; the batch lists the plan's rows (token, position, owning sequence) and
// which rows need logits. The CPU and CUDA runners (and every TP rank) share it.
// It must never touch a device or weights, and never accept a plan that would read or write
// outside a sequence's block table: violations throw Error(kInternal) naming the sequence.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "scheduler/step_plan.h"

namespace tessera {

struct SequenceState {
  std::vector<TokenId> tokens;        // prompt, then outputs
  int32_t num_prompt_tokens = 0;
  int32_t num_computed = 0;           // tokens whose KV is in the cache
  std::vector<BlockId> block_table;
  SamplingParams sampling;
};

// One row that needs logits: the row index and what it is for.
struct LogitsRow {
  int32_t row = 0;
  int32_t work = 0;                   // index into plan.scheduled
  bool sample = false;                // the chunk's last row, sampled
  bool prompt_logprob = false;        // predicts prompt token at position + 1
};

struct StepBatch {
  std::vector<TokenId> token_ids;     // [rows]
  std::vector<int32_t> positions;     // [rows]
  std::vector<int32_t> context_lens;  // [rows] position + 1
  std::vector<const SequenceState*> row_seq;  // [rows]
  std::vector<SequenceState*> work_seq;       // [plan.scheduled.size()]
  std::vector<LogitsRow> logits_rows; // rows whose logits are computed, in row order
  int32_t num_rows() const { return static_cast<int32_t>(token_ids.size()); }
};

class SequenceTable {
 public:
  SequenceTable(int32_t vocab_size, int32_t num_blocks, int32_t block_size);

  // Applies freed, new_sequences and the scheduled deltas, then fills `batch` (cleared first,
  // capacity kept). Throws Error(kInternal) for a plan inconsistent with the runner's state.
  void apply(const StepPlan& plan, StepBatch& batch);
  // After the step ran: every scheduled sequence's computed count advances by its num_tokens.
  void commit(const StepPlan& plan, const StepBatch& batch);

  const SequenceState* find(SeqId id) const;
  size_t size() const { return seqs_.size(); }

 private:
  void check_blocks(SeqId id, const std::vector<BlockId>& blocks) const;

  int32_t vocab_, num_blocks_, block_size_;
  std::unordered_map<SeqId, SequenceState> seqs_;
};

}  // namespace tessera
