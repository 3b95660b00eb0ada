// Scheduler: the token-budget rule, chunked prefill, prefix hits, preemption, priorities,
// cancellation, n > 1 sharing and the stop rules, each driven by the FakeRunner.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>

#include "scheduler/child_seed.h"
#include "tests/scheduler/scheduler_driver.h"

namespace tessera::testing {
namespace {

constexpr int32_t kVocab = 1000;

SchedulerConfig small_config() {
  SchedulerConfig c;
  c.block_size = 4;
  c.num_kv_blocks = 64;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 32;
  c.max_model_len = 128;
  return c;
}

std::vector<TokenId> prompt_of(int n, int start = 1) {
  std::vector<TokenId> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

SamplingParams seeded(uint64_t seed) {
  SamplingParams s;
  s.temperature = 0.0f;
  s.seed = seed;
  return s;
}

StoppingParams max_tokens(int n) {
  StoppingParams st;
  st.max_tokens = n;
  return st;
}

void expect_all_blocks_free(const Scheduler& s) {
  EXPECT_EQ(s.block_manager().num_free_blocks(), s.block_manager().num_blocks());
  for (BlockId b = 0; b < s.block_manager().num_blocks(); ++b) EXPECT_EQ(s.block_manager().ref_count(b), 0);
}

TEST(Scheduler, ConfigIsValidated) {
  SchedulerConfig c = small_config();
  c.max_num_batched_tokens = 4;  // below max_num_seqs
  EXPECT_THROW(Scheduler{c}, Error);
  c = small_config();
  c.num_kv_blocks = 2;  // cannot hold one max_model_len sequence
  EXPECT_THROW(Scheduler{c}, Error);
}

TEST(Scheduler, OneRequestPrefillsThenDecodesToMaxTokens) {
  SchedulerDriver d(small_config(), kVocab);
  auto ids = d.scheduler.add_request(prompt_of(10), seeded(7), max_tokens(5), 1, 0);
  ASSERT_TRUE(d.step());
  ASSERT_EQ(d.last_plan.new_sequences.size(), 1u);
  EXPECT_EQ(d.last_plan.scheduled[0].num_tokens, 10);
  EXPECT_TRUE(d.last_plan.scheduled[0].sample);
  EXPECT_EQ(d.last_plan.new_sequences[0].block_ids.size(), 3u);
  ASSERT_TRUE(d.step());  // decode: one appended token, one token computed
  EXPECT_TRUE(d.last_plan.new_sequences.empty());
  EXPECT_EQ(d.last_plan.scheduled[0].appended_token_ids.size(), 1u);
  EXPECT_EQ(d.last_plan.scheduled[0].num_tokens, 1);
  d.run_to_completion();
  SeqFinish f;
  EXPECT_EQ(d.outcomes[ids[0]].tokens, reference_output(prompt_of(10), 7, max_tokens(5), {}, 128, kVocab, &f));
  EXPECT_EQ(d.outcomes[ids[0]].finish, SeqFinish::kLength);
  expect_all_blocks_free(d.scheduler);
  EXPECT_EQ(d.runner.seqs().size(), 0u) << "the runner was told to free the finished sequence";
}

TEST(Scheduler, LongPromptIsChunkedAndDecodesNeverStall) {
  SchedulerDriver d(small_config(), kVocab);
  auto a = d.scheduler.add_request(prompt_of(6), seeded(1), max_tokens(40), 1, 0);
  ASSERT_TRUE(d.step());  // a prefills
  auto b = d.scheduler.add_request(prompt_of(100, 50), seeded(2), max_tokens(3), 1, 0);
  int steps_with_b_prefill = 0;
  while (d.scheduler.find(b[0]) != nullptr && d.outcomes[b[0]].tokens.empty()) {
    ASSERT_TRUE(d.step());
    ASSERT_LE(d.last_plan.num_tokens(), 32);
    bool a_decoded = false;
    for (const auto& w : d.last_plan.scheduled) a_decoded |= (w.seq_id == a[0] && w.num_tokens == 1);
    EXPECT_TRUE(a_decoded) << "the decode of a stalled in step " << d.last_plan.step_id;
    ++steps_with_b_prefill;
  }
  EXPECT_GE(steps_with_b_prefill, 4) << "a 100-token prompt under a 32-token budget needs chunks";
  d.run_to_completion();
  EXPECT_EQ(d.outcomes[b[0]].tokens, reference_output(prompt_of(100, 50), 2, max_tokens(3), {}, 128, kVocab));
  EXPECT_EQ(d.outcomes[a[0]].tokens, reference_output(prompt_of(6), 1, max_tokens(40), {}, 128, kVocab));
}

TEST(Scheduler, MaxNumSeqsCapsTheBatch) {
  SchedulerConfig c = small_config();
  c.max_num_seqs = 3;
  c.max_num_batched_tokens = 64;
  SchedulerDriver d(c, kVocab);
  for (int i = 0; i < 7; ++i) d.scheduler.add_request(prompt_of(3, i * 10), seeded(i), max_tokens(4), 1, 0);
  d.run_to_completion();
  EXPECT_LE(d.max_seqs_per_step, 3);
  EXPECT_EQ(d.outcomes.size(), 7u);
}

TEST(Scheduler, SharedPrefixIsServedFromTheCache) {
  SchedulerDriver d(small_config(), kVocab);
  auto system = prompt_of(16);
  auto p1 = system;
  p1.push_back(500);
  auto p2 = system;
  p2.push_back(600);
  auto a = d.scheduler.add_request(p1, seeded(1), max_tokens(2), 1, 0);
  d.run_to_completion();
  auto b = d.scheduler.add_request(p2, seeded(1), max_tokens(2), 1, 0);
  ASSERT_TRUE(d.step());
  ASSERT_EQ(d.last_plan.new_sequences.size(), 1u);
  EXPECT_EQ(d.last_plan.new_sequences[0].num_computed_tokens, 16);
  EXPECT_EQ(d.last_plan.scheduled[0].num_tokens, 1);
  d.run_to_completion();
  EXPECT_EQ(d.outcomes[b[0]].tokens, reference_output(p2, 1, max_tokens(2), {}, 128, kVocab));
  EXPECT_EQ(d.scheduler.block_manager().prefix_hit_tokens(), 16);
  EXPECT_EQ(d.scheduler.block_manager().prefix_queried_tokens(), 34);
  (void)a;
}

TEST(Scheduler, WholePromptHitStillComputesTheLastToken) {
  SchedulerDriver d(small_config(), kVocab);
  d.scheduler.add_request(prompt_of(8), seeded(3), max_tokens(1), 1, 0);
  d.run_to_completion();
  auto b = d.scheduler.add_request(prompt_of(8), seeded(3), max_tokens(1), 1, 0);
  ASSERT_TRUE(d.step());
  EXPECT_EQ(d.last_plan.new_sequences[0].num_computed_tokens, 4);  // the block holding token 8 is redone
  d.run_to_completion();
  EXPECT_EQ(d.outcomes[b[0]].tokens, reference_output(prompt_of(8), 3, max_tokens(1), {}, 128, kVocab));
}

TEST(Scheduler, PromptLogprobsRequestsSkipThePrefixCache) {
  SchedulerDriver d(small_config(), kVocab);
  d.scheduler.add_request(prompt_of(12), seeded(3), max_tokens(1), 1, 0);
  d.run_to_completion();
  SamplingParams s = seeded(3);
  s.prompt_logprobs = 2;
  d.scheduler.add_request(prompt_of(12), s, max_tokens(1), 1, 0);
  ASSERT_TRUE(d.step());
  EXPECT_EQ(d.last_plan.new_sequences[0].num_computed_tokens, 0);
  EXPECT_EQ(d.last_plan.new_sequences[0].sampling.prompt_logprobs, 2);
}

TEST(Scheduler, PrefixCachingOffComputesEverything) {
  SchedulerConfig c = small_config();
  c.enable_prefix_caching = false;
  SchedulerDriver d(c, kVocab);
  d.scheduler.add_request(prompt_of(12), seeded(3), max_tokens(1), 1, 0);
  d.run_to_completion();
  d.scheduler.add_request(prompt_of(12), seeded(3), max_tokens(1), 1, 0);
  ASSERT_TRUE(d.step());
  EXPECT_EQ(d.last_plan.new_sequences[0].num_computed_tokens, 0);
}

TEST(Scheduler, PreemptionRecomputesTheNewestAndKeepsOutputs) {
  SchedulerConfig c = small_config();
  c.num_kv_blocks = 12;  // 48 tokens of KV for three sequences that grow to 30 each
  c.max_model_len = 40;
  SchedulerDriver d(c, kVocab);
  std::vector<std::vector<SeqId>> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(d.scheduler.add_request(prompt_of(10, i * 100), seeded(static_cast<uint64_t>(i)), max_tokens(20), 1, 0));
  }
  bool saw_preempted_resend = false;
  while (d.scheduler.has_work()) {
    d.step();
    for (const auto& ns : d.last_plan.new_sequences) {
      if (ns.token_ids.size() > static_cast<size_t>(ns.num_prompt_tokens)) {
        saw_preempted_resend = true;
        EXPECT_EQ(ns.num_prompt_tokens, 10) << "a preempted sequence keeps its original prompt length";
      }
    }
  }
  EXPECT_GT(d.scheduler.num_preemptions(), 0u);
  EXPECT_TRUE(saw_preempted_resend);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.outcomes[ids[static_cast<size_t>(i)][0]].tokens,
              reference_output(prompt_of(10, i * 100), static_cast<uint64_t>(i), max_tokens(20), {}, 40, kVocab));
  }
  expect_all_blocks_free(d.scheduler);
}

