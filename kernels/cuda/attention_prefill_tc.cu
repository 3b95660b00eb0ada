// FlashAttention-2-style prefill attention (see attention_prefill_tc.cuh). 8 warps; warp w owns rows
// [16w, 16w + 16) of the 128-row tile (row r = token r / G, q head kvh * G + r % G). Shared memory:
// Q (loaded once, then held as mma A fragments in registers) and two stages of K and V (64 keys
// each, rows padded by 16 bytes so ldmatrix is free of bank conflicts). Every thread keeps its
// fragment of S (16 x 64), O (16 x head_dim) and the running max / sum of its two rows in registers;
// P is re-packed from S's accumulators into A fragments without touching shared memory.
// Requires sm_80 or later (mma.sync bf16, ldmatrix, cp.async): every target of the build qualifies.
#include <cstdint>

#include "kernels/cuda/attention_prefill_tc.cuh"
#include "kernels/cuda/cuda_check.h"

namespace tessera::cuda {
namespace {

constexpr int kRows = 128;  // query rows per block

template <int kD, int kKeys>
struct Layout {
  static constexpr int kStride = kD + 8;  // bf16 per shared row (16 bytes of padding)
  static constexpr int kQ = kRows * kStride;
  static constexpr int kKV = kKeys * kStride;
  static constexpr size_t kBytes = sizeof(__nv_bfloat16) * (kQ + 4 * kKV);
};

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

// kKeys: keys per pipeline stage. kM: m16 row tiles per warp (a warp owns 16 * kM consecutive rows, so every K/V fragment read from
// shared memory feeds kM mma instructions); kRows / (16 * kM) warps.
template <int kD, int kM, int kKeys>
struct Config {
  static constexpr int kWarps = kRows / (16 * kM);
  static constexpr int kThreads = kWarps * 32;
  // Registers bound the blocks per SM: ~210 per thread for (128, 2) and (128, 1).
  static constexpr int kMinBlocks = kD == 64 ? 2 : (kM == 2 ? 2 : 1);
};

template <int kD, int kM, int kKeys>
__global__ void __launch_bounds__(Config<kD, kM, kKeys>::kThreads, Config<kD, kM, kKeys>::kMinBlocks)
    prefill_fa2_kernel(AttentionArgs a) {
  using L = Layout<kD, kKeys>;
  constexpr int kThreads = Config<kD, kM, kKeys>::kThreads;
  constexpr int kChunks = kD / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) unsigned char raw[];
  __nv_bfloat16* const sq = reinterpret_cast<__nv_bfloat16*>(raw);
  __nv_bfloat16* const sk = sq + L::kQ;  // [2][kKeys][kStride]
  __nv_bfloat16* const sv = sk + 2 * L::kKV;
  // Last tiles first: in the runner's order a sequence's later tiles see the most keys.
  const AttentionTile tile = a.tiles[gridDim.x - 1 - blockIdx.x];
  if (tile.q_len == 0) return;
  const int32_t G = a.hq / a.hkv;
  const int32_t kvh = blockIdx.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t nrows = tile.q_len * G;
  const int32_t keys_total = tile.first_pos + tile.q_len;

  // Q rows of the tile (rows past it are zeros).
  for (int i = tid; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool live = r < nrows;
    const __nv_bfloat16* src = a.q;
    if (live)
      src = a.q + static_cast<int64_t>(tile.q_row + r / G) * a.q_row_stride + (kvh * G + r % G) * kD + c;
    cp_async16(smem_addr(sq + r * L::kStride + c), src, live);
  }
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int64_t kv_stride = static_cast<int64_t>(a.hkv) * kD;
  // Keys [kb, kb + kKeys) into a stage; keys past the sequence are zeros (V zero: p * 0 stays 0).
  auto load_kv = [&](int stage, int32_t kb) {
#pragma unroll
    for (int it = 0; it < kKeys * kChunks / kThreads; ++it) {
      const int i = tid + it * kThreads;
      const int j = i / kChunks, c = (i % kChunks) * 8;
      const int32_t key = kb + j;
      const bool live = key < keys_total;
      int64_t off = 0;
      if (live) {
        const int64_t slot = static_cast<int64_t>(table[key / a.block_size]) * a.block_size + key % a.block_size;
        off = slot * kv_stride + static_cast<int64_t>(kvh) * kD + c;
      }
      const int dst = stage * L::kKV + j * L::kStride + c;
      cp_async16(smem_addr(sk + dst), a.k_cache + off, live);
      cp_async16(smem_addr(sv + dst), a.v_cache + off, live);
    }
  };

