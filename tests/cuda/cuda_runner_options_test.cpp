// CudaRunnerOptions checked by the CudaRunner constructor before it touches a device, so these run
// everywhere (CI has no GPU): a MLP chunk too small for the residual-adding GEMM (which is cuBLASLt
// only, more than kSkinnyMaxM rows) is refused with a message naming the value.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "model/cuda_runner.h"
#include "model/default_model.h"
#include "model/model_config.h"

namespace tessera::cuda {
namespace {

TEST(CudaRunnerOptions, MlpChunkBelowTheLimitIsRefusedBeforeAnyDevice) {
  CudaRunnerOptions o;
  o.prefill_mlp_chunk_rows = 129;
  try {
    CudaRunner r(ModelConfig::from_json(default_model_config_json()), o);
    FAIL() << "a 129-row MLP chunk was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("129"), std::string::npos) << e.what();
  }
}

TEST(CudaRunnerOptions, MlpChunkOfNegativeRowsIsRefused) {
  CudaRunnerOptions o;
  o.prefill_mlp_chunk_rows = -4;
  try {
    CudaRunner r(ModelConfig::from_json(default_model_config_json()), o);
    FAIL() << "a negative MLP chunk was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace tessera::cuda
