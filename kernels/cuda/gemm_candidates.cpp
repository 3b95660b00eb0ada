// Gemm's candidate list (gemm_candidates.h): the heuristic's algorithms and their split-K copies.
// It never times or runs a matmul.
#include "kernels/cuda/gemm_candidates.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"

namespace tessera::cuda {
namespace {

// cuBLASLt candidates for one shape: up to kHeuristicAlgos from the heuristic and, for rows <=
// kSplitKMaxRows (where a few output tiles leave most SMs idle: m=64 qkv ran at 43% of copy
// bandwidth on the heuristic's best 8), copies of the first kSplitKBases split-K-capable ones with
// each split count, reduced in fp32 in the workspace (CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE: a
// separate deterministic pass; in-place and output-type reductions would add bf16 partial sums),
// where cublasLtMatmulAlgoCheck accepts them within the workspace. The tuner times them all, once
// per shape.
constexpr int kHeuristicAlgos = 32;
constexpr int kSplitKBases = 6;
constexpr int32_t kSplitKMaxRows = 256;
constexpr uint32_t kSplitKCounts[] = {2, 3, 4, 6, 8, 12, 16};

void add_split_k_copies(cublasLtHandle_t handle, const MatmulDescs& p, const cublasLtMatmulAlgo_t algo, int32_t k,
                        size_t workspace_bytes, std::vector<cublasLtMatmulAlgo_t>* out) {
  if (!split_k_safe(k, 2)) return;  // cuBLASLt may drop k's tail when it splits (split_k_guard.h)
  int32_t split_ok = 0;
  uint32_t schemes = 0;
  size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &split_ok, sizeof(split_ok),
                                        &written) != CUBLAS_STATUS_SUCCESS ||
      split_ok == 0 ||
      cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes),
                                        &written) != CUBLAS_STATUS_SUCCESS)
    return;
  const uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  if ((schemes & scheme) == 0) return;
  for (uint32_t splits : kSplitKCounts) {
    cublasLtMatmulAlgo_t v = algo;
    cublasLtMatmulHeuristicResult_t check{};
    if (cublasLtMatmulAlgoConfigSetAttribute(&v, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof(splits)) !=
            CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoConfigSetAttribute(&v, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme)) !=
            CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoCheck(handle, p.op, p.a, p.b, p.c, p.c, &v, &check) != CUBLAS_STATUS_SUCCESS ||
        check.state != CUBLAS_STATUS_SUCCESS || check.workspaceSize > workspace_bytes)
      continue;
    out->push_back(v);
  }
}

}  // namespace

int64_t algo_splits(const cublasLtMatmulAlgo_t& algo) {
  uint32_t splits = 1;
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof(splits),
                                           &written) != CUBLAS_STATUS_SUCCESS)
    return 1;
  return splits;
}

std::vector<cublasLtMatmulAlgo_t> cublas_candidates(cublasLtHandle_t handle, const MatmulDescs& p, int32_t m,
                                                    int32_t k, size_t workspace_bytes) {
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                    sizeof(workspace_bytes)));
  std::vector<cublasLtMatmulHeuristicResult_t> results(kHeuristicAlgos);
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(handle, p.op, p.a, p.b, p.c, p.c, pref, kHeuristicAlgos, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  CUBLAS_CHECK(st);
  std::vector<cublasLtMatmulAlgo_t> out;
  for (int i = 0; i < found; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS && split_k_safe(k, algo_splits(results[i].algo)))
      out.push_back(results[i].algo);
  const size_t heuristic = out.size();
  if (m <= kSplitKMaxRows)
    for (size_t i = 0; i < std::min<size_t>(heuristic, kSplitKBases); ++i)
      add_split_k_copies(handle, p, out[i], k, workspace_bytes, &out);
  return out;
}

}  // namespace tessera::cuda
