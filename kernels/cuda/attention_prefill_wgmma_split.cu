// Split-barrier ping-pong prefill attention on Hopper warpgroup MMA (see
// attention_prefill_wgmma_split.cuh). A block of 384 threads: warps 0-7 are two consumer warpgroups
// (warpgroup g owns query rows [64 g, 64 g + 64) of the tile), warps 8-11 the producer warpgroup.
// Shared memory: Q, three stages of K and three of V (128 keys each) in wgmma.cuh's 128-byte-swizzled
// layout, and twelve mbarriers:
//   full_k[s], full_v[s]   128 arrivals, one per producer thread, each made by the hardware once
//                          that thread's cp.async writes of the stage (and all it issued before) have
//                          landed;
//   empty_k[s], empty_v[s] 8 arrivals, one per consumer warp: K once S = Q·Kᵀ has been computed from
//                          it, V once P·V has.
// The producer issues K_0, then per key block n: K_{n+1} and V_n, each once its stage is free, and
// never waits for its own copies. Per key block b a consumer warpgroup waits for K_b and V_{b-1},
// takes its turn (named barrier), issues S_b and O += P_{b-1}·V_{b-1}, hands the turn to the other
// warpgroup, gives K_b's stage back once S_b has landed, runs block b's softmax while the tensor cores
// work through P·V and the other warpgroup's GEMMs, then gives V_{b-1}'s stage back. cp.async writes
// go through the generic proxy: every consumer thread fences (fence.proxy.async) after its barrier
// waits and before its wgmma read the stage. The sm_90a build holds the kernel; every other target
// compiles a body that traps, and the host never launches it off compute capability 9.0.
// kLeanEdges (variant 17): the tile's two ends from attention_prefill_wgmma_edges.cuh, the Q load with
// constant per-thread addressing and the rows of O staged in the warpgroup's dead Q rows and written
// as 16-byte stores; without it the kernel is variant 13-16's. Never allocates.
#include <cstdint>

