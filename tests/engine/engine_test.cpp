// Engine with the FakeRunner (token-only engine, no model): outputs, admission refusals, draining,
// cancellation, executor failure, deadlines, shutdown, n > 1, metrics.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "scheduler/child_seed.h"
#include "tests/scheduler/fake_runner.h"
#include "tests/scheduler/scheduler_driver.h"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;
constexpr int32_t kVocab = 1000;

EngineConfig small_engine_config() {
  EngineConfig c;
  c.block_size = 4;
  c.num_kv_blocks = 64;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 32;
  c.max_model_len = 200;
  c.max_queue_len = 16;
  c.vocab_size = kVocab;
  return c;
}

GenerationRequest request(int prompt_len, int max_tokens, uint64_t seed) {
  GenerationRequest r;
  r.request_id = "req-" + std::to_string(seed);
  for (int i = 0; i < prompt_len; ++i) r.prompt_token_ids.push_back(static_cast<TokenId>((i * 7 + seed) % kVocab));
  r.sampling.temperature = 0.0f;
  r.seed = seed;
  r.stopping.max_tokens = max_tokens;
  return r;
}

// Reads a stream to its final output (bounded wait); checks exactly one output is final.
std::vector<RequestOutput> collect(RequestStream& s, std::chrono::milliseconds limit = 10s) {
  std::vector<RequestOutput> outs;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    auto o = s.pop(50ms);
    if (!o) continue;
    outs.push_back(std::move(*o));
    if (outs.back().finished) break;
  }
  EXPECT_FALSE(outs.empty());
  if (!outs.empty()) {
    EXPECT_TRUE(outs.back().finished) << "no final output within the limit";
  }
  EXPECT_FALSE(s.pop(20ms).has_value()) << "an output arrived after the final one";
  return outs;
}

std::vector<TokenId> tokens_of(const std::vector<RequestOutput>& outs, int32_t choice) {
  std::vector<TokenId> t;
  for (const auto& o : outs) {
    for (const auto& c : o.choices) {
      if (c.index == choice) t.insert(t.end(), c.token_ids.begin(), c.token_ids.end());
    }
  }
  return t;
}

std::optional<FinishReason> finish_of(const std::vector<RequestOutput>& outs, int32_t choice) {
  for (const auto& o : outs) {
    for (const auto& c : o.choices) {
      if (c.index == choice && c.finish_reason) return c.finish_reason;
    }
  }
  return std::nullopt;
}

struct Harness {
  explicit Harness(EngineConfig config = small_engine_config()) {
    auto r = std::make_unique<FakeRunner>(config.num_kv_blocks, config.block_size, kVocab);
    runner = r.get();
    engine = std::make_unique<Engine>(config, std::move(r), metrics);
  }
  MetricsRegistry metrics;
  FakeRunner* runner = nullptr;  // owned by the engine; hooks set before start()
  std::unique_ptr<Engine> engine;
};

std::vector<TokenId> expected(const GenerationRequest& r, int32_t choice, const EngineConfig& c) {
  return reference_output(r.prompt_token_ids, child_seed(*r.seed, choice), r.stopping, c.eos_token_ids,
                          c.max_model_len, kVocab);
}

TEST(Engine, StreamsTheFakeModelsTokensAndEndsOnce) {
  Harness h;
  h.engine->start();
  auto req = request(10, 12, 5);
  auto s = h.engine->submit(req);
  auto outs = collect(*s);
  EXPECT_EQ(tokens_of(outs, 0), expected(req, 0, h.engine->config()));
  EXPECT_EQ(finish_of(outs, 0), FinishReason::kLength);
  EXPECT_EQ(outs.back().usage.prompt_tokens, 10);
  EXPECT_EQ(outs.back().usage.completion_tokens, 12);
  EXPECT_FALSE(outs.back().error.has_value());
  EXPECT_TRUE(h.engine->health().alive);
  EXPECT_TRUE(h.engine->health().ready);
}

