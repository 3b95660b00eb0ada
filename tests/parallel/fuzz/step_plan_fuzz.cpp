// libFuzzer target over the StepPlan / StepResult decoders (what a worker does with bytes from the
// network): any byte string either decodes, and then re-encodes to exactly the same bytes (the
// encoding is canonical), or throws tessera::Error(kDataLoss); never crashes, hangs or over-reads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/error.h"
#include "parallel/step_plan_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  try {
    const tessera::StepPlan plan = tessera::parallel::decode_step_plan(in);
    const auto again = tessera::parallel::encode_step_plan(plan);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  } catch (const tessera::Error& e) {
    if (e.code() != tessera::ErrorCode::kDataLoss) std::abort();
  }
  try {
    const tessera::StepResult r = tessera::parallel::decode_step_result(in);
    const auto again = tessera::parallel::encode_step_result(r);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  } catch (const tessera::Error& e) {
    if (e.code() != tessera::ErrorCode::kDataLoss) std::abort();
  }
  return 0;
}
