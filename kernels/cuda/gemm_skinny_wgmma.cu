// Skinny GEMM, wgmma family (sm_90a): the same stages as the mma.sync family (gemm_skinny_tile.cuh),
// but each warpgroup multiplies straight from shared memory with wgmma.mma_async m64nNk16 (A: 64 rows
// of w, B: the N = 16/32/64 staged x rows, both K-major in the 128-byte swizzle), so no ldmatrix and
// the tensor cores' full rate. Two warpgroups per block: for 256 rows each owns 128 (two m64 tiles),
// for 128 each owns 64, for 64 both own the same 64 and take alternate 16-k steps (two partial sums).
// Compiled to a trap on anything but sm_90a; gemm_skinny_fits() offers it only on compute 9.0.
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_skinny_tile.cuh"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda::skinny {
namespace {

template <int kTiles, int kWgK, int kN>
struct WgTile {
  static constexpr int kWgN = 2 / kWgK;                  // warpgroups side by side along rows
  static constexpr int kRows = 64 * kTiles * kWgN;       // rows of w per block
  static constexpr int kXRows = kN;
  static constexpr int kStages = kRows == 64 ? 6 : 4;
  static constexpr int kStageBytes = (kRows + kXRows) * kRowBytes;  // a multiple of 1024
  static constexpr int kPitch = kRows + 4;
  static constexpr int kRedBytes = kWgK * kXRows * kPitch * 4;
  static constexpr int kRing = kStages * kStageBytes > kRedBytes ? kStages * kStageBytes : kRedBytes;
  static constexpr int kSmem = kRing + 1024;  // the swizzle atoms need 1024-byte alignment
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row core groups 1024 bytes apart.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr) {
  uint64_t d = static_cast<uint64_t>((addr & 0x3FFFF) >> 4);
  d |= static_cast<uint64_t>(1) << 16;            // leading byte offset (unused for swizzled K-major)
  d |= static_cast<uint64_t>(1024 >> 4) << 32;    // stride byte offset
  d |= static_cast<uint64_t>(1) << 62;            // 128-byte swizzle
  return d;
}

template <int kN>
__device__ __forceinline__ void wgmma_bf16(float (&d)[kN / 2], uint64_t a, uint64_t b);

template <>
__device__ __forceinline__ void wgmma_bf16<16>(float (&d)[8], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7"
      "}, %8, %9, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(a), "l"(b), "r"(1));
}

template <>
__device__ __forceinline__ void wgmma_bf16<32>(float (&d)[16], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
      "}, %16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(a), "l"(b), "r"(1));
}

template <>
__device__ __forceinline__ void wgmma_bf16<64>(float (&d)[32], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(1));
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous wgmma.
template <int kR>
__device__ __forceinline__ void fence_operands(float (&d)[kR]) {
#pragma unroll
  for (int i = 0; i < kR; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
#endif

template <int kTiles, int kWgK, int kN, bool kOutF32>
__global__ void __launch_bounds__(kThreads, kTiles * 2 / kWgK == 4 ? 1 : 2)  // 256 rows: 1 block/SM
    gemm_skinny_wgmma_kernel(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                             void* __restrict__ y, int32_t m, int32_t n, int32_t k, int32_t k_slice) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using T = WgTile<kTiles, kWgK, kN>;
  extern __shared__ unsigned char smem_raw[];
  pdl_trigger();
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  const int wg = threadIdx.x >> 7, wg_n = wg % T::kWgN, wg_k = wg / T::kWgN;
  const int32_t row0 = blockIdx.y * T::kRows;
  const int32_t k_begin = static_cast<int32_t>(blockIdx.x) * k_slice;
  const int32_t k_end = min(k, k_begin + k_slice);
  const int nk = k_end > k_begin ? (k_end - k_begin + kStageK - 1) / kStageK : 0;
  const uint64_t evict_first = evict_first_policy();
  auto load_w = [&](int stage, int kt) {
    load_w_tile<T::kRows>(base + stage * T::kStageBytes, w, row0, n, k, k_begin + kt * kStageK, k_end, evict_first);
  };
  auto load_x = [&](int stage, int kt) {
    load_x_tile<T::kXRows>(base + stage * T::kStageBytes + T::kRows * kRowBytes, x, m, k, k_begin + kt * kStageK,
                           k_end);
  };

  // Prologue as in the mma.sync kernel: weights before the wait on the previous kernel, x after.
#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) load_w(s, s);
  pdl_wait();
#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) load_x(s, s);
  cp_async_commit();
#pragma unroll
  for (int s = 1; s < T::kStages - 1; ++s) cp_async_commit();

  float acc[kTiles][kN / 2];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) acc[t][i] = 0.0f;

  for (int kt = 0; kt < nk; ++kt) {
    cp_async_wait<T::kStages - 2>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // cp.async writes -> wgmma reads
    __syncthreads();  // stage kt landed for every thread; stage kt - 1 is free (its wgmmas completed)
    const int next = kt + T::kStages - 1;
    if (next < nk) {
      load_w(next % T::kStages, next);
      load_x(next % T::kStages, next);
    }
    cp_async_commit();
    const uint32_t ws = base + (kt % T::kStages) * T::kStageBytes;
    const uint32_t xs = ws + T::kRows * kRowBytes;
#pragma unroll
    for (int t = 0; t < kTiles; ++t) fence_operands(acc[t]);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int q = 0; q < 4 / kWgK; ++q) {
      const int ks = q * kWgK + wg_k;  // 16-k step of the stage: 32 bytes into each 128-byte row
#pragma unroll
      for (int t = 0; t < kTiles; ++t)
        wgmma_bf16<kN>(acc[t], smem_desc(ws + ((wg_n * kTiles + t) * 64) * kRowBytes + ks * 32),
                       smem_desc(xs + ks * 32));
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
    for (int t = 0; t < kTiles; ++t) fence_operands(acc[t]);
  }
  cp_async_wait<0>();
  __syncthreads();  // the ring is idle: reuse it for the partial sums

  // acc[t][4j + c]: w row (wg_n*kTiles + t)*64 + 16*warp + g (+8 for c >= 2), x row 8j + 2q (+1 for odd c).
  float* red = reinterpret_cast<float*>(smem_raw + (base - raw));  // [kWgK][kXRows][kPitch]
  const int lane = threadIdx.x & 31, warp = (threadIdx.x >> 5) & 3, g = lane >> 2, q = lane & 3;
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int r = (wg_n * kTiles + t) * 64 + warp * 16 + g + (c >= 2 ? 8 : 0), col = 8 * j + 2 * q + (c & 1);
        red[(wg_k * T::kXRows + col) * T::kPitch + r] = acc[t][4 * j + c];
      }
  cluster_reduce_store<T::kRows, T::kXRows, kWgK, kOutF32>(red, y, m, n, row0);
#elif defined(__CUDA_ARCH__)
  __trap();  // wgmma exists on sm_90a only; gemm_skinny_fits() never offers this family elsewhere
#endif
}

