// runner_dtype: the --dtype flag's values per device, refused by name when unknown or unsupported.
#include "cli/dtype_flag.h"

#include "common/error.h"

namespace tessera::cli {

DType runner_dtype(const std::string& flag, const std::string& device) {
  const bool f32 = flag == "float32" || flag == "fp32" || flag == "float";
  const bool b16 = flag == "bfloat16" || flag == "bf16";
  TS_CHECK(flag == "auto" || f32 || b16, kInvalidArgument, "--dtype must be auto, bfloat16 or float32, got '{}'", flag);
  if (device == "cuda") return f32 ? DType::kF32 : DType::kBF16;
  TS_CHECK(!b16, kUnimplemented, "--dtype {}: the {} backend computes in float32 only (use auto or float32)", flag,
           device);
  return DType::kF32;
}

}  // namespace tessera::cli
