// The SwiGLU gate/up GEMM kernel (gemm_swiglu_wgmma.cuh). A persistent block of 384 threads: warps
// 0-7 are two consumer warpgroups (warpgroup g owns rows [64 g, 64 g + 64) of each 128-row tile),
// warp 8 (of the producer warpgroup 8-11) issues every copy. Shared memory: a ring of 4 stages, each
// 64 k of the tile's 128 x rows (16 KiB) and of its 128 gate rows and 128 up rows of w, stacked
// (32 KiB), all in wgmma.cuh's 128-byte-swizzled layout as TMA writes them, and 8 mbarriers:
//   full[s]   1 arrival (the producer's, with the stage's 48 KiB expected) + the TMA bytes;
//   empty[s]  8 arrivals, one per consumer warp, once the wgmmas that read the stage completed.
// Tiles are numbered rows fastest (tile t: rows (t % m_tiles) * 128, act columns (t / m_tiles) *
// 128); block b takes tiles b, b + grid, ... Both roles walk the same sequence of (tile, k-block)
// stages, so their ring positions agree without any other exchange.
// kCtas 2 (clusters of two blocks): the blocks of a cluster take row tiles 2q and 2q + 1 of the same
// columns; each copies its own x rows and one half of the weight rows (block 0 gate, block 1 up),
// multicast into both blocks' stages, so each weight byte leaves L2 once per pair of row tiles (a third
// less L2 -> SM traffic per FLOP). A stage is then free once the consumers of both blocks released it
// (empty counts 16: each consumer warp arrives in its own block and in the other), and the producer
// waits for its ring's last releases before it exits, so no arrival targets a finished block. With an
// odd number of row tiles the last cluster's second block works on rows past m (zeros, not stored).
// kCtas 4 (2 x 2 clusters): rank r takes row tile 2q + (r & 1) of column tile 2p + (r >> 1); it copies
// its weight half as above into itself and rank r ^ 1 (same columns), and half of its x tile (64 rows,
// by r >> 1) into itself and rank r ^ 2 (same rows), so x bytes also leave L2 once per two blocks.
// Its producer writes into r, r ^ 1 and r ^ 2, so empty counts 24 (each consumer warp arrives in its
// own block and in r ^ 1 and r ^ 2). With an odd number of column tiles the last clusters' second
// column works past inter (not stored). A consumer warpgroup issues
// m64n256k16 over the 256 stacked rows per 16 k, keeps one stage's wgmmas in flight while it waits for
// the next stage, and after the tile's last stage computes act from its 128 accumulators: gate column
// c is d[c / 8][..], up column c is d[16 + c / 8][..], both in the same thread. Rows past m are read
// as zeros (TMA) and never stored.
// kEpi (epilogue warps): the consumers only round g and u to bf16 and stage them in shared memory
// ([128 rows][256 + 8 pad] bf16, conflict-free 4-byte stores), arrive on staged_full (256 arrivals)
// and go straight on to the next tile's stages; warps 9-11 of the producer warpgroup (idle otherwise)
// wait for it, compute act from the staged pairs with the same silu_times, store it as 16-byte row
// pieces and arrive on staged_empty (96 arrivals), which the consumers wait for before staging the
// next tile. The staging buffer costs a stage: 3 stages instead of 4. The same bits as without.
// kSplit 2 or 4 (tail parts; kCtas 2 and kEpi only): the walk first takes the groups of the whole
// waves (groups / clusters x clusters) as above, then the rest as kSplit parts each (part p: group
// full + p / kSplit, act columns (p % kSplit) x 128 / kSplit on of its tiles). A part's stage holds the
// same x rows and 128 / kSplit gate then as many up rows (a box of w_part_map per block, multicast as
// above); both consumer warpgroups issue m64n(256 / kSplit)k16 into the first 32 / kSplit rows of the
// same accumulator array (gate column c in d[c / 8], up column c in d[16 / kSplit + c / 8]) in a loop of
// their own after the whole groups' loop, and stage g and u at the same places as a whole tile's first
// 128 / kSplit columns; the epilogue warps store those. Same k order per element: the same bits.
// kOwnRing (quarters only): the parts' 24 KiB stages go through a ring of their own in the main ring's
// memory, 6 stages deep instead of 3, behind barriers of their own (full, empty as above);
// each producer starts it once every stage of the main ring is released in both blocks (its own
// consumers' arrivals and the other block's, which also read what it multicast), so no copy lands in
// a stage still being read.
// Never allocates.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/attention_prefill_wgmma_sync.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_swiglu_mma.cuh"
#include "kernels/cuda/gemm_swiglu_wgmma.cuh"
#include "kernels/cuda/silu.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 384;  // two consumer warpgroups + the producer warpgroup
constexpr uint32_t kABytes = kSwigluTileRows * 128;      // 128 rows of x x 64 k
constexpr uint32_t kBBytes = 2 * kSwigluTileCols * 128;  // 128 gate + 128 up rows of w x 64 k
constexpr uint32_t kStageBytes = kABytes + kBBytes;
constexpr uint32_t kStagedPitch = 2 * (2 * kSwigluTileCols + 8);  // bytes per staged row of g and u

