// The SwiGLU gate/up GEMM kernel (gemm_swiglu_wgmma.cuh). A persistent block of 384 threads: warps
// 0-7 are two consumer warpgroups (warpgroup g owns rows [64 g, 64 g + 64) of each 128-row tile),
// warp 8 (of the producer warpgroup 8-11) issues every copy. Shared memory: a ring of 4 stages, each
// 64 k of the tile's 128 x rows (16 KiB) and of its 128 gate rows and 128 up rows of w, stacked
// (32 KiB), all in wgmma.cuh's 128-byte-swizzled layout as TMA writes them, and 8 mbarriers:
//   full[s]   1 arrival (the producer's, with the stage's 48 KiB expected) + the TMA bytes;
//   empty[s]  8 arrivals, one per consumer warp, once the wgmmas that read the stage completed.
// Tiles are numbered rows fastest (tile t: rows (t % m_tiles) * 128, act columns (t / m_tiles) *
// 128); block b takes tiles b, b + grid, ... Both roles walk the same sequence of (tile, k-block)
// stages, so their ring positions agree without any other exchange. A consumer warpgroup issues
// m64n256k16 over the 256 stacked rows per 16 k, keeps one stage's wgmmas in flight while it waits for
// the next stage, and after the tile's last stage computes act from its 128 accumulators: gate column
// c is d[c / 8][..], up column c is d[16 + c / 8][..], both in the same thread. Rows past m are read
// as zeros (TMA) and never stored. Never allocates.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/attention_prefill_wgmma_sync.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_swiglu_wgmma.cuh"
#include "kernels/cuda/silu.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 384;  // two consumer warpgroups + the producer warpgroup
constexpr int kStages = 4;
constexpr uint32_t kABytes = kSwigluTileRows * 128;      // 128 rows of x x 64 k
constexpr uint32_t kBBytes = 2 * kSwigluTileCols * 128;  // 128 gate + 128 up rows of w x 64 k
constexpr uint32_t kStageBytes = kABytes + kBBytes;
constexpr uint32_t kBarsOffset = kStages * kStageBytes;
constexpr size_t kSmemBytes = 1024 /* alignment slack */ + kBarsOffset + 2 * 8 * kStages;
static_assert(kSwigluTileRows == 128 && kSwigluTileCols == 128 && kSwigluStageK == 64, "the kernel's tile");
#if TESSERA_WGMMA
// Registers per thread once the warpgroups have traded them (setmaxnreg), as in the prefill attention
// kernels: 128 x 40 + 256 x 232 = 64,512 = 384 x 168, what the launch allocated.
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

using namespace prefill;  // NOLINT: mbarriers, TMA loads, setmaxnreg and operand fences

__device__ __forceinline__ uint32_t full_bar(uint32_t bars, uint32_t s) { return bars + 8 * s; }
__device__ __forceinline__ uint32_t empty_bar(uint32_t bars, uint32_t s) { return bars + 8 * (kStages + s); }
// K-major operand, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t kmajor(uint32_t addr) { return wgmma::descriptor(addr, 16, 1024); }

__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// The producer: one thread issues every stage's three boxes once the stage is free.
__device__ __forceinline__ void produce(const CUtensorMap* x_map, const CUtensorMap* w_map, uint32_t base,
                                        uint32_t bars, int32_t m_tiles, int32_t tiles, int32_t inter, int nk) {
  uint32_t it = 0;
  for (int32_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int32_t row0 = (t % m_tiles) * kSwigluTileRows, col0 = (t / m_tiles) * kSwigluTileCols;
    for (int kb = 0; kb < nk; ++kb, ++it) {
      const uint32_t s = it % kStages, stage = base + s * kStageBytes, full = full_bar(bars, s);
      if (it >= kStages) mbar_wait(empty_bar(bars, s), ((it / kStages) & 1) ^ 1);
      mbar_arrive_expect_tx(full, kStageBytes);
      tma_load_2d(stage, x_map, kb * kSwigluStageK, row0, full);
      tma_load_2d(stage + kABytes, w_map, kb * kSwigluStageK, col0, full);
      tma_load_2d(stage + kABytes + kBBytes / 2, w_map, kb * kSwigluStageK, inter + col0, full);
    }
  }
}

