// Skinny tensor-core GEMM (m <= 64), mma.sync family, and the public entry points of both families.
// A block owns kRows rows of w and one k-slice; the blocks of a cluster (kSkinnySplits) own the slices
// of the same rows. Each pipeline stage holds 64 k of the block's w rows and of the (up to 64) x rows
// in the swizzled layout of gemm_skinny_tile.cuh, read back with ldmatrix. w streams with an L2
// evict-first hint; x stays in L2 for the other blocks. Warp (wn, wk) owns 32 w rows x all x rows and
// the wk-th share of each stage's four 16-k steps. The partial sums meet in the cluster
// (cluster_reduce_store: fixed order, bitwise deterministic).
#include <cstdio>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemm_skinny_tile.cuh"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda {
namespace skinny {
namespace {

constexpr int kWarps = 8;

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

// grid (splits, row tiles), cluster (splits, 1, 1): blockIdx.x is the block's rank in its cluster.
template <int kWarpsK, int kMT, bool kOutF32>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_skinny_kernel(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                       void* __restrict__ y, int32_t m, int32_t n, int32_t k, int32_t k_slice) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using T = Tile<kWarpsK, kMT>;
  extern __shared__ __align__(128) unsigned char smem[];
  pdl_trigger();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wn = warp % T::kWarpsN, wk = warp / T::kWarpsN;
  const int32_t row0 = blockIdx.y * T::kRows;
  const int32_t k_begin = static_cast<int32_t>(blockIdx.x) * k_slice;
  const int32_t k_end = min(k, k_begin + k_slice);
  const int nk = k_end > k_begin ? (k_end - k_begin + kStageK - 1) / kStageK : 0;
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint64_t evict_first = evict_first_policy();
  auto load_w = [&](int stage, int kt) {
    load_w_tile<T::kRows>(base + stage * T::kStageBytes, w, row0, n, k, k_begin + kt * kStageK, k_end, evict_first);
  };
  auto load_x = [&](int stage, int kt) {
    load_x_tile<T::kXRows>(base + stage * T::kStageBytes + T::kRows * kRowBytes, x, m, k, k_begin + kt * kStageK,
                           k_end);
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
  cluster_reduce_store<T::kRows, T::kXRows, kWarpsK, kOutF32>(red, y, m, n, row0);
#endif
}

template <int kWarpsK, int kMT, bool kOutF32>
void launch(int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
            bool pdl, cudaStream_t stream) {
  using T = Tile<kWarpsK, kMT>;
  CUDA_CHECK(launch_cluster(gemm_skinny_kernel<kWarpsK, kMT, kOutF32>, splits, (n + T::kRows - 1) / T::kRows, T::kSmem,
                            pdl, stream, x, w, y, m, n, k));
}

template <int kWarpsK>
void dispatch_m(int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
                bool out_f32, bool pdl, cudaStream_t stream) {
  const auto go = [&](auto mt) {
    constexpr int kMT = decltype(mt)::value;
    if (out_f32) {
      launch<kWarpsK, kMT, true>(splits, x, w, y, m, n, k, pdl, stream);
    } else {
      launch<kWarpsK, kMT, false>(splits, x, w, y, m, n, k, pdl, stream);
    }
  };
  if (m <= 16) return go(std::integral_constant<int, 2>{});
  if (m <= 32) return go(std::integral_constant<int, 4>{});
  return go(std::integral_constant<int, 8>{});
}

// Raises the limit of all six kernels of a family; the occupancy is that of its m = 64 kernel (the most
// shared memory).
template <int kWarpsK>
cudaError_t prepare_family(int splits, int* clusters) {
  const auto raise = [](auto kernel, int smem) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  };
  for (cudaError_t err : {raise(gemm_skinny_kernel<kWarpsK, 2, false>, Tile<kWarpsK, 2>::kSmem),
                          raise(gemm_skinny_kernel<kWarpsK, 2, true>, Tile<kWarpsK, 2>::kSmem),
                          raise(gemm_skinny_kernel<kWarpsK, 4, false>, Tile<kWarpsK, 4>::kSmem),
                          raise(gemm_skinny_kernel<kWarpsK, 4, true>, Tile<kWarpsK, 4>::kSmem),
                          raise(gemm_skinny_kernel<kWarpsK, 8, true>, Tile<kWarpsK, 8>::kSmem)})
    if (err != cudaSuccess) return err;
  return cluster_occupancy(gemm_skinny_kernel<kWarpsK, 8, false>, splits, Tile<kWarpsK, 8>::kSmem, clusters);
}

}  // namespace

cudaError_t prepare_mma(int rows, int splits, int* clusters) {
  switch (rows) {
    case 256: return prepare_family<1>(splits, clusters);
    case 128: return prepare_family<2>(splits, clusters);
    default: return prepare_family<4>(splits, clusters);
  }
}

void launch_mma(int rows, int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n,
                int32_t k, bool out_f32, bool pdl, cudaStream_t stream) {
  switch (rows) {
    case 256: return dispatch_m<1>(splits, x, w, y, m, n, k, out_f32, pdl, stream);
    case 128: return dispatch_m<2>(splits, x, w, y, m, n, k, out_f32, pdl, stream);
    default: return dispatch_m<4>(splits, x, w, y, m, n, k, out_f32, pdl, stream);
  }
}

}  // namespace skinny

namespace {

bool shape_ok(int32_t m, int32_t n, int32_t k, int32_t variant) {
  return variant >= 0 && variant < kSkinnyVariants && m >= 1 && m <= kSkinnyMaxM && n >= 1 && k >= 8 && k % 8 == 0 &&
         (static_cast<int64_t>(n) + 63) / 64 <= 65535;
}

}  // namespace

bool gemm_skinny_fits(int32_t m, int32_t n, int32_t k, int32_t variant) {
  if (!shape_ok(m, n, k, variant)) return false;
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess || major < 9)
    return false;
  const bool wgmma = skinny_variant_uses_wgmma(variant);
  if (wgmma && (major != 9 || minor != 0)) return false;  // wgmma: sm_90a code only
  const int rows = skinny_variant_rows(variant), splits = skinny_variant_splits(variant);
  int clusters = 0;
  const cudaError_t err =
      wgmma ? skinny::prepare_wgmma(rows, splits, &clusters) : skinny::prepare_mma(rows, splits, &clusters);
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
  const int rows = skinny_variant_rows(variant), splits = skinny_variant_splits(variant);
  if (skinny_variant_uses_wgmma(variant)) {
    skinny::launch_wgmma(rows, splits, x, w, y, m, n, k, out_f32, pdl, stream);
  } else {
    skinny::launch_mma(rows, splits, x, w, y, m, n, k, out_f32, pdl, stream);
  }
}

}  // namespace tessera::cuda
