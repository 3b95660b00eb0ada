// CUDA_CHECK / CUDA_CHECK_LAUNCH: turn every failed CUDA runtime call, and every failed launch, into a
// tessera::Error naming the call, file:line and CUDA's error string. Included by .cu and .cpp files;
// it must never include fmt or spdlog (nvcc compiles it), so the throw lives in cuda_check.cpp.
#pragma once

#include <cuda_runtime.h>

namespace tessera::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(int status, const char* expr, const char* file, int line);

}  // namespace tessera::cuda

#define CUDA_CHECK(expr)                                                                      \
  do {                                                                                        \
    cudaError_t tessera_cuda_err_ = (expr);                                                   \
    if (tessera_cuda_err_ != cudaSuccess)                                                     \
      ::tessera::cuda::throw_cuda_error(tessera_cuda_err_, #expr, __FILE__, __LINE__);        \
  } while (0)

// After every kernel launch: launch-configuration errors surface here, not at a later call.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CUBLAS_CHECK(expr)                                                                    \
  do {                                                                                        \
    int tessera_cublas_st_ = static_cast<int>(expr);                                          \
    if (tessera_cublas_st_ != 0)                                                              \
      ::tessera::cuda::throw_cublas_error(tessera_cublas_st_, #expr, __FILE__, __LINE__);     \
  } while (0)