  // This thread's rows: r0 + 16 * t and r0 + 16 * t + 8 for each m tile t; the last key each may see
  // (rows past the tile take the last row's limit; their results are never written).
  const int wrow = warp * 16 * kM;
  const int r0 = wrow + (lane >> 2);
  int32_t lim[kM][2];
#pragma unroll
  for (int t = 0; t < kM; ++t)
#pragma unroll
    for (int h = 0; h < 2; ++h) lim[t][h] = tile.first_pos + min(r0 + 16 * t + 8 * h, nrows - 1) / G;
  const int32_t warp_lo = tile.first_pos + min(wrow, nrows - 1) / G;
  const int32_t warp_hi = tile.first_pos + min(wrow + 16 * kM - 1, nrows - 1) / G;
  const float qscale = a.scale * 1.4426950408889634f;  // softmax in base 2

  float o[kM][kD / 8][4];
  float m[kM][2], l[kM][2];
#pragma unroll
  for (int t = 0; t < kM; ++t) {
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) o[t][n][0] = o[t][n][1] = o[t][n][2] = o[t][n][3] = 0.0f;
    m[t][0] = m[t][1] = -INFINITY;
    l[t][0] = l[t][1] = 0.0f;
  }

  const int32_t nblocks = (keys_total + kKeys - 1) / kKeys;
  load_kv(0, 0);
  cp_async_commit();  // group 0: Q and the first keys
  for (int32_t b = 0; b < nblocks; ++b) {
    const int32_t kb = b * kKeys;
    if (b + 1 < nblocks) {
      load_kv((b + 1) & 1, kb + kKeys);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    // Block 0 is never skipped (key 0 is visible to every row), so m is finite from then on.
    if (kb <= warp_hi) {
      const __nv_bfloat16* ks = sk + (b & 1) * L::kKV;
      const __nv_bfloat16* vs = sv + (b & 1) * L::kKV;
      float s[kM][kKeys / 8][4];
#pragma unroll
      for (int t = 0; t < kM; ++t)
#pragma unroll
        for (int n = 0; n < kKeys / 8; ++n) s[t][n][0] = s[t][n][1] = s[t][n][2] = s[t][n][3] = 0.0f;
      // S = Q Kᵀ: Q fragments from shared memory, one K fragment per kM mma pairs.
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        uint32_t qa[kM][4];
#pragma unroll
        for (int t = 0; t < kM; ++t)
          ldmatrix_x4(qa[t], smem_addr(sq + (wrow + 16 * t + (lane & 15)) * L::kStride + kk * 16 + (lane >> 4) * 8));
#pragma unroll
        for (int n = 0; n < kKeys / 16; ++n) {
          uint32_t bf[4];
          const int key = n * 16 + (lane & 7) + ((lane >> 4) << 3);
          ldmatrix_x4(bf, smem_addr(ks + key * L::kStride + kk * 16 + ((lane >> 3) & 1) * 8));
#pragma unroll
          for (int t = 0; t < kM; ++t) {
            mma_bf16(s[t][2 * n], qa[t], bf[0], bf[1]);
            mma_bf16(s[t][2 * n + 1], qa[t], bf[2], bf[3]);
          }
        }
      }
      // Scale, mask keys past each row's position, online softmax (base 2).
      const bool masked = kb + kKeys - 1 > warp_lo;
#pragma unroll
      for (int t = 0; t < kM; ++t) {
        float mx[2] = {m[t][0], m[t][1]};
#pragma unroll
        for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            float x = s[t][n][e] * qscale;
            if (masked && kb + n * 8 + (lane & 3) * 2 + (e & 1) > lim[t][e >> 1]) x = -INFINITY;
            s[t][n][e] = x;
            mx[e >> 1] = fmaxf(mx[e >> 1], x);
          }
        }
        float alpha[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          mx[h] = quad_max(mx[h]);
          alpha[h] = fast_exp2(m[t][h] - mx[h]);
          m[t][h] = mx[h];
        }
#pragma unroll
        for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[t][n][e] = fast_exp2(s[t][n][e] - mx[e >> 1]);
            sum[e >> 1] += s[t][n][e];
          }
#pragma unroll
        for (int h = 0; h < 2; ++h) l[t][h] = l[t][h] * alpha[h] + sum[h];  // quad summed at the end
#pragma unroll
        for (int n = 0; n < kD / 8; ++n) {
          o[t][n][0] *= alpha[0];
          o[t][n][1] *= alpha[0];
          o[t][n][2] *= alpha[1];
          o[t][n][3] *= alpha[1];
        }
      }
      // O += P V: P's accumulators re-packed as A fragments, V through ldmatrix.trans.
