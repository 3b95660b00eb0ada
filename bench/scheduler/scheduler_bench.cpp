// Scheduler overhead per step at 1,024 running + 64 waiting sequences, next to its floor measured in
// the same run: building the same plan's data (one SequenceWork with one appended token per running
// sequence) with no scheduling at all.
#include "bench/scheduler/scheduler_bench.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/error.h"
#include "scheduler/scheduler.h"

namespace tessera::bench {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// The zero-cost runner: answers every sample = true row with a fixed token.
StepResult zero_cost_result(const StepPlan& plan) {
  StepResult r;
  r.step_id = plan.step_id;
  for (const auto& w : plan.scheduled) {
    if (w.sample) r.sampled.push_back(SampledToken{w.seq_id, 11, 0.0f, {}});
  }
  return r;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

// The floor: one plan's worth of SequenceWork with one appended token each, built from nothing.
double plan_floor_ms(int32_t running, int32_t steps) {
  std::vector<double> times;
  size_t sink = 0;
  for (int32_t s = 0; s < steps; ++s) {
    const auto t0 = Clock::now();
    StepPlan plan;
    plan.step_id = static_cast<uint64_t>(s);
    plan.scheduled.reserve(static_cast<size_t>(running));
    for (int32_t i = 0; i < running; ++i) {
      SequenceWork w;
      w.seq_id = static_cast<SeqId>(i);
      w.appended_token_ids.assign(1, 11);
      w.num_tokens = 1;
      w.sample = true;
      plan.scheduled.push_back(std::move(w));
    }
    StepResult r = zero_cost_result(plan);
    sink += r.sampled.size();
    times.push_back(ms_since(t0));
  }
  TS_ASSERT(sink == static_cast<size_t>(running) * static_cast<size_t>(steps), "floor lost rows");
  return percentile(times, 0.5);
}

}  // namespace

std::string run_scheduler_bench(const SchedulerBenchOptions& o) {
  TS_CHECK(o.running > 0 && o.waiting >= 0 && o.prompt_len > 0 && o.steps > 0, kInvalidArgument,
           "bench scheduler: running {}, waiting {}, prompt_len {}, steps {} must be positive", o.running, o.waiting,
           o.prompt_len, o.steps);
  SchedulerConfig c;
  c.block_size = 16;
  c.max_num_seqs = o.running;
  c.max_num_batched_tokens = std::max(2048, o.running * 2);
  c.max_model_len = o.prompt_len + o.steps + 64;
  const int32_t blocks_per_seq = (c.max_model_len + c.block_size - 1) / c.block_size + 1;
  c.num_kv_blocks = (o.running + 1) * blocks_per_seq;
  c.enable_prefix_caching = o.prefix_caching;
  Scheduler sched(c);
  StoppingParams stop;
  stop.max_tokens = c.max_model_len - o.prompt_len;
  SamplingParams sampling;
  for (int32_t i = 0; i < o.running + o.waiting; ++i) {
    std::vector<TokenId> prompt(static_cast<size_t>(o.prompt_len));
    for (int32_t k = 0; k < o.prompt_len; ++k) prompt[static_cast<size_t>(k)] = (i * 131 + k * 7) % 32000;
    sampling.seed = static_cast<uint64_t>(i) + 1;
    sched.add_request(std::move(prompt), sampling, stop, 1, 0);
  }
  // Warm up until every running slot decodes (all prompts prefilled).
  int warmup = 0;
  for (; warmup < 10000; ++warmup) {
    StepPlan plan = sched.schedule();
    sched.update(zero_cost_result(plan));
    bool all_decode = plan.scheduled.size() == static_cast<size_t>(o.running);
    for (const auto& w : plan.scheduled) all_decode = all_decode && w.num_tokens == 1;
    if (all_decode) break;
  }
  TS_ASSERT(sched.num_running() == static_cast<size_t>(o.running) &&
                sched.num_waiting() == static_cast<size_t>(o.waiting),
            "bench set-up: {} running, {} waiting", sched.num_running(), sched.num_waiting());
  std::vector<double> step_ms, schedule_ms, update_ms;
  step_ms.reserve(static_cast<size_t>(o.steps));
  for (int32_t s = 0; s < o.steps; ++s) {
    const auto t0 = Clock::now();
    StepPlan plan = sched.schedule();
    const double t_sched = ms_since(t0);
    StepResult r = zero_cost_result(plan);
    const auto t1 = Clock::now();
    sched.update(r);
    const double t_update = ms_since(t1);
    step_ms.push_back(ms_since(t0));
    schedule_ms.push_back(t_sched);
    update_ms.push_back(t_update);
    TS_ASSERT(plan.scheduled.size() == static_cast<size_t>(o.running), "step {} scheduled {} sequences", s,
              plan.scheduled.size());
  }
  double mean = 0;
  for (double v : step_ms) mean += v;
  mean /= static_cast<double>(step_ms.size());
  nlohmann::json j;
  j["bench"] = "scheduler";
  j["running"] = o.running;
  j["waiting"] = o.waiting;
  j["steps"] = o.steps;
  j["prefix_caching"] = o.prefix_caching;
  j["warmup_steps"] = warmup;
  j["step_ms_mean"] = mean;
  j["step_ms_p50"] = percentile(step_ms, 0.5);
  j["step_ms_p99"] = percentile(step_ms, 0.99);
  j["schedule_ms_p50"] = percentile(schedule_ms, 0.5);
  j["update_ms_p50"] = percentile(update_ms, 0.5);
  j["plan_floor_ms_p50"] = plan_floor_ms(o.running, std::min(o.steps, 500));
  j["target_ms"] = 0.5;
  j["within_target"] = percentile(step_ms, 0.5) < 0.5;
  return j.dump();
}

}  // namespace tessera::bench