// Shared memory from the 1024-aligned base: the ring, the staging buffer (kEpi), the barriers
// full[kStages], empty[kStages], staged_full, staged_empty, then the part ring's full[kPartStages],
// empty[kPartStages] (kOwnRing below; room for the deepest, the quarters' 6).
template <bool kEpi>
struct Layout {
  static constexpr uint32_t kStages = kEpi ? 3 : 4;
  static constexpr uint32_t kStaged = kStages * kStageBytes;
  static constexpr uint32_t kBars = kStaged + (kEpi ? kSwigluTileRows * kStagedPitch : 0);
  static constexpr uint32_t kPartBars = kBars + 8 * (2 * kStages + 2);
  static constexpr size_t kSmem = 1024 /* alignment slack */ + kPartBars + 8 * 2 * 8;
};
// A part's stage (x and 128 / kSplit gate + as many up rows) and, in a ring of its own (kOwnRing), how
// many of them fit in the main ring's memory: 4 of 32 KiB (halves), 6 of 24 KiB (quarters).
template <int kSplit>
constexpr uint32_t kPartStageBytes = kABytes + kBBytes / kSplit;
template <int kSplit>
constexpr uint32_t kPartStages = Layout<true>::kStaged / kPartStageBytes<kSplit>;
static_assert(kPartStages<2> == 4 && kPartStages<4> == 6 && kPartStageBytes<4> % 1024 == 0, "the part ring");
static_assert(Layout<true>::kSmem <= 227 * 1024 && Layout<false>::kSmem <= 227 * 1024, "shared memory");
static_assert(kSwigluTileRows == 128 && kSwigluTileCols == 128 && kSwigluStageK == 64, "the kernel's tile");
#if TESSERA_WGMMA
constexpr int kEpiThreads = 96;           // kEpi: warps 9-11 compute and store act
constexpr uint32_t kHalfB = kBBytes / 2;  // one weight half (gate or up) of a stage
// Registers per thread once the warpgroups have traded them (setmaxnreg), as in the prefill attention
// kernels: 128 x 40 + 256 x 232 = 64,512 = 384 x 168, what the launch allocated. kEpi: the epilogue
// warps' SiLU loop gets more and the consumers, which only stage g and u, less: 128 x 72 + 256 x 216.
template <bool kEpi>
constexpr int kProducerRegs = kEpi ? 72 : 40;
template <bool kEpi>
constexpr int kConsumerRegs = kEpi ? 216 : 232;

using namespace prefill;  // NOLINT: mbarriers, TMA loads, setmaxnreg and operand fences

__device__ __forceinline__ uint32_t full_bar(uint32_t bars, uint32_t s) { return bars + 8 * s; }
template <uint32_t kStages>
__device__ __forceinline__ uint32_t empty_bar(uint32_t bars, uint32_t s) { return bars + 8 * (kStages + s); }
template <uint32_t kStages>
__device__ __forceinline__ uint32_t staged_full_bar(uint32_t bars) { return bars + 8 * (2 * kStages); }
template <uint32_t kStages>
__device__ __forceinline__ uint32_t staged_empty_bar(uint32_t bars) { return bars + 8 * (2 * kStages + 1); }
// K-major operand, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t kmajor(uint32_t addr) { return wgmma::descriptor(addr, 16, 1024); }

