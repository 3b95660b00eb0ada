// SchedulerDriver: runs a Scheduler against a FakeRunner step by step for tests, collecting each
// sequence's output tokens and how it finished, and checking after every plan that the runner's
// view (rebuilt from the plan deltas) equals the scheduler's state.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "scheduler/scheduler.h"
#include "tests/scheduler/fake_runner.h"

namespace tessera::testing {

struct SeqOutcome {
  std::vector<TokenId> tokens;
  SeqFinish finish = SeqFinish::kNone;
  bool finished = false;
};

class SchedulerDriver {
 public:
  explicit SchedulerDriver(SchedulerConfig config, int32_t vocab = 1000)
      : scheduler(config), runner(config.num_kv_blocks, config.block_size, vocab) {
    runner.after_apply = [this](const FakeRunner& r) { check_views(r); };
  }

  // One schedule -> execute -> update round. False when the plan was empty.
  bool step() {
    StepPlan plan = scheduler.schedule();
    if (plan.scheduled.empty() && plan.freed.empty()) return false;
    max_tokens_per_step = std::max(max_tokens_per_step, plan.num_tokens());
    max_seqs_per_step = std::max(max_seqs_per_step, static_cast<int32_t>(plan.scheduled.size()));
    last_plan = plan;
    StepResult result = runner.execute(plan);
    for (const SeqUpdate& u : scheduler.update(result)) {
      SeqOutcome& o = outcomes[u.seq_id];
      EXPECT_FALSE(o.finished) << "sequence " << u.seq_id << " got a token after it finished";
      o.tokens.push_back(u.token);
      if (u.finish != SeqFinish::kNone) {
        o.finish = u.finish;
        o.finished = true;
      }
    }
    return true;
  }

  // Steps until the scheduler has nothing left (bounded).
  void run_to_completion(int max_steps = 1000000) {
    for (int i = 0; i < max_steps && scheduler.has_work(); ++i) step();
    ASSERT_FALSE(scheduler.has_work()) << "scheduler still busy after " << max_steps << " steps";
  }

  // The runner knows exactly the scheduler's runner-known sequences, with equal tokens, blocks and
  // computed counts (runner computed = scheduler computed: the runner has not computed this step yet).
  void check_views(const FakeRunner& r) {
    size_t known = 0;
    scheduler.for_each_sequence([&](const Sequence& s) {
      if (!s.runner_knows) return;
      ++known;
      auto it = r.seqs().find(s.id);
      ASSERT_NE(it, r.seqs().end()) << "runner does not know sequence " << s.id;
      EXPECT_EQ(it->second.tokens, s.tokens) << "tokens of sequence " << s.id;
      EXPECT_EQ(it->second.blocks, s.blocks) << "blocks of sequence " << s.id;
      EXPECT_EQ(it->second.computed, s.num_computed) << "computed of sequence " << s.id;
      EXPECT_EQ(it->second.num_prompt, s.num_prompt_tokens) << "prompt of sequence " << s.id;
      EXPECT_EQ(it->second.sampling.seed, s.sampling.seed) << "seed of sequence " << s.id;
    });
    EXPECT_EQ(known, r.seqs().size()) << "runner holds sequences the scheduler does not";
  }

  Scheduler scheduler;
  FakeRunner runner;
  std::map<SeqId, SeqOutcome> outcomes;
  StepPlan last_plan;
  int32_t max_tokens_per_step = 0;
  int32_t max_seqs_per_step = 0;
};

// Greedy output of one sequence run alone: the fake model's function applied until a stop rule.
inline std::vector<TokenId> reference_output(std::vector<TokenId> tokens, uint64_t seed, const StoppingParams& st,
                                             const std::vector<TokenId>& eos, int32_t max_model_len, int32_t vocab,
                                             SeqFinish* finish = nullptr) {
  std::vector<TokenId> out;
  auto has = [](const std::vector<TokenId>& v, TokenId t) { return std::find(v.begin(), v.end(), t) != v.end(); };
  for (;;) {
    const TokenId t = fake_next_token(tokens, seed, vocab);
    out.push_back(t);
    tokens.push_back(t);
    const int32_t n = static_cast<int32_t>(out.size());
    SeqFinish f = SeqFinish::kNone;
    if (n > st.min_tokens && has(st.stop_token_ids, t)) f = SeqFinish::kStopToken;
    else if (n > st.min_tokens && !st.ignore_eos && has(eos, t)) f = SeqFinish::kEos;
    else if (n >= st.max_tokens || static_cast<int32_t>(tokens.size()) >= max_model_len) f = SeqFinish::kLength;
    if (f != SeqFinish::kNone) {
      if (finish) *finish = f;
      return out;
    }
  }
}

}  // namespace tessera::testing
