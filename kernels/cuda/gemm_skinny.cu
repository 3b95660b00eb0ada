// Skinny tensor-core GEMM (m <= 64), memory-bound: a block owns kRows rows of w and one k-slice; the
// blocks of a cluster (kSkinnySplits) own the slices of the same rows. Each pipeline stage holds 64 k
// of the block's w rows and of the (up to 64) x rows, 128-byte rows whose 16-byte chunks are XOR-
// swizzled by row (conflict-free cp.async writes and ldmatrix reads). w streams with an L2 evict-first
// hint; x stays in L2 for the other blocks. Warp (wn, wk) owns 32 w rows x all x rows and the wk-th
// share of each stage's four 16-k steps. At the end every warp stores its sums into shared memory,
// the cluster synchronises, and each block adds, for its share of the tile, the partial sums of all
// blocks (cluster rank order) and warps (wk order): a fixed order, so bitwise deterministic.
#include <cooperative_groups.h>

#include <cstdio>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256;  // 8 warps
constexpr int kWarps = 8;
constexpr int kStageK = 64;  // k per stage: one 128-byte row of 8 chunks
constexpr int kRowBytes = kStageK * 2;

template <int kWarpsK, int kMT>
struct Tile {
  static constexpr int kWarpsN = kWarps / kWarpsK;
  static constexpr int kRows = kWarpsN * 32;            // rows of w per block
  static constexpr int kXRows = kMT * 8;                // rows of x staged (m rounded up)
  static constexpr int kStages = kRows == 64 ? 6 : 4;   // 96 KiB (2 blocks/SM) for 128/64 rows at m=64
  static constexpr int kStageBytes = (kRows + kXRows) * kRowBytes;
  static constexpr int kPitch = kRows + 4;              // partial-sum row pitch: conflict-free stores
  static constexpr int kRedBytes = kWarpsK * kXRows * kPitch * 4;
  static constexpr int kSmem = kStages * kStageBytes > kRedBytes ? kStages * kStageBytes : kRedBytes;
};

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

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// Byte offset of 16-byte chunk `chunk` of tile row `row` (chunks XOR-swizzled by the row's low 3 bits).
__device__ __forceinline__ uint32_t swz(int row, int chunk) {
  return static_cast<uint32_t>(row * kRowBytes + ((chunk ^ (row & 7)) << 4));
}

template <bool kOutF32>
__device__ __forceinline__ void store(void* y, int64_t idx, float v) {
  if constexpr (kOutF32) {
    static_cast<float*>(y)[idx] = v;
  } else {
    static_cast<__nv_bfloat16*>(y)[idx] = __float2bfloat16_rn(v);
  }
}

// grid (splits, row tiles), cluster (splits, 1, 1): blockIdx.x is the block's rank in its cluster.
template <int kWarpsK, int kMT, bool kOutF32>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_skinny_kernel(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                       void* __restrict__ y, int32_t m, int32_t n, int32_t k, int32_t k_slice) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using T = Tile<kWarpsK, kMT>;
  extern __shared__ __align__(128) unsigned char smem[];
  pdl_trigger();
  cg::cluster_group cluster = cg::this_cluster();
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wn = warp % T::kWarpsN, wk = warp / T::kWarpsN;
  const int32_t row0 = blockIdx.y * T::kRows;
  const int32_t k_begin = static_cast<int32_t>(blockIdx.x) * k_slice;
  const int32_t k_end = min(k, k_begin + k_slice);
  const int nk = k_end > k_begin ? (k_end - k_begin + kStageK - 1) / kStageK : 0;
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  uint64_t evict_first;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(evict_first));

  // Chunk c of a stage: tile row c / 8, 16-byte chunk c % 8 (k = 8 * chunk within the stage). A
  // chunk past k_end, n or m is zero-filled (k_end % 8 == 0: a chunk is wholly in or out).
  auto load_w = [&](int stage, int kt) {
    const uint32_t dst = base + stage * T::kStageBytes;
    const int32_t kb = k_begin + kt * kStageK;
#pragma unroll
    for (int i = 0; i < T::kRows * 8 / kThreads; ++i) {
      const int c = tid + i * kThreads, r = c >> 3, ch = c & 7;
      const int32_t row = row0 + r, kk = kb + ch * 8;
      const bool ok = row < n && kk < k_end;
      cp_async16_hint(dst + swz(r, ch), ok ? w + static_cast<int64_t>(row) * k + kk : w, ok, evict_first);
    }
  };
  auto load_x = [&](int stage, int kt) {
    const uint32_t dst = base + stage * T::kStageBytes + T::kRows * kRowBytes;
    const int32_t kb = k_begin + kt * kStageK;
    for (int c = tid; c < T::kXRows * 8; c += kThreads) {
      const int r = c >> 3, ch = c & 7;
      const int32_t kk = kb + ch * 8;
      const bool ok = r < m && kk < k_end;
      cp_async16(dst + swz(r, ch), ok ? x + static_cast<int64_t>(r) * k + kk : x, ok);
    }
  };

  // Prologue: the first stages' weights, then (once the kernel that wrote x is done) their x. One
  // group for all of it plus empty groups, so the loop's wait count is the same from the start.
