// FakeRunner: a deterministic StepExecutor for scheduler and engine tests (no model). It rebuilds
// the runner's view from the plans' deltas alone, keeps a simulated paged KV cache (each slot holds
// the token id and position written there) and checks every plan against the contract: steps in
// order, deltas consistent, fresh blocks not held by anyone else, the KV a sequence reads is exactly
// its own tokens. The "model" samples next = fake_next_token(tokens, seed): a pure function of the
// sequence, so outputs must equal those of running each request alone. Violations throw
// Error(kInternal) naming what was wrong.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "scheduler/block_hash.h"
#include "scheduler/step_plan.h"

namespace tessera::testing {

inline TokenId fake_next_token(std::span<const TokenId> tokens, uint64_t seed, int32_t vocab) {
  uint64_t h = mix64(seed + 0x1234567ULL);
  for (TokenId t : tokens) h = mix64(h ^ static_cast<uint64_t>(static_cast<uint32_t>(t)));
  return static_cast<TokenId>(h % static_cast<uint64_t>(vocab));
}

struct RunnerSeq {
  std::vector<TokenId> tokens;
  int32_t num_prompt = 0;
  int32_t computed = 0;
  std::vector<BlockId> blocks;
  SamplingParams sampling;
};

class FakeRunner : public StepExecutor {
 public:
  FakeRunner(int32_t num_blocks, int32_t block_size, int32_t vocab)
      : num_blocks_(num_blocks), block_size_(block_size), vocab_(vocab),
        kv_(static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size), Slot{}),
        holders_(static_cast<size_t>(num_blocks), 0) {}

  // Called after a plan's deltas are applied and before computing (tests compare views here).
  std::function<void(const FakeRunner&)> after_apply;
  // Called first in execute(); may throw to simulate a failing runner, or sleep.
  std::function<void(const StepPlan&)> before_step;

  const std::unordered_map<SeqId, RunnerSeq>& seqs() const { return seqs_; }
  uint64_t steps() const { return steps_; }
  uint64_t num_tokens_computed() const { return tokens_computed_; }
  std::vector<SeqId> all_freed() const { return freed_log_; }

  StepResult execute(const StepPlan& plan) override {
    if (before_step) before_step(plan);
    TS_ASSERT(plan.step_id == last_step_ + 1, "step {} after step {}", plan.step_id, last_step_);
    TS_ASSERT(plan.block_size == block_size_, "block size {} != {}", plan.block_size, block_size_);
    last_step_ = plan.step_id;
    ++steps_;
    for (SeqId id : plan.freed) free_seq(id);
    for (const NewSequence& ns : plan.new_sequences) add_seq(ns);
    for (const SequenceWork& w : plan.scheduled) apply(w);
    if (after_apply) after_apply(*this);
    StepResult r;
    r.step_id = plan.step_id;
    for (const SequenceWork& w : plan.scheduled) compute(w, r);
    return r;
  }

