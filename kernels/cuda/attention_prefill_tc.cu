// Tensor-core prefill attention (see attention_prefill_tc.cuh). 4 warps; warp w owns rows
// [16w, 16w + 16) of the 64-row tile. Shared memory: Q, K, V (bf16), S (fp32), P (bf16), O (fp32),
// row max / sum / rescale factor.
#include <mma.h>

#include "kernels/cuda/attention_prefill_tc.cuh"
#include "kernels/cuda/cuda_check.h"

namespace tessera::cuda {
namespace {

namespace wmma = nvcuda::wmma;
constexpr int kRows = 64;
constexpr int kKeys = 64;
constexpr int kThreads = 128;

// Rows padded (by 16 or 32 bytes) against bank conflicts; every WMMA pointer stays 32-byte aligned.
constexpr int kSP = kKeys + 4;  // s row stride (floats)
constexpr int kPP = kKeys + 8;  // p row stride (bf16)

template <int kD>
struct Smem {
  static constexpr int kQP = kD + 8;  // q/k/v row stride (bf16)
  static constexpr int kOP = kD + 4;  // o row stride (floats)
  __nv_bfloat16 q[kRows][kQP];
  __nv_bfloat16 k[kKeys][kQP];
  __nv_bfloat16 v[kKeys][kQP];
  float s[kRows][kSP];
  __nv_bfloat16 p[kRows][kPP];
  float o[kRows][kOP];
  float m[kRows], l[kRows], alpha[kRows];
};

template <int kD>
__global__ void __launch_bounds__(kThreads) prefill_tc_kernel(AttentionArgs a) {
  extern __shared__ __align__(128) unsigned char raw[];
  Smem<kD>& sm = *reinterpret_cast<Smem<kD>*>(raw);
  const AttentionTile tile = a.tiles[blockIdx.x];
  if (tile.q_len == 0) return;
  const int32_t G = a.hq / a.hkv;
  const int32_t kvh = blockIdx.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t nrows = tile.q_len * G;
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const float qscale = a.scale * 1.4426950408889634f;
  constexpr int kVec = 8;  // bf16 per 16-byte load
  constexpr int kRowVecs = kD / kVec;

  // Q rows (token-major: row r = token r / G, head kvh * G + r % G); rows past the tile are zeros.
  for (int i = tid; i < kRows * kRowVecs; i += kThreads) {
    const int r = i / kRowVecs, c = (i % kRowVecs) * kVec;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < nrows) {
      const int32_t tok = tile.q_row + r / G, h = kvh * G + r % G;
      val = *reinterpret_cast<const uint4*>(a.q + static_cast<int64_t>(tok) * a.q_row_stride + h * kD + c);
    }
    *reinterpret_cast<uint4*>(&sm.q[r][c]) = val;
  }
  for (int i = tid; i < kRows * kD; i += kThreads) sm.o[i / kD][i % kD] = 0.0f;
  if (tid < kRows) sm.m[tid] = -INFINITY, sm.l[tid] = 0.0f;
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int64_t kv_stride = static_cast<int64_t>(a.hkv) * kD;

  // K/V of the next key block are loaded into registers while this block computes.
  constexpr int kPer = kKeys * kRowVecs / kThreads;
  uint4 kreg[kPer], vreg[kPer];
  auto prefetch = [&](int32_t kb) {
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int i = tid + it * kThreads;
      const int j = i / kRowVecs, c = (i % kRowVecs) * kVec;
      const int32_t key = kb + j;
      kreg[it] = make_uint4(0, 0, 0, 0);
      vreg[it] = make_uint4(0, 0, 0, 0);
      if (key < keys_total) {
        const int64_t slot = static_cast<int64_t>(table[key / a.block_size]) * a.block_size + key % a.block_size;
        const int64_t off = slot * kv_stride + static_cast<int64_t>(kvh) * kD + c;
        kreg[it] = *reinterpret_cast<const uint4*>(a.k_cache + off);
        vreg[it] = *reinterpret_cast<const uint4*>(a.v_cache + off);
      }
    }
  };
  prefetch(0);
  for (int32_t kb = 0; kb < keys_total; kb += kKeys) {
    __syncthreads();  // previous iteration done with k, v, p
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int i = tid + it * kThreads;
      const int j = i / kRowVecs, c = (i % kRowVecs) * kVec;
      *reinterpret_cast<uint4*>(&sm.k[j][c]) = kreg[it];
      *reinterpret_cast<uint4*>(&sm.v[j][c]) = vreg[it];
    }
    if (kb + kKeys < keys_total) prefetch(kb + kKeys);
    __syncthreads();
    // S = Q Kᵀ for this warp's 16 rows.
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kKeys / 16];
#pragma unroll
      for (int n = 0; n < kKeys / 16; ++n) wmma::fill_fragment(acc[n], 0.0f);