TEST(Scheduler, OldestRunningSequenceIsNeverThePreemptionVictim) {
  SchedulerConfig c = small_config();
  c.num_kv_blocks = 10;
  c.max_model_len = 40;
  SchedulerDriver d(c, kVocab);
  auto first = d.scheduler.add_request(prompt_of(10), seeded(1), max_tokens(25), 1, 0);
  d.step();
  d.scheduler.add_request(prompt_of(10, 300), seeded(2), max_tokens(25), 1, 0);
  while (d.scheduler.has_work()) {
    d.step();
    for (SeqId f : d.last_plan.freed) {
      if (d.scheduler.find(first[0]) != nullptr) {
        EXPECT_NE(f, first[0]) << "the oldest sequence was preempted";
      }
    }
  }
  EXPECT_GT(d.scheduler.num_preemptions(), 0u);
}

TEST(Scheduler, HigherPriorityRunsFirstAndFcfsWithin) {
  SchedulerConfig c = small_config();
  c.max_num_seqs = 1;
  c.max_num_batched_tokens = 8;
  SchedulerDriver d(c, kVocab);
  auto low = d.scheduler.add_request(prompt_of(4), seeded(1), max_tokens(1), 1, 0);
  auto high1 = d.scheduler.add_request(prompt_of(4, 10), seeded(2), max_tokens(1), 1, 5);
  auto high2 = d.scheduler.add_request(prompt_of(4, 20), seeded(3), max_tokens(1), 1, 5);
  std::vector<SeqId> order;
  while (d.scheduler.has_work()) {
    d.step();
    for (const auto& ns : d.last_plan.new_sequences) order.push_back(ns.seq_id);
  }
  EXPECT_EQ(order, (std::vector<SeqId>{high1[0], high2[0], low[0]}));
}

