// Device pieces shared by the prefill attention kernels (attention_prefill_tc.cu: mma.sync, every
// target; attention_prefill_wgmma.cu: Hopper wgmma): cp.async, ldmatrix, the m16n8k16 mma, bf16
// packing, base-2 exponentials, quad reductions, page-table slots and the online softmax over a
// stage of S held in the m16n8 accumulator layout. Device helpers only: no state, no launches.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace tessera::cuda::prefill {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; `valid` false writes zeros and reads nothing.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a (16x16, row-major) * b (16x8, column-major); bf16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// 2^x on the special-function unit (ftz; x = -inf gives 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Cache slot of `key`, or -1 past the sequence (the stage loader then writes zeros).
__device__ __forceinline__ int32_t key_slot(const int32_t* table, int32_t block_size, int32_t key, int32_t keys_total) {
  if (key >= keys_total) return -1;
  return table[key / block_size] * block_size + key % block_size;
}

// Online softmax (base 2) over one stage of S (raw Q·Kᵀ, scale folded into one FFMA before ex2),
// leaving P in s, updating m (row max, raw units) and l (this thread's partial row sums), and
// returning in alpha the factor the rows' O accumulators must be scaled by (rescale below; a caller
// whose O is still being written by an asynchronous MMA applies it once that has landed).
// kMask: the stage reaches past some row's position; key0 is this thread's first key column.
template <int kM, int kN, bool kMask>
__device__ __forceinline__ void softmax_stage(float (&s)[kM][kN][4], float (&m)[kM][2], float (&l)[kM][2],
                                              const int32_t (&lim)[kM][2], int32_t key0, float qscale,
                                              float (&alpha)[kM][2]) {
#pragma unroll
  for (int t = 0; t < kM; ++t) {
    float mx[2] = {m[t][0], m[t][1]};
#pragma unroll
    for (int n = 0; n < kN; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (kMask && key0 + n * 8 + (e & 1) > lim[t][e >> 1]) s[t][n][e] = -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[t][n][e]);
      }
    float neg_ms[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = quad_max(mx[h]);  // finite: key 0 is visible to every row and block 0 is never skipped
      alpha[t][h] = fast_exp2((m[t][h] - mx[h]) * qscale);
      m[t][h] = mx[h];
      neg_ms[h] = -mx[h] * qscale;
    }
#pragma unroll
    for (int n = 0; n < kN; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[t][n][e] = fast_exp2(fmaf(s[t][n][e], qscale, neg_ms[e >> 1]));
        sum[e >> 1] += s[t][n][e];
      }
#pragma unroll
    for (int h = 0; h < 2; ++h) l[t][h] = l[t][h] * alpha[t][h] + sum[h];  // quad summed at the end
  }
}

// o[t] rows scaled by alpha[t] (the accumulator layout: elements 0, 1 in the upper row, 2, 3 below).
template <int kM, int kO>
__device__ __forceinline__ void rescale(float (&o)[kM][kO][4], const float (&alpha)[kM][2]) {
#pragma unroll
  for (int t = 0; t < kM; ++t)
#pragma unroll
    for (int n = 0; n < kO; ++n) {
      o[t][n][0] *= alpha[t][0];
      o[t][n][1] *= alpha[t][0];
      o[t][n][2] *= alpha[t][1];
      o[t][n][3] *= alpha[t][1];
    }
}

// softmax_stage, then O rescaled at once.
template <int kM, int kN, int kO, bool kMask>
__device__ __forceinline__ void online_softmax(float (&s)[kM][kN][4], float (&o)[kM][kO][4], float (&m)[kM][2],
                                               float (&l)[kM][2], const int32_t (&lim)[kM][2], int32_t key0,
                                               float qscale) {
  float alpha[kM][2];
  softmax_stage<kM, kN, kMask>(s, m, l, lim, key0, qscale, alpha);
  rescale(o, alpha);
}

}  // namespace tessera::cuda::prefill
