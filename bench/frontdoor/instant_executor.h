// InstantExecutor: a StepExecutor that does no model work: every sequence due a sample gets the next
// token of a fixed cycle at once. The front-door benchmark runs the real engine and both doors over
// it, so what it measures is the serving overhead alone. A benchmark harness, never a runner.
#pragma once

#include <vector>

#include "scheduler/step_plan.h"

namespace tessera::bench {

class InstantExecutor : public StepExecutor {
 public:
  // `cycle`: the tokens emitted, in order, per sequence (non-empty; never an EOS id).
  explicit InstantExecutor(std::vector<TokenId> cycle);
  StepResult execute(const StepPlan& plan) override;
  uint64_t steps() const { return steps_; }

 private:
  std::vector<TokenId> cycle_;
  uint64_t steps_ = 0;
  uint64_t emitted_ = 0;
};

}  // namespace tessera::bench
