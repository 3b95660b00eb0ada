// Prefill attention on Hopper warpgroup MMA (see attention_prefill_wgmma.cuh). A block of 256 threads
// = two warpgroups takes the 128 query rows of one tile and kv head; warpgroup g owns rows
// [64 g, 64 g + 64). Q and two (three when pipelined) stages of K and V sit in shared memory in the
// 128-byte-swizzled layout of wgmma.cuh, filled by cp.async one key block ahead (the page-table slots
// fetched two blocks ahead, as in attention_prefill_tc.cu), one barrier per key block. Per key block:
// S = Q·Kᵀ as kD/16 wgmma m64n{keys}k16 (Q from shared memory or registers, K from shared memory),
// the online softmax on S's accumulators (the m16n8 layout, so prefill_fragments.cuh's softmax serves
// both kernels), then O += P·V as keys/16 wgmma m64n{kD}k16 with P from registers and V read MN-major
// (transposed by the tensor core). The sm_90a build holds the kernel; every other target compiles a
// body that traps, and the host never launches it off compute capability 9.0.
#include <cstdint>

#include "kernels/cuda/attention_prefill_wgmma.cuh"
#include "kernels/cuda/attention_prefill_wgmma_pingpong.cuh"
#include "kernels/cuda/attention_prefill_wgmma_rows.cuh"
#include "kernels/cuda/attention_prefill_wgmma_split.cuh"
#include "kernels/cuda/attention_prefill_wgmma_sync.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/prefill_fragments.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tessera::cuda {
namespace {

using namespace prefill;  // NOLINT: the kernel is built from these fragments

constexpr int kRows = 128;     // query rows per block
constexpr int kThreads = 256;  // two warpgroups

template <int kD, int kKeys, int kStages = 2>
struct WgLayout {
  static constexpr uint32_t kQBytes = kRows * kD * 2;
  static constexpr uint32_t kKVBytes = kKeys * kD * 2;  // one stage of K (or of V)
  // Q, kStages stages of K, kStages of V, two of page-table slots; every tile on a 1024-byte boundary.
  static constexpr uint32_t kK = kQBytes, kV = kK + kStages * kKVBytes, kSlots = kV + kStages * kKVBytes;
  static constexpr size_t kBytes = 1024 /* alignment slack */ + kSlots + sizeof(int32_t) * 2 * kKeys;
};


// kPipelined false: per key block S = Q·Kᵀ, softmax, O += P·V, each waited for (two stages of K/V).
// kPipelined true (the FlashAttention-3 order within a warpgroup): block b's S and block b - 1's
// P·V are issued together, the softmax of S_b runs while P·V is still on the tensor cores, and O is
// rescaled once it lands; V of block b - 1 is still read while block b + 1 loads, so three stages.
// kQInRegs: Q·Kᵀ takes Q from registers (loaded once by ldmatrix) instead of shared memory, halving
// the shared-memory bytes each S wgmma reads (at 64 keys an m64n64k16 with both operands in shared
// memory reads as many bytes per cycle as shared memory delivers).
template <int kD, int kKeys, int kMinBlocks, bool kPipelined, bool kQInRegs = false>
__global__ void __launch_bounds__(kThreads, kMinBlocks) prefill_wgmma_kernel(AttentionArgs a) {
#if TESSERA_WGMMA
  constexpr int kStages = kPipelined ? 3 : 2;
  using L = WgLayout<kD, kKeys, kStages>;
  constexpr int kChunks = kD / 8;                          // 16-byte pieces per row
  constexpr int kRowStep = kThreads / kChunks;             // K/V rows one pass of the block loads
  constexpr int kLoads = kKeys / kRowStep;                 // cp.async pairs per thread per stage
  static_assert(kLoads * kRowStep == kKeys && kRowStep % 8 == 0, "a thread's rows share their swizzle");
  static_assert(kKeys <= kThreads, "one thread per key prefetches the page-table slots");
  extern __shared__ unsigned char raw[];
  const uint32_t raw_addr = smem_addr(raw);
  const uint32_t base = (raw_addr + 1023u) & ~1023u;  // the swizzle pattern repeats every 1024 bytes
  int32_t* const sslot = reinterpret_cast<int32_t*>(raw + (base - raw_addr) + L::kSlots);  // [2][kKeys]
  // Last tiles first: in the runner's order a sequence's later tiles see the most keys.
  const AttentionTile tile = a.tiles[gridDim.x - 1 - blockIdx.x];
  if (tile.q_len == 0) return;
  const int32_t G = a.hq / a.hkv;
  const int32_t kvh = blockIdx.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int32_t nrows = tile.q_len * G;
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int32_t bs = a.block_size;

  if (tid < kKeys) {
    sslot[tid] = key_slot(table, bs, tid, keys_total);
    sslot[kKeys + tid] = key_slot(table, bs, kKeys + tid, keys_total);
  }
  // Q rows of the tile, swizzled (rows past it are zeros).
  load_q_rows<kD, kRows>(a, tile, kvh, G, nrows, base, 0, kRows, tid, kThreads);
  __syncthreads();  // the first two blocks' slots
  const int64_t kv_stride = static_cast<int64_t>(a.hkv) * kD;
  const int chunk = tid % kChunks, row0 = tid / kChunks;
  const __nv_bfloat16* const kbase = a.k_cache + static_cast<int64_t>(kvh) * kD + chunk * 8;
  const __nv_bfloat16* const vbase = a.v_cache + static_cast<int64_t>(kvh) * kD + chunk * 8;
  const uint32_t kdst0 = base + L::kK + wgmma::swizzled_offset(row0, chunk, kKeys);
  // Key block b into stage b % kStages; keys past the sequence are zeros (V zero: p * 0 stays 0).
  auto load_kv = [&](int32_t b) {
    const int32_t* slots = sslot + (b & 1) * kKeys;
    const uint32_t stage = (b % kStages) * L::kKVBytes;
#pragma unroll
    for (int it = 0; it < kLoads; ++it) {
      const int32_t slot = slots[row0 + it * kRowStep];
      const int64_t off = slot < 0 ? 0 : static_cast<int64_t>(slot) * kv_stride;
      const uint32_t dst = kdst0 + stage + it * kRowStep * 128;
      cp_async16(dst, kbase + off, slot >= 0);
      cp_async16(dst + (L::kV - L::kK), vbase + off, slot >= 0);
    }
  };

  // This thread's rows: r0 and r0 + 8 (the accumulator layout). Which key blocks are visited and
  // which are masked is decided for the whole block (the tile's last and first positions), never per
  // warp: a branch that only the compiler cannot prove uniform makes it serialize every wgmma.
  const int r0 = warp * 16 + (lane >> 2);
  const float qscale = a.scale * 1.4426950408889634f;  // softmax in base 2
  const uint32_t q_tile = base + wg * 64 * 128;        // the warpgroup's 64 rows of each Q chunk

  float o[1][kD / 8][4];
  float m[1][2] = {{-INFINITY, -INFINITY}}, l[1][2] = {{0.0f, 0.0f}};
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[0][n][0] = o[0][n][1] = o[0][n][2] = o[0][n][3] = 0.0f;

  const int32_t nblocks = (keys_total + kKeys - 1) / kKeys;
  uint32_t qf[kQInRegs ? kD / 16 : 1][4];  // Q as A fragments (kQInRegs), per 16-wide k step
  // S = Q·Kᵀ of key block b into s (issued, not waited for).
  auto issue_s_b = [&](float (&s)[kKeys / 8][4], int32_t b) {
    const uint32_t ks = base + L::kK + (b % kStages) * L::kKVBytes;
    if constexpr (kQInRegs) {
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk)
        wgmma::wgmma_rs<0>(s, qf[kk], wgmma::descriptor(ks + (kk >> 2) * kKeys * 128 + (kk & 3) * 32, 16, 1024),
                           kk > 0);
    } else {
      issue_s<kD, kKeys, kRows>(s, q_tile, ks);
    }
  };
  auto v_stage = [&](int32_t b) { return base + L::kV + (b % kStages) * L::kKVBytes; };

