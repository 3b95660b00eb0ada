// Synchronisation pieces of the warp-specialised Hopper prefill kernels (attention_prefill_wgmma_pingpong.cu,
// attention_prefill_wgmma_split.cu): shared-memory mbarriers (init, arrive, parity wait, and the
// arrive that cp.async triggers when a thread's copies have landed), tensor-map (TMA) loads that
// complete on an mbarrier, setmaxnreg, named barriers and the compiler fences around wgmma operands. Device helpers for sm_90a code only (callers guard with
// TESSERA_WGMMA); they hold no state and must never be compiled for another target.
#pragma once

#include <cstdint>

#include "kernels/cuda/wgmma.cuh"

namespace tessera::cuda::prefill {

#if TESSERA_WGMMA
// Keep the compiler from moving reads or writes of wgmma accumulators / A fragments across the waits
// (it cannot see that the asynchronous instruction uses them).
template <int kN>
__device__ __forceinline__ void fence_operand(float (&d)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
}
template <int kN>
__device__ __forceinline__ void fence_operand(uint32_t (&a)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[i][e])::"memory");
}

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// One arrival on `bar`, made by the hardware once every cp.async this thread issued before it has
// landed (the barrier's count includes it: .noinc). The thread itself goes on at once.
__device__ __forceinline__ void mbar_arrive_on_cp_async(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Returns once the phase with this parity has completed (acquire: the writes that completed it are
// visible to this thread).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
template <int kRegs>
__device__ __forceinline__ void regs_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void regs_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Expects `bytes` more of asynchronous copies in the barrier's current phase and arrives once.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// A 2-D box of the tensor map at `map` (a __grid_constant__ parameter) at coordinates (x, y) into
// shared memory at `dst`, completing its bytes on the mbarrier `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* map, int32_t x, int32_t y, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(map), "r"(x), "r"(y), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
#endif  // TESSERA_WGMMA

}  // namespace tessera::cuda::prefill
