// Scheduler: decides what runs each step. One token-budget rule: every sequence's computed tokens
// chase its total tokens; a step grants each sequence some tokens under max_num_batched_tokens and
// max_num_seqs, so prefill chunks, decodes and prefix-cache hits are the same thing. Two stages per
// sequence: how many tokens (the budget, with one token kept for every later running sequence so
// decodes never stall behind a long prefill) and whether they fit in KV (allocate, or preempt the
// newest running sequences by recompute). Plans are deltas (scheduler/step_plan.h); blocks are
// hashed into the prefix cache only after the step that computed them is accepted (update()).
// It must never know about devices, threads, text or request streams (the Engine does).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "scheduler/block_manager.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/sequence.h"
#include "scheduler/step_plan.h"

namespace tessera {

// One sampled token after update(): what the sequence became.
struct SeqUpdate {
  SeqId seq_id = 0;
  size_t sampled_index = 0;           // index into StepResult::sampled
  TokenId token = 0;
  SeqFinish finish = SeqFinish::kNone;  // set when the scheduler ended the sequence with this token
  int32_t num_cached_prompt_tokens = 0; // prompt tokens this sequence took from KV at its first admission
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig config);

  // Queues a request with n choices; returns their SeqIds (choice i -> ids[i]). Choice i samples
  // with child_seed(sampling.seed, i); only choice 0 computes prompt logprobs. The caller
  // validated the request (non-empty prompt that fits max_model_len, 1 <= n, max_tokens >= 1).
  std::vector<SeqId> add_request(std::vector<TokenId> prompt, const SamplingParams& sampling,
                                 const StoppingParams& stopping, int32_t n, int32_t priority);
  // Ends a sequence now (cancelled, deadline, stop string): its blocks are freed at once and the
  // runner drops it with the next plan. False when the id is not live.
  bool finish_sequence(SeqId id);

  // The next step. An empty plan (nothing freed or scheduled) consumes no step id and expects no
  // update(); otherwise update() must follow with the plan's result.
  StepPlan schedule();
  // Accepts the step: advances computed counts, hashes newly full blocks, appends sampled tokens
  // and ends sequences that hit a stop token, EOS or a length limit. Throws Error(kInternal) when
  // the result does not answer the plan.
  std::vector<SeqUpdate> update(const StepResult& result);

  bool has_work() const { return !running_.empty() || !waiting_.empty() || !pending_freed_.empty(); }
  bool step_in_flight() const { return in_flight_; }
  size_t num_running() const { return running_.size(); }
  size_t num_waiting() const { return waiting_.size(); }
  size_t num_live() const { return seqs_.size(); }
  int64_t num_unstarted_requests() const { return unstarted_requests_; }
  uint64_t num_preemptions() const { return preemptions_; }
  const BlockManager& block_manager() const { return blocks_; }
  const SchedulerConfig& config() const { return config_; }
  // The live sequence with this id, or nullptr (for tests and the engine's bookkeeping).
  const Sequence* find(SeqId id) const;
  // Visits every live sequence (tests check the runner's view against these).
  template <typename F>
  void for_each_sequence(F&& f) const {
    for (const auto& [id, s] : seqs_) f(*s);
  }

 private:
  struct Admission;
  struct Scheduled {
    Sequence* seq;
    int32_t num_tokens;
    bool sample;
  };
  int32_t blocks_for(int32_t num_tokens) const;
  int32_t new_blocks_needed(const Sequence& s, int32_t num_tokens) const;
  void schedule_running(StepPlan& plan, int32_t& budget, bool& preempted);
  void schedule_waiting(StepPlan& plan, int32_t& budget);
  bool plan_admission(const Sequence& s, int32_t budget, Admission& a) const;
  void admit(Sequence& s, Admission& a, StepPlan& plan);
  void add_work(Sequence& s, int32_t num_tokens, StepPlan& plan);
  void preempt(Sequence& s, StepPlan& plan);
  void enqueue_waiting(Sequence& s);
  void insert_running(Sequence* s);
  void remove_running(Sequence* s);
  void release(Sequence& s, std::vector<SeqId>& freed);
  void commit_full_blocks(Sequence& s);
  SeqFinish check_stop(const Sequence& s, TokenId token) const;
  void erase(Sequence& s);

  SchedulerConfig config_;
  BlockManager blocks_;
  std::unordered_map<SeqId, std::unique_ptr<Sequence>> seqs_;
  std::vector<Sequence*> running_;            // by (priority desc, arrival asc, id asc)
  std::map<WaitKey, Sequence*> waiting_;
  std::vector<SeqId> pending_freed_;          // runner must drop these with the next plan
  std::vector<Scheduled> scheduled_;          // the plan in flight, in row order
  bool in_flight_ = false;
  uint64_t in_flight_step_ = 0;
  uint64_t next_step_id_ = 1;
  SeqId next_seq_id_ = 1;
  uint64_t next_arrival_ = 0;
  int64_t unstarted_requests_ = 0;
  uint64_t preemptions_ = 0;
};

}  // namespace tessera
