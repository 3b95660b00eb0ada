// Ping-pong prefill attention on Hopper warpgroup MMA (see attention_prefill_wgmma_pingpong.cuh).
// A block of 384 threads: warps 0-7 are two consumer warpgroups (warpgroup g owns query rows
// [64 g, 64 g + 64) of the tile), warps 8-11 the producer warpgroup. Shared memory holds Q, three
// stages of K and V (128 keys each) in wgmma.cuh's 128-byte-swizzled layout and six mbarriers:
//   full[s]  (128 arrivals: every producer thread, once its cp.async writes of the stage have landed
//            and been fenced for the async proxy), empty[s] (8 arrivals: every consumer warp, once the
//            wgmma that read the stage's V, the stage's last reader, has completed).
// Per key block b a consumer warpgroup waits full[b % 3], waits for its turn (named barrier), issues
// S_b = Q·K_bᵀ and O += P_{b-1}·V_{b-1}, hands the turn to the other warpgroup, and runs block b's
// softmax while the tensor cores work through its own and then the other warpgroup's GEMMs. The
// sm_90a build holds the kernel; every other target compiles a body that traps, and the host never
// launches it off compute capability 9.0. Never allocates.
#include <cstdint>

#include "kernels/cuda/attention_prefill_wgmma_pingpong.cuh"
#include "kernels/cuda/attention_prefill_wgmma_rows.cuh"
#include "kernels/cuda/attention_prefill_wgmma_sync.cuh"
#include "kernels/cuda/cuda_check.h"
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
struct PingPongLayout {
  static constexpr uint32_t kQBytes = kRows * kD * 2;
  static constexpr uint32_t kKVBytes = kKeys * kD * 2;  // one stage of K (or of V)
  static constexpr uint32_t kK = kQBytes, kV = kK + kStages * kKVBytes, kBars = kV + kStages * kKVBytes;
  static constexpr size_t kBytes = 1024 /* alignment slack */ + kBars + 8 * 2 * kStages;
};

#if TESSERA_WGMMA
constexpr int kTurnBarrier = 1;             // named barriers 1, 2: warpgroup g's turn to issue GEMMs
constexpr int kQBarrier = 3;                // named barriers 3, 4: warpgroup g's Q is in shared memory
// Registers per thread once the warpgroups have traded them (setmaxnreg): 128 x 40 + 256 x 232 fits
// the 64K register file at one block per SM; the launch's even split (168) would make the consumers'
// S, P and O accumulators spill or their wgmma serialise.
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

// The producer warpgroup: key block n into stage n % kStages once the consumers have released block
// n - kStages, then full[stage] once the writes have landed. Warp w of it loads rows [32 w, 32 w + 32)
// of each block; lane l loads 16-byte piece l % kChunks of rows l / kChunks + i * kRowStep, and holds
// the cache slot of row l (looked up one block ahead, while the previous block's writes land). Rows
// past the sequence are zeros (V zero: p * 0 stays 0).
template <int kD>
__device__ __forceinline__ void produce(const AttentionArgs& a, const AttentionTile& tile, int32_t nblocks,
                                        uint32_t base, uint32_t bars, int pw, int lane) {
  using L = PingPongLayout<kD>;
  constexpr int kChunks = kD / 8;
  constexpr int kRowStep = 32 / kChunks;
  const int chunk = lane % kChunks, row0 = lane / kChunks;
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int64_t kv_stride = static_cast<int64_t>(a.hkv) * kD;
  const __nv_bfloat16* const kbase = a.k_cache + static_cast<int64_t>(blockIdx.y) * kD + chunk * 8;
  const __nv_bfloat16* const vbase = a.v_cache + static_cast<int64_t>(blockIdx.y) * kD + chunk * 8;
  const uint32_t kdst0 = base + L::kK;
  int32_t slot = key_slot(table, a.block_size, 32 * pw + lane, keys_total);
  for (int32_t n = 0; n < nblocks; ++n) {
    const int stage = n % kStages;
    if (n >= kStages) mbar_wait(bars + 8 * (kStages + stage), (n / kStages - 1) & 1);
    const uint32_t kdst = kdst0 + stage * L::kKVBytes;
#pragma unroll
    for (int i = 0; i < 32 / kRowStep; ++i) {
      const int32_t s = __shfl_sync(0xffffffffu, slot, i * kRowStep + row0);  // row r's slot
      const int r = 32 * pw + i * kRowStep + row0;
      const int64_t off = s < 0 ? 0 : static_cast<int64_t>(s) * kv_stride;
      const uint32_t dst = kdst + wgmma::swizzled_offset(r, chunk, kKeys);
      cp_async16(dst, kbase + off, s >= 0);
      cp_async16(dst + (L::kV - L::kK), vbase + off, s >= 0);
    }
    cp_async_commit();
    slot = key_slot(table, a.block_size, (n + 1) * kKeys + 32 * pw + lane, keys_total);
    cp_async_wait<0>();
    wgmma::fence_proxy_async();  // this thread's writes, visible to the tensor cores
    mbar_arrive(bars + 8 * stage);
  }
}
#endif

