// SequenceTable and StepBatch (see step_batch.h).
#include "model/step_batch.h"

#include "common/error.h"

namespace tessera {

SequenceTable::SequenceTable(int32_t vocab_size, int32_t num_blocks, int32_t block_size)
    : vocab_(vocab_size), num_blocks_(num_blocks), block_size_(block_size) {}

const SequenceState* SequenceTable::find(SeqId id) const {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : &it->second;
}

void SequenceTable::check_blocks(SeqId id, const std::vector<BlockId>& blocks) const {
  for (BlockId b : blocks) {
    TS_CHECK(b >= 0 && b < num_blocks_, kInternal, "StepPlan: sequence {} uses block {} outside [0, {})", id, b,
             num_blocks_);
  }
}

void SequenceTable::apply(const StepPlan& plan, StepBatch& batch) {
  TS_CHECK(plan.block_size == block_size_, kInternal, "StepPlan: block_size {} differs from the runner's {}",
           plan.block_size, block_size_);
  for (SeqId id : plan.freed) seqs_.erase(id);
  for (const NewSequence& n : plan.new_sequences) {
    const int64_t len = static_cast<int64_t>(n.token_ids.size());
    TS_CHECK(seqs_.count(n.seq_id) == 0, kInternal, "StepPlan: new sequence {} is already registered", n.seq_id);
    TS_CHECK(len >= 1 && n.num_prompt_tokens >= 1 && n.num_prompt_tokens <= len, kInternal,
             "StepPlan: sequence {} has {} tokens and num_prompt_tokens {}", n.seq_id, len, n.num_prompt_tokens);
    TS_CHECK(n.num_computed_tokens >= 0 && n.num_computed_tokens < len && n.num_computed_tokens % block_size_ == 0,
             kInternal, "StepPlan: sequence {} has num_computed_tokens {} (tokens {}, block size {})", n.seq_id,
             n.num_computed_tokens, len, block_size_);
    check_blocks(n.seq_id, n.block_ids);
    for (TokenId t : n.token_ids) {
      TS_CHECK(t >= 0 && t < vocab_, kInternal, "StepPlan: sequence {} has token {} outside the vocabulary of {}",
               n.seq_id, t, vocab_);
    }
    seqs_.emplace(n.seq_id, SequenceState{n.token_ids, n.num_prompt_tokens, n.num_computed_tokens, n.block_ids,
                                          n.sampling});
  }
  batch.token_ids.clear();
  batch.positions.clear();
  batch.context_lens.clear();
  batch.row_seq.clear();
  batch.work_seq.clear();
  batch.logits_rows.clear();
  for (const SequenceWork& w : plan.scheduled) {
    auto it = seqs_.find(w.seq_id);
    TS_CHECK(it != seqs_.end(), kInternal, "StepPlan: scheduled sequence {} is not registered", w.seq_id);
    SequenceState& s = it->second;
    for (TokenId t : w.appended_token_ids) {
      TS_CHECK(t >= 0 && t < vocab_, kInternal, "StepPlan: sequence {} appends token {} outside the vocabulary of {}",
               w.seq_id, t, vocab_);
      s.tokens.push_back(t);
    }
    check_blocks(w.seq_id, w.new_block_ids);
    s.block_table.insert(s.block_table.end(), w.new_block_ids.begin(), w.new_block_ids.end());
    const int64_t end = int64_t{s.num_computed} + w.num_tokens;
    TS_CHECK(w.num_tokens > 0 && end <= static_cast<int64_t>(s.tokens.size()), kInternal,
             "StepPlan: sequence {} computes {} tokens from {} but has {}", w.seq_id, w.num_tokens, s.num_computed,
             s.tokens.size());
    TS_CHECK(!w.sample || end == static_cast<int64_t>(s.tokens.size()), kInternal,
             "StepPlan: sequence {} samples after {} of {} tokens", w.seq_id, end, s.tokens.size());
    TS_CHECK(end <= static_cast<int64_t>(s.block_table.size()) * block_size_, kInternal,
             "StepPlan: sequence {} needs {} positions but its {} blocks hold {}", w.seq_id, end,
             s.block_table.size(), s.block_table.size() * block_size_);
    batch.work_seq.push_back(&s);
  }
  // Rows are built after every table grew, so the pointers stay valid for the step.
  for (size_t wi = 0; wi < plan.scheduled.size(); ++wi) {
    const SequenceWork& w = plan.scheduled[wi];
    const SequenceState& s = *batch.work_seq[wi];
    const bool want_prompt = s.sampling.prompt_logprobs >= 0;
    for (int32_t p = s.num_computed; p < s.num_computed + w.num_tokens; ++p) {
      const int32_t row = batch.num_rows();
      batch.token_ids.push_back(s.tokens[p]);
      batch.positions.push_back(p);
      batch.context_lens.push_back(p + 1);
      batch.row_seq.push_back(&s);
      const bool sample = w.sample && p == s.num_computed + w.num_tokens - 1;
      const bool prompt = want_prompt && p + 1 < s.num_prompt_tokens;
      if (sample || prompt) batch.logits_rows.push_back(LogitsRow{row, static_cast<int32_t>(wi), sample, prompt});
    }
  }
}

void SequenceTable::commit(const StepPlan& plan, const StepBatch& batch) {
  for (size_t wi = 0; wi < plan.scheduled.size(); ++wi) batch.work_seq[wi]->num_computed += plan.scheduled[wi].num_tokens;
}

}  // namespace tessera
