// The cuBLASLt algorithms Gemm's tuner times for one shape (gemm.cpp): the heuristic's, plus split-K
// copies for skinny shapes, each copy accepted by cublasLtMatmulAlgoCheck for the descriptors within
// the workspace. It times nothing. (Cluster-shape and swizzled copies for long steps were tried on
// nvidia-h200 and never won, in bursts or at the power cap: docs/CUDA.md.)
#pragma once

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/split_k_guard.h"

namespace tessera::cuda {

// The matmul's descriptors (Gemm::Plan's, which is private).
struct MatmulDescs {
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t a, b, c;
};

// The candidates in a fixed order (a tuning cache stores indices into it): the heuristic's first. None
// splits k where split_k_safe (split_k_guard.h) refuses it.
std::vector<cublasLtMatmulAlgo_t> cublas_candidates(cublasLtHandle_t handle, const MatmulDescs& p, int32_t m,
                                                    int32_t k, size_t workspace_bytes);
// The k splits an algorithm is configured with (1 when it does not split or does not say).
int64_t algo_splits(const cublasLtMatmulAlgo_t& algo);

}  // namespace tessera::cuda