__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// Tile walk of one cluster: `count` tile groups (a group: the cluster's kRows x kCols tiles), rows
// fastest; the block's tile of group t starts at row row0(t) and act column col0(t). kSplit > 1: groups
// [0, full) are walked whole, the rest as `parts` parts of 128 / kSplit columns (part_row0, part_col0).
template <int kCtas, int kSplit>
struct TileWalk {
  static_assert(kSplit == 1 || kCtas == 2, "tail parts are built for clusters of two");
  static constexpr int32_t kRows = kCtas == 1 ? 1 : 2;  // row tiles per group
  static constexpr int32_t kCols = kCtas / kRows;        // column tiles per group
  int32_t groups;  // groups per column of groups
  int32_t count;
  int32_t full;   // groups walked whole: all, or (kSplit > 1) those of the whole waves
  int32_t parts;  // parts of the groups past them, kSplit each
  uint32_t rank;  // the block's rank in its cluster
  __device__ TileWalk(int32_t m, int32_t inter, uint32_t cta_rank) : rank(cta_rank) {
    const int32_t m_tiles = (m + kSwigluTileRows - 1) / kSwigluTileRows, n_tiles = inter / kSwigluTileCols;
    groups = (m_tiles + kRows - 1) / kRows;
    count = groups * ((n_tiles + kCols - 1) / kCols);
    full = kSplit == 1 ? count : count / step() * step();
    parts = (count - full) * kSplit;
  }
  __device__ int32_t part_row0(int32_t p) const { return row0(full + p / kSplit); }
  __device__ int32_t part_col0(int32_t p) const {
    return col0(full + p / kSplit) + (p % kSplit) * (kSwigluTileCols / kSplit);
  }
  __device__ int32_t first() const { return static_cast<int32_t>(blockIdx.x) / kCtas; }
  __device__ int32_t step() const { return static_cast<int32_t>(gridDim.x) / kCtas; }
  __device__ int32_t row0(int32_t t) const {
    return ((t % groups) * kRows + static_cast<int32_t>(rank % kRows)) * kSwigluTileRows;
  }
  __device__ int32_t col0(int32_t t) const {
    return ((t / groups) * kCols + static_cast<int32_t>(rank / kRows)) * kSwigluTileCols;
  }
};

__device__ __forceinline__ uint32_t cta_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
// One arrival on the mbarrier at `bar` (this block's shared address) in cluster block `cta`.
__device__ __forceinline__ void mbar_arrive_in(uint32_t bar, uint32_t cta) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(bar), "r"(cta));
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];\n" ::"r"(remote) : "memory");
}
// tma_load_2d into the same shared offset (and completing the same mbarrier) of every block in `mask`.
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const void* map, int32_t x, int32_t y, uint32_t bar,
                                                      uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(map), "r"(x), "r"(y), "r"(bar), "h"(mask)
      : "memory");
}

// The producer: one thread issues every stage's boxes once the stage is free (in both blocks of the
// cluster), then waits until the last kStages stages are released, so every consumer arrival aimed
// at this block (its own and, for kCtas 2, the other block's) has landed before it exits.
// kSplit > 1: then each part's stages (x as for a tile, this block's 128 / kSplit weight rows of the part
// from w_part_map into both blocks, gate rows first).
// The wait for the last kStages of `it` stages' releases (phase u / kStages of stage u's barrier).
template <uint32_t kStages>
__device__ __forceinline__ void wait_released(uint32_t bars, uint32_t it) {
  for (uint32_t u = it > kStages ? it - kStages : 0; u < it; ++u)
    mbar_wait(empty_bar<kStages>(bars, u % kStages), (u / kStages) & 1);
}

