// The GEMM tuning cache on disk: the autotuner's choices (kernels/cuda/gemm_choice.h) for one device
// and library build, so a restarted server makes the same choices (bitwise the same outputs) without
// timing again. A JSON file; it is a cache, never trusted: a missing, unreadable, malformed or foreign
// file (another device, compute capability or cuBLASLt / CUDA runtime version) is ignored with a
// warning naming why, and every value is range-checked before Gemm sees it (which checks again).
// Plain C++: no CUDA calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/gemm_choice.h"

namespace tessera {

struct GemmTuningIdentity {
  std::string device;                // cudaDeviceProp::name
  int32_t compute_capability = 0;    // major * 10 + minor
  int64_t cublaslt_version = 0;      // cublasLtGetVersion()
  int32_t cuda_runtime_version = 0;  // cudaRuntimeGetVersion()
  bool operator==(const GemmTuningIdentity&) const = default;
};

// The choices stored in `path` for `identity`; empty (and one warning logged) when there are none to use.
std::vector<cuda::GemmChoice> read_gemm_tuning(const std::string& path, const GemmTuningIdentity& identity);

// Writes `choices` for `identity` to `path` through a temporary file renamed over it (readers never
// see a partial file). Throws tessera::Error (kInternal) naming the path when it cannot be written.
void write_gemm_tuning(const std::string& path, const GemmTuningIdentity& identity,
                       const std::vector<cuda::GemmChoice>& choices);

}  // namespace tessera