#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) load_w(s, s);
  pdl_wait();
#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) load_x(s, s);
  cp_async_commit();
#pragma unroll
  for (int s = 1; s < T::kStages - 1; ++s) cp_async_commit();

  float acc[2][kMT][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][mt][c] = 0.0f;

  // ldmatrix lane roles: A (w rows) matrices {rows 0-7, 8-15} x {k 0-7, 8-15}; B (x rows) pairs of
  // 8-row tiles x {k 0-7, 8-15}. Every tile row here has (row & 7) == (lane & 7).
  const int a_row = wn * 32 + ((lane >> 3) & 1) * 8 + (lane & 7), a_half = lane >> 4;
  const int b_row = (lane >> 4) * 8 + (lane & 7), b_half = (lane >> 3) & 1;
  for (int kt = 0; kt < nk; ++kt) {
    cp_async_wait<T::kStages - 2>();
    __syncthreads();  // stage kt landed for every thread; stage kt - 1 is free to refill
    const int next = kt + T::kStages - 1;
    if (next < nk) {
      load_w(next % T::kStages, next);
      load_x(next % T::kStages, next);
    }
    cp_async_commit();
    const uint32_t ws = base + (kt % T::kStages) * T::kStageBytes;
    const uint32_t xs = ws + T::kRows * kRowBytes;
#pragma unroll
    for (int q = 0; q < 4 / kWarpsK; ++q) {
      const int ks = q * kWarpsK + wk;  // this warp's 16-k step of the stage
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) ldmatrix_x4(a[i], ws + swz(a_row + i * 16, ks * 2 + a_half));
#pragma unroll
      for (int p = 0; p < kMT / 2; ++p) {
        uint32_t b[4];
        ldmatrix_x4(b, xs + swz(b_row + p * 16, ks * 2 + b_half));
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          mma_bf16(acc[i][2 * p], a[i], b[0], b[1]);
          mma_bf16(acc[i][2 * p + 1], a[i], b[2], b[3]);
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the ring is idle: reuse it for the partial sums

  // acc[i][mt][c]: w row wn*32 + i*16 + g (+8 for c >= 2), x row mt*8 + 2t (+1 for odd c).
  float* red = reinterpret_cast<float*>(smem);  // [kWarpsK][kXRows][kPitch]
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int r = wn * 32 + i * 16 + g + (c >= 2 ? 8 : 0), j = mt * 8 + 2 * t + (c & 1);
        red[(wk * T::kXRows + j) * T::kPitch + r] = acc[i][mt][c];
      }
  cluster.sync();  // every block's partial sums are written and visible to the cluster

  const int splits = static_cast<int>(cluster.num_blocks()), rank = static_cast<int>(cluster.block_rank());
  const int total = m * T::kRows;  // (x row, tile row) pairs, tile rows fastest: coalesced y stores
  const int lo = total * rank / splits, hi = total * (rank + 1) / splits;
  for (int e = lo + tid; e < hi; e += kThreads) {
    const int j = e / T::kRows, r = e % T::kRows;
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* part = cluster.map_shared_rank(red, s);
#pragma unroll
      for (int q = 0; q < kWarpsK; ++q) sum += part[(q * T::kXRows + j) * T::kPitch + r];
    }
    if (row0 + r < n) store<kOutF32>(y, static_cast<int64_t>(j) * n + row0 + r, sum);
  }
  cluster.sync();  // keep this block's shared memory alive until the cluster has read it
#endif
}

