// Scheduler: the per-step token-budget loop, admission, preemption by recompute, and result intake.
#include "scheduler/scheduler.h"

#include <algorithm>

#include "common/error.h"
#include "scheduler/child_seed.h"

namespace tessera {

namespace {

bool runs_before(const Sequence* a, const Sequence* b) {
  if (a->priority() != b->priority()) return a->priority() > b->priority();
  if (a->arrival() != b->arrival()) return a->arrival() < b->arrival();
  return a->id < b->id;
}

bool contains(const std::vector<TokenId>& ids, TokenId t) { return std::find(ids.begin(), ids.end(), t) != ids.end(); }

}  // namespace

// How a waiting sequence would start: blocks it shares, tokens it computes, blocks it needs.
struct Scheduler::Admission {
  std::vector<BlockId> shared;   // leading blocks taken from the prefix cache or the leader
  bool from_cache = false;       // shared came from the prefix cache (counts as a lookup)
  bool looked_up = false;        // the prefix cache was consulted
  uint64_t last_hash = kNoParentHash;
  int32_t num_tokens = 0;        // tokens granted this step
  int32_t new_blocks = 0;        // fresh blocks to allocate
  int32_t free_needed = 0;       // new_blocks + shared blocks that are unreferenced now
};

Scheduler::Scheduler(SchedulerConfig config)
    : config_((config.validate(), std::move(config))),
      blocks_(config_.num_kv_blocks, config_.block_size, config_.enable_prefix_caching) {
  running_.reserve(static_cast<size_t>(config_.max_num_seqs));
}

const Sequence* Scheduler::find(SeqId id) const {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

int32_t Scheduler::blocks_for(int32_t num_tokens) const {
  return (num_tokens + config_.block_size - 1) / config_.block_size;
}

int32_t Scheduler::new_blocks_needed(const Sequence& s, int32_t num_tokens) const {
  return std::max(0, blocks_for(s.num_computed + num_tokens) - static_cast<int32_t>(s.blocks.size()));
}

std::vector<SeqId> Scheduler::add_request(std::vector<TokenId> prompt, const SamplingParams& sampling,
                                          const StoppingParams& stopping, int32_t n, int32_t priority) {
  TS_CHECK(!prompt.empty(), kInvalidArgument, "prompt is empty");
  TS_CHECK(n >= 1, kInvalidArgument, "n must be >= 1, got {}", n);
  TS_CHECK(stopping.max_tokens >= 1, kInvalidArgument, "max_tokens must be >= 1, got {}", stopping.max_tokens);
  TS_CHECK(static_cast<int64_t>(prompt.size()) < config_.max_model_len, kInvalidArgument,
           "prompt of {} tokens leaves no room under max_model_len {}", prompt.size(), config_.max_model_len);
  auto group = std::make_shared<SequenceGroup>();
  group->arrival = next_arrival_++;
  group->priority = priority;
  group->num_live = n;
  std::vector<SeqId> ids;
  ids.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Sequence>();
    s->id = next_seq_id_++;
    s->child_index = i;
    s->group = group;
    s->tokens = (i + 1 == n) ? std::move(prompt) : prompt;
    s->num_prompt_tokens = s->num_tokens();
    s->sampling = sampling;
    s->sampling.seed = child_seed(sampling.seed, i);
    if (i > 0) s->sampling.prompt_logprobs = -1;  // reported once, by choice 0
    s->prompt_logprobs_pending = s->sampling.prompt_logprobs >= 0;
    s->stopping = stopping;
    if (i == 0) group->leader = s->id;
    ids.push_back(s->id);
    Sequence& ref = *s;
    seqs_.emplace(s->id, std::move(s));
    enqueue_waiting(ref);
  }
  ++unstarted_requests_;
  return ids;
}

void Scheduler::enqueue_waiting(Sequence& s) {
  s.status = SeqStatus::kWaiting;
  s.wait_key = WaitKey{-s.priority(), s.preempted ? 0 : 1, s.arrival(), s.id};
  waiting_.emplace(s.wait_key, &s);
}

void Scheduler::insert_running(Sequence* s) {
  s->status = SeqStatus::kRunning;
  running_.insert(std::upper_bound(running_.begin(), running_.end(), s, runs_before), s);
}

void Scheduler::remove_running(Sequence* s) {
  auto it = std::lower_bound(running_.begin(), running_.end(), s, runs_before);
  TS_ASSERT(it != running_.end() && *it == s, "sequence {} is not in the running list", s->id);
  running_.erase(it);
}

void Scheduler::release(Sequence& s, std::vector<SeqId>& freed) {
  blocks_.release(s.blocks);
  s.blocks.clear();
  s.num_computed = 0;
  s.num_hashed_blocks = 0;
  s.last_hash = kNoParentHash;
  if (s.runner_knows) freed.push_back(s.id);
  s.runner_knows = false;
  s.runner_tokens = 0;
  s.runner_blocks = 0;
}

void Scheduler::erase(Sequence& s) {
  SequenceGroup& g = *s.group;
  if (--g.num_live == 0 && !g.started) --unstarted_requests_;
  const SeqId id = s.id;  // s dies in erase
  seqs_.erase(id);
}

bool Scheduler::finish_sequence(SeqId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return false;
  Sequence& s = *it->second;
  if (s.status == SeqStatus::kWaiting) waiting_.erase(s.wait_key);
  else remove_running(&s);
  // A plan in flight still names this sequence: its result is ignored (see update()).
  for (auto& w : scheduled_) {
    if (w.seq == &s) w.seq = nullptr;
  }
  release(s, pending_freed_);
  erase(s);
  return true;
}

void Scheduler::preempt(Sequence& s, StepPlan& plan) {
  release(s, plan.freed);
  s.preempted = true;
  enqueue_waiting(s);
  ++preemptions_;
}

void Scheduler::add_work(Sequence& s, int32_t num_tokens, StepPlan& plan) {
  SequenceWork w;
  w.seq_id = s.id;
  w.num_tokens = num_tokens;
  w.sample = s.num_computed + num_tokens == s.num_tokens();
  if (!s.runner_knows) {
    NewSequence ns;
    ns.seq_id = s.id;
    ns.token_ids = s.tokens;
    ns.num_prompt_tokens = s.num_prompt_tokens;
    ns.num_computed_tokens = s.num_computed;
    ns.block_ids = s.blocks;
    ns.sampling = s.sampling;
    // Prompt logprobs already reported before a preemption are not computed again.
    if (!s.prompt_logprobs_pending) ns.sampling.prompt_logprobs = -1;
    plan.new_sequences.push_back(std::move(ns));
    s.runner_knows = true;
  } else {
    w.appended_token_ids.assign(s.tokens.begin() + static_cast<ptrdiff_t>(s.runner_tokens), s.tokens.end());
    w.new_block_ids.assign(s.blocks.begin() + static_cast<ptrdiff_t>(s.runner_blocks), s.blocks.end());
  }
  s.runner_tokens = s.tokens.size();
  s.runner_blocks = s.blocks.size();
  scheduled_.push_back({&s, num_tokens, w.sample});
  plan.scheduled.push_back(std::move(w));
}

// Running sequences, in order: each gets min(its remaining tokens, the budget less one token per
// later running sequence); when its blocks do not fit, the newest running sequences are preempted
// (possibly itself).
void Scheduler::schedule_running(StepPlan& plan, int32_t& budget, bool& preempted) {
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence* s = running_[i];
    const int32_t later = static_cast<int32_t>(running_.size() - i - 1);
    const int32_t remaining = s->num_tokens() - s->num_computed;
    TS_ASSERT(remaining >= 1, "running sequence {} has nothing to compute", s->id);
    const int32_t grant = std::min(remaining, budget - later);
    TS_ASSERT(grant >= 1, "no budget for running sequence {} (budget {}, later {})", s->id, budget, later);
    int32_t need = new_blocks_needed(*s, grant);
    while (!blocks_.can_allocate(need)) {
      Sequence* victim = running_.back();
      running_.pop_back();
      preempt(*victim, plan);
      preempted = true;
      if (victim == s) break;
    }
    if (s->status != SeqStatus::kRunning) break;  // it preempted itself: it was the newest
    blocks_.allocate(need, s->blocks);
    add_work(*s, grant, plan);
    budget -= grant;
  }
}

