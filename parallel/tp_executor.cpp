// Plan delivery to every rank and the worker loop (see tp_executor.h).
#include "parallel/tp_executor.h"

#include <spdlog/spdlog.h>

#include "parallel/plan_seal.h"
#include "parallel/step_plan_codec.h"

namespace tessera::parallel {
namespace {

enum class PlanKind : uint8_t { kPlan = 1, kStop = 2 };

std::vector<uint8_t> frame_plan(PlanSeal& seal, PlanKind kind, const StepPlan* plan) {
  const std::vector<uint8_t> body = plan ? encode_step_plan(*plan) : std::vector<uint8_t>{};
  return seal.seal(static_cast<uint8_t>(kind), body);
}

}  // namespace

TpStepExecutor::TpStepExecutor(RankGroup& group, std::unique_ptr<StepExecutor> local_shard,
                               std::function<void(const std::string&)> on_failure)
    : group_(group),
      local_(std::move(local_shard)),
      on_failure_(std::move(on_failure)),
      seal_(std::make_unique<PlanSeal>(group.secret())) {
  TS_CHECK(group.rank() == 0, kInvalidArgument, "the TP step executor runs on rank 0, not rank {}", group.rank());
  TS_CHECK(local_ != nullptr, kInvalidArgument, "the TP step executor needs rank 0's shard executor");
}

TpStepExecutor::~TpStepExecutor() {
  if (failed_ || group_.health().failed()) return;
  try {
    group_.comm().send_message_to_all(frame_plan(*seal_, PlanKind::kStop, nullptr));
    group_.shutdown();
  } catch (const std::exception& e) {
    spdlog::warn("tensor-parallel shutdown: {}", e.what());
  }
}

void TpStepExecutor::fail(const std::string& reason, ErrorCode code) {
  if (!failed_) {
    failed_ = true;
    spdlog::error("tensor-parallel step failed, aborting the group: {}", reason);
    group_.abort(reason);
    if (on_failure_) on_failure_(reason);
  }
  throw Error(code, reason);
}

StepResult TpStepExecutor::execute(const StepPlan& plan) {
  if (failed_ || group_.health().failed())
    fail(fmt::format("tensor-parallel group lost: {}", group_.health().failed() ? group_.health().reason()
                                                                                  : std::string("an earlier step failed")),
         ErrorCode::kUnavailable);
  try {
    group_.comm().send_message_to_all(frame_plan(*seal_, PlanKind::kPlan, &plan));
    return local_->execute(plan);
  } catch (const Error& e) {
    // A lost rank surfaces as kUnavailable; anything else still leaves the ranks out of step.
    const bool lost = e.code() == ErrorCode::kUnavailable || group_.health().failed();
    fail(lost ? std::string(e.what()) : fmt::format("rank 0's shard failed: {}", e.what()),
         lost ? ErrorCode::kUnavailable : e.code());
  }
}

int run_worker_loop(RankGroup& group, StepExecutor& local_shard) {
  PlanSeal seal(group.secret());
  for (;;) {
    std::vector<uint8_t> msg;
    try {
      msg = group.comm().receive_message(0, kMaxPlanBytes + PlanSeal::kOverhead, std::nullopt);
      const PlanSeal::Opened opened = seal.open(msg);
      if (opened.kind == static_cast<uint8_t>(PlanKind::kStop)) {
        group.shutdown();
        return 0;
      }
      TS_CHECK(opened.kind == static_cast<uint8_t>(PlanKind::kPlan), kDataLoss, "unknown plan message kind {}",
               opened.kind);
      const StepPlan plan = decode_step_plan(opened.body);
      local_shard.execute(plan);
    } catch (const Error& e) {
      group.abort(fmt::format("rank {} failed: {}", group.rank(), e.what()));
      throw;
    }
  }
}

}  // namespace tessera::parallel