// kTurns false: the same kernel without the turn-taking (both warpgroups issue as they come), to
// measure what the ordering itself gives.
template <int kD, bool kTurns>
__global__ void __launch_bounds__(kThreads, 1) prefill_wgmma_pingpong_kernel(AttentionArgs a) {
#if TESSERA_WGMMA
  using L = PingPongLayout<kD>;
  extern __shared__ unsigned char raw[];
  const uint32_t base = (smem_addr(raw) + 1023u) & ~1023u;  // the swizzle pattern repeats every 1024 bytes
  const uint32_t bars = base + L::kBars;                     // full[kStages], then empty[kStages]
  // Last tiles first: in the runner's order a sequence's later tiles see the most keys.
  const AttentionTile tile = a.tiles[gridDim.x - 1 - blockIdx.x];
  if (tile.q_len == 0) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);  // warp-uniform, visibly to the compiler
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const int32_t nblocks = (keys_total + kKeys - 1) / kKeys;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(bars + 8 * s, 128);
      mbar_init(bars + 8 * (kStages + s), 8);
    }
  }
  __syncthreads();  // the barriers are initialised; from here on no block-wide barrier
  if (wg == 2) {
    regs_dec<kProducerRegs>();
    produce<kD>(a, tile, nblocks, base, bars, warp - 8, lane);
    return;
  }
  regs_inc<kConsumerRegs>();

  const int32_t G = a.hq / a.hkv;
  const int32_t kvh = blockIdx.y;
  const int32_t nrows = tile.q_len * G;
  // This warpgroup's 64 rows of Q, swizzled (rows past the tile are zeros).
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
    mbar_wait(bars + 8 * (b % kStages), (b / kStages) & 1);
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
    softmax_block<kKeys>(s, m, l, tile, kb, r0, nrows, G, lane, qscale, alpha);
    wgmma::wait<0>();
    fence_operand(o[0]);
    fence_operand(p);  // P of block b - 1 was read by the tensor cores until here
    if (b > 0 && lane == 0) mbar_arrive(bars + 8 * (kStages + (b - 1) % kStages));  // V of b - 1 read
    rescale(o, alpha);
    pack_p<kKeys>(s, p);
  }
  fence_operand(o[0]);
  wgmma::fence();
  issue_pv<kD, kKeys>(o[0], p, v_stage(nblocks - 1));  // the last block's P·V
  wgmma::commit();
  wgmma::wait<0>();
  fence_operand(o[0]);

  write_rows<kD>(a, tile, kvh, G, nrows, r0, lane, o, l);  // normalised
#else
  (void)a;
  __trap();  // never launched: the host checks for compute capability 9.0 (sm_90a code)
#endif
}

template <int kD, bool kTurns>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr size_t smem = PingPongLayout<kD>::kBytes;
  auto* kernel = prefill_wgmma_pingpong_kernel<kD, kTurns>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<dim3(a.num_tiles, a.hkv), kThreads, smem, stream>>>(a);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void paged_attention_prefill_wgmma_pingpong(const AttentionArgs& a, bool turns, cudaStream_t stream) {
  if (a.head_dim == 64) return turns ? launch<64, true>(a, stream) : launch<64, false>(a, stream);
  return turns ? launch<128, true>(a, stream) : launch<128, false>(a, stream);
}

}  // namespace tessera::cuda
