// The tensor-core decode attention kernel (included by attention_decode.cu only): the same work, PDL
// prologue, split arithmetic and outputs as the CUDA-core decode_kernel there, for GQA groups of 2-8
// q heads (kG 4 or 8) at head_dim 64 or 128. A group's kG q heads are the rows of an m16 mma tile
// (rows past the group are zero), so each K/V fragment read from shared memory serves every head at
// once: S = Q·Kᵀ with m16n8k16 (8 keys a tile), P·V with m16n8k8 (P straight from S's accumulator
// layout, rounded to bf16). 4 warps serve one kv head: each owns 8 keys of every 32-key stage and its
// own ring slots (3 stages, cp.async, rows XOR-swizzled by key so that ldmatrix reads are
// conflict-free), so the main loop needs no block barrier; their online-softmax states are merged at
// the end (merge_groups). A block takes kKv adjacent kv heads (4 * kKv warps), so the rows of one key
// that it reads at about the same time are kKv * head_dim * 2 contiguous bytes. Per 8 keys a warp
// issues ~100 instructions where the CUDA-core kernel issues ~640. Device code only: never
// allocates, never reads configuration.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode_merge.cuh"
#include "kernels/cuda/attention_decode_split.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/prefill_fragments.cuh"

namespace tessera::cuda::decode_mma {

constexpr int kWarps = decode_merge::kThreads / 32;
constexpr int kWarpKeys = 8;                      // keys a warp takes per stage (one n8 tile of S)
constexpr int kStageKeys = kWarps * kWarpKeys;    // 32, as the CUDA-core kernel
constexpr int kStages = 3;
template <int kD>
constexpr int kTileBytes = kWarpKeys * kD * 2;    // one warp's K (or V) rows of one stage
template <int kD, int kKv>
constexpr int kSmemBytes = kKv * kStages * kWarps * 2 * kTileBytes<kD>;  // 48 KiB per kv head at head_dim 128

// c += a (16x8, row-major; rows 8-15 zero here) * b (8x8, column-major); bf16 in, fp32 accumulators.
__device__ __forceinline__ void mma_k8(float (&c)[4], uint32_t a0, uint32_t b0) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(0u), "r"(b0));
}

// Q of the block's heads h0 .. h0 + ng - 1 as the A fragments of the m16n8k16 steps over head_dim:
// row gid (head h0 + gid), rows past ng and 8-15 zero.
template <int kD>
__device__ __forceinline__ void load_q_fragments(const AttentionArgs& a, int32_t q_row, int32_t h0, int32_t ng, int gid,
                                                 int tig, uint32_t (&q)[kD / 16][2]) {
  const __nv_bfloat16* row = a.q + static_cast<int64_t>(q_row) * a.q_row_stride + (h0 + gid) * kD + 2 * tig;
#pragma unroll
  for (int ks = 0; ks < kD / 16; ++ks) {
    q[ks][0] = gid < ng ? *reinterpret_cast<const uint32_t*>(row + ks * 16) : 0u;
    q[ks][1] = gid < ng ? *reinterpret_cast<const uint32_t*>(row + ks * 16 + 8) : 0u;
  }
}

