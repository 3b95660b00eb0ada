// FlashAttention-2-style prefill attention (see attention_prefill_tc.cuh). Warp w owns rows
// [16 kM w, 16 kM (w + 1)) of the 128-row tile (row r = token r / G, q head kvh * G + r % G). Shared
// memory: Q (re-read as mma A fragments per key block), two stages of K and V (rows padded by 16 bytes
// so ldmatrix is free of bank conflicts) and two stages of page-table slots, fetched two key blocks
// ahead so issuing a stage's cp.async never waits on the block table. Every thread keeps its fragment
// of S, O and the running max / sum of its rows in registers; the softmax scale is folded into the
// FFMA feeding ex2, and only stages that reach past a warp's first position pay for masking; P is
// re-packed from S's accumulators into A fragments without touching shared memory.
// Requires sm_80 or later (mma.sync bf16, ldmatrix, cp.async): every target of the build qualifies.
#include <cstdint>

#include "kernels/cuda/attention_prefill_tc.cuh"
#include "kernels/cuda/attention_prefill_wgmma.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/prefill_fragments.cuh"

namespace tessera::cuda {
namespace {

using namespace prefill;  // NOLINT: the kernel is built from these fragments

constexpr int kRows = 128;  // query rows per block

template <int kD, int kKeys>
struct Layout {
  static constexpr int kStride = kD + 8;  // bf16 per shared row (16 bytes of padding)
  static constexpr int kQ = kRows * kStride;
  static constexpr int kKV = kKeys * kStride;
  // Q, two stages of K and V, then two stages of page-table slots.
  static constexpr size_t kBytes = sizeof(__nv_bfloat16) * (kQ + 4 * kKV) + sizeof(int32_t) * 2 * kKeys;
};

// kKeys: keys per pipeline stage. kM: m16 row tiles per warp (a warp owns 16 * kM consecutive rows, so
// every K/V fragment read from shared memory feeds kM mma instructions); kRows / (16 * kM) warps.
// kMinBlocks: blocks per SM the register allocation must allow (2 blocks of 8 warps = 16 warps per SM
// caps a thread at 128 registers).
template <int kD, int kM, int kKeys, int kMinBlocks>
struct Config {
  static constexpr int kWarps = kRows / (16 * kM);
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kChunks = kD / 8;  // 16-byte chunks per K/V row
  static constexpr int kLoads = kKeys * kChunks / kThreads;  // cp.async pairs per thread per stage
  static_assert(kLoads * kThreads == kKeys * kChunks && kThreads % kChunks == 0, "stage must split evenly");
  static_assert(kKeys <= kThreads, "one thread per key prefetches the page-table slots");
};

template <int kD, int kM, int kKeys, int kMinBlocks>
__global__ void __launch_bounds__(Config<kD, kM, kKeys, kMinBlocks>::kThreads, kMinBlocks)
    prefill_fa2_kernel(AttentionArgs a) {
  using L = Layout<kD, kKeys>;
  using C = Config<kD, kM, kKeys, kMinBlocks>;
  constexpr int kThreads = C::kThreads, kChunks = C::kChunks;
  extern __shared__ __align__(128) unsigned char raw[];
  __nv_bfloat16* const sq = reinterpret_cast<__nv_bfloat16*>(raw);
  __nv_bfloat16* const sk = sq + L::kQ;  // [2][kKeys][kStride]
  __nv_bfloat16* const sv = sk + 2 * L::kKV;
  int32_t* const sslot = reinterpret_cast<int32_t*>(sv + 2 * L::kKV);  // [2][kKeys]: block b's slots at b & 1
  // Last tiles first: in the runner's order a sequence's later tiles see the most keys.
  const AttentionTile tile = a.tiles[gridDim.x - 1 - blockIdx.x];
  if (tile.q_len == 0) return;
  const int32_t G = a.hq / a.hkv;
  const int32_t kvh = blockIdx.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t nrows = tile.q_len * G;
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int32_t bs = a.block_size;

  // Page-table slots of key blocks 0 and 1; later blocks' slots are fetched two blocks ahead, so a
  // stage's cp.async never waits on a page-table read.
  if (tid < kKeys) {
    sslot[tid] = key_slot(table, bs, tid, keys_total);
    sslot[kKeys + tid] = key_slot(table, bs, kKeys + tid, keys_total);
  }
  // Q rows of the tile (rows past it are zeros).
  for (int i = tid; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool live = r < nrows;
    const __nv_bfloat16* src = a.q;
    if (live)
      src = a.q + static_cast<int64_t>(tile.q_row + r / G) * a.q_row_stride + (kvh * G + r % G) * kD + c;
    cp_async16(smem_addr(sq + r * L::kStride + c), src, live);
  }
  __syncthreads();  // the first two blocks' slots
  const int64_t kv_stride = static_cast<int64_t>(a.hkv) * kD;
  const __nv_bfloat16* const kbase = a.k_cache + static_cast<int64_t>(kvh) * kD + (tid % kChunks) * 8;
  const __nv_bfloat16* const vbase = a.v_cache + static_cast<int64_t>(kvh) * kD + (tid % kChunks) * 8;
  const uint32_t kdst0 = smem_addr(sk + (tid / kChunks) * L::kStride + (tid % kChunks) * 8);
  constexpr uint32_t kVOffset = 2 * L::kKV * sizeof(__nv_bfloat16);  // sv - sk in bytes
  // Key block b into stage b & 1; keys past the sequence are zeros (V zero: p * 0 stays 0).
  auto load_kv = [&](int32_t b) {
    const int32_t* slots = sslot + (b & 1) * kKeys;
    const uint32_t stage = (b & 1) * L::kKV * sizeof(__nv_bfloat16);
#pragma unroll
    for (int it = 0; it < C::kLoads; ++it) {
      const int j = tid / kChunks + it * (kThreads / kChunks);
      const int32_t slot = slots[j];
      const int64_t off = slot < 0 ? 0 : static_cast<int64_t>(slot) * kv_stride;
      const uint32_t row = stage + it * (kThreads / kChunks) * L::kStride * sizeof(__nv_bfloat16);
      cp_async16(kdst0 + row, kbase + off, slot >= 0);
      cp_async16(kdst0 + kVOffset + row, vbase + off, slot >= 0);
    }
  };

  // This thread's rows: r0 + 16 * t and r0 + 16 * t + 8 for each m tile t.
  const int wrow = warp * 16 * kM;
  const int r0 = wrow + (lane >> 2);
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
  load_kv(0);
  cp_async_commit();  // group 0: Q and the first keys
  for (int32_t b = 0; b < nblocks; ++b) {
    const int32_t kb = b * kKeys;
    // Slots of block b + 2, read now and stored after this block's math (the load has landed by then).
    const int32_t next_slot = tid < kKeys ? key_slot(table, bs, kb + 2 * kKeys + tid, keys_total) : -1;
    if (b + 1 < nblocks) {
      load_kv(b + 1);
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
      // Masking only where the stage reaches past the warp's first row's position.
      if (kb + kKeys - 1 > warp_lo) {
        // The last key each row may see (rows past the tile take the last row's; never written).
        int32_t lim[kM][2];
#pragma unroll
        for (int t = 0; t < kM; ++t)
#pragma unroll
          for (int h = 0; h < 2; ++h) lim[t][h] = tile.first_pos + min(r0 + 16 * t + 8 * h, nrows - 1) / G;
        online_softmax<kM, kKeys / 8, kD / 8, true>(s, o, m, l, lim, kb + (lane & 3) * 2, qscale);
      } else {
        online_softmax<kM, kKeys / 8, kD / 8, false>(s, o, m, l, {}, kb, qscale);
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
    // Block b's slots were read by load_kv(b) in the previous iteration (before this one's barrier).
    if (tid < kKeys) sslot[(b & 1) * kKeys + tid] = next_slot;
    __syncthreads();  // everyone is done with this stage (and sees block b + 2's slots) before the refill
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

template <int kD, int kM, int kKeys, int kMinBlocks>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr size_t smem = Layout<kD, kKeys>::kBytes;
  auto* kernel = prefill_fa2_kernel<kD, kM, kKeys, kMinBlocks>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<dim3(a.num_tiles, a.hkv), Config<kD, kM, kKeys, kMinBlocks>::kThreads, smem, stream>>>(a);
  CUDA_CHECK_LAUNCH();
}

// The variants of attention_prefill_tc.cuh. head_dim 64 always fits two blocks per SM.
template <int kD>
void launch_variant(const AttentionArgs& a, int variant, cudaStream_t stream) {
  constexpr int kWide = kD == 64 ? 2 : 1;  // blocks per SM of the 8-warp shape at its natural size
  const bool hopper = variant == 0 || variant >= 6 ? attention_prefill_wgmma_available() : false;
  switch (variant) {
    case 0:  // variant 17 on Hopper: 1 x 4,096 0.240 vs 0.254 ms (variant 16), 4 x 1k 0.102 vs 0.116
      if (hopper) return paged_attention_prefill_wgmma(a, WgmmaShape::kSplit128TmaNoTurnsLeanEdges, stream);
      return launch<kD, 2, 64, 2>(a, stream);
    case 1: return launch<kD, 1, 64, kWide>(a, stream);
    case 2: return launch<kD, 2, 32, 2>(a, stream);
    case 3: return launch<kD, 1, 64, 2>(a, stream);
    case 4: return launch<kD, 1, 32, 2>(a, stream);
    case 5: return launch<kD, 2, 64, 2>(a, stream);
    default:
      if (!hopper) return launch<kD, 2, 64, 2>(a, stream);
      constexpr WgmmaShape kShapes[] = {WgmmaShape::kKeys64, WgmmaShape::kKeys128, WgmmaShape::kPipelined64,
                                         WgmmaShape::kPipelined128, WgmmaShape::kPipelined64QRegs,
                                         WgmmaShape::kPingPong128, WgmmaShape::kPingPong128NoTurns,
                                         WgmmaShape::kSplit128, WgmmaShape::kSplit128NoTurns,
                                         WgmmaShape::kSplit128Tma, WgmmaShape::kSplit128TmaNoTurns,
                                         WgmmaShape::kSplit128TmaNoTurnsLeanEdges};
      return paged_attention_prefill_wgmma(a, kShapes[variant - 6], stream);
  }
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
