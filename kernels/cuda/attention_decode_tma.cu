// TMA decode attention (see attention_decode_tma.cuh). A block of 4 warps serves one (tile, kv head,
// head group of kG q heads, key split), as the tensor-core kernel's blocks do (same key_split, same
// partial states, merged by the same arithmetic). The split's keys go through a ring of 32-key stages
// (two 16-key pages each) behind full/empty mbarriers: a stage is copied by one thread, which expects
// its bytes on the slot's full barrier and issues one TMA box per 64 elements of each page's K and V
// rows (16 rows, the cache's slot stride; 128-byte swizzle: chunk c of row r at c ^ (r % 8)). Warp w
// takes keys 8 w .. 8 w + 7 of every stage (page w / 2, rows 8 (w % 2) ..): it waits on the slot's
// full barrier, computes S = Q·Kᵀ (m16n8k16, q heads as rows), the online softmax and P·V (m16n8k8)
// exactly as attention_decode_mma.cuh does, and arrives on the slot's empty barrier; lane 0 of warp
// t % 4 then waits for the other warps' arrivals and refills the slot with stage t + kStages (no
// producer warp: a fifth warp would cap the registers at 96 and spill o). Pages are copied whole:
// rows past the split's last key are masked (S to -inf, their V halves zeroed in the fragments, so
// stale or non-finite rows cost nothing); pages wholly past it are not copied. The block first looks
// up the cache slots of its split's first 512 pages together (shared memory), so the copying thread
// issues without waiting on block-table reads. PDL: the stages whose pages hold only earlier steps'
// keys are issued before waiting on the kernel that writes this step's key. The ring is 48 KiB (3 stages at head_dim 128, 6 at 64): 4 blocks per SM, as the other kernel.
// sm_90a code only (every other target compiles a body that traps; the host never launches it off
// compute capability 9.0). Never allocates.
#include "kernels/cuda/attention_decode_tma.cuh"

#include <cstdio>

#include "kernels/cuda/attention_decode_merge.cuh"
#include "kernels/cuda/attention_decode_mma.cuh"
#include "kernels/cuda/attention_decode_split.cuh"
#include "kernels/cuda/attention_prefill_wgmma_sync.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kv_cache_tensor_map.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/prefill_fragments.cuh"