// One warp's 8 keys of a stage: S = Q·Kᵀ with the K rows read by ldmatrix at k_chunk(c) (chunk c of
// the lane's ldmatrix row), the online softmax update of the row state (m, l; m quad-uniform) and
// o += P·V with the V rows read by ldmatrix.trans at v_chunk(c). This thread's keys are key0 and
// key0 + 1; those at or past k_end score -inf, and with zero_v_past_end their V halves are zeroed too
// (for rings whose rows past a split's end may hold anything, NaN included: p = 0 times NaN is NaN).
template <int kD, typename KChunk, typename VChunk>
__device__ __forceinline__ void attend_keys(const uint32_t (&q)[kD / 16][2], float qscale, int32_t key0, int32_t k_end,
                                            bool zero_v_past_end, int lm, KChunk k_chunk, VChunk v_chunk,
                                            float (&o)[kD / 8][4], float& m, float& l) {
  using namespace prefill;  // NOLINT: ldmatrix / mma fragments
  constexpr int kChunks = kD / 8;
  float sc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int kk = 0; kk < kChunks / 4; ++kk) {
    uint32_t kb[4];
    ldmatrix_x4(kb, k_chunk(kk * 4 + lm));
    const uint32_t a0[4] = {q[2 * kk][0], 0u, q[2 * kk][1], 0u};
    const uint32_t a1[4] = {q[2 * kk + 1][0], 0u, q[2 * kk + 1][1], 0u};
    mma_bf16(sc, a0, kb[0], kb[1]);
    mma_bf16(sc, a1, kb[2], kb[3]);
  }
  const bool in0 = key0 < k_end, in1 = key0 + 1 < k_end;
  const float s0 = in0 ? sc[0] * qscale : -INFINITY;
  const float s1 = in1 ? sc[1] * qscale : -INFINITY;
  const float mx = fmaxf(m, quad_max(fmaxf(s0, s1)));
  const float ref = mx == -INFINITY ? 0.0f : mx;  // every key so far masked: p = 0, no NaN
  const float alpha = fast_exp2(m - ref);
  const float p0 = fast_exp2(s0 - ref), p1 = fast_exp2(s1 - ref);
  l = l * alpha + p0 + p1;
  m = mx;
  const uint32_t pa = pack_bf16(p0, p1);
  const uint32_t vmask = zero_v_past_end ? (in0 ? 0x0000ffffu : 0u) | (in1 ? 0xffff0000u : 0u) : 0xffffffffu;
#pragma unroll
  for (int nn = 0; nn < kChunks / 4; ++nn) {
    uint32_t vb[4];
    ldmatrix_x4_trans(vb, v_chunk(nn * 4 + lm));
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      o[nn * 4 + i][0] *= alpha;
      o[nn * 4 + i][1] *= alpha;
      mma_k8(o[nn * 4 + i], pa, vb[i] & vmask);
    }
  }
}

// A warp's final state (row gid's o columns, m, l; l already summed over the quad) into slot `slot` of
// so [slots][kG][kD] and sml [slots][kG][2], for merge_groups.
template <int kD, int kG>
__device__ __forceinline__ void store_warp_state(float* so, float* sml, int slot, int gid, int tig,
                                                 const float (&o)[kD / 8][4], float m, float l) {
  if (gid >= kG) return;
#pragma unroll
  for (int n = 0; n < kD / 8; ++n)
    *reinterpret_cast<float2*>(so + (slot * kG + gid) * kD + n * 8 + 2 * tig) = make_float2(o[n][0], o[n][1]);
  if (tig == 0) {
    sml[(slot * kG + gid) * 2] = m;
    sml[(slot * kG + gid) * 2 + 1] = l;
  }
}