#pragma unroll
      for (int kc = 0; kc < kKeys / 16; ++kc) {
        uint32_t pa[kM][4];
#pragma unroll
        for (int t = 0; t < kM; ++t) {
          pa[t][0] = pack_bf16(s[t][2 * kc][0], s[t][2 * kc][1]);
          pa[t][1] = pack_bf16(s[t][2 * kc][2], s[t][2 * kc][3]);
          pa[t][2] = pack_bf16(s[t][2 * kc + 1][0], s[t][2 * kc + 1][1]);
          pa[t][3] = pack_bf16(s[t][2 * kc + 1][2], s[t][2 * kc + 1][3]);
        }
        const int key = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
        for (int n = 0; n < kD / 16; ++n) {
          uint32_t bf[4];
          ldmatrix_x4_trans(bf, smem_addr(vs + key * L::kStride + n * 16 + (lane >> 4) * 8));
#pragma unroll
          for (int t = 0; t < kM; ++t) {
            mma_bf16(o[t][2 * n], pa[t], bf[0], bf[1]);
            mma_bf16(o[t][2 * n + 1], pa[t], bf[2], bf[3]);
          }
        }
      }
    }
    __syncthreads();  // everyone is done with this stage before the next iteration refills it
  }

  // Normalise and write this thread's rows.
#pragma unroll
  for (int t = 0; t < kM; ++t)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = r0 + 16 * t + 8 * h;
      const float lsum = quad_sum(l[t][h]);
      if (r >= nrows) continue;
      const float inv = 1.0f / lsum;
      const int32_t tok = tile.q_row + r / G, head = kvh * G + r % G;
      __nv_bfloat16* dst = a.out + static_cast<int64_t>(tok) * a.hq * kD + head * kD + (lane & 3) * 2;
#pragma unroll
      for (int n = 0; n < kD / 8; ++n)
        *reinterpret_cast<__nv_bfloat162*>(dst + n * 8) =
            __floats2bfloat162_rn(o[t][n][2 * h] * inv, o[t][n][2 * h + 1] * inv);
    }
}

template <int kD, int kM, int kKeys>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr size_t smem = Layout<kD, kKeys>::kBytes;
  CUDA_CHECK(cudaFuncSetAttribute(prefill_fa2_kernel<kD, kM, kKeys>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  prefill_fa2_kernel<kD, kM, kKeys>
      <<<dim3(a.num_tiles, a.hkv), Config<kD, kM, kKeys>::kThreads, smem, stream>>>(a);
  CUDA_CHECK_LAUNCH();
}

template <int kD>
void launch_variant(const AttentionArgs& a, int variant, cudaStream_t stream) {
  if (variant == 0) return launch<kD, 2, 64>(a, stream);
  if (variant == 1) return launch<kD, 1, 64>(a, stream);
  return launch<kD, 2, 32>(a, stream);
}

}  // namespace

bool attention_prefill_tc_supported(int32_t hq, int32_t hkv, int32_t head_dim) {
  return (head_dim == 64 || head_dim == 128) && hkv > 0 && hq % hkv == 0 && kRows % (hq / hkv) == 0;
}

int32_t attention_prefill_tc_tile_tokens(int32_t hq, int32_t hkv) { return kRows / (hq / hkv); }

void paged_attention_prefill_tc(const AttentionArgs& a, cudaStream_t stream, int variant) {
  if (a.num_tiles == 0) return;
  if (variant < 0 || variant >= kPrefillTcVariants)
    throw_cuda_error(cudaErrorInvalidValue, "paged_attention_prefill_tc: variant out of range", __FILE__, __LINE__);
  if (!attention_prefill_tc_supported(a.hq, a.hkv, a.head_dim) ||
      a.max_q_len > attention_prefill_tc_tile_tokens(a.hq, a.hkv))
    throw_cuda_error(cudaErrorInvalidValue, "paged_attention_prefill_tc: unsupported heads or tile", __FILE__,
                     __LINE__);
  if (a.head_dim == 64) return launch_variant<64>(a, variant, stream);
  return launch_variant<128>(a, variant, stream);
}

}  // namespace tessera::cuda