#pragma unroll
      for (int kk = 0; kk < kD; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::load_matrix_sync(fa, &sm.q[warp * 16][kk], Smem<kD>::kQP);
#pragma unroll
        for (int n = 0; n < kKeys / 16; ++n) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
          wmma::load_matrix_sync(fb, &sm.k[n * 16][kk], Smem<kD>::kQP);
          wmma::mma_sync(acc[n], fa, fb, acc[n]);
        }
      }
#pragma unroll
      for (int n = 0; n < kKeys / 16; ++n)
        wmma::store_matrix_sync(&sm.s[warp * 16][n * 16], acc[n], kSP, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax: two lanes per row, 32 keys each.
    {
      const int r = warp * 16 + lane / 2;
      const int c0 = (lane & 1) * 32;
      const int32_t pos = tile.first_pos + r / G;
      const bool live = r < nrows;
      float mx = -INFINITY;
#pragma unroll 8
      for (int c = 0; c < 32; ++c) {
        const int32_t key = kb + c0 + c;
        float x = sm.s[r][c0 + c] * qscale;
        if (!live || key > pos || key >= keys_total) x = -INFINITY;
        sm.s[r][c0 + c] = x;
        mx = fmaxf(mx, x);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      const float m_old = sm.m[r];
      const float m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
#pragma unroll 8
      for (int c = 0; c < 32; ++c) {
        const float x = sm.s[r][c0 + c];
        const float p = m_new == -INFINITY ? 0.0f : exp2f(x - m_new);
        sum += p;
        sm.p[r][c0 + c] = __float2bfloat16_rn(p);
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      __syncwarp();
      if ((lane & 1) == 0) {
        const float alpha = m_old == -INFINITY ? 0.0f : exp2f(m_old - m_new);
        sm.alpha[r] = alpha;
        sm.l[r] = sm.l[r] * alpha + sum;
        sm.m[r] = m_new;
      }
    }
    __syncwarp();
    // O = alpha * O + P V for this warp's rows.
    for (int i = lane; i < 16 * kD; i += 32) {
      const int r = warp * 16 + i / kD;
      sm.o[r][i % kD] *= sm.alpha[r];
    }
    __syncwarp();
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kD / 16];
#pragma unroll
      for (int n = 0; n < kD / 16; ++n) wmma::load_matrix_sync(acc[n], &sm.o[warp * 16][n * 16], Smem<kD>::kOP, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kKeys; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::load_matrix_sync(fa, &sm.p[warp * 16][kk], kPP);
#pragma unroll
        for (int n = 0; n < kD / 16; ++n) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
          wmma::load_matrix_sync(fb, &sm.v[kk][n * 16], Smem<kD>::kQP);
          wmma::mma_sync(acc[n], fa, fb, acc[n]);
        }
      }
#pragma unroll
      for (int n = 0; n < kD / 16; ++n)
        wmma::store_matrix_sync(&sm.o[warp * 16][n * 16], acc[n], Smem<kD>::kOP, wmma::mem_row_major);
    }
  }
  __syncthreads();
  // Normalise and write this block's rows.
  for (int i = tid; i < kRows * (kD / 2); i += kThreads) {
    const int r = i / (kD / 2), c = (i % (kD / 2)) * 2;
    if (r >= nrows) continue;
    const float inv = sm.l[r] > 0.0f ? 1.0f / sm.l[r] : 0.0f;
    const int32_t tok = tile.q_row + r / G, h = kvh * G + r % G;
    *reinterpret_cast<__nv_bfloat162*>(a.out + static_cast<int64_t>(tok) * a.hq * kD + h * kD + c) =
        __floats2bfloat162_rn(sm.o[r][c] * inv, sm.o[r][c + 1] * inv);
  }
}

template <int kD>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  const size_t smem = sizeof(Smem<kD>);
  CUDA_CHECK(cudaFuncSetAttribute(prefill_tc_kernel<kD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  prefill_tc_kernel<kD><<<dim3(a.num_tiles, a.hkv), kThreads, smem, stream>>>(a);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

bool attention_prefill_tc_supported(int32_t hq, int32_t hkv, int32_t head_dim) {
  return (head_dim == 64 || head_dim == 128) && hkv > 0 && hq % hkv == 0 && 64 % (hq / hkv) == 0;
}

int32_t attention_prefill_tc_tile_tokens(int32_t hq, int32_t hkv) { return 64 / (hq / hkv); }

void paged_attention_prefill_tc(const AttentionArgs& a, cudaStream_t stream) {
  if (a.num_tiles == 0) return;
  if (!attention_prefill_tc_supported(a.hq, a.hkv, a.head_dim) ||
      a.max_q_len > attention_prefill_tc_tile_tokens(a.hq, a.hkv))
    throw_cuda_error(cudaErrorInvalidValue, "paged_attention_prefill_tc: unsupported heads or tile", __FILE__,
                     __LINE__);
  if (a.head_dim == 64) return launch<64>(a, stream);
  return launch<128>(a, stream);
}

}  // namespace tessera::cuda