bool Scheduler::plan_admission(const Sequence& s, int32_t budget, Admission& a) const {
  const int32_t bs = config_.block_size;
  const int32_t total = s.num_tokens();
  const int32_t max_shared = (total - 1) / bs;  // the last token is always computed (it is sampled from)
  const SequenceGroup& g = *s.group;
  const Sequence* leader = (s.child_index > 0) ? find(g.leader) : nullptr;
  if (leader != nullptr && leader->status == SeqStatus::kRunning) {
    const int32_t want = std::min(max_shared, s.num_prompt_tokens / bs);
    const int32_t have = std::min(want, leader->num_computed / bs);
    if (have < want && !s.preempted) return false;  // wait for the leader's prompt, then share it
    a.shared.assign(leader->blocks.begin(), leader->blocks.begin() + have);
  } else if (!s.prompt_logprobs_pending && blocks_.prefix_caching()) {
    PrefixMatch m = blocks_.match_prefix(s.tokens, max_shared);
    a.shared = std::move(m.blocks);
    a.last_hash = m.last_hash;
    a.from_cache = true;
    a.looked_up = true;
  }
  for (BlockId b : a.shared) {
    if (blocks_.ref_count(b) == 0) ++a.free_needed;
  }
  const int32_t computed = static_cast<int32_t>(a.shared.size()) * bs;
  a.num_tokens = std::min(total - computed, budget);
  a.new_blocks = blocks_for(computed + a.num_tokens) - static_cast<int32_t>(a.shared.size());
  a.free_needed += a.new_blocks;
  return true;
}