template <int kCtas, int kSplit, bool kOwnRing, uint32_t kStages>
__device__ __forceinline__ void produce(const CUtensorMap* x_map, const CUtensorMap* w_map,
                                        const CUtensorMap* w_part_map, uint32_t base, uint32_t bars,
                                        uint32_t part_bars, const TileWalk<kCtas, kSplit>& walk, int32_t inter,
                                        int nk) {
  uint32_t it = 0;
  for (int32_t t = walk.first(); t < walk.full; t += walk.step()) {
    const int32_t row0 = walk.row0(t), col0 = walk.col0(t);
    for (int kb = 0; kb < nk; ++kb, ++it) {
      const uint32_t s = it % kStages, stage = base + s * kStageBytes, full = full_bar(bars, s);
      if (it >= kStages) mbar_wait(empty_bar<kStages>(bars, s), ((it / kStages) & 1) ^ 1);
      mbar_arrive_expect_tx(full, kStageBytes);
      if constexpr (kCtas == 4) {  // half of x into this block and rank ^ 2 (same rows)
        const uint32_t half = walk.rank >> 1;
        tma_load_2d_multicast(stage + half * (kABytes / 2), x_map, kb * kSwigluStageK,
                              row0 + static_cast<int32_t>(half) * (kSwigluTileRows / 2), full,
                              static_cast<uint16_t>((1u << walk.rank) | (1u << (walk.rank ^ 2u))));
      } else {
        tma_load_2d(stage, x_map, kb * kSwigluStageK, row0, full);
      }
      if constexpr (kCtas == 1) {
        tma_load_2d(stage + kABytes, w_map, kb * kSwigluStageK, col0, full);
        tma_load_2d(stage + kABytes + kHalfB, w_map, kb * kSwigluStageK, inter + col0, full);
      } else {  // this block's weight half into it and rank ^ 1 (same columns)
        const uint32_t wr = walk.rank & 1u;
        tma_load_2d_multicast(stage + kABytes + wr * kHalfB, w_map, kb * kSwigluStageK,
                              static_cast<int32_t>(wr) * inter + col0, full,
                              static_cast<uint16_t>(0x3u << (walk.rank & 2u)));
      }
    }
  }
  if constexpr (kSplit > 1) {
    constexpr uint32_t kPartHalfB = kHalfB / kSplit;
    // kOwnRing: the part ring (its stages, barriers and position q) once the main ring is all released
    constexpr uint32_t kRing = kOwnRing ? kPartStages<kSplit> : kStages;
    constexpr uint32_t kBytes = kOwnRing ? kPartStageBytes<kSplit> : kStageBytes;
    if constexpr (kOwnRing) wait_released<kStages>(bars, it);
    const uint32_t rbars = kOwnRing ? part_bars : bars;
    uint32_t q = kOwnRing ? 0 : it;
    const uint32_t wr = walk.rank & 1u;
    for (int32_t p = walk.first(); p < walk.parts; p += walk.step()) {
      const int32_t row0 = walk.part_row0(p), col0 = walk.part_col0(p);
      for (int kb = 0; kb < nk; ++kb, ++q) {
        const uint32_t s = q % kRing, stage = base + s * kBytes, full = full_bar(rbars, s);
        if (q >= kRing) mbar_wait(empty_bar<kRing>(rbars, s), ((q / kRing) & 1) ^ 1);
        mbar_arrive_expect_tx(full, kABytes + 2 * kPartHalfB);
        tma_load_2d(stage, x_map, kb * kSwigluStageK, row0, full);
        tma_load_2d_multicast(stage + kABytes + wr * kPartHalfB, w_part_map, kb * kSwigluStageK,
                              static_cast<int32_t>(wr) * inter + col0, full, static_cast<uint16_t>(0x3u));
      }
    }
    wait_released<kRing>(rbars, q);  // every arrival aimed at this block has landed before it exits
  } else {
    wait_released<kStages>(bars, it);  // every arrival aimed at this block has landed before it exits
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

// kEpi: this thread's g and u of the tile (rows `row`, row + 8 of the tile; columns col + 8 i, + 1) as
// bf16 pairs into the staging buffer at `staged`: gate at byte 2 c of the row, up at 256 + 2 c.
__device__ __forceinline__ void stage_gate_up(const float (&d)[32][4], uint32_t staged, int row, int col) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t at = staged + (row + 8 * h) * kStagedPitch + col * 2;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const __nv_bfloat162 g = __floats2bfloat162_rn(d[i][2 * h], d[i][2 * h + 1]);
      const __nv_bfloat162 u = __floats2bfloat162_rn(d[16 + i][2 * h], d[16 + i][2 * h + 1]);
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(at + 16 * i), "r"(*reinterpret_cast<const uint32_t*>(&g)));
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(at + 256 + 16 * i), "r"(*reinterpret_cast<const uint32_t*>(&u)));
    }
  }
}