TEST(Scheduler, CancellationFreesBlocksAndTellsTheRunner) {
  SchedulerDriver d(small_config(), kVocab);
  auto a = d.scheduler.add_request(prompt_of(20), seeded(1), max_tokens(50), 1, 0);
  d.step();
  d.step();
  EXPECT_LT(d.scheduler.block_manager().num_free_blocks(), 64);
  EXPECT_TRUE(d.scheduler.finish_sequence(a[0]));
  EXPECT_FALSE(d.scheduler.finish_sequence(a[0]));
  expect_all_blocks_free(d.scheduler);
  ASSERT_TRUE(d.step());
  EXPECT_EQ(d.last_plan.freed, std::vector<SeqId>{a[0]});
  EXPECT_TRUE(d.runner.seqs().empty());
  EXPECT_FALSE(d.scheduler.has_work());
  // A waiting sequence the runner never saw is cancelled without a `freed` entry.
  auto b = d.scheduler.add_request(prompt_of(20), seeded(1), max_tokens(50), 1, 0);
  EXPECT_TRUE(d.scheduler.finish_sequence(b[0]));
  EXPECT_FALSE(d.scheduler.has_work());
  EXPECT_EQ(d.scheduler.num_unstarted_requests(), 0);
}

TEST(Scheduler, CancellationWhileAStepIsInFlightIgnoresItsResult) {
  SchedulerDriver d(small_config(), kVocab);
  auto a = d.scheduler.add_request(prompt_of(5), seeded(1), max_tokens(10), 1, 0);
  StepPlan plan = d.scheduler.schedule();
  StepResult r = d.runner.execute(plan);
  EXPECT_TRUE(d.scheduler.finish_sequence(a[0]));
  EXPECT_TRUE(d.scheduler.update(r).empty());
  ASSERT_TRUE(d.step());
  EXPECT_EQ(d.last_plan.freed, std::vector<SeqId>{a[0]});
}