  uint32_t p[kKeys / 16][4];  // P of the block whose P·V is still to issue (pipelined)
  load_kv(0);
  cp_async_commit();  // group 0: Q and the first keys
  if constexpr (kQInRegs) {  // this warp's 16 rows of Q: lane l addresses row l % 16, k half l / 16
    cp_async_wait<0>();
    __syncthreads();
    const int qrow = warp * 16 + (lane & 15);
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) ldmatrix_x4(qf[kk], base + wgmma::swizzled_offset(qrow, 2 * kk + (lane >> 4), kRows));
  }
  for (int32_t b = 0; b < nblocks; ++b) {
    const int32_t kb = b * kKeys;
    const int32_t next_slot = tid < kKeys ? key_slot(table, bs, kb + 2 * kKeys + tid, keys_total) : -1;
    cp_async_wait<0>();          // block b (issued one iteration ago)
    wgmma::fence_proxy_async();  // this thread's cp.async writes, visible to the tensor cores
    // One barrier per block: after it every thread has finished iteration b - 1, so block b is
    // complete, the stage block b + 1 goes to (last read by iteration b - 1 at the latest) is free,
    // and block b + 1's slots (stored at the end of iteration b - 1) are visible.
    __syncthreads();
    if (b + 1 < nblocks) {
      load_kv(b + 1);
      cp_async_commit();
    }
    // Every stage reaches some row of the tile (nblocks ends at its last key); block 0 holds key 0,
    // visible to every row, so m is finite from then on.
    float s[1][kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[0][n][0] = s[0][n][1] = s[0][n][2] = s[0][n][3] = 0.0f;
    float alpha[1][2];
    fence_operand(s[0]);
    fence_operand(o[0]);
    wgmma::fence();
    issue_s_b(s[0], b);
    wgmma::commit();
    if constexpr (kPipelined) {
      if (b > 0) {
        issue_pv<kD, kKeys>(o[0], p, v_stage(b - 1));
        wgmma::commit();
        wgmma::wait<1>();  // S_b has landed; P·V of block b - 1 may still run
      } else {
        wgmma::wait<0>();
      }
      fence_operand(s[0]);
      softmax_block<kKeys>(s, m, l, tile, kb, r0, nrows, G, lane, qscale, alpha);
      wgmma::wait<0>();
      fence_operand(o[0]);
      fence_operand(p);  // P of block b - 1 was read by the tensor cores until here
      rescale(o, alpha);
      pack_p<kKeys>(s, p);
    } else {
      wgmma::wait<0>();
      fence_operand(s[0]);
      softmax_block<kKeys>(s, m, l, tile, kb, r0, nrows, G, lane, qscale, alpha);
      rescale(o, alpha);
      pack_p<kKeys>(s, p);
      fence_operand(o[0]);
      wgmma::fence();
      issue_pv<kD, kKeys>(o[0], p, v_stage(b));
      wgmma::commit();
      wgmma::wait<0>();
      fence_operand(o[0]);
    }
    // Block b's slots were read by load_kv(b) in iteration b - 1, which every thread has finished.
    if (tid < kKeys) sslot[(b & 1) * kKeys + tid] = next_slot;
  }
  if constexpr (kPipelined) {  // the last block's P·V
    fence_operand(o[0]);
    wgmma::fence();
    issue_pv<kD, kKeys>(o[0], p, v_stage(nblocks - 1));
    wgmma::commit();
    wgmma::wait<0>();
    fence_operand(o[0]);
  }

  write_rows<kD>(a, tile, kvh, G, nrows, r0, lane, o, l);  // normalised
#else
  (void)a;
  __trap();  // never launched: the host checks for compute capability 9.0 (sm_90a code)
#endif
}