// kSplit > 1: this thread's g and u of a part (columns col + 8 i, + 1 of its 128 / kSplit) from the first
// 32 / kSplit accumulator rows, at the same places as stage_gate_up's.
template <int kSplit>
__device__ __forceinline__ void stage_part(const float (&d)[32][4], uint32_t staged, int row, int col) {
  constexpr int kI = 16 / kSplit;  // accumulator rows of the gate (then of the up) columns
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t at = staged + (row + 8 * h) * kStagedPitch + col * 2;
#pragma unroll
    for (int i = 0; i < kI; ++i) {
      const __nv_bfloat162 g = __floats2bfloat162_rn(d[i][2 * h], d[i][2 * h + 1]);
      const __nv_bfloat162 u = __floats2bfloat162_rn(d[kI + i][2 * h], d[kI + i][2 * h + 1]);
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(at + 16 * i), "r"(*reinterpret_cast<const uint32_t*>(&g)));
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(at + 256 + 16 * i), "r"(*reinterpret_cast<const uint32_t*>(&u)));
    }
  }
}

// act of two bf16 pairs of g and u (packed), as silu_mul computes it.
__device__ __forceinline__ uint32_t act_pair(uint32_t g2, uint32_t u2) {
  const __nv_bfloat162 g = *reinterpret_cast<const __nv_bfloat162*>(&g2);
  const __nv_bfloat162 u = *reinterpret_cast<const __nv_bfloat162*>(&u2);
  const __nv_bfloat162 a = __floats2bfloat162_rn(silu_times(__low2float(g), __low2float(u)),
                                                 silu_times(__high2float(g), __high2float(u)));
  return *reinterpret_cast<const uint32_t*>(&a);
}

// kEpi: act of one staged tile (kPieces 16) or part (16 / kSplit) from row0, col0: thread e (0..95)
// takes 16-byte pieces e, e + 96, ... of its 128 rows x kPieces pieces (a whole tile's warp: two rows,
// 512 contiguous bytes).
template <int kPieces>
__device__ __forceinline__ void store_staged(__nv_bfloat16* __restrict__ act, uint32_t staged, int32_t m,
                                             int32_t inter, int32_t row0, int32_t col0, int e) {
  for (int j = e; j < kSwigluTileRows * kPieces; j += kEpiThreads) {
    const int r = j / kPieces, c = j % kPieces;
    if (row0 + r >= m) break;  // rows only grow with j
    const uint32_t at = staged + r * kStagedPitch + c * 16;
    uint32_t g[4], u[4], a[4];
    asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(g[0]), "=r"(g[1]), "=r"(g[2]), "=r"(g[3]) : "r"(at));
    asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(u[0]), "=r"(u[1]), "=r"(u[2]), "=r"(u[3]) : "r"(at + 256));
#pragma unroll
    for (int q = 0; q < 4; ++q) a[q] = act_pair(g[q], u[q]);
    *reinterpret_cast<uint4*>(act + static_cast<int64_t>(row0 + r) * inter + col0 + 8 * c) =
        make_uint4(a[0], a[1], a[2], a[3]);
  }
}

// kEpi: the epilogue warps, tile after tile (then part after part) as the consumers stage them.
template <int kCtas, int kSplit, uint32_t kStages>
__device__ __forceinline__ void epilogue(__nv_bfloat16* __restrict__ act, uint32_t staged, uint32_t bars, int32_t m,
                                         const TileWalk<kCtas, kSplit>& walk, int32_t inter, int e) {
  uint32_t n = 0;
  for (int32_t t = walk.first(); t < walk.full; t += walk.step(), ++n) {
    mbar_wait(staged_full_bar<kStages>(bars), n & 1);
    if (walk.col0(t) < inter) store_staged<16>(act, staged, m, inter, walk.row0(t), walk.col0(t), e);
    mbar_arrive(staged_empty_bar<kStages>(bars));
  }
  if constexpr (kSplit > 1) {
    for (int32_t p = walk.first(); p < walk.parts; p += walk.step(), ++n) {
      mbar_wait(staged_full_bar<kStages>(bars), n & 1);
      store_staged<16 / kSplit>(act, staged, m, inter, walk.part_row0(p), walk.part_col0(p), e);
      mbar_arrive(staged_empty_bar<kStages>(bars));
    }
  }
}

