// The TP runtime across real processes on loopback: rank 0's TpStepExecutor delivers StepPlans to
// every rank over UCX and a Megatron-sharded model (ShardedToyLm) produces logits equal to the
// unsharded model within 1e-5 relative and identical greedy tokens at TP = 2 and 4. Failure: a
// worker killed with SIGKILL or frozen with SIGSTOP mid-stream makes rank 0's execute() throw
// kUnavailable within 10 s, the other workers exit non-zero, and nothing hangs.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cmath>

#include "parallel/tp_executor.h"
#include "tests/parallel/forked_ranks.h"
#include "tests/parallel/sharded_toy_lm.h"

namespace tessera::parallel {
namespace {

using testing::RankContext;
using testing::ShardedToyLm;
using testing::ToyShape;

// Plan i of a greedy generation: three sequences, one new per step for the first three steps.
StepPlan plan_for_step(uint64_t step, const std::vector<TokenId>& last_sampled) {
  StepPlan p;
  p.step_id = step;
  if (step < 3) {
    NewSequence s;
    s.seq_id = 100 + step;
    s.token_ids = {static_cast<TokenId>(17 + 50 * step), static_cast<TokenId>(5 + step)};
    s.num_prompt_tokens = 2;
    s.sampling.temperature = 0;
    p.new_sequences.push_back(s);
  }
  for (uint64_t q = 0; q <= std::min<uint64_t>(step, 2); ++q) {
    SequenceWork w;
    w.seq_id = 100 + q;
    w.num_tokens = q == step ? 2 : 1;
    if (q != step) w.appended_token_ids = {last_sampled[q]};
    w.sample = true;
    p.scheduled.push_back(w);
  }
  return p;
}

int parity_body(RankContext& ctx) {
  const ToyShape shape;
  auto g = testing::join_test_group(ctx);
  auto shard = std::make_unique<ShardedToyLm>(shape, ShardSpec{ctx.rank, ctx.world_size}, &g->comm());
  if (ctx.rank != 0) return run_worker_loop(*g, *shard);
  ShardedToyLm* rank0_shard = shard.get();
  ShardedToyLm reference(shape, ShardSpec{0, 1}, nullptr);
  int bad = 0;
  {
    TpStepExecutor tp(*g, std::move(shard));
    std::vector<TokenId> tp_tokens(3, 0), ref_tokens(3, 0);
    for (uint64_t step = 0; step < 10; ++step) {
      const StepResult a = tp.execute(plan_for_step(step, tp_tokens));
      const StepResult b = reference.execute(plan_for_step(step, ref_tokens));
      if (a.sampled.size() != b.sampled.size()) return 10;
      for (size_t i = 0; i < a.sampled.size(); ++i) {
        if (a.sampled[i].token != b.sampled[i].token || a.sampled[i].seq_id != b.sampled[i].seq_id) {
          std::fprintf(stderr, "step %lu row %zu: token %d vs %d\n", static_cast<unsigned long>(step), i,
                       a.sampled[i].token, b.sampled[i].token);
          ++bad;
        }
        tp_tokens[a.sampled[i].seq_id - 100] = a.sampled[i].token;
        ref_tokens[b.sampled[i].seq_id - 100] = b.sampled[i].token;
        // Relative to the row's largest |logit| (element-wise relative error is meaningless for
        // logits near zero, which are sums of large terms that cancel).
        const auto& la = rank0_shard->last_logits()[i];
        const auto& lb = reference.last_logits()[i];
        float scale = 0, worst = 0;
        for (size_t k = 0; k < lb.size(); ++k) {
          scale = std::max(scale, std::fabs(lb[k]));
          worst = std::max(worst, std::fabs(la[k] - lb[k]));
        }
        if (la.size() != lb.size() || worst > 1e-5f * scale) {
          std::fprintf(stderr, "step %lu row %zu: max |diff| %.3g over max |logit| %.3g\n",
                       static_cast<unsigned long>(step), i, worst, scale);
          ++bad;
        }
      }
    }
  }  // ~TpStepExecutor: Stop to every worker, orderly goodbye
  return bad;
}

TEST(TpStepExecutor, TwoRanksMatchUnshardedLogitsAndGreedyTokens) {
  EXPECT_EQ(testing::run_forked_ranks(2, parity_body), std::vector<int>(2, 0));
}

TEST(TpStepExecutor, FourRanksMatchUnshardedLogitsAndGreedyTokens) {
  EXPECT_EQ(testing::run_forked_ranks(4, parity_body), std::vector<int>(4, 0));
}

// Rank 0 streams steps until the group breaks; returns 0 when execute() threw kUnavailable and
// on_failure ran, 20+ otherwise.
int streaming_rank0_or_worker(RankContext& ctx) {
  const ToyShape shape;
  auto g = testing::join_test_group(ctx, std::chrono::milliseconds(6000), std::chrono::milliseconds(2000));
  auto shard = std::make_unique<ShardedToyLm>(shape, ShardSpec{ctx.rank, ctx.world_size}, &g->comm());
  if (ctx.rank != 0) return run_worker_loop(*g, *shard);
  std::atomic<bool> reported{false};
  TpStepExecutor tp(*g, std::move(shard), [&](const std::string&) { reported = true; });
  std::vector<TokenId> tokens(3, 0);
  for (uint64_t step = 0; step < 100000; ++step) {
    try {
      const StepResult r = tp.execute(plan_for_step(std::min<uint64_t>(step, 3 + step % 2), tokens));
      for (const auto& s : r.sampled) tokens[s.seq_id - 100] = s.token;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnavailable) return 21;
      if (!reported) return 22;
      // Later calls fail at once with the same code: the group is never reused.
      try {
        tp.execute(plan_for_step(3, tokens));
      } catch (const Error& e2) {
        return e2.code() == ErrorCode::kUnavailable ? 0 : 23;
      }
      return 24;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return 25;
}

void expect_failure_detected(int signal_to_send) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point signalled;
  std::vector<pid_t> pids;
  const int frozen = signal_to_send == SIGSTOP ? 1 : -1;
  const auto codes = testing::run_forked_ranks(
      3, streaming_rank0_or_worker, std::chrono::seconds(30), &pids, [&](const std::vector<pid_t>& p) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // mid-stream
        signalled = Clock::now();
        kill(p[1], signal_to_send);
      },
      frozen);
  const auto elapsed = Clock::now() - signalled;
  EXPECT_EQ(codes[0], 0) << "rank 0 must see kUnavailable and report it";
  EXPECT_NE(codes[2], 0) << "the surviving worker must exit non-zero";
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 10000)
      << "every rank must finish within 10 s of the failure";
}

TEST(TpStepExecutor, KilledWorkerFailsTheStepWithinTenSeconds) { expect_failure_detected(SIGKILL); }

TEST(TpStepExecutor, FrozenWorkerFailsTheStepWithinTenSeconds) { expect_failure_detected(SIGSTOP); }

}  // namespace
}  // namespace tessera::parallel