namespace tessera::cuda {
namespace {

constexpr int kConsumerWarps = 4;
constexpr int kThreads = kConsumerWarps * 32;
constexpr int kPageKeys = 16;                             // keys of one TMA page (rows of a box)
constexpr int kWarpKeys = 8;                              // keys a consumer warp takes per stage
constexpr int kStageKeys = kConsumerWarps * kWarpKeys;    // 32: two pages
constexpr int kRingBytes = 48 * 1024;
constexpr int kBlocksPerSm = 4;
// Cache slots of a split's first pages, looked up by the whole block at its start (one round of
// independent loads) so the copying thread never waits on a block-table read; later pages (splits
// over 8,192 keys) are looked up when copied.
constexpr int kListedPages = 512;

template <int kD>
struct TmaLayout {
  static constexpr int kPageBytes = kPageKeys * kD * 2;                 // one page of K (or V): kD/64 boxes
  static constexpr int kStageBytes = 2 * (kStageKeys / kPageKeys) * kPageBytes;  // [K pages][V pages]
  static constexpr int kStages = kRingBytes / kStageBytes;              // 3 at head_dim 128, 6 at 64
  static constexpr uint32_t kBars = kStages * kStageBytes;              // full[s], then empty[s]
  static constexpr uint32_t kSlots = kBars + 16 * kStages;              // the split's first pages' slots
  static constexpr size_t kBytes = 1024 /* alignment slack */ + kSlots + 4 * kListedPages;
};

struct CacheMaps {
  CUtensorMap k, v;
};

template <int kD, int kG>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    decode_tma_kernel(AttentionArgs a, const __grid_constant__ CacheMaps maps, int32_t head_groups) {
#if TESSERA_WGMMA
  using namespace prefill;  // NOLINT: ldmatrix/mma fragments, mbarriers and TMA loads of the prefill kernels
  using L = TmaLayout<kD>;
  constexpr int kStages = L::kStages;
  static_assert(kConsumerWarps * kG * (kD + 2) * 4 <= kRingBytes, "the warps' states are merged in the ring");
  extern __shared__ unsigned char raw[];
  const uint32_t base = (smem_addr(raw) + 1023u) & ~1023u;  // the 128-byte swizzle repeats every 1024 bytes
  const uint32_t bars = base + L::kBars;
  auto full = [&](int s) { return bars + 8 * s; };
  auto empty = [&](int s) { return bars + 8 * (kStages + s); };

  const AttentionTile tile = a.tiles[blockIdx.x];
  if (!decode::open_block(tile)) return;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const decode::DecodeBlock blk = decode::decode_block<kG, kStageKeys>(a, tile, head_groups);
  const int32_t kvh = blk.kvh, ng = blk.ng, h0 = blk.h0, keys_total = blk.keys_total;
  const decode::KeySplit split = blk.split;
  const int32_t k_begin = split.begin, k_end = split.end, n_stages = split.n_stages;
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  auto page_slot = [&](int32_t page) {  // cache slot of key k_begin + 16 page (its page's first row)
    const int32_t key = k_begin + page * kPageKeys;
    const int32_t blk = key / a.block_size;
    return __ldg(table + blk) * a.block_size + (key - blk * a.block_size);
  };
  int32_t* listed = reinterpret_cast<int32_t*>(raw + (base - smem_addr(raw)) + L::kSlots);
  const int32_t n_listed = min(kListedPages, (k_end - k_begin + kPageKeys - 1) / kPageKeys);
  for (int32_t i = threadIdx.x; i < n_listed; i += kThreads) listed[i] = page_slot(i);
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kConsumerWarps);
    }
  }
  __syncthreads();  // barriers initialised, slots listed; from here on the warps meet only on barriers

  // Stage t (a page-aligned split's keys k_begin + 32 t ..) into ring slot t % kStages, by one thread.
  auto issue = [&](int32_t t) {
    const int s = t % kStages;
    const int32_t key0 = k_begin + t * kStageKeys;  // < k_end
    const int pages = key0 + kPageKeys < k_end ? 2 : 1;
    mbar_arrive_expect_tx(full(s), pages * 2 * L::kPageBytes);
    for (int p = 0; p < pages; ++p) {
      const int32_t page = t * (kStageKeys / kPageKeys) + p;
      const int32_t slot = page < kListedPages ? listed[page] : page_slot(page);
      const uint32_t kdst = base + s * L::kStageBytes + p * L::kPageBytes;
      const uint32_t vdst = kdst + (kStageKeys / kPageKeys) * L::kPageBytes;
#pragma unroll
      for (int c = 0; c < kD / 64; ++c) {
        tma_load_2d(kdst + c * 2048, &maps.k, kvh * kD + c * 64, slot, full(s));
        tma_load_2d(vdst + c * 2048, &maps.v, kvh * kD + c * 64, slot, full(s));
      }
    }
  };
  if (threadIdx.x == 0) {
    // Before the wait: the stages whose pages hold only keys before this step's (keys_total - 1).
    const int32_t pre = min(min(kStages, n_stages), max(0, (keys_total - 1 - k_begin) / kStageKeys));
    for (int32_t t = 0; t < pre; ++t) issue(t);
    pdl_wait();  // this step's key comes from qkv_post
    for (int32_t t = pre; t < min(kStages, n_stages); ++t) issue(t);
  }

  const int gid = lane / 4, tig = lane % 4;  // mma fragment row (q head) and column pair
  pdl_wait();                                // q comes from qkv_post
  uint32_t q[kD / 16][2];
  decode_mma::load_q_fragments<kD>(a, tile.q_row, h0, ng, gid, tig, q);
  const float qscale = a.scale * 1.4426950408889634f;  // base-2 softmax
  float o[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m = -INFINITY, l = 0.0f;  // row gid's running max (quad-uniform) and this thread's partial sum
  // ldmatrix rows: lane supplies key r0 + lane % 8 of matrix lane / 8 (chunk kk * 4 + lane / 8).
  const int lr = lane % 8, lm = lane / 8;
  const uint32_t row_off = (warp / 2) * L::kPageBytes + ((warp % 2) * 8 + lr) * 128;
  auto chunk_at = [&](int c) { return (c >> 3) * 2048 + (((c & 7) ^ lr) * 16); };  // box c / 8, swizzled

  for (int32_t t = 0; t < n_stages; ++t) {
    const int s = t % kStages;
    mbar_wait(full(s), (t / kStages) & 1);
    const uint32_t kt = base + s * L::kStageBytes + row_off;
    const uint32_t vt = kt + (kStageKeys / kPageKeys) * L::kPageBytes;

    // Rows past the split's end were copied whole with their page: zero their V halves.
    decode_mma::attend_keys<kD>(
        q, qscale, k_begin + t * kStageKeys + warp * kWarpKeys + 2 * tig, k_end, /*zero_v_past_end=*/true, lm,
        [&](int c) { return kt + chunk_at(c); }, [&](int c) { return vt + chunk_at(c); }, o, m, l);
    __syncwarp();  // every lane's reads of the slot are done
    if (lane == 0) {
      mbar_arrive(empty(s));
      if (warp == t % kConsumerWarps && t + kStages < n_stages) {  // this warp refills the slot
        mbar_wait(empty(s), (t / kStages) & 1);
        issue(t + kStages);
      }
    }
  }

  // Merge the 4 warps' states through shared memory (every copy issued has landed and been read).
  l = quad_sum(l);
  __syncthreads();
  float* so = reinterpret_cast<float*>(raw + (base - smem_addr(raw)));  // [kConsumerWarps][kG][kD]
  float* sml = so + kConsumerWarps * kG * kD;                           // [kConsumerWarps][kG][2]
  decode_mma::store_warp_state<kD, kG>(so, sml, warp, gid, tig, o, m, l);
  __syncthreads();
  decode_merge::merge_groups<kD, kG, kConsumerWarps>(a, tile, h0, ng, so, sml, threadIdx.x);
#else
  (void)a;
  (void)maps;
  (void)head_groups;
  __trap();  // never launched: the host checks for compute capability 9.0 (sm_90a code)
#endif
}