template <int kD, int kKeys, int kMinBlocks, bool kPipelined, bool kQInRegs = false>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr size_t smem = WgLayout<kD, kKeys, kPipelined ? 3 : 2>::kBytes;
  auto* kernel = prefill_wgmma_kernel<kD, kKeys, kMinBlocks, kPipelined, kQInRegs>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<dim3(a.num_tiles, a.hkv), kThreads, smem, stream>>>(a);
  CUDA_CHECK_LAUNCH();
}

template <int kD>
void launch_shape(const AttentionArgs& a, WgmmaShape shape, cudaStream_t stream) {
  switch (shape) {
    case WgmmaShape::kKeys64: return launch<kD, 64, 2, false>(a, stream);
    case WgmmaShape::kKeys128: return launch<kD, 128, 1, false>(a, stream);
    case WgmmaShape::kPipelined64: return launch<kD, 64, 1, true>(a, stream);
    case WgmmaShape::kPipelined128: return launch<kD, 128, 1, true>(a, stream);
    case WgmmaShape::kPipelined64QRegs: return launch<kD, 64, 1, true, true>(a, stream);
    case WgmmaShape::kPingPong128: return paged_attention_prefill_wgmma_pingpong(a, true, stream);
    case WgmmaShape::kPingPong128NoTurns: return paged_attention_prefill_wgmma_pingpong(a, false, stream);
    case WgmmaShape::kSplit128: return paged_attention_prefill_wgmma_split(a, true, false, stream);
    case WgmmaShape::kSplit128NoTurns: return paged_attention_prefill_wgmma_split(a, false, false, stream);
    case WgmmaShape::kSplit128Tma: return paged_attention_prefill_wgmma_split(a, true, true, stream);
    case WgmmaShape::kSplit128TmaNoTurns: return paged_attention_prefill_wgmma_split(a, false, true, stream);
    case WgmmaShape::kSplit128TmaNoTurnsLeanEdges: return paged_attention_prefill_wgmma_split_lean(a, stream);
  }
}

}  // namespace

bool attention_prefill_wgmma_available() {
  int device = 0, major = 0, minor = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major == 9 && minor == 0;
}

void paged_attention_prefill_wgmma(const AttentionArgs& a, WgmmaShape shape, cudaStream_t stream) {
  if (a.head_dim == 64) return launch_shape<64>(a, shape, stream);
  return launch_shape<128>(a, shape, stream);
}

}  // namespace tessera::cuda