TEST(Scheduler, ChoicesShareThePromptBlocksAndUseDerivedSeeds) {
  SchedulerConfig c = small_config();
  c.enable_prefix_caching = false;  // sharing must not depend on the prefix cache
  SchedulerDriver d(c, kVocab);
  auto prompt = prompt_of(13);  // 3 full blocks + 1 token
  auto ids = d.scheduler.add_request(prompt, seeded(42), max_tokens(6), 3, 0);
  ASSERT_EQ(ids.size(), 3u);
  ASSERT_TRUE(d.step());
  ASSERT_EQ(d.last_plan.new_sequences.size(), 1u) << "only the leader runs until its prompt is computed";
  ASSERT_TRUE(d.step());
  ASSERT_EQ(d.last_plan.new_sequences.size(), 2u);
  for (const auto& ns : d.last_plan.new_sequences) {
    EXPECT_EQ(ns.num_computed_tokens, 12);
    EXPECT_EQ(ns.block_ids[0], d.scheduler.find(ids[0])->blocks[0]);
  }
  EXPECT_EQ(d.scheduler.block_manager().ref_count(d.scheduler.find(ids[0])->blocks[0]), 3);
  d.run_to_completion();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.outcomes[ids[static_cast<size_t>(i)]].tokens,
              reference_output(prompt, child_seed(42, i), max_tokens(6), {}, 128, kVocab));
  }
  EXPECT_NE(d.outcomes[ids[0]].tokens, d.outcomes[ids[1]].tokens);
  expect_all_blocks_free(d.scheduler);
}

TEST(Scheduler, StopTokenEosMinTokensAndIgnoreEos) {
  const auto prompt = prompt_of(5);
  const uint64_t seed = 9;
  auto free_run = reference_output(prompt, seed, max_tokens(30), {}, 128, kVocab);
  ASSERT_GE(free_run.size(), 6u);
  const TokenId third = free_run[2];
  auto run = [&](StoppingParams st, std::vector<TokenId> eos) {
    SchedulerConfig c = small_config();
    c.eos_token_ids = std::move(eos);
    SchedulerDriver d(c, kVocab);
    auto ids = d.scheduler.add_request(prompt, seeded(seed), st, 1, 0);
    d.run_to_completion();
    return d.outcomes[ids[0]];
  };
  StoppingParams st = max_tokens(30);
  st.stop_token_ids = {third};
  auto o = run(st, {});
  EXPECT_EQ(o.tokens.size(), 3u);
  EXPECT_EQ(o.finish, SeqFinish::kStopToken);
  o = run(max_tokens(30), {third});
  EXPECT_EQ(o.tokens.size(), 3u);
  EXPECT_EQ(o.finish, SeqFinish::kEos);
  st = max_tokens(30);
  st.ignore_eos = true;
  o = run(st, {third});
  EXPECT_EQ(o.tokens.size(), 30u);
  EXPECT_EQ(o.finish, SeqFinish::kLength);
  st = max_tokens(30);
  st.min_tokens = 3;  // the stop at output 3 is ignored
  st.stop_token_ids = {third};
  o = run(st, {});
  EXPECT_GT(o.tokens.size(), 3u);
}

TEST(Scheduler, MaxModelLenEndsASequence) {
  SchedulerConfig c = small_config();
  c.max_model_len = 20;
  SchedulerDriver d(c, kVocab);
  auto ids = d.scheduler.add_request(prompt_of(15), seeded(1), max_tokens(100), 1, 0);
  d.run_to_completion();
  EXPECT_EQ(d.outcomes[ids[0]].tokens.size(), 5u);
  EXPECT_EQ(d.outcomes[ids[0]].finish, SeqFinish::kLength);
}

TEST(Scheduler, UpdateRejectsAResultThatDoesNotAnswerThePlan) {
  SchedulerDriver d(small_config(), kVocab);
  d.scheduler.add_request(prompt_of(5), seeded(1), max_tokens(10), 1, 0);
  StepPlan plan = d.scheduler.schedule();
  StepResult r;
  r.step_id = plan.step_id;
  EXPECT_THROW(d.scheduler.update(r), Error);  // no sample for a plan that asked for one
}

}  // namespace
}  // namespace tessera::testing
