// InstantExecutor; see instant_executor.h.
#include "bench/frontdoor/instant_executor.h"

#include "common/error.h"

namespace tessera::bench {

InstantExecutor::InstantExecutor(std::vector<TokenId> cycle) : cycle_(std::move(cycle)) {
  TS_CHECK(!cycle_.empty(), kInvalidArgument, "the instant executor needs at least one token to emit");
}

StepResult InstantExecutor::execute(const StepPlan& plan) {
  StepResult r;
  r.step_id = plan.step_id;
  ++steps_;
  for (const auto& w : plan.scheduled) {
    if (!w.sample) continue;
    SampledToken t;
    t.seq_id = w.seq_id;
    t.token = cycle_[emitted_++ % cycle_.size()];
    r.sampled.push_back(std::move(t));
  }
  return r;
}

}  // namespace tessera::bench