void Scheduler::admit(Sequence& s, Admission& a, StepPlan& plan) {
  blocks_.acquire(a.shared);
  s.blocks = std::move(a.shared);
  s.num_computed = static_cast<int32_t>(s.blocks.size()) * config_.block_size;
  if (a.from_cache) {
    s.num_hashed_blocks = static_cast<int32_t>(s.blocks.size());
    s.last_hash = a.last_hash;
  }
  if (a.looked_up) blocks_.record_lookup(s.num_tokens(), s.num_computed);
  blocks_.allocate(a.new_blocks, s.blocks);
  s.status = SeqStatus::kRunning;  // choices of the same request admitted later this step see it
  if (!s.preempted && s.num_cached_prompt_tokens < 0) {
    s.num_cached_prompt_tokens = std::min(s.num_computed, s.num_prompt_tokens);
  }
  if (!s.group->started) {
    s.group->started = true;
    --unstarted_requests_;
  }
  add_work(s, a.num_tokens, plan);
}

// Waiting sequences in queue order while budget, sequence slots and KV last. A sequence whose
// blocks do not fit stops admission (no overtaking); a choice waiting for its leader's prompt is
// skipped.
void Scheduler::schedule_waiting(StepPlan& plan, int32_t& budget) {
  std::vector<Sequence*> admitted;
  size_t num_running = running_.size();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (budget <= 0 || num_running >= static_cast<size_t>(config_.max_num_seqs)) break;
    Sequence& s = *it->second;
    Admission a;
    if (!plan_admission(s, budget, a)) {
      ++it;
      continue;
    }
    if (!blocks_.can_allocate(a.free_needed)) break;
    it = waiting_.erase(it);
    admit(s, a, plan);
    budget -= a.num_tokens;
    admitted.push_back(&s);
    ++num_running;
  }
  for (Sequence* s : admitted) insert_running(s);
}

