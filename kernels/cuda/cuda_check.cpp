// The throwing half of CUDA_CHECK: builds the tessera::Error message on the host compiler.
#include "kernels/cuda/cuda_check.h"

#include "common/error.h"

namespace tessera::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  const ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::kResourceExhausted : ErrorCode::kInternal;
  throw Error(code, fmt::format("{}:{}: {} failed: {} ({})", file, line, expr, cudaGetErrorString(err),
                                cudaGetErrorName(err)));
}

void throw_cublas_error(int status, const char* expr, const char* file, int line) {
  throw Error(ErrorCode::kInternal, fmt::format("{}:{}: {} failed: cuBLAS status {}", file, line, expr, status));
}

}  // namespace tessera::cuda
