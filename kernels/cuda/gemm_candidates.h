// The cuBLASLt algorithms Gemm's tuner times for one shape (gemm.cpp): the heuristic's, plus split-K
// copies for skinny shapes, each copy accepted by cublasLtMatmulAlgoCheck for the descriptors within
// the workspace. It times nothing. (Cluster-shape and swizzled copies for long steps were tried on
// nvidia-h200 and never won, in bursts or at the power cap: docs/CUDA.md.)
#pragma once

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tessera::cuda {

// The matmul's descriptors (Gemm::Plan's, which is private).
struct MatmulDescs {
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t a, b, c;
};

// The candidates in a fixed order (a tuning cache stores indices into it): the heuristic's first.
std::vector<cublasLtMatmulAlgo_t> cublas_candidates(cublasLtHandle_t handle, const MatmulDescs& p, int32_t m,
                                                    size_t workspace_bytes);

}  // namespace tessera::cuda