// A stage is released by lane 0 of each consumer warp, in this block and the blocks whose producers
// also write into it (kCtas 2: rank ^ 1; kCtas 4: rank ^ 1 and rank ^ 2).
template <int kCtas>
__device__ __forceinline__ void release(uint32_t bar) {
  mbar_arrive(bar);  // this block's, at CTA scope
  if constexpr (kCtas >= 2) mbar_arrive_in(bar, cta_rank() ^ 1u);  // the block sharing the weight tile
  if constexpr (kCtas == 4) mbar_arrive_in(bar, cta_rank() ^ 2u);  // the block sharing the x tile
}

// One tile's (or part's) nk stages from ring position `it` on (advanced): m64nNk16 per 16 k, one stage's
// wgmmas in flight while the next is awaited; returns with all of them complete and every stage released.
template <int kCtas, uint32_t kStages, int kN, uint32_t kBytes = kStageBytes>
__device__ __forceinline__ void mainloop(float (&d)[32][4], uint32_t base, uint32_t bars, int nk, int wg, int lane,
                                         uint32_t& it) {
  for (int kb = 0; kb < nk; ++kb, ++it) {
    const uint32_t s = it % kStages, stage = base + s * kBytes;
    mbar_wait(full_bar(bars, s), (it / kStages) & 1);
    const uint32_t a = stage + wg * 64 * 128, b = stage + kABytes;
    fence_operand(d);
    wgmma::fence();
#pragma unroll
    for (int ks = 0; ks < kSwigluStageK / 16; ++ks)
      swiglu_mma<kN>(d, kmajor(a + ks * 32), kmajor(b + ks * 32), kb > 0 || ks > 0);
    wgmma::commit();
    wgmma::wait<1>();  // the previous stage's wgmmas are done: give it back
    fence_operand(d);
    if (kb > 0 && lane == 0) release<kCtas>(empty_bar<kStages>(bars, (it - 1) % kStages));
  }
  wgmma::wait<0>();
  fence_operand(d);
  if (lane == 0) release<kCtas>(empty_bar<kStages>(bars, (it - 1) % kStages));
}

// A consumer warpgroup: rows [64 wg, 64 wg + 64) of every tile (then part) of this block.
template <int kCtas, bool kEpi, int kSplit, bool kOwnRing>
__device__ __forceinline__ void consume(__nv_bfloat16* __restrict__ act, uint32_t base, uint32_t bars,
                                        uint32_t part_bars, int32_t m, const TileWalk<kCtas, kSplit>& walk,
                                        int32_t inter, int nk, int wg) {
  static_assert(kSplit == 1 || kEpi, "tail parts are built with epilogue warps");
  using L = Layout<kEpi>;
  constexpr uint32_t kStages = L::kStages;
  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  float d[32][4];
#pragma unroll
  for (int i = 0; i < 32; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) d[i][e] = 0.0f;
  uint32_t it = 0, n = 0;
  for (int32_t t = walk.first(); t < walk.full; t += walk.step(), ++n) {
    mainloop<kCtas, kStages, 256>(d, base, bars, nk, wg, lane, it);
    if constexpr (kEpi) {
      if (n > 0) mbar_wait(staged_empty_bar<kStages>(bars), (n - 1) & 1);  // tile n - 1's act is out
      stage_gate_up(d, base + L::kStaged, wg * 64 + warp * 16 + lane / 4, 2 * (lane % 4));
      mbar_arrive(staged_full_bar<kStages>(bars));
    } else if (walk.col0(t) < inter) {
      store_act(d, act, m, inter, walk.row0(t) + wg * 64 + warp * 16 + lane / 4, walk.col0(t) + 2 * (lane % 4));
    }
  }
  if constexpr (kSplit > 1) {  // both warpgroups on the same path: ptxas keeps the wgmmas pipelined
    uint32_t q = kOwnRing ? 0 : it;  // the part ring's position
    for (int32_t p = walk.first(); p < walk.parts; p += walk.step(), ++n) {
      constexpr int kN = 256 / kSplit;
      if constexpr (kOwnRing)
        mainloop<kCtas, kPartStages<kSplit>, kN, kPartStageBytes<kSplit>>(d, base, part_bars, nk, wg, lane, q);
      else
        mainloop<kCtas, kStages, kN>(d, base, bars, nk, wg, lane, q);
      if (n > 0) mbar_wait(staged_empty_bar<kStages>(bars), (n - 1) & 1);  // the item before's act is out
      stage_part<kSplit>(d, base + L::kStaged, wg * 64 + warp * 16 + lane / 4, 2 * (lane % 4));
      mbar_arrive(staged_full_bar<kStages>(bars));
    }
  }
}
#endif  // TESSERA_WGMMA