StepPlan Scheduler::schedule() {
  TS_ASSERT(!in_flight_, "schedule() called while step {} awaits its result", in_flight_step_);
  StepPlan plan;
  plan.block_size = config_.block_size;
  plan.freed = std::move(pending_freed_);
  pending_freed_.clear();
  scheduled_.clear();
  int32_t budget = config_.max_num_batched_tokens;
  bool preempted = false;
  schedule_running(plan, budget, preempted);
  // After a preemption KV is short: admitting new work now would only preempt again.
  if (!preempted) schedule_waiting(plan, budget);
  if (plan.freed.empty() && plan.scheduled.empty()) return plan;
  plan.step_id = next_step_id_++;
  in_flight_ = true;
  in_flight_step_ = plan.step_id;
  return plan;
}

void Scheduler::commit_full_blocks(Sequence& s) {
  const int32_t bs = config_.block_size;
  const int32_t full = std::min(s.num_computed / bs, static_cast<int32_t>(s.blocks.size()));
  while (s.num_hashed_blocks < full) {
    const auto i = static_cast<size_t>(s.num_hashed_blocks);
    std::span<const TokenId> chunk(s.tokens.data() + i * static_cast<size_t>(bs), static_cast<size_t>(bs));
    s.last_hash = blocks_.commit_full_block(s.blocks[i], s.last_hash, chunk);
    ++s.num_hashed_blocks;
  }
}

SeqFinish Scheduler::check_stop(const Sequence& s, TokenId token) const {
  const int32_t outputs = s.num_output_tokens();
  if (outputs > s.stopping.min_tokens) {
    if (contains(s.stopping.stop_token_ids, token)) return SeqFinish::kStopToken;
    if (!s.stopping.ignore_eos && contains(config_.eos_token_ids, token)) return SeqFinish::kEos;
  }
  if (outputs >= s.stopping.max_tokens || s.num_tokens() >= config_.max_model_len) return SeqFinish::kLength;
  return SeqFinish::kNone;
}

std::vector<SeqUpdate> Scheduler::update(const StepResult& result) {
  TS_ASSERT(in_flight_, "update() for step {} without a plan in flight", result.step_id);
  TS_CHECK(result.step_id == in_flight_step_, kInternal, "result for step {} but step {} is in flight",
           result.step_id, in_flight_step_);
  size_t num_samples = 0;
  for (const auto& w : scheduled_) num_samples += w.sample ? 1 : 0;
  TS_CHECK(result.sampled.size() == num_samples, kInternal, "step {} sampled {} tokens, the plan asked for {}",
           result.step_id, result.sampled.size(), num_samples);
  in_flight_ = false;
  std::vector<SeqUpdate> updates;
  size_t k = 0;
  for (const auto& w : scheduled_) {
    const size_t index = w.sample ? k++ : 0;
    if (w.seq == nullptr) continue;  // finished while the step ran
    Sequence& s = *w.seq;
    s.num_computed += w.num_tokens;
    if (blocks_.prefix_caching()) commit_full_blocks(s);
    if (s.num_computed >= s.num_prompt_tokens) s.prompt_logprobs_pending = false;
    if (!w.sample) continue;
    const SampledToken& st = result.sampled[index];
    TS_CHECK(st.seq_id == s.id, kInternal, "step {} sample {} is for sequence {}, the plan had {}", result.step_id,
             index, st.seq_id, s.id);
    s.tokens.push_back(st.token);
    SeqUpdate u{s.id, index, st.token, check_stop(s, st.token), std::max(0, s.num_cached_prompt_tokens)};
    if (u.finish != SeqFinish::kNone) finish_sequence(s.id);
    updates.push_back(u);
  }
  scheduled_.clear();
  return updates;
}

}  // namespace tessera