TEST(Engine, ChoicesAndAClientSeedOfZero) {
  Harness h;
  h.engine->start();
  auto req = request(9, 6, 0);
  req.n = 3;
  auto outs = collect(*h.engine->submit(req));
  for (int32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(tokens_of(outs, i), expected(req, i, h.engine->config())) << "choice " << i;
    EXPECT_EQ(finish_of(outs, i), FinishReason::kLength);
  }
  EXPECT_EQ(outs.back().usage.completion_tokens, 18);
}

TEST(Engine, InvalidRequestsAreRefusedWithTheValueSeen) {
  Harness h;
  auto expect_code = [&](GenerationRequest r, ErrorCode code, const std::string& needle) {
    try {
      h.engine->submit(std::move(r));
      ADD_FAILURE() << "accepted a request that should fail with " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto r = request(4, 4, 1);
  r.prompt_token_ids.clear();
  expect_code(r, ErrorCode::kInvalidArgument, "empty");
  r = request(4, 4, 1);
  r.prompt_token_ids[2] = kVocab;
  expect_code(r, ErrorCode::kInvalidArgument, "1000");
  r = request(150, 51, 1);
  expect_code(r, ErrorCode::kInvalidArgument, "201");
  r = request(4, 4, 1);
  r.stopping.stop = {"x"};
  expect_code(r, ErrorCode::kInvalidArgument, "tokenizer");
  r = request(4, 4, 1);
  r.n = 0;
  expect_code(r, ErrorCode::kInvalidArgument, "n must be");
}

TEST(Engine, FullAdmissionQueueRefusesWithResourceExhausted) {
  EngineConfig c = small_engine_config();
  c.max_queue_len = 3;
  Harness h(c);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 3; ++i) streams.push_back(h.engine->submit(request(4, 3, static_cast<uint64_t>(i))));
  try {
    h.engine->submit(request(4, 3, 9));
    ADD_FAILURE() << "a fourth request was admitted past max_queue_len 3";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
  }
  h.engine->start();
  for (auto& s : streams) collect(*s);
  auto later = h.engine->submit(request(4, 3, 10));  // room again
  collect(*later);
}

TEST(Engine, DrainingRefusesNewWorkAndFinishesWhatRuns) {
  Harness h;
  h.runner->before_step = [](const StepPlan&) { std::this_thread::sleep_for(1ms); };
  h.engine->start();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(h.engine->submit(request(6, 10, static_cast<uint64_t>(i))));
  h.engine->begin_drain();
  EXPECT_FALSE(h.engine->health().ready);
  EXPECT_TRUE(h.engine->health().alive);
  EXPECT_EQ(h.engine->health().reason, "draining");
  try {
    h.engine->submit(request(4, 3, 9));
    ADD_FAILURE() << "admitted while draining";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
  for (auto& s : streams) {
    auto outs = collect(*s);
    EXPECT_EQ(finish_of(outs, 0), FinishReason::kLength);
  }
  for (int i = 0; i < 100 && !h.engine->drained(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(h.engine->drained());
}

TEST(Engine, CancellationEndsTheRequestAndFreesItsBlocks) {
  Harness h;
  // From step 3 on the runner waits until the test has cancelled, so the cancellation lands
  // mid-generation however slow the machine is.
  std::atomic<bool> cancelled{false};
  int steps = 0;
  h.runner->before_step = [&](const StepPlan&) {
    if (++steps < 3) return;
    for (int i = 0; i < 5000 && !cancelled.load(); ++i) std::this_thread::sleep_for(1ms);
  };
  h.engine->start();
  auto s = h.engine->submit(request(20, 150, 3));
  ASSERT_TRUE(s->pop(5s).has_value());
  Gauge& kv = h.metrics.gauge("tessera_kv_cache_usage_ratio", "Fraction of KV blocks in use");
  for (int i = 0; i < 1000 && kv.value() == 0.0; ++i) std::this_thread::sleep_for(2ms);  // set after the step
  EXPECT_GT(kv.value(), 0.0);
  s->cancel();
  cancelled.store(true);
  auto outs = collect(*s);
  EXPECT_EQ(finish_of(outs, 0), FinishReason::kCancelled);
  EXPECT_LT(tokens_of(outs, 0).size(), 10u);
  for (int i = 0; i < 200 && kv.value() > 0.0; ++i) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(kv.value(), 0.0) << "the cancelled request's blocks were not freed";
  EXPECT_EQ(h.engine->num_unfinished_requests(), 0);
}

TEST(Engine, ExecutorFailureEndsEveryRequestWithTheErrorAndFlipsHealth) {
  Harness h;
  int steps = 0;
  h.runner->before_step = [&steps](const StepPlan&) {
    std::this_thread::sleep_for(1ms);
    if (++steps == 6) TS_THROW(kUnavailable, "rank 3 lost (test)");
  };
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 5; ++i) streams.push_back(h.engine->submit(request(5, 100, static_cast<uint64_t>(i))));
  h.engine->start();
  for (auto& s : streams) {
    auto outs = collect(*s);
    ASSERT_TRUE(outs.back().error.has_value());
    EXPECT_EQ(outs.back().error->code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(outs.back().error->what()).find("rank 3 lost"), std::string::npos);
    EXPECT_EQ(finish_of(outs, 0), FinishReason::kAborted);
  }
  for (int i = 0; i < 100 && h.engine->health().alive; ++i) std::this_thread::sleep_for(5ms);
  EngineHealth health = h.engine->health();
  EXPECT_FALSE(health.alive);
  EXPECT_FALSE(health.ready);
  EXPECT_NE(health.reason.find("rank 3 lost"), std::string::npos) << health.reason;
  try {
    h.engine->submit(request(4, 3, 9));
    ADD_FAILURE() << "a failed engine admitted a request";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
  EXPECT_EQ(h.engine->num_unfinished_requests(), 0);
}

TEST(Engine, DeadlineEndsARequestThatRunsPastIt) {
  Harness h;
  h.runner->before_step = [](const StepPlan&) { std::this_thread::sleep_for(2ms); };
  h.engine->start();
  auto r = request(5, 190, 4);
  r.deadline = std::chrono::steady_clock::now() + 30ms;
  auto outs = collect(*h.engine->submit(r));
  EXPECT_EQ(finish_of(outs, 0), FinishReason::kDeadline);
  EXPECT_LT(tokens_of(outs, 0).size(), 190u);
  // A deadline already past ends the request before it computes anything.
  auto late = request(5, 10, 5);
  late.deadline = std::chrono::steady_clock::now() - 1ms;
  auto outs2 = collect(*h.engine->submit(late));
  EXPECT_EQ(finish_of(outs2, 0), FinishReason::kDeadline);
  EXPECT_TRUE(tokens_of(outs2, 0).empty());
}

TEST(Engine, DestructionAbortsOutstandingRequests) {
  std::shared_ptr<RequestStream> running, queued;
  {
    Harness h;
    h.runner->before_step = [](const StepPlan&) { std::this_thread::sleep_for(1ms); };
    queued = h.engine->submit(request(5, 100, 1));  // never started: still in the inbox
    Harness h2;
    h2.runner->before_step = [](const StepPlan&) { std::this_thread::sleep_for(5ms); };
    h2.engine->start();
    running = h2.engine->submit(request(5, 190, 2));
    ASSERT_TRUE(running->pop(5s).has_value());
  }
  for (auto* s : {queued.get(), running.get()}) {
    auto outs = collect(*s, 1s);
    EXPECT_EQ(finish_of(outs, 0), FinishReason::kAborted);
    ASSERT_TRUE(outs.back().error.has_value());
    EXPECT_EQ(outs.back().error->code(), ErrorCode::kUnavailable);
  }
}

TEST(Engine, ASlowConsumerNeverHoldsUpOtherRequests) {
  Harness h;
  h.engine->start();
  auto unread = h.engine->submit(request(8, 40, 1));  // nobody reads this one for now
  auto other = h.engine->submit(request(8, 40, 2));
  auto outs = collect(*other);
  EXPECT_EQ(finish_of(outs, 0), FinishReason::kLength);
  // Everything of the unread request was queued meanwhile, nothing lost.
  auto late = collect(*unread);
  EXPECT_EQ(tokens_of(late, 0).size(), 40u);
}

TEST(Engine, LogprobsTravelWithTheirTokens) {
  Harness h;
  h.engine->start();
  auto req = request(6, 9, 8);
  req.sampling.logprobs = 0;
  auto outs = collect(*h.engine->submit(req));
  size_t tokens = 0, logprobs = 0;
  for (const auto& o : outs) {
    for (const auto& c : o.choices) {
      tokens += c.token_ids.size();
      logprobs += c.logprobs.size();
      for (size_t i = 0; i < c.logprobs.size(); ++i) EXPECT_EQ(c.logprobs[i].token, c.token_ids[i]);
    }
  }
  EXPECT_EQ(tokens, 9u);
  EXPECT_EQ(logprobs, 9u);
}

TEST(Engine, ManyConcurrentSubmittersUnderKvPressureAllFinishCorrectly) {
  EngineConfig c = small_engine_config();
  c.num_kv_blocks = 50;
  c.max_queue_len = 1000;
  Harness h(c);
  h.engine->start();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        auto req = request(5 + (i * 13 + t) % 60, 1 + (i * 7) % 30, static_cast<uint64_t>(t * 100 + i));
        auto outs = collect(*h.engine->submit(req));
        if (tokens_of(outs, 0) != expected(req, 0, c)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  const std::string text = h.metrics.render_prometheus();
  for (const char* name : {"tessera_queue_length", "tessera_running_sequences", "tessera_preemptions_total",
                           "tessera_kv_cache_usage_ratio", "tessera_prefix_cache_hit_rate",
                           "tessera_step_batch_size_bucket", "tessera_step_seconds_bucket", "tessera_step_host_gap_seconds_bucket",
                           "tessera_time_to_first_token_seconds_count",
                           "tessera_inter_token_latency_seconds_count", "tessera_generation_tokens_total"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
}

// The value of an unlabelled sample `name` in the Prometheus text, or -1 when absent.
double sample_value(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const size_t at = text.find(key);
  return at == std::string::npos ? -1.0 : std::stod(text.substr(at + key.size()));
}

TEST(Engine, StepTimesAndHostGapsCountOnlyBackToBackSteps) {
  Harness h;
  h.runner->before_step = [](const StepPlan&) { std::this_thread::sleep_for(2ms); };
  h.engine->start();
  auto a = request(10, 6, 1);
  EXPECT_EQ(tokens_of(collect(*h.engine->submit(a)), 0), expected(a, 0, h.engine->config()));
  std::this_thread::sleep_for(300ms);  // the loop idles: the next step's start is not a host gap
  auto b = request(7, 5, 2);
  EXPECT_EQ(tokens_of(collect(*h.engine->submit(b)), 0), expected(b, 0, h.engine->config()));
  std::this_thread::sleep_for(100ms);
  h.engine.reset();  // joins the loop: every step it began is observed
  const std::string text = h.metrics.render_prometheus();
  const double steps = sample_value(text, "tessera_step_seconds_count");
  const double gaps = sample_value(text, "tessera_step_host_gap_seconds_count");
  // Each request: one prefill step, then a decode step per further token (at least 5 + 4).
  EXPECT_GE(steps, 11.0);
  EXPECT_EQ(gaps, steps - 2.0) << "one gap per step but the first of each busy period";
  EXPECT_GE(sample_value(text, "tessera_step_seconds_sum"), steps * 0.002);
  EXPECT_GE(sample_value(text, "tessera_step_host_gap_seconds_sum"), 0.0);
}

}  // namespace
}  // namespace tessera::testing