template <int kCtas, bool kEpi, int kSplit, bool kOwnRing>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_swiglu_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap w_map,
                       const __grid_constant__ CUtensorMap w_part_map, __nv_bfloat16* __restrict__ act, int32_t m,
                       int32_t inter, int32_t k) {
#if TESSERA_WGMMA
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  using L = Layout<kEpi>;
  const uint32_t bars = base + L::kBars, part_bars = base + L::kPartBars;
  const TileWalk<kCtas, kSplit> walk(m, inter, kCtas == 1 ? 0u : cta_rank());
  const int nk = k / kSwigluStageK;
  const int wg = threadIdx.x >> 7;
  if (threadIdx.x == 0) {
    for (uint32_t s = 0; s < L::kStages; ++s) {
      mbar_init(full_bar(bars, s), 1);
      mbar_init(empty_bar<L::kStages>(bars, s), 8 * (kCtas == 4 ? 3 : kCtas));
    }
    mbar_init(staged_full_bar<L::kStages>(bars), 256);
    mbar_init(staged_empty_bar<L::kStages>(bars), kEpiThreads);
    if constexpr (kOwnRing) {
      for (uint32_t s = 0; s < kPartStages<kSplit>; ++s) {
        mbar_init(full_bar(part_bars, s), 1);
        mbar_init(empty_bar<kPartStages<kSplit>>(part_bars, s), 8 * kCtas);
      }
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");  // visible to the TMA unit
  }
  if constexpr (kCtas == 1) {
    __syncthreads();  // the barriers are initialised; from here on no block-wide barrier
  } else {
    cluster_sync();  // both blocks' barriers are initialised before any multicast or arrival reaches them
  }
  if (wg == 2) {
    regs_dec<kProducerRegs<kEpi>>();
    if (threadIdx.x == 256) {
      produce<kCtas, kSplit, kOwnRing, L::kStages>(&x_map, &w_map, &w_part_map, base, bars, part_bars, walk, inter,
                                                   nk);
    } else if (kEpi && threadIdx.x >= kThreads - kEpiThreads) {
      epilogue<kCtas, kSplit, L::kStages>(act, base + L::kStaged, bars, m, walk, inter,
                                  static_cast<int>(threadIdx.x) - (kThreads - kEpiThreads));
    }
    return;
  }
  regs_inc<kConsumerRegs<kEpi>>();
  consume<kCtas, kEpi, kSplit, kOwnRing>(act, base, bars, part_bars, m, walk, inter, nk, wg);
#elif defined(__CUDA_ARCH__)
  __trap();  // wgmma and setmaxnreg exist on sm_90a only; the host never launches this elsewhere
#endif
}

}  // namespace

namespace {

// The launch configuration of variant (kCtas, kEpi, kSplit, kOwnRing) (grid unset), its shared memory
// allowed first.
template <int kCtas, bool kEpi, int kSplit, bool kOwnRing>
cudaLaunchConfig_t launch_config(cudaLaunchAttribute* attr, cudaStream_t stream) {
  CUDA_CHECK(cudaFuncSetAttribute(gemm_swiglu_kernel<kCtas, kEpi, kSplit, kOwnRing>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(Layout<kEpi>::kSmem)));
  cudaLaunchConfig_t cfg{};
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = Layout<kEpi>::kSmem;
  cfg.stream = stream;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = kCtas;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = kCtas > 1 ? 1 : 0;
  return cfg;
}

// Tile groups of a variant (a cluster's tiles: 1, 2 row tiles, or 2 x 2).
template <int kCtas>
int32_t tile_groups(int32_t m, int32_t inter) {
  const int32_t rows = kCtas == 1 ? 1 : 2, cols = kCtas / rows;
  const int32_t m_tiles = (m + kSwigluTileRows - 1) / kSwigluTileRows, n_tiles = inter / kSwigluTileCols;
  return (m_tiles + rows - 1) / rows * ((n_tiles + cols - 1) / cols);
}

// Blocks of the persistent grid: as many clusters as fit on the device at once (single blocks: one
// per SM), at most one per tile group (kSplit per group: each can take a part); balanced: then the
// fewest that take the groups in the same number of waves.
template <int kCtas, bool kEpi, int kSplit, bool kOwnRing>
int grid_blocks(int32_t m, int32_t inter, int sms, bool balanced, cudaLaunchConfig_t cfg) {
  const int32_t groups = tile_groups<kCtas>(m, inter);
  int clusters = sms / kCtas;
  if (kCtas > 1) {
    cfg.gridDim = dim3(kCtas);
    CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, gemm_swiglu_kernel<kCtas, kEpi, kSplit, kOwnRing>, &cfg));
  }
  clusters = std::max(1, std::min(clusters, groups * kSplit));
  if (balanced) {
    const int32_t waves = (groups + clusters - 1) / clusters;
    clusters = (groups + waves - 1) / waves;
  }
  return clusters * kCtas;
}