#include "kernels/cuda/attention_prefill_wgmma_split.cuh"
#include "kernels/cuda/attention_prefill_wgmma_edges.cuh"
#include "kernels/cuda/attention_prefill_wgmma_rows.cuh"
#include "kernels/cuda/attention_prefill_wgmma_sync.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kv_cache_tensor_map.h"
#include "kernels/cuda/prefill_fragments.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tessera::cuda {
namespace {

using namespace prefill;  // NOLINT: the kernel is built from these fragments

constexpr int kRows = 128;                  // query rows per block
constexpr int kConsumers = 256;             // two warpgroups
constexpr int kThreads = kConsumers + 128;  // + the producer warpgroup
constexpr int kKeys = 128;                  // keys per stage
constexpr int kStages = 3;

template <int kD>
struct SplitLayout {
  static constexpr uint32_t kQBytes = kRows * kD * 2;
  static constexpr uint32_t kKVBytes = kKeys * kD * 2;  // one stage of K (or of V)
  static constexpr uint32_t kK = kQBytes, kV = kK + kStages * kKVBytes, kBars = kV + kStages * kKVBytes;
  static constexpr size_t kBytes = 1024 /* alignment slack */ + kBars + 8 * 4 * kStages;
};


// Tensor maps of the K and V caches for the TMA shape: each a 2-D bf16 tensor of rows (cache slots) of
// hkv * head_dim elements, read in boxes of 16 rows x 64 elements (128 bytes) with the 128-byte
// swizzle, which is wgmma.cuh's layout.
struct KvMaps {
  CUtensorMap k, v;
};

#if TESSERA_WGMMA
// The barriers, 8 bytes each from `bars`: full_k, full_v, empty_k, empty_v, kStages of each.
__device__ __forceinline__ uint32_t full_k(uint32_t bars, int s) { return bars + 8 * s; }
__device__ __forceinline__ uint32_t full_v(uint32_t bars, int s) { return bars + 8 * (kStages + s); }
__device__ __forceinline__ uint32_t empty_k(uint32_t bars, int s) { return bars + 8 * (2 * kStages + s); }
__device__ __forceinline__ uint32_t empty_v(uint32_t bars, int s) { return bars + 8 * (3 * kStages + s); }

constexpr int kTurnBarrier = 1;  // named barriers 1, 2: warpgroup g's turn to issue GEMMs
constexpr int kQBarrier = 3;     // named barriers 3, 4: warpgroup g's Q is in shared memory
constexpr int kOutBarrier = 5;   // named barriers 5, 6: warpgroup g's rows of O are staged (kLeanEdges)
// Registers per thread once the warpgroups have traded them (setmaxnreg), as in the ping-pong kernel:
// 128 x 40 + 256 x 232 = 64,512, exactly what the launch allocated (384 x 168). More never comes: a
// setmaxnreg.inc beyond what the block's own decrements freed does not return (48 / 232 hung).
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

// The producer warpgroup. Warp w of it loads rows [32 w, 32 w + 32) of every block; lane l loads
// 16-byte piece l % kChunks of rows l / kChunks + i * kRowStep and holds the cache slot of row l of
// the blocks whose K and V it issues next (looked up a block ahead). Rows past the sequence are zeros
// (V zero: p * 0 stays 0). Stage n % kStages of K (V) is free once the consumers have released block
// n - kStages of K (V).
//
// kTma: a key block whose 128 keys all lie in the sequence is copied by the tensor-memory accelerator
// instead (the cache blocks must hold a multiple of 16 keys, so each 16-key group is 16 consecutive
// slots): lanes 0 and 16 of each warp, which hold the slots of rows 32 w and 32 w + 16, each copy
// their 16 rows (kD / 64 boxes) and expect those bytes on the full barrier; the other lanes only
// arrive. The sequence's last, partial block still goes through cp.async (it zero-fills).
template <int kD, bool kTma>
__device__ __forceinline__ void produce(const AttentionArgs& a, const KvMaps& maps, const AttentionTile& tile,
                                        int32_t nblocks, uint32_t base, uint32_t bars, int pw, int lane) {
  using L = SplitLayout<kD>;
  constexpr int kChunks = kD / 8;
  constexpr int kRowStep = 32 / kChunks;
  const int chunk = lane % kChunks, row0 = lane / kChunks;
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int64_t kv_stride = static_cast<int64_t>(a.hkv) * kD;
  const int64_t head = static_cast<int64_t>(blockIdx.y) * kD + chunk * 8;
  const __nv_bfloat16* const kbase = a.k_cache + head;
  const __nv_bfloat16* const vbase = a.v_cache + head;
  const int32_t row = 32 * pw + lane;  // the row whose slot this lane holds
  // One block's rows of this warp from `src` into the stage at `stage` (slot: the block's slot of row).
  auto issue = [&](const __nv_bfloat16* src, uint32_t stage, int32_t slot) {
#pragma unroll
    for (int i = 0; i < 32 / kRowStep; ++i) {
      const int32_t s = __shfl_sync(0xffffffffu, slot, i * kRowStep + row0);
      const int r = 32 * pw + i * kRowStep + row0;
      const int64_t off = s < 0 ? 0 : static_cast<int64_t>(s) * kv_stride;
      cp_async16(stage + wgmma::swizzled_offset(r, chunk, kKeys), src + off, s >= 0);
    }
  };
  // Block n of K (or V) into the stage at `stage`, completing `full`.
  auto load = [&](int32_t n, const CUtensorMap* map, const __nv_bfloat16* src, uint32_t stage, uint32_t full,
                  int32_t slot) {
    if (kTma && (n + 1) * kKeys <= keys_total) {
      if ((lane & 15) == 0) {
        mbar_arrive_expect_tx(full, 16 * kD * 2);
#pragma unroll
        for (int c = 0; c < kD / 64; ++c)
          tma_load_2d(stage + c * kKeys * 128 + row * 128, map, static_cast<int32_t>(blockIdx.y) * kD + c * 64,
                      slot, full);
      } else {
        mbar_arrive(full);
      }
    } else {
      issue(src, stage, slot);
      mbar_arrive_on_cp_async(full);
    }
  };
  int32_t slot_v = key_slot(table, a.block_size, row, keys_total);  // block 0: K now, V first in the loop
  load(0, &maps.k, kbase, base + L::kK, full_k(bars, 0), slot_v);
  int32_t slot_k = key_slot(table, a.block_size, kKeys + row, keys_total);  // block 1
  for (int32_t n = 0; n < nblocks; ++n) {
    const int32_t ahead = key_slot(table, a.block_size, (n + 2) * kKeys + row, keys_total);
    if (n + 1 < nblocks) {  // K of block n + 1
      const int s = (n + 1) % kStages;
      if (n + 1 >= kStages) mbar_wait(empty_k(bars, s), ((n + 1) / kStages - 1) & 1);
      load(n + 1, &maps.k, kbase, base + L::kK + s * L::kKVBytes, full_k(bars, s), slot_k);
    }
    const int s = n % kStages;  // V of block n
    if (n >= kStages) mbar_wait(empty_v(bars, s), (n / kStages - 1) & 1);
    load(n, &maps.v, vbase, base + L::kV + s * L::kKVBytes, full_v(bars, s), slot_v);
    slot_v = slot_k;
    slot_k = ahead;
  }
  cp_async_wait_all();  // leave no copy in flight behind an exited thread
}
#endif

template <int kD, bool kTurns, bool kTma, bool kLeanEdges>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_wgmma_split_kernel(AttentionArgs a, const __grid_constant__ KvMaps maps) {
#if TESSERA_WGMMA
  using L = SplitLayout<kD>;
  extern __shared__ unsigned char raw[];
  const uint32_t base = (smem_addr(raw) + 1023u) & ~1023u;  // the swizzle pattern repeats every 1024 bytes
  const uint32_t bars = base + L::kBars;
  // Last tiles first: in the runner's order a sequence's later tiles see the most keys.
  const AttentionTile tile = a.tiles[gridDim.x - 1 - blockIdx.x];
  if (tile.q_len == 0) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);  // warp-uniform, visibly to the compiler
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const int32_t nblocks = (keys_total + kKeys - 1) / kKeys;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full_k(bars, s), 128);
      mbar_init(full_v(bars, s), 128);
      mbar_init(empty_k(bars, s), 8);
      mbar_init(empty_v(bars, s), 8);
    }
  }
  __syncthreads();  // the barriers are initialised; from here on no block-wide barrier
  if (wg == 2) {
    regs_dec<kProducerRegs>();
    produce<kD, kTma>(a, maps, tile, nblocks, base, bars, warp - 8, lane);
    return;
  }
  regs_inc<kConsumerRegs>();

  const int32_t G = a.hq / a.hkv;
  const int32_t kvh = blockIdx.y;
  const int32_t nrows = tile.q_len * G;
  // This warpgroup's 64 rows of Q, swizzled (rows past the tile are zeros).
  if constexpr (kLeanEdges)
    load_q_rows_lean<kD, kRows>(a, tile, kvh, G, nrows, base, wg * 64, tid % 128);
  else
    load_q_rows<kD, kRows>(a, tile, kvh, G, nrows, base, wg * 64, 64, tid % 128, 128);
  cp_async_commit();
  cp_async_wait<0>();
  wgmma::fence_proxy_async();
  named_sync(kQBarrier + wg, 128);

  // This thread's rows: r0 and r0 + 8 (the accumulator layout). Masking is decided per block of keys
  // from the tile's first position, the same for every warp.
  const int r0 = warp * 16 + (lane >> 2);
  const float qscale = a.scale * 1.4426950408889634f;  // softmax in base 2
  const uint32_t q_tile = base + wg * 64 * 128;        // the warpgroup's 64 rows of each Q chunk
  float o[1][kD / 8][4];
  float m[1][2] = {{-INFINITY, -INFINITY}}, l[1][2] = {{0.0f, 0.0f}};
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[0][n][0] = o[0][n][1] = o[0][n][2] = o[0][n][3] = 0.0f;

  // Key block b's K and V stages.
  auto k_stage = [&](int32_t b) { return base + L::kK + (b % kStages) * L::kKVBytes; };
  auto v_stage = [&](int32_t b) { return base + L::kV + (b % kStages) * L::kKVBytes; };

  // Turns alternate strictly: warpgroup 0 first; warpgroup 1 hands over one turn up front and skips
  // its hand-over after its last block, so each named barrier sees as many arrivals as waits.
  if (kTurns && wg == 1) named_arrive(kTurnBarrier, kConsumers);
  uint32_t p[kKeys / 16][4];  // P of the block whose P·V is still to issue
  for (int32_t b = 0; b < nblocks; ++b) {
    const int32_t kb = b * kKeys;
    float s[1][kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[0][n][0] = s[0][n][1] = s[0][n][2] = s[0][n][3] = 0.0f;
    float alpha[1][2];
    mbar_wait(full_k(bars, b % kStages), (b / kStages) & 1);
    if (b > 0) mbar_wait(full_v(bars, (b - 1) % kStages), ((b - 1) / kStages) & 1);
    wgmma::fence_proxy_async();  // the producer's cp.async writes, visible to this thread's wgmma
    if constexpr (kTurns) named_sync(kTurnBarrier + wg, kConsumers);
    fence_operand(s[0]);
    fence_operand(o[0]);
    wgmma::fence();
    issue_s<kD, kKeys, kRows>(s[0], q_tile, k_stage(b));
    wgmma::commit();
    // One branch per case, each with its own wait: ptxas must see S_b retired on every path before
    // the softmax reads it, or it serialises every wgmma.
    const bool hand_over = kTurns && (wg == 0 || b + 1 < nblocks);
    if (b > 0) {
      issue_pv<kD, kKeys>(o[0], p, v_stage(b - 1));
      wgmma::commit();
      if (hand_over) named_arrive(kTurnBarrier + 1 - wg, kConsumers);
      wgmma::wait<1>();  // S_b has landed; P·V of block b - 1 may still run
    } else {
      if (hand_over) named_arrive(kTurnBarrier + 1 - wg, kConsumers);
      wgmma::wait<0>();
    }
    fence_operand(s[0]);
    if (lane == 0) mbar_arrive(empty_k(bars, b % kStages));  // K_b read
    softmax_block<kKeys>(s, m, l, tile, kb, r0, nrows, G, lane, qscale, alpha);
    wgmma::wait<0>();
    fence_operand(o[0]);
    fence_operand(p);  // P of block b - 1 was read by the tensor cores until here
    if (b > 0 && lane == 0) mbar_arrive(empty_v(bars, (b - 1) % kStages));  // V_{b-1} read
    rescale(o, alpha);
    pack_p<kKeys>(s, p);
  }
  mbar_wait(full_v(bars, (nblocks - 1) % kStages), ((nblocks - 1) / kStages) & 1);
  wgmma::fence_proxy_async();
  fence_operand(o[0]);
  wgmma::fence();
  issue_pv<kD, kKeys>(o[0], p, v_stage(nblocks - 1));  // the last block's P·V
  wgmma::commit();
  wgmma::wait<0>();
  fence_operand(o[0]);

  if constexpr (kLeanEdges)
    write_rows_staged<kD, kRows>(a, tile, kvh, G, nrows, wg * 64, q_tile, kOutBarrier + wg, tid % 128, o, l);
  else
    write_rows<kD>(a, tile, kvh, G, nrows, r0, lane, o, l);  // normalised
#else
  (void)a;
  (void)maps;
  __trap();  // never launched: the host checks for compute capability 9.0 (sm_90a code)
#endif
}