// act for this thread's rows of the tile: d[i][e] is row 16 * warp + lane / 4 + 8 * (e / 2) of the
// warpgroup's 64, column 8 * i + 2 * (lane % 4) + e % 2 of the 256 stacked (gate: i < 16, up: i >= 16).
__device__ __forceinline__ void store_act(const float (&d)[32][4], __nv_bfloat16* __restrict__ act, int32_t m,
                                          int32_t inter, int32_t row, int32_t col) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int32_t r = row + 8 * h;
    if (r >= m) continue;
    __nv_bfloat16* out = act + static_cast<int64_t>(r) * inter + col;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const float a0 = silu_times(round_bf16(d[i][2 * h]), round_bf16(d[16 + i][2 * h]));
      const float a1 = silu_times(round_bf16(d[i][2 * h + 1]), round_bf16(d[16 + i][2 * h + 1]));
      *reinterpret_cast<__nv_bfloat162*>(out + 8 * i) = __floats2bfloat162_rn(a0, a1);
    }
  }
}

// A consumer warpgroup: rows [64 wg, 64 wg + 64) of every tile of this block.
__device__ __forceinline__ void consume(__nv_bfloat16* __restrict__ act, uint32_t base, uint32_t bars, int32_t m,
                                        int32_t m_tiles, int32_t tiles, int32_t inter, int nk, int wg) {
  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  float d[32][4];
#pragma unroll
  for (int i = 0; i < 32; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) d[i][e] = 0.0f;
  uint32_t it = 0;
  for (int32_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    for (int kb = 0; kb < nk; ++kb, ++it) {
      const uint32_t s = it % kStages, stage = base + s * kStageBytes;
      mbar_wait(full_bar(bars, s), (it / kStages) & 1);
      const uint32_t a = stage + wg * 64 * 128, b = stage + kABytes;
      fence_operand(d);
      wgmma::fence();
#pragma unroll
      for (int ks = 0; ks < kSwigluStageK / 16; ++ks)
        wgmma::wgmma_ss_n256(d, kmajor(a + ks * 32), kmajor(b + ks * 32), kb > 0 || ks > 0);
      wgmma::commit();
      wgmma::wait<1>();  // the previous stage's wgmmas are done: give it back
      fence_operand(d);
      if (kb > 0 && lane == 0) mbar_arrive(empty_bar(bars, (it - 1) % kStages));
    }
    wgmma::wait<0>();
    fence_operand(d);
    if (lane == 0) mbar_arrive(empty_bar(bars, (it - 1) % kStages));
    store_act(d, act, m, inter, (t % m_tiles) * kSwigluTileRows + wg * 64 + warp * 16 + lane / 4,
              (t / m_tiles) * kSwigluTileCols + 2 * (lane % 4));
  }
}
#endif  // TESSERA_WGMMA

__global__ void __launch_bounds__(kThreads, 1)
    gemm_swiglu_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap w_map,
                       __nv_bfloat16* __restrict__ act, int32_t m, int32_t inter, int32_t k) {
#if TESSERA_WGMMA
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  const uint32_t bars = base + kBarsOffset;
  const int32_t m_tiles = (m + kSwigluTileRows - 1) / kSwigluTileRows;
  const int32_t tiles = m_tiles * (inter / kSwigluTileCols);
  const int nk = k / kSwigluStageK;
  const int wg = threadIdx.x >> 7;
  if (threadIdx.x == 0) {
    for (uint32_t s = 0; s < kStages; ++s) {
      mbar_init(full_bar(bars, s), 1);
      mbar_init(empty_bar(bars, s), 8);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");  // visible to the TMA unit
  }
  __syncthreads();  // the barriers are initialised; from here on no block-wide barrier
  if (wg == 2) {
    regs_dec<kProducerRegs>();
    if (threadIdx.x == 256) produce(&x_map, &w_map, base, bars, m_tiles, tiles, inter, nk);
    return;
  }
  regs_inc<kConsumerRegs>();
  consume(act, base, bars, m, m_tiles, tiles, inter, nk, wg);
#elif defined(__CUDA_ARCH__)
  __trap();  // wgmma and setmaxnreg exist on sm_90a only; the host never launches this elsewhere
#endif
}

}  // namespace

void launch_gemm_swiglu(const CUtensorMap& x_map, const CUtensorMap& w_map, __nv_bfloat16* act, int32_t m,
                        int32_t inter, int32_t k, int sms, cudaStream_t stream) {
  const int32_t tiles = (m + kSwigluTileRows - 1) / kSwigluTileRows * (inter / kSwigluTileCols);
  CUDA_CHECK(cudaFuncSetAttribute(gemm_swiglu_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(kSmemBytes)));
  gemm_swiglu_kernel<<<std::min(sms, tiles), kThreads, kSmemBytes, stream>>>(x_map, w_map, act, m, inter, k);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace tessera::cuda