// blocks > 0: launch that many (at most one cluster per tile group, kSplit with parts); 0: only return
// grid_blocks.
template <int kCtas, bool kEpi, int kSplit = 1, bool kOwnRing = false>
int launch(const CUtensorMap* x_map, const CUtensorMap* w_map, const CUtensorMap* w_part_map, __nv_bfloat16* act,
           int32_t m, int32_t inter, int32_t k, int sms, int blocks, bool balanced, cudaStream_t stream) {
  cudaLaunchAttribute attr[1];
  cudaLaunchConfig_t cfg = launch_config<kCtas, kEpi, kSplit, kOwnRing>(attr, stream);
  if (blocks == 0) return grid_blocks<kCtas, kEpi, kSplit, kOwnRing>(m, inter, sms, balanced, cfg);
  const int32_t groups = tile_groups<kCtas>(m, inter);
  cfg.gridDim = dim3(static_cast<unsigned>(std::min(blocks / kCtas, groups * kSplit) * kCtas));
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, gemm_swiglu_kernel<kCtas, kEpi, kSplit, kOwnRing>, *x_map, *w_map,
                                *w_part_map, act, m, inter, k));
  return blocks;
}

int dispatch(const CUtensorMap* x_map, const CUtensorMap* w_map, const CUtensorMap* w_part_map, __nv_bfloat16* act,
             int32_t m, int32_t inter, int32_t k, int sms, int blocks, int ctas, bool epilogue_warps, bool balanced,
             int tail_split, bool tail_ring, cudaStream_t stream) {
  // tail_split 2 and 4 come from kSwigluVariantShapes only with ctas 2 and epilogue warps (asserted there)
  // (the ring of their own with quarters only: halves in it were never run)
  if (tail_split == 2)
    return launch<2, true, 2>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, false, stream);
  if (tail_split == 4)
    return tail_ring ? launch<2, true, 4, true>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, false, stream)
                     : launch<2, true, 4>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, false, stream);
  if (ctas == 4)  // built with epilogue warps only (kSwigluVariantShapes asserts it)
    return launch<4, true>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, balanced, stream);
  if (ctas == 2)
    return epilogue_warps
               ? launch<2, true>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, balanced, stream)
               : launch<2, false>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, balanced, stream);
  return epilogue_warps ? launch<1, true>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, balanced, stream)
                        : launch<1, false>(x_map, w_map, w_part_map, act, m, inter, k, sms, blocks, balanced, stream);
}

}  // namespace

void launch_gemm_swiglu(const CUtensorMap& x_map, const CUtensorMap& w_map, const CUtensorMap& w_part_map,
                        __nv_bfloat16* act, int32_t m, int32_t inter, int32_t k, int blocks, int ctas,
                        bool epilogue_warps, int tail_split, bool tail_ring, cudaStream_t stream) {
  dispatch(&x_map, &w_map, &w_part_map, act, m, inter, k, 0, blocks, ctas, epilogue_warps, false, tail_split,
           tail_ring, stream);
}

int gemm_swiglu_grid_blocks(int32_t m, int32_t inter, int sms, int ctas, bool epilogue_warps, bool balanced,
                            int tail_split, bool tail_ring) {
  return dispatch(nullptr, nullptr, nullptr, nullptr, m, inter, 0, sms, 0, ctas, epilogue_warps, balanced, tail_split,
                  tail_ring, nullptr);
}

}  // namespace tessera::cuda