[[noreturn]] void refuse(const char* what, long long value, int line) {
  char msg[192];
  std::snprintf(msg, sizeof msg, "paged_attention_decode_tma: %s (got %lld)", what, value);
  throw_cuda_error(cudaErrorInvalidValue, msg, __FILE__, line);
}

template <int kD, int kG>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  const int32_t head_groups = (a.hq / a.hkv + kG - 1) / kG;
  const dim3 grid(a.num_tiles, a.hkv * head_groups, a.splits);
  auto* kernel = decode_tma_kernel<kD, kG>;
  constexpr size_t smem = TmaLayout<kD>::kBytes;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const CacheMaps maps{cache_map(a.k_cache, a.hkv, kD), cache_map(a.v_cache, a.hkv, kD)};
  launch_pdl(kernel, grid, kThreads, smem, stream, a, maps, head_groups);
  if (a.splits > 1)
    launch_pdl(decode_merge::merge_splits_kernel<kD>, dim3(a.num_tiles, a.hq), decode_merge::kThreads, 0, stream, a);
}

template <int kD>
void dispatch_heads(const AttentionArgs& a, cudaStream_t stream) {
  if (a.hq / a.hkv <= 4) return launch<kD, 4>(a, stream);
  return launch<kD, 8>(a, stream);
}

}  // namespace

bool attention_decode_tma_takes(const AttentionArgs& a, const DecodeDevice& device) {
  if (a.hkv <= 0 || a.hq <= 0 || a.hq % a.hkv != 0 || a.hq / a.hkv < 2) return false;
  if (a.head_dim != 64 && a.head_dim != 128) return false;
  if (a.block_size <= 0 || a.block_size % kPageKeys != 0) return false;
  return device.compute_capability == 90;
}

// Launches with at least a block per SM at one split (batch decode), at any split count (the whole-wave
// splits of attention_decode_splits). nvidia-h200, 2026-11-25, engine pairs alternating main and this
// kernel, b64/1k (one split, 512 blocks): 6.815 / 6.821 / 6.812 vs 6.946 / 6.987 / 7.055 ms; b1/32k
// (64 splits, 8 blocks each): 5.267 / 5.233 vs 5.134 / 5.161; b1/512 (8 splits): 4.334 / 4.204 vs
// 4.123 / 4.047; kernel bench 1 x 512 at one split (8 blocks): 21.2 / 23.3 vs 16.5 / 15.7 µs
// (docs/CUDA.md). Few-block launches keep the tensor-core kernel.
bool attention_decode_tma_default(const AttentionArgs& a, const DecodeDevice& device) {
  if (!attention_decode_tma_takes(a, device)) return false;
  return static_cast<int64_t>(a.num_tiles) * a.hkv >= device.sm_count;
}

void paged_attention_decode_tma(const AttentionArgs& a, const DecodeDevice& device, cudaStream_t stream) {
  if (a.num_tiles == 0) return;
  if (a.hkv <= 0) refuse("hkv must be positive", a.hkv, __LINE__);
  if (a.hq <= 0 || a.hq % a.hkv != 0) refuse("hq must be a positive multiple of hkv", a.hq, __LINE__);
  if (a.hq / a.hkv < 2) refuse("the TMA kernel takes GQA groups of 2+ q heads (hq / hkv)", a.hq / a.hkv, __LINE__);
  if (a.head_dim != 64 && a.head_dim != 128) refuse("head_dim must be 64 or 128", a.head_dim, __LINE__);
  if (a.max_q_len != 1) refuse("every tile must hold one token (max_q_len 1)", a.max_q_len, __LINE__);
  if (a.splits < 1 || a.splits > decode_merge::kMaxSplits) refuse("splits must be in [1, 1024]", a.splits, __LINE__);
  if (a.block_size <= 0 || a.block_size % kPageKeys != 0)
    refuse("block_size must be a positive multiple of 16", a.block_size, __LINE__);
  if (a.splits > 1 && (a.o_part == nullptr || a.ml_part == nullptr))
    refuse("splits > 1 needs the o_part and ml_part buffers", a.splits, __LINE__);
  if (device.compute_capability != 90)
    refuse("the TMA kernel runs on compute capability 9.0 only", device.compute_capability, __LINE__);
  if (a.head_dim == 64) return dispatch_heads<64>(a, stream);
  return dispatch_heads<128>(a, stream);
}

}  // namespace tessera::cuda