// Grid: (tile, hkv / kKv * head groups, split); kKv * 128 threads.
template <int kD, int kG, int kKv>
__global__ void __launch_bounds__(kKv * decode_merge::kThreads, 4 / kKv)
    decode_mma_kernel(AttentionArgs a, int32_t head_groups) {
  static_assert(kG == 4 || kG == 8, "the q heads fill rows 0-7 of the m16 tile");
  static_assert(kD == 64 || kD == 128, "o takes kD/2 accumulator registers per thread");
  constexpr int kChunks = kD / 8;  // 16-byte chunks of a K/V row
  constexpr int kRowBytes = kD * 2;
  using namespace prefill;
  const AttentionTile tile = a.tiles[blockIdx.x];
  if (!decode::open_block(tile)) return;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int sub = warp / kWarps, wq = warp % kWarps;  // this warp's kv head in the block, key slot
  const int gid = lane / 4, tig = lane % 4;  // mma fragment row (q head) and column pair
  const decode::DecodeBlock blk = decode::decode_block<kG, kStageKeys, kKv>(a, tile, head_groups, sub);
  const int32_t kvh = blk.kvh, ng = blk.ng, h0 = blk.h0, keys_total = blk.keys_total;
  const decode::KeySplit split = blk.split;
  const int32_t k_begin = split.begin, k_end = split.end, n_stages = split.n_stages;
  // Stages copied before the wait: those whose keys all precede this step's key (written by qkv_post).
  const int pre = decode::prewait_stages(split, keys_total, kStageKeys, kStages - 1);

  // This warp's ring: [stage][K, V][8 keys][kChunks chunks], chunk c of key r stored at c ^ r.
  extern __shared__ __align__(16) unsigned char smem[];
  const uint32_t ring = smem_addr(smem) + warp * kStages * 2 * kTileBytes<kD>;
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int32_t bs = a.block_size;
  const bool bs_pow2 = (bs & (bs - 1)) == 0;
  const int32_t bs_shift = __ffs(bs) - 1;
  // Copy role: lane copies key cr = lane / 4 of the warp's 8, chunks cq, cq + 4, ... of its K and V rows.
  const int cr = lane / 4, cq = lane % 4;
  auto issue = [&](int32_t stage, int s) {
    const int32_t key = min(k_begin + stage * kStageKeys + wq * kWarpKeys + cr, k_end - 1);  // masked later
    const int32_t blk = bs_pow2 ? key >> bs_shift : key / bs;
    const int64_t slot = static_cast<int64_t>(__ldg(table + blk)) * bs + (key - blk * bs);
    const int64_t off = (slot * a.hkv + kvh) * kD;
    const uint32_t dk = ring + (s * 2) * kTileBytes<kD> + cr * kRowBytes, dv = dk + kTileBytes<kD>;
#pragma unroll
    for (int j = 0; j < kChunks / 4; ++j) {
      const int c = cq + 4 * j;
      cp_async16(dk + ((c ^ cr) * 16), a.k_cache + off + c * 8, true);
      cp_async16(dv + ((c ^ cr) * 16), a.v_cache + off + c * 8, true);
    }
  };
  for (int s = 0; s < pre; ++s) {
    issue(s, s);
    cp_async_commit();
  }
  pdl_wait();  // q and this step's K/V row come from qkv_post
  for (int s = pre; s < kStages - 1; ++s) {
    if (s < n_stages) issue(s, s);
    cp_async_commit();
  }

  uint32_t q[kD / 16][2];
  load_q_fragments<kD>(a, tile.q_row, h0, ng, gid, tig, q);
  const float qscale = a.scale * 1.4426950408889634f;  // base-2 softmax
  float o[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m = -INFINITY, l = 0.0f;  // row gid's running max (quad-uniform) and this thread's partial sum
  // ldmatrix row addresses: lane supplies key lane % 8 of matrix lane / 8 (chunk kk * 4 + lane / 8).
  const int lr = lane % 8, lm = lane / 8;

  for (int32_t t = 0; t < n_stages; ++t) {
    cp_async_wait<kStages - 2>();  // this lane's copies of stage t have landed
    __syncwarp();                  // ... and every lane's; every lane is done reading stage t - 1
    const int32_t nt = t + kStages - 1;
    if (nt < n_stages) issue(nt, nt % kStages);
    cp_async_commit();
    const uint32_t kt = ring + (t % kStages) * 2 * kTileBytes<kD> + lr * kRowBytes, vt = kt + kTileBytes<kD>;
    attend_keys<kD>(
        q, qscale, k_begin + t * kStageKeys + wq * kWarpKeys + 2 * tig, k_end, /*zero_v_past_end=*/false, lm,
        [&](int c) { return kt + ((c ^ lr) * 16); }, [&](int c) { return vt + ((c ^ lr) * 16); }, o, m, l);
  }

  // Merge each kv head's 4 warp states through shared memory (the ring is free once every copy landed).
  cp_async_wait<0>();
  l = quad_sum(l);
  __syncthreads();
  float* so = reinterpret_cast<float*>(smem) + sub * kWarps * kG * kD;         // [kKv][kWarps][kG][kD]
  float* sml = reinterpret_cast<float*>(smem) + kKv * kWarps * kG * kD + sub * kWarps * kG * 2;  // [..][2]
  store_warp_state<kD, kG>(so, sml, wq, gid, tig, o, m, l);
  __syncthreads();
  decode_merge::merge_groups<kD, kG, kWarps>(a, tile, h0, ng, so, sml, threadIdx.x % decode_merge::kThreads);
}

}  // namespace tessera::cuda::decode_mma