template <int kD, bool kTurns, bool kTma, bool kLeanEdges>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr size_t smem = SplitLayout<kD>::kBytes;
  auto* kernel = prefill_wgmma_split_kernel<kD, kTurns, kTma, kLeanEdges>;
  KvMaps maps{};
  if constexpr (kTma) maps = KvMaps{cache_map(a.k_cache, a.hkv, kD), cache_map(a.v_cache, a.hkv, kD)};
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<dim3(a.num_tiles, a.hkv), kThreads, smem, stream>>>(a, maps);
  CUDA_CHECK_LAUNCH();
}

template <int kD, bool kTurns, bool kLeanEdges = false>
void launch_copies(const AttentionArgs& a, bool tma, cudaStream_t stream) {
  // TMA boxes need each 16-key group in consecutive slots of one cache block.
  if (tma && a.block_size % 16 == 0) return launch<kD, kTurns, true, kLeanEdges>(a, stream);
  return launch<kD, kTurns, false, kLeanEdges>(a, stream);
}

}  // namespace

void paged_attention_prefill_wgmma_split(const AttentionArgs& a, bool turns, bool tma, cudaStream_t stream) {
  if (a.head_dim == 64) return turns ? launch_copies<64, true>(a, tma, stream) : launch_copies<64, false>(a, tma, stream);
  return turns ? launch_copies<128, true>(a, tma, stream) : launch_copies<128, false>(a, tma, stream);
}

void paged_attention_prefill_wgmma_split_lean(const AttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim == 64) return launch_copies<64, false, true>(a, true, stream);
  return launch_copies<128, false, true>(a, true, stream);
}

}  // namespace tessera::cuda