 private:
  struct Slot {
    TokenId token = -1;
    int32_t pos = -1;
  };
  Slot& slot(const RunnerSeq& s, int32_t pos) {
    const BlockId b = s.blocks[static_cast<size_t>(pos / block_size_)];
    return kv_[static_cast<size_t>(b) * static_cast<size_t>(block_size_) + static_cast<size_t>(pos % block_size_)];
  }
  void take_block(BlockId b, bool must_be_fresh, SeqId id) {
    TS_ASSERT(b >= 0 && b < num_blocks_, "sequence {} got block {} outside [0, {})", id, b, num_blocks_);
    TS_ASSERT(!must_be_fresh || holders_[static_cast<size_t>(b)] == 0,
              "sequence {} got fresh block {} that {} live sequences hold (KV over-allocated)", id, b,
              holders_[static_cast<size_t>(b)]);
    ++holders_[static_cast<size_t>(b)];
  }
  void free_seq(SeqId id) {
    auto it = seqs_.find(id);
    TS_ASSERT(it != seqs_.end(), "freed unknown sequence {}", id);
    for (BlockId b : it->second.blocks) --holders_[static_cast<size_t>(b)];
    seqs_.erase(it);
    freed_log_.push_back(id);
  }
  void check_kv(SeqId id, const RunnerSeq& s, int32_t upto) {
    for (int32_t p = 0; p < upto; ++p) {
      const Slot& sl = slot(s, p);
      TS_ASSERT(sl.token == s.tokens[static_cast<size_t>(p)] && sl.pos == p,
                "sequence {} reads position {}: KV holds token {} at {}, expected {}", id, p, sl.token, sl.pos,
                s.tokens[static_cast<size_t>(p)]);
    }
  }
  void add_seq(const NewSequence& ns) {
    TS_ASSERT(seqs_.count(ns.seq_id) == 0, "new sequence {} is already known", ns.seq_id);
    TS_ASSERT(!ns.token_ids.empty(), "new sequence {} has no tokens", ns.seq_id);
    TS_ASSERT(ns.num_computed_tokens % block_size_ == 0 &&
                  ns.num_computed_tokens < static_cast<int32_t>(ns.token_ids.size()),
              "new sequence {}: {} computed of {} tokens", ns.seq_id, ns.num_computed_tokens, ns.token_ids.size());
    TS_ASSERT(static_cast<int64_t>(ns.block_ids.size()) * block_size_ >= ns.num_computed_tokens,
              "new sequence {}: {} blocks cover less than {} computed tokens", ns.seq_id, ns.block_ids.size(),
              ns.num_computed_tokens);
    RunnerSeq s;
    s.tokens = ns.token_ids;
    s.num_prompt = ns.num_prompt_tokens;
    s.computed = ns.num_computed_tokens;
    s.blocks = ns.block_ids;
    s.sampling = ns.sampling;
    const int32_t shared = ns.num_computed_tokens / block_size_;
    for (size_t i = 0; i < s.blocks.size(); ++i) take_block(s.blocks[i], static_cast<int32_t>(i) >= shared, ns.seq_id);
    check_kv(ns.seq_id, s, s.computed);  // a prefix hit must hold exactly this prefix
    seqs_.emplace(ns.seq_id, std::move(s));
  }
  void apply(const SequenceWork& w) {
    auto it = seqs_.find(w.seq_id);
    TS_ASSERT(it != seqs_.end(), "work for unknown sequence {}", w.seq_id);
    RunnerSeq& s = it->second;
    s.tokens.insert(s.tokens.end(), w.appended_token_ids.begin(), w.appended_token_ids.end());
    for (BlockId b : w.new_block_ids) {
      take_block(b, true, w.seq_id);
      s.blocks.push_back(b);
    }
    TS_ASSERT(w.num_tokens > 0 && s.computed + w.num_tokens <= static_cast<int32_t>(s.tokens.size()),
              "sequence {}: {} tokens from {} of {}", w.seq_id, w.num_tokens, s.computed, s.tokens.size());
    TS_ASSERT(static_cast<int64_t>(s.blocks.size()) * block_size_ >= s.computed + w.num_tokens,
              "sequence {}: {} blocks for {} tokens", w.seq_id, s.blocks.size(), s.computed + w.num_tokens);
    TS_ASSERT(w.sample == (s.computed + w.num_tokens == static_cast<int32_t>(s.tokens.size())),
              "sequence {}: sample flag {} with {} + {} of {}", w.seq_id, w.sample, s.computed, w.num_tokens,
              s.tokens.size());
  }
  void compute(const SequenceWork& w, StepResult& r) {
    RunnerSeq& s = seqs_.at(w.seq_id);
    for (int32_t p = s.computed; p < s.computed + w.num_tokens; ++p) {
      slot(s, p) = Slot{s.tokens[static_cast<size_t>(p)], p};
    }
    s.computed += w.num_tokens;
    tokens_computed_ += static_cast<uint64_t>(w.num_tokens);
    if (!w.sample) return;
    check_kv(w.seq_id, s, s.computed);
    SampledToken st;
    st.seq_id = w.seq_id;
    st.token = fake_next_token(s.tokens, s.sampling.seed, vocab_);
    st.logprob = -0.5f;
    r.sampled.push_back(st);
  }

  int32_t num_blocks_;
  int32_t block_size_;
  int32_t vocab_;
  std::vector<Slot> kv_;
  std::vector<int32_t> holders_;  // live runner sequences whose table holds each block
  std::unordered_map<SeqId, RunnerSeq> seqs_;
  std::vector<SeqId> freed_log_;
  uint64_t last_step_ = 0;
  uint64_t steps_ = 0;
  uint64_t tokens_computed_ = 0;
};

}  // namespace tessera::testing
