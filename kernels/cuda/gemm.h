// Dense projections on cuBLASLt: y[m, n] = x[m, k] · w[n, k]ᵀ (the nn.Linear layout), bf16 inputs,
// fp32 accumulation, bf16 or fp32 output. Up to 8 rows go to the streaming gemv kernel; above, the algorithm for each (m, n, k, out type) is chosen once
// by cuBLASLt's heuristic plus timing of its candidates, then cached. Owns only the cuBLASLt handle
// and the cache; the workspace is the caller's. Not thread-safe (one per runner stream).
// The exact (fp32) mode's projections take run_f32: fp32 in and out, CUBLAS_COMPUTE_32F (never TF32),
// always cuBLASLt.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

namespace tessera::cuda {

class Gemm {
 public:
  Gemm(void* workspace, size_t workspace_bytes);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // x, w bf16; y bf16 (out_f32 = false) or fp32. Must not be first called for a shape while the
  // stream is being captured into a graph (timing needs real launches): call warm() first.
  void run(const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32, cudaStream_t stream);
  // The chosen path for a shape, once run/warm has seen it: -1 cuBLASLt, else the gemv variant.
  int chosen_gemv_variant(int32_t m, int32_t n, int32_t k, bool out_f32) const;
  // Off: never use the gemv kernel (for benchmarks comparing the two).
  void set_allow_gemv(bool allow) { allow_gemv_ = allow; }
  // Chooses and caches the algorithm for a shape (runs timing launches on scratch buffers).
  void warm(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y, cudaStream_t stream);
  // fp32 x, w and y; the algorithm is chosen (timed) on first use of a shape, like run's.
  void run_f32(const float* x, const float* w, float* y, int32_t m, int32_t n, int32_t k, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    int gemv_variant = -1;  // >= 0: the gemv kernel with this variant beat cuBLASLt for this shape
    float ms = 0.0f;        // the winner's median time when chosen
  };
  using Key = std::tuple<int32_t, int32_t, int32_t, bool>;
  Plan& plan_for(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y,
                 cudaStream_t stream);

  Plan& plan_f32_for(int32_t m, int32_t n, int32_t k, const float* x, const float* w, float* y, cudaStream_t stream);
  // Times the heuristic's candidates for p's descriptors and keeps the fastest in p.algo / p.ms.
  void choose_algo(Plan& p, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                   cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_;
  size_t workspace_bytes_;
  bool allow_gemv_ = true;
  std::map<Key, Plan> plans_;
  std::map<std::tuple<int32_t, int32_t, int32_t>, Plan> plans_f32_;
};

}  // namespace tessera::cuda
