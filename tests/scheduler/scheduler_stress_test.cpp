// Randomized stress: thousands of requests (random lengths, shared system prompts, priorities,
// n > 1, stop rules, prompt logprobs) arrive over time into a KV cache far smaller than demand,
// with random cancellations. Proves: every sequence finishes exactly once or is cancelled; outputs
// equal running each request alone; the runner's view always matches the scheduler's (checked by
// the driver at every plan); fresh blocks are never held by anyone else (the FakeRunner); no block
// leaks at the end.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "scheduler/child_seed.h"
#include "scheduler/scheduler.h"
#include "tests/scheduler/scheduler_driver.h"

namespace tessera::testing {
namespace {

constexpr int32_t kVocab = 1000;

struct Submitted {
  std::vector<TokenId> prompt;
  SamplingParams sampling;
  StoppingParams stopping;
  int32_t n = 1;
  int32_t priority = 0;
  std::vector<SeqId> ids;
};

SchedulerConfig stress_config(bool prefix_caching) {
  SchedulerConfig c;
  c.block_size = 4;
  c.num_kv_blocks = 40;  // 160 tokens of KV against dozens of sequences of up to 128
  c.max_num_seqs = 12;
  c.max_num_batched_tokens = 48;
  c.max_model_len = 128;
  c.enable_prefix_caching = prefix_caching;
  c.eos_token_ids = {3};
  return c;
}

Submitted random_request(std::mt19937_64& rng, const std::vector<std::vector<TokenId>>& systems) {
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Submitted r;
  if (uni(0, 9) < 6) r.prompt = systems[static_cast<size_t>(uni(0, static_cast<int>(systems.size()) - 1))];
  const int suffix = uni(1, 60);
  for (int i = 0; i < suffix; ++i) r.prompt.push_back(uni(0, kVocab - 1));
  r.sampling.temperature = 0.0f;
  r.sampling.seed = rng();
  if (uni(0, 19) == 0) r.sampling.prompt_logprobs = 1;
  r.stopping.max_tokens = uni(1, 25);
  r.stopping.min_tokens = uni(0, 9) == 0 ? uni(0, r.stopping.max_tokens) : 0;
  const int stops = uni(0, 2);
  for (int i = 0; i < stops; ++i) r.stopping.stop_token_ids.push_back(uni(0, kVocab - 1));
  r.stopping.ignore_eos = uni(0, 3) == 0;
  r.n = uni(0, 9) < 8 ? 1 : uni(2, 3);
  r.priority = uni(0, 9) < 7 ? 0 : uni(1, 3);
  return r;
}

void run_stress(bool prefix_caching, uint64_t seed, int num_requests) {
  std::mt19937_64 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<std::vector<TokenId>> systems;
  for (int i = 0; i < 6; ++i) {
    std::vector<TokenId> s(static_cast<size_t>(uni(4, 40)));
    for (auto& t : s) t = uni(0, kVocab - 1);
    systems.push_back(std::move(s));
  }
  const SchedulerConfig config = stress_config(prefix_caching);
  SchedulerDriver d(config, kVocab);
  std::vector<Submitted> requests;
  std::set<SeqId> cancelled;
  std::vector<SeqId> live_ids;
  int submitted = 0;
  int64_t steps = 0;
  while (submitted < num_requests || d.scheduler.has_work()) {
    const int arrivals = submitted < num_requests ? uni(0, 3) : 0;
    for (int i = 0; i < arrivals && submitted < num_requests; ++i, ++submitted) {
      Submitted r = random_request(rng, systems);
      r.ids = d.scheduler.add_request(r.prompt, r.sampling, r.stopping, r.n, r.priority);
      live_ids.insert(live_ids.end(), r.ids.begin(), r.ids.end());
      requests.push_back(std::move(r));
    }
    if (!live_ids.empty() && uni(0, 99) < 4) {
      const size_t k = static_cast<size_t>(uni(0, static_cast<int>(live_ids.size()) - 1));
      if (d.scheduler.finish_sequence(live_ids[k])) cancelled.insert(live_ids[k]);
      live_ids[k] = live_ids.back();
      live_ids.pop_back();
    }
    d.step();
    ASSERT_LE(d.last_plan.num_tokens(), config.max_num_batched_tokens);
    ASSERT_LE(static_cast<int32_t>(d.last_plan.scheduled.size()), config.max_num_seqs);
    ASSERT_LE(d.scheduler.num_running(), static_cast<size_t>(config.max_num_seqs));
    ASSERT_LT(++steps, 2000000) << "no progress";
  }
  // Every sequence: cancelled (output a prefix of the reference) or finished once with the reference.
  int finished = 0;
  for (const Submitted& r : requests) {
    for (int32_t i = 0; i < r.n; ++i) {
      const SeqId id = r.ids[static_cast<size_t>(i)];
      SeqFinish expected_finish = SeqFinish::kNone;
      const auto expected = reference_output(r.prompt, child_seed(r.sampling.seed, i), r.stopping, config.eos_token_ids,
                                             config.max_model_len, kVocab, &expected_finish);
      const SeqOutcome& o = d.outcomes[id];
      if (cancelled.count(id) != 0) {
        ASSERT_FALSE(o.finished) << "sequence " << id << " both finished and was cancelled";
        ASSERT_LE(o.tokens.size(), expected.size());
        ASSERT_TRUE(std::equal(o.tokens.begin(), o.tokens.end(), expected.begin()))
            << "cancelled sequence " << id << " diverged before its cancellation";
      } else {
        ASSERT_TRUE(o.finished) << "sequence " << id << " never finished";
        ASSERT_EQ(o.tokens, expected) << "sequence " << id << " differs from running alone";
        ASSERT_EQ(o.finish, expected_finish) << "sequence " << id;
        ++finished;
      }
    }
  }
  EXPECT_GT(finished, num_requests / 2);
  EXPECT_GT(d.scheduler.num_preemptions(), 10u) << "KV must be far below demand";
  if (prefix_caching) {
    EXPECT_GT(d.scheduler.block_manager().prefix_hit_tokens(), 0);
  }
  EXPECT_EQ(d.scheduler.num_live(), 0u);
  EXPECT_EQ(d.scheduler.num_unstarted_requests(), 0);
  EXPECT_EQ(d.scheduler.block_manager().num_free_blocks(), config.num_kv_blocks) << "blocks leaked";
  for (BlockId b = 0; b < config.num_kv_blocks; ++b) ASSERT_EQ(d.scheduler.block_manager().ref_count(b), 0);
  EXPECT_TRUE(d.runner.seqs().empty()) << "the runner still holds sequences";

  // A sample of requests really run alone, each in a fresh scheduler with a roomy cache.
  for (size_t k = 0; k < requests.size(); k += requests.size() / 20) {
    const Submitted& r = requests[k];
    SchedulerConfig roomy = config;
    roomy.num_kv_blocks = 400;
    SchedulerDriver alone(roomy, kVocab);
    auto ids = alone.scheduler.add_request(r.prompt, r.sampling, r.stopping, r.n, r.priority);
    alone.run_to_completion();
    for (int32_t i = 0; i < r.n; ++i) {
      const SeqId id = r.ids[static_cast<size_t>(i)];
      if (cancelled.count(id) != 0) continue;
      EXPECT_EQ(alone.outcomes[ids[static_cast<size_t>(i)]].tokens, d.outcomes[id].tokens) << "request " << k;
    }
  }
}

TEST(SchedulerStress, ThousandsOfRequestsWithPrefixCaching) { run_stress(true, 1234, 2000); }
TEST(SchedulerStress, ThousandsOfRequestsWithoutPrefixCaching) { run_stress(false, 99, 1500); }

}  // namespace
}  // namespace tessera::testing
