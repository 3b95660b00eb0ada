// cuBLASLt projection wrapper: per-shape plan = descriptors + the fastest of the heuristic's
// candidates, timed with CUDA events on the caller's buffers.
#include "kernels/cuda/gemm.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv.cuh"

namespace tessera::cuda {

Gemm::Gemm(void* workspace, size_t workspace_bytes) : workspace_(workspace), workspace_bytes_(workspace_bytes) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
  }
  for (auto& [key, p] : plans_f32_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
  }
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

void Gemm::warm(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y,
                cudaStream_t stream) {
  plan_for(m, n, k, out_f32, x, w, y, stream);
}

Gemm::Plan& Gemm::plan_for(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y,
                           cudaStream_t stream) {
  const Key key{m, n, k, out_f32};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TS_ASSERT(capture == cudaStreamCaptureStatusNone, "GEMM shape m={} n={} k={} first seen during graph capture", m, n,
            k);
  Plan p;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  // Column-major view: yᵀ[n, m] = w[n, k] (stored as kxn, transposed) · xᵀ (stored as kxm).
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, k, n, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, k, m, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, out_f32 ? CUDA_R_32F : CUDA_R_16BF, n, m, n));
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                                    sizeof(workspace_bytes_)));
  std::vector<cublasLtMatmulHeuristicResult_t> results(8);
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref,
                                              static_cast<int>(results.size()), results.data(), &found));
  cublasLtMatmulPreferenceDestroy(pref);
  TS_CHECK(found > 0, kInternal, "cuBLASLt has no algorithm for m={} n={} k={}", m, n, k);

  // Time each candidate (one warm-up, then the median of 5) and keep the fastest.
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  const float alpha = 1.0f, beta = 0.0f;
  float best = std::numeric_limits<float>::infinity();
  int best_i = 0;
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    std::vector<float> times;
    bool ok = true;
    for (int rep = 0; rep < 6 && ok; ++rep) {
      CUDA_CHECK(cudaEventRecord(start, stream));
      ok = cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &results[i].algo, workspace_,
                          workspace_bytes_, stream) == CUBLAS_STATUS_SUCCESS;
      CUDA_CHECK(cudaEventRecord(stop, stream));
      CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (rep > 0) times.push_back(ms);
    }
    if (!ok) continue;
    std::sort(times.begin(), times.end());
    if (times[times.size() / 2] < best) {
      best = times[times.size() / 2];
      best_i = i;
    }
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  TS_CHECK(best < std::numeric_limits<float>::infinity(), kInternal, "no cuBLASLt algorithm ran for m={} n={} k={}", m,
           n, k);
  p.algo = results[best_i].algo;
  p.ms = best;
  // Decode-sized shapes: time the streaming gemv variants too, and keep whichever is fastest.
  if (allow_gemv_ && m <= kGemvMaxM && k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
      reinterpret_cast<uintptr_t>(w) % 16 == 0) {
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    for (int v = 0; v < kGemvVariants; ++v) {
      std::vector<float> times;
      for (int rep = 0; rep < 6; ++rep) {
        CUDA_CHECK(cudaEventRecord(start, stream));
        gemv(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w), y, m, n, k, out_f32, v,
             stream);
        CUDA_CHECK(cudaEventRecord(stop, stream));
        CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        if (rep > 0) times.push_back(ms);
      }
      std::sort(times.begin(), times.end());
      if (times[times.size() / 2] < p.ms) {
        p.ms = times[times.size() / 2];
        p.gemv_variant = v;
      }
    }
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
  }
  return plans_.emplace(key, p).first->second;
}

int Gemm::chosen_gemv_variant(int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32});
  return it == plans_.end() ? -1 : it->second.gemv_variant;
}

void Gemm::run(const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
               cudaStream_t stream) {
  if (m == 0) return;
  Plan& p = plan_for(m, n, k, out_f32, x, w, y, stream);
  if (p.gemv_variant >= 0) {
    gemv(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w), y, m, n, k, out_f32,
         p.gemv_variant, stream);
    return;
  }
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace_,
                              workspace_bytes_, stream));
}

// The exact mode: fp32 everywhere, compute type CUBLAS_COMPUTE_32F (not the _FAST_TF32 variants, so
// no input is rounded to TF32).
Gemm::Plan& Gemm::plan_f32_for(int32_t m, int32_t n, int32_t k, const float* x, const float* w, float* y,
                               cudaStream_t stream) {
  const auto key = std::make_tuple(m, n, k);
  auto it = plans_f32_.find(key);
  if (it != plans_f32_.end()) return it->second;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TS_ASSERT(capture == cudaStreamCaptureStatusNone, "fp32 GEMM shape m={} n={} k={} first seen during graph capture",
            m, n, k);
  Plan p;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_32F, k, n, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_32F, k, m, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, n, m, n));
  try {
    choose_algo(p, x, w, y, m, n, k, stream);
  } catch (...) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
    throw;
  }
  return plans_f32_.emplace(key, p).first->second;
}

void Gemm::choose_algo(Plan& p, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                       cudaStream_t stream) {
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                                    sizeof(workspace_bytes_)));
  std::vector<cublasLtMatmulHeuristicResult_t> results(8);
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref,
                                                           static_cast<int>(results.size()), results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  CUBLAS_CHECK(st);
  TS_CHECK(found > 0, kInternal, "cuBLASLt has no algorithm for m={} n={} k={}", m, n, k);
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  const float alpha = 1.0f, beta = 0.0f;
  float best = std::numeric_limits<float>::infinity();
  int best_i = -1;
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    std::vector<float> times;
    bool ok = true;
    for (int rep = 0; rep < 6 && ok; ++rep) {  // one warm-up, then the median of 5
      CUDA_CHECK(cudaEventRecord(start, stream));
      ok = cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &results[i].algo, workspace_,
                          workspace_bytes_, stream) == CUBLAS_STATUS_SUCCESS;
      CUDA_CHECK(cudaEventRecord(stop, stream));
      CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (rep > 0) times.push_back(ms);
    }
    if (!ok) continue;
    std::sort(times.begin(), times.end());
    if (times[times.size() / 2] < best) {
      best = times[times.size() / 2];
      best_i = i;
    }
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  TS_CHECK(best_i >= 0, kInternal, "no cuBLASLt algorithm ran for m={} n={} k={}", m, n, k);
  p.algo = results[best_i].algo;
  p.ms = best;
}

void Gemm::run_f32(const float* x, const float* w, float* y, int32_t m, int32_t n, int32_t k, cudaStream_t stream) {
  if (m == 0) return;
  Plan& p = plan_f32_for(m, n, k, x, w, y, stream);
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace_,
                              workspace_bytes_, stream));
}

}  // namespace tessera::cuda