template <int kWarpsK, int kMT, bool kOutF32>
void launch(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, int splits,
            bool pdl, cudaStream_t stream) {
  using T = Tile<kWarpsK, kMT>;
  auto* kernel = gemm_skinny_kernel<kWarpsK, kMT, kOutF32>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmem));
  const int32_t per = (k + splits - 1) / splits;
  const int32_t k_slice = (per + kStageK - 1) / kStageK * kStageK;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(splits, (n + T::kRows - 1) / T::kRows);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = T::kSmem;
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
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, x, w, y, m, n, k, k_slice));
}

template <int kWarpsK>
void dispatch_m(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
                bool out_f32, int splits, bool pdl, cudaStream_t stream) {
  const auto go = [&](auto mt) {
    constexpr int kMT = decltype(mt)::value;
    if (out_f32) {
      launch<kWarpsK, kMT, true>(x, w, y, m, n, k, splits, pdl, stream);
    } else {
      launch<kWarpsK, kMT, false>(x, w, y, m, n, k, splits, pdl, stream);
    }
  };
  if (m <= 16) return go(std::integral_constant<int, 2>{});
  if (m <= 32) return go(std::integral_constant<int, 4>{});
  return go(std::integral_constant<int, 8>{});
}

int warps_k(int32_t variant) { return 256 / skinny_variant_rows(variant); }

// The largest dynamic shared memory of a variant's kernels (its m = 64 one).
int max_smem(int32_t variant) {
  switch (warps_k(variant)) {
    case 1: return Tile<1, 8>::kSmem;
    case 2: return Tile<2, 8>::kSmem;
    default: return Tile<4, 8>::kSmem;
  }
}

// How many clusters of cfg's shape the m = 64 kernel of a family (the most shared memory) can hold at once.
template <int kWarpsK>
cudaError_t resident_clusters(const cudaLaunchConfig_t& cfg, int* clusters) {
  auto* kernel = gemm_skinny_kernel<kWarpsK, 8, false>;
  const cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(cfg.dynamicSmemBytes));
  return err != cudaSuccess ? err : cudaOccupancyMaxActiveClusters(clusters, kernel, &cfg);
}

bool shape_ok(int32_t m, int32_t n, int32_t k, int32_t variant) {
  return variant >= 0 && variant < kSkinnyVariants && m >= 1 && m <= kSkinnyMaxM && n >= 1 && k >= 8 && k % 8 == 0 &&
         (static_cast<int64_t>(n) + 63) / 64 <= 65535;
}

}  // namespace

bool gemm_skinny_fits(int32_t m, int32_t n, int32_t k, int32_t variant) {
  if (!shape_ok(m, n, k, variant)) return false;
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess || major < 9)
    return false;
  // The cluster must fit on the device: ask the occupancy calculator for the variant's kernel.
  const int splits = skinny_variant_splits(variant), smem = max_smem(variant);
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
  int clusters = 0;
  const cudaError_t err = warps_k(variant) == 1   ? resident_clusters<1>(cfg, &clusters)
                          : warps_k(variant) == 2 ? resident_clusters<2>(cfg, &clusters)
                                                  : resident_clusters<4>(cfg, &clusters);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // a refused query is an answer (no), not an error for later calls to see
    return false;
  }
  return clusters > 0;
}

void gemm_skinny(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
                 bool out_f32, int32_t variant, cudaStream_t stream, bool pdl) {
  if (m == 0 || n == 0) return;
  if (!shape_ok(m, n, k, variant) || reinterpret_cast<uintptr_t>(x) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(w) % 16 != 0) {
    char what[200];
    std::snprintf(what, sizeof(what),
                  "gemm_skinny(m=%d, n=%d, k=%d, variant=%d): needs 1 <= m <= 64, k %% 8 == 0, 0 <= variant < %d "
                  "and 16-byte aligned x and w",
                  m, n, k, variant, kSkinnyVariants);
    throw_cuda_error(cudaErrorInvalidValue, what, __FILE__, __LINE__);
  }
  const int splits = skinny_variant_splits(variant);
  switch (warps_k(variant)) {
    case 1: return dispatch_m<1>(x, w, y, m, n, k, out_f32, splits, pdl, stream);
    case 2: return dispatch_m<2>(x, w, y, m, n, k, out_f32, splits, pdl, stream);
    default: return dispatch_m<4>(x, w, y, m, n, k, out_f32, splits, pdl, stream);
  }
}

}  // namespace tessera::cuda