template <int kTiles, int kWgK, int kN, bool kOutF32>
void launch(int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
            bool pdl, cudaStream_t stream) {
  using T = WgTile<kTiles, kWgK, kN>;
  CUDA_CHECK(launch_cluster(gemm_skinny_wgmma_kernel<kTiles, kWgK, kN, kOutF32>, splits,
                            (n + T::kRows - 1) / T::kRows, T::kSmem, pdl, stream, x, w, y, m, n, k));
}

template <int kTiles, int kWgK>
void dispatch_m(int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
                bool out_f32, bool pdl, cudaStream_t stream) {
  const auto go = [&](auto nn) {
    constexpr int kN = decltype(nn)::value;
    if (out_f32) {
      launch<kTiles, kWgK, kN, true>(splits, x, w, y, m, n, k, pdl, stream);
    } else {
      launch<kTiles, kWgK, kN, false>(splits, x, w, y, m, n, k, pdl, stream);
    }
  };
  if (m <= 16) return go(std::integral_constant<int, 16>{});
  if (m <= 32) return go(std::integral_constant<int, 32>{});
  return go(std::integral_constant<int, 64>{});
}

template <int kTiles, int kWgK>
cudaError_t prepare_family(int splits, int* clusters) {
  const auto raise = [](auto kernel, int smem) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  };
  for (cudaError_t err : {raise(gemm_skinny_wgmma_kernel<kTiles, kWgK, 16, false>, WgTile<kTiles, kWgK, 16>::kSmem),
                          raise(gemm_skinny_wgmma_kernel<kTiles, kWgK, 16, true>, WgTile<kTiles, kWgK, 16>::kSmem),
                          raise(gemm_skinny_wgmma_kernel<kTiles, kWgK, 32, false>, WgTile<kTiles, kWgK, 32>::kSmem),
                          raise(gemm_skinny_wgmma_kernel<kTiles, kWgK, 32, true>, WgTile<kTiles, kWgK, 32>::kSmem),
                          raise(gemm_skinny_wgmma_kernel<kTiles, kWgK, 64, true>, WgTile<kTiles, kWgK, 64>::kSmem)})
    if (err != cudaSuccess) return err;
  return cluster_occupancy(gemm_skinny_wgmma_kernel<kTiles, kWgK, 64, false>, splits, WgTile<kTiles, kWgK, 64>::kSmem,
                           clusters);
}

}  // namespace

cudaError_t prepare_wgmma(int rows, int splits, int* clusters) {
  switch (rows) {
    case 256: return prepare_family<2, 1>(splits, clusters);
    case 128: return prepare_family<1, 1>(splits, clusters);
    default: return prepare_family<1, 2>(splits, clusters);
  }
}

void launch_wgmma(int rows, int splits, const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m,
                  int32_t n, int32_t k, bool out_f32, bool pdl, cudaStream_t stream) {
  switch (rows) {
    case 256: return dispatch_m<2, 1>(splits, x, w, y, m, n, k, out_f32, pdl, stream);
    case 128: return dispatch_m<1, 1>(splits, x, w, y, m, n, k, out_f32, pdl, stream);
    default: return dispatch_m<1, 2>(splits, x, w, y, m, n, k, out_f32, pdl, stream);
  }
}

}  // namespace tessera::cuda::skinny
