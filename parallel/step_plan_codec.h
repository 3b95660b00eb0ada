// Binary encoding of StepPlan (rank 0 -> every rank) and StepResult, field by field, versioned.
// decode_* validate every count and the plan's structural invariants and throw
// tessera::Error(kDataLoss) naming the field; random or hostile bytes never crash the decoder.
// It must never change the meaning of a field: encode(decode(x)) == x for every valid plan.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "scheduler/step_plan.h"

namespace tessera::parallel {

// Bumped whenever the layout of StepPlan or StepResult on the wire changes.
inline constexpr uint32_t kStepPlanWireVersion = 1;

std::vector<uint8_t> encode_step_plan(const StepPlan& plan);
StepPlan decode_step_plan(std::span<const uint8_t> bytes);

std::vector<uint8_t> encode_step_result(const StepResult& result);
StepResult decode_step_result(std::span<const uint8_t> bytes);

// Field-by-field equality (floats compared bitwise-equal as values), for tests and checks.
bool same_plan(const StepPlan& a, const StepPlan& b);

}  // namespace tessera::parallel
