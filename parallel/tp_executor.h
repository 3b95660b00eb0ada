// Rank 0's tensor-parallel StepExecutor, and the loop the other ranks run. Rank 0 sends every
// StepPlan (wire-encoded, sealed by PlanSeal) to every rank over UCX, then runs its own shard; each rank's shard
// executor (the model runner built with a ShardSpec) does its all-reduces / all-gathers inside
// execute(), so after it returns rank 0 holds the sampled tokens. A Stop message ends the workers.
// On any failure (a rank lost, a collective timed out, the local shard threw) the group is aborted,
// every later call throws kUnavailable, and on_failure runs once (serve uses it to report not-ready
// and exit non-zero so the supervisor restarts the job).
// It must never continue after a failure: the ranks' KV caches are no longer in step.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "parallel/plan_seal.h"
#include "parallel/rank_group.h"
#include "scheduler/step_plan.h"

namespace tessera::parallel {

// Largest encoded StepPlan a worker accepts (a plan with 1M new tokens is ~4 MB).
inline constexpr size_t kMaxPlanBytes = 256u << 20;

class TpStepExecutor final : public StepExecutor {
 public:
  TpStepExecutor(RankGroup& group, std::unique_ptr<StepExecutor> local_shard,
                 std::function<void(const std::string& reason)> on_failure = {});
  ~TpStepExecutor() override;  // healthy: sends Stop and leaves the group in order

  StepResult execute(const StepPlan& plan) override;
  bool failed() const { return failed_; }

 private:
  [[noreturn]] void fail(const std::string& reason, ErrorCode code);

  RankGroup& group_;
  std::unique_ptr<StepExecutor> local_;
  std::function<void(const std::string&)> on_failure_;
  std::unique_ptr<PlanSeal> seal_;  // numbers and authenticates every plan message
  bool failed_ = false;
};

// A worker rank's life: receive plans from rank 0 and run them on the local shard until Stop.
// Returns 0 after an orderly Stop; throws tessera::Error (kUnavailable when the group was lost).
int run_worker_loop(RankGroup& group, StepExecutor& local_shard);

}  // namespace tessera::parallel
