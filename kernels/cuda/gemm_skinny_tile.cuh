// What the skinny GEMM's two kernels (gemm_skinny.cu: mma.sync; gemm_skinny_wgmma.cu: Hopper wgmma)
// share: the stage layout (64 k per stage, 128-byte tile rows whose 16-byte chunks are XOR-swizzled by
// row: the layout wgmma calls the 128-byte swizzle, conflict-free for ldmatrix too), the cp.async tile
// loads (zero-filled past n, m and the k-slice), the cluster reduction of the partial sums in a fixed
// order, and the per-family launch/prepare entry points. Internal to those files; never allocates.
#pragma once

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda::skinny {

constexpr int kThreads = 256;  // 8 warps = 2 warpgroups
constexpr int kStageK = 64;    // k per stage: one 128-byte row of 8 chunks
constexpr int kRowBytes = kStageK * 2;

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
#endif
}

// Same, with an L2 eviction policy (evict-first for the streamed weights).
__device__ __forceinline__ void cp_async16_hint(uint32_t dst, const void* src, bool valid, uint64_t policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0), "l"(policy));
#endif
}

__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t policy = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
#endif
  return policy;
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}

// Byte offset of 16-byte chunk `chunk` of tile row `row` (chunks XOR-swizzled by the row's low 3 bits).
__device__ __forceinline__ uint32_t swz(int row, int chunk) {
  return static_cast<uint32_t>(row * kRowBytes + ((chunk ^ (row & 7)) << 4));
}

// Stage rows [0, kRows) of w (tile rows row0...) at k [kb, kb + 64) into dst; chunks past n or
// k_end are zero-filled (k_end % 8 == 0: a chunk is wholly in or out).
template <int kRows>
__device__ __forceinline__ void load_w_tile(uint32_t dst, const __nv_bfloat16* w, int32_t row0, int32_t n, int32_t k,
                                            int32_t kb, int32_t k_end, uint64_t policy) {
#pragma unroll
  for (int i = 0; i < kRows * 8 / kThreads; ++i) {
    const int c = static_cast<int>(threadIdx.x) + i * kThreads, r = c >> 3, ch = c & 7;
    const int32_t row = row0 + r, kk = kb + ch * 8;
    const bool ok = row < n && kk < k_end;
    cp_async16_hint(dst + swz(r, ch), ok ? w + static_cast<int64_t>(row) * k + kk : w, ok, policy);
  }
}

// Same for the kXRows staged rows of x (rows past m zero-filled).
template <int kXRows>
__device__ __forceinline__ void load_x_tile(uint32_t dst, const __nv_bfloat16* x, int32_t m, int32_t k, int32_t kb,
                                            int32_t k_end) {
  for (int c = static_cast<int>(threadIdx.x); c < kXRows * 8; c += kThreads) {
    const int r = c >> 3, ch = c & 7;
    const int32_t kk = kb + ch * 8;
    const bool ok = r < m && kk < k_end;
    cp_async16(dst + swz(r, ch), ok ? x + static_cast<int64_t>(r) * k + kk : x, ok);
  }
}

template <bool kOutF32>
__device__ __forceinline__ void store(void* y, int64_t idx, float v) {
  if constexpr (kOutF32) {
    static_cast<float*>(y)[idx] = v;
  } else {
    static_cast<__nv_bfloat16*>(y)[idx] = __float2bfloat16_rn(v);
  }
}

// Partial sums of a block: red[part][x row][tile row] at pitch kRows + 4 (conflict-free fragment
// stores). After every block of the cluster wrote its own, each block adds, for its share of the
// tile, the parts of every block in cluster rank order and of every part in order (a fixed order:
// deterministic) and writes y; then waits until the cluster has read its shared memory.
template <int kRows, int kXRows, int kParts, bool kOutF32>
__device__ __forceinline__ void cluster_reduce_store(float* red, void* y, int32_t m, int32_t n, int32_t row0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  constexpr int kPitch = kRows + 4;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();  // every block's partial sums are written and visible to the cluster
  const int splits = static_cast<int>(cluster.num_blocks()), rank = static_cast<int>(cluster.block_rank());
  const int total = m * kRows;  // (x row, tile row) pairs, tile rows fastest: coalesced y stores
  const int lo = total * rank / splits, hi = total * (rank + 1) / splits;
  for (int e = lo + static_cast<int>(threadIdx.x); e < hi; e += kThreads) {
    const int j = e / kRows, r = e % kRows;
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* part = cluster.map_shared_rank(red, s);
#pragma unroll
      for (int q = 0; q < kParts; ++q) sum += part[(q * kXRows + j) * kPitch + r];
    }
    if (row0 + r < n) store<kOutF32>(y, static_cast<int64_t>(j) * n + row0 + r, sum);
  }
  cluster.sync();  // keep this block's shared memory alive until the cluster has read it
#endif
}

// Per kernel family (mma.sync in gemm_skinny.cu, wgmma in gemm_skinny_wgmma.cu), rows in {256, 128, 64}:
// prepare raises the family's dynamic shared-memory limits and reports how many clusters of `splits`
// blocks can be resident (0: none); launch runs y = x wᵀ with k split over a cluster of `splits`.
cudaError_t prepare_mma(int rows, int splits, int* clusters);
void launch_mma(int rows, int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n,
                int32_t k, bool out_f32, bool pdl, cudaStream_t stream);
cudaError_t prepare_wgmma(int rows, int splits, int* clusters);
void launch_wgmma(int rows, int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m,
                  int32_t n, int32_t k, bool out_f32, bool pdl, cudaStream_t stream);

// The cluster launch both families use: grid (splits, row tiles), cluster (splits, 1, 1), PDL optional.
template <typename Kernel>
cudaError_t launch_cluster(Kernel kernel, int splits, int tiles, int smem, bool pdl, cudaStream_t stream,
                           const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k) {
  const int32_t per = (k + splits - 1) / splits;
  const int32_t k_slice = (per + kStageK - 1) / kStageK * kStageK;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(splits, tiles);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = splits;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 2 : 1;
  return cudaLaunchKernelEx(&cfg, kernel, x, w, y, m, n, k, k_slice);
}

// Raises kernel's shared-memory limit to smem and asks how many clusters of `splits` fit at once.
template <typename Kernel>
cudaError_t cluster_occupancy(Kernel kernel, int splits, int smem, int* clusters) {
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (err != cudaSuccess) return err;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(splits, 1);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = splits;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaOccupancyMaxActiveClusters(clusters, kernel, &cfg);
}

}  // namespace tessera::cuda::skinny
