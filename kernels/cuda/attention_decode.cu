// Decode attention kernel (see attention_decode.cuh). A block is 128 threads for one (tile, kv head,
// head group of up to kG q heads, key split). Threads form lane groups of head_dim/8 lanes; a lane owns
// 8 elements (one 16-byte chunk) of each K/V row and of each head's q and o. Each stage, a lane group
// takes 4 keys: the lane copies its chunks of those K/V rows into its own slots of a 3-stage shared
// ring with cp.async (it only ever reads back what it copied, so the main loop needs no barrier),
// q.k is reduced over the group with shuffles, and the group keeps its own online-softmax state.
// The groups' states are merged through shared memory at the end; splits by decode_merge::merge_splits_kernel.
// Both kernels are PDL-launched: before waiting on qkv_post, a block reads its tile and block table
// (uploaded before the step) and starts copying the first stages whose keys all belong to earlier
// steps (this step's key, the last one, is written by qkv_post).
// The fused variant (kFused) reads the raw qkv projection instead: cos/sin before the wait; after it
// one round of loads, then each lane group ropes (and norms) its heads' q (attention_decode_qkv.cuh),
// the block whose split holds the new key builds its k/v the same way, puts them into its own ring
// slots instead of copying them from the cache (so every prologue stage is copied before the wait),
// and (kv head's first head group, lane group 0 only) writes them to the cache; with splits, every
// block adds to an arrival counter after writing its partial state, and the last one merges them in
// split order (merge_heads, attention_decode_merge.cuh) and resets the counter.
#include <cstdio>

#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_decode_merge.cuh"
#include "kernels/cuda/attention_decode_mma.cuh"
#include "kernels/cuda/attention_decode_qkv.cuh"
#include "kernels/cuda/attention_decode_split.cuh"
#include "kernels/cuda/attention_decode_tma.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_wave_splits.h"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda {
namespace {

using decode_qkv::finish_head;
using decode_qkv::load_head;
using decode_qkv::pack8;
using decode_qkv::unpack8;

using decode_merge::kMaxFusedSplits;
using decode_merge::kMaxSplits;
using decode_merge::kThreads;
using decode_merge::merge_groups;
using decode_merge::merge_splits_kernel;
using decode_merge::merge_heads;
constexpr int kStages = 3;
constexpr int kKeysPerGroup = 4;  // keys one lane group takes per stage
constexpr int kSmemBytes = kStages * 2 * kKeysPerGroup * kThreads * 16;  // 48 KiB: K and V chunks
// Fewest keys per split by default. H200, 1 x 512 keys (kernel bench, 2026-11-25): 1 split 20.5 µs,
// 2: 14.7, 4: 11.5, 8 (64 keys each): 10.0, 16: 9.8 (the merge is cheap next to the latency of a
// long walk); engine b1/512 4.31 ms with 256 keys per split, 4.24 ms with 64. Session 7, after the
// merge's loads went to one round: 32 keys (16 splits at 512) against 64, alternating in two calls,
// b1/512 -42 µs on average (faster in 4 of 6 pairs), b1/2k -37, b4/1k -247, b8/512 -180 / +4 µs.
constexpr int32_t kDecodeMinSplitKeys = 32;
// ... except that up to kDecodeShortSplits splits may hold as few as kDecodeShortSplitKeys keys.
// Session 8, nvidia-h200, a 16-key floor against the 32-key one, alternating (two calls): b1/512 (32
// splits of 16 instead of 16 of 32) faster in 7 of 7 pairs (-11 to -70 µs), b1/128 (8 of 16 instead
// of 4 of 32) -158 / -206 µs, but b1/1k (64 of 16 instead of 32 of 32) +25 / +57 µs; b1/2k was faster
// at 64 splits of 32 than 32 of 64 (session 7). So short splits pay only while there are few of them.
constexpr int32_t kDecodeShortSplitKeys = 16;
constexpr int32_t kDecodeShortSplits = 32;
// Kv heads per tensor-core block by default (where hkv divides by it). H200, kernel bench (2026-11-25,
// one call): 64 x 1k 83.7 / 84.3 / 86.2 µs for 1 / 2 / 4; 1 x 32k 47.5 / 49.5 / 49.8; 1 x 512 10.9 /
// 11.7 / 13.5; engine b64/1k 79.6 / 78.6% (1) vs 79.5 / 80.1% (2): no gain from contiguous rows.
constexpr int32_t kDecodeKvPerBlock = 1;

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
#else
  *reinterpret_cast<uint4*>(smem) = *reinterpret_cast<const uint4*>(gmem);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

// Heads per block for a GQA ratio G: 1 for MHA, else 4 or 8 (a larger group takes several blocks).
int32_t heads_per_block(int32_t G) { return G == 1 ? 1 : (G <= 4 ? 4 : 8); }
// Blocks of one kernel resident per multiprocessor (48 KiB of shared memory each; the register cap
// comes from __launch_bounds__ below).
int32_t blocks_per_sm(int32_t kg) { return kg <= 4 ? 4 : 2; }


template <int kD, int kG, bool kFused>
__global__ void __launch_bounds__(kThreads, kG <= 4 ? 4 : 2)
    decode_kernel(AttentionArgs a, DecodeQkvArgs f, int32_t head_groups) {
  constexpr int kL = kD / 8;                 // lanes per key (one 16-byte chunk each)
  constexpr int kGroups = kThreads / kL;     // lane groups per block
  constexpr int kStageKeys = kGroups * kKeysPerGroup;
  const AttentionTile tile = a.tiles[blockIdx.x];
  if (!decode::open_block(tile)) return;
  const int tid = threadIdx.x;
  const int li = tid % kL, group = tid / kL;
  const decode::DecodeBlock blk = decode::decode_block<kG, kStageKeys>(a, tile, head_groups);
  const int32_t kvh = blk.kvh, ng = blk.ng, h0 = blk.h0, keys_total = blk.keys_total;
  const decode::KeySplit split = blk.split;
  const int32_t k_begin = split.begin, k_end = split.end, n_stages = split.n_stages;

  // Stages before the wait (a prefix of the prologue's). Fused: the new key never comes from the
  // cache (its slots are filled from registers after the wait), so every prologue stage goes before it.
  const int pre = decode::prewait_stages(split, keys_total, kStageKeys, kStages - 1, kFused);

  // Ring: stage s holds, per pass u and thread, one K chunk then one V chunk (16 bytes each).
  extern __shared__ __align__(16) unsigned char smem[];
  uint4* ring = reinterpret_cast<uint4*>(smem);
  auto k_slot = [&](int s, int u) { return ring + ((s * 2) * kKeysPerGroup + u) * kThreads + tid; };
  auto v_slot = [&](int s, int u) { return ring + ((s * 2 + 1) * kKeysPerGroup + u) * kThreads + tid; };
  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int64_t head_off = static_cast<int64_t>(kvh) * kD + li * 8;
  const int32_t bs = a.block_size;
  const bool bs_pow2 = (bs & (bs - 1)) == 0;  // the usual case: shifts instead of divisions
  const int32_t bs_shift = __ffs(bs) - 1;
  const int32_t last = keys_total - 1;  // this step's key
  uint4 k_new = make_uint4(0, 0, 0, 0), v_new = k_new;  // fused: its k/v chunks, built after the wait
  auto issue = [&](int32_t stage, int s) {
    const int32_t base = k_begin + stage * kStageKeys + group;
#pragma unroll
    for (int u = 0; u < kKeysPerGroup; ++u) {
      const int32_t key = min(base + u * kGroups, k_end - 1);  // past the end: a valid key, masked later
      if (kFused && key == last) {  // only in the split that holds it; never read from the cache
        *k_slot(s, u) = k_new;  // before the wait: a placeholder, rewritten once k_new is built
        *v_slot(s, u) = v_new;
        continue;
      }
      const int32_t blk = bs_pow2 ? key >> bs_shift : key / bs;
      const int64_t slot = static_cast<int64_t>(__ldg(table + blk)) * bs + (key - blk * bs);
      const int64_t off = slot * a.hkv * kD + head_off;
      cp_async16(k_slot(s, u), a.k_cache + off);
      cp_async16(v_slot(s, u), a.v_cache + off);
    }
  };

  for (int s = 0; s < pre; ++s) {
    issue(s, s);
    cp_async_commit();
  }
  float cs[8], sn[8];  // fused: cos/sin of this lane's 8 rotary frequencies at the tile's position
  if constexpr (kFused) {  // nothing here depends on the previous kernel
    const float pos = static_cast<float>(tile.first_pos);
    const int fi = (li % (kL / 2)) * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) sincosf(pos * f.inv_freq[fi + i], &sn[i], &cs[i]);
  }
  pdl_wait();  // q and this step's K/V row come from qkv_post (fused: from the qkv projection)
  const __nv_bfloat16* row = a.q + static_cast<int64_t>(tile.q_row) * a.q_row_stride;

  // q of the block's heads, pre-scaled for a base-2 softmax; heads past the group stay zero.
  const float qscale = a.scale * 1.4426950408889634f;
  float q[kG][8], o[kG][8], m[kG], l[kG];
  if constexpr (kFused) {
    // One round of loads: the raw q rows of the block's heads, the new key's k and v (the split that
    // holds it), their bias chunks and the norm weights; then qkv_post's arithmetic on them.
    const bool holder = last >= k_begin && last < k_end;
    const int32_t kh = a.hq + kvh, vh = a.hq + a.hkv + kvh;
    float xk[8], xv[8], wq[8] = {}, wk[8] = {};
    if (holder) {
      load_head(row + static_cast<int64_t>(kh) * kD, f.bias ? f.bias + kh * kD : nullptr, li, xk);
      load_head(row + static_cast<int64_t>(vh) * kD, f.bias ? f.bias + vh * kD : nullptr, li, xv);
    }
#pragma unroll
    for (int g = 0; g < kG; ++g)
      if (g < ng) load_head(row + static_cast<int64_t>(h0 + g) * kD, f.bias ? f.bias + (h0 + g) * kD : nullptr, li, q[g]);
    const bool norm = f.q_norm != nullptr;
    if (norm) {
      unpack8(*reinterpret_cast<const uint4*>(f.q_norm + li * 8), wq);
      unpack8(*reinterpret_cast<const uint4*>(f.k_norm + li * 8), wk);
    }
    if (holder) {  // build the new key, write its cache row once, fill its ring slots issued so far
      k_new = finish_head<kL>(xk, norm, wk, f.norm_eps, true, cs, sn, li);
      v_new = pack8(xv);
      if (group == 0 && blockIdx.y % head_groups == 0) {
        const int32_t blk = bs_pow2 ? last >> bs_shift : last / bs;
        const int64_t slot = static_cast<int64_t>(table[blk]) * bs + (last - blk * bs);
        const int64_t off = slot * a.hkv * kD + head_off;
        *reinterpret_cast<uint4*>(f.k_cache + off) = k_new;
        *reinterpret_cast<uint4*>(f.v_cache + off) = v_new;
      }
      for (int st = 0; st < pre; ++st)
#pragma unroll
        for (int u = 0; u < kKeysPerGroup; ++u)
          if (min(k_begin + st * kStageKeys + group + u * kGroups, k_end - 1) == last) {
            *k_slot(st, u) = k_new;
            *v_slot(st, u) = v_new;
          }
    }
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      if (g < ng) {
        const uint4 rq = finish_head<kL>(q[g], norm, wq, f.norm_eps, true, cs, sn, li);
        unpack8(rq, q[g]);
      }
    }
  }
  for (int s = pre; s < kStages - 1; ++s) {
    if (s < n_stages) issue(s, s);
    cp_async_commit();
  }
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) o[g][i] = 0.0f;
    if (!kFused || g >= ng) {
#pragma unroll
      for (int i = 0; i < 8; ++i) q[g][i] = 0.0f;
    }
    if (g < ng) {
      if constexpr (!kFused) {
        const uint4 raw = *reinterpret_cast<const uint4*>(row + static_cast<int64_t>(h0 + g) * kD + li * 8);
        unpack8(raw, q[g]);  // (a copy first: one 16-byte load, not three narrower ones)
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) q[g][i] *= qscale;
    }
  }

  for (int32_t t = 0; t < n_stages; ++t) {
    cp_async_wait<kStages - 2>();  // this thread's copies of stage t have landed
    const int32_t nt = t + kStages - 1;
    if (nt < n_stages) issue(nt, nt % kStages);  // into the slot stage t - 1 used (already consumed)
    cp_async_commit();
    const int s = t % kStages;
    const int32_t base = k_begin + t * kStageKeys + group;

    float sc[kKeysPerGroup][kG];
#pragma unroll
    for (int u = 0; u < kKeysPerGroup; ++u) {
      float kf[8];
      unpack8(*k_slot(s, u), kf);
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        float acc = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc = fmaf(q[g][i], kf[i], acc);
        sc[u][g] = acc;
      }
    }
#pragma unroll
    for (int off = kL / 2; off > 0; off >>= 1)
#pragma unroll
      for (int u = 0; u < kKeysPerGroup; ++u)
#pragma unroll
        for (int g = 0; g < kG; ++g) sc[u][g] += __shfl_xor_sync(0xffffffffu, sc[u][g], off);

    float p[kKeysPerGroup][kG];
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < kKeysPerGroup; ++u) {
        if (base + u * kGroups >= k_end) sc[u][g] = -INFINITY;
        mx = fmaxf(mx, sc[u][g]);
      }
      const float ref = mx == -INFINITY ? 0.0f : mx;  // every key so far masked: keep p = 0, no NaN
      const float alpha = exp2f(m[g] - ref);
      float psum = 0.0f;
#pragma unroll
      for (int u = 0; u < kKeysPerGroup; ++u) psum += (p[u][g] = exp2f(sc[u][g] - ref));
      l[g] = l[g] * alpha + psum;
      m[g] = mx;
#pragma unroll
      for (int i = 0; i < 8; ++i) o[g][i] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < kKeysPerGroup; ++u) {
      float vf[8];
      unpack8(*v_slot(s, u), vf);
#pragma unroll
      for (int g = 0; g < kG; ++g)
#pragma unroll
        for (int i = 0; i < 8; ++i) o[g][i] = fmaf(p[u][g], vf[i], o[g][i]);
    }
  }

  // Merge the lane groups' states through shared memory (the ring is free once every copy landed).
  cp_async_wait<0>();
  __syncthreads();
  float* so = reinterpret_cast<float*>(smem);  // [kGroups][kG][kD]
  float* sml = so + kGroups * kG * kD;         // [kGroups][kG][2]
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    float4* dst = reinterpret_cast<float4*>(so + (group * kG + g) * kD + li * 8);
    dst[0] = make_float4(o[g][0], o[g][1], o[g][2], o[g][3]);
    dst[1] = make_float4(o[g][4], o[g][5], o[g][6], o[g][7]);
    if (li == 0) {
      sml[(group * kG + g) * 2] = m[g];
      sml[(group * kG + g) * 2 + 1] = l[g];
    }
  }
  __syncthreads();
  merge_groups<kD, kG, kGroups>(a, tile, h0, ng, so, sml, tid);
  if constexpr (kFused) {
    if (a.splits == 1) return;
    // Arrival: the last block of this (tile, kv head, head group) merges every split's state.
    int& s_last = *reinterpret_cast<int*>(smem + kSmemBytes - 16);  // past so/sml and the merge scratch
    __threadfence();  // this thread's partial writes, visible device-wide before the count
    __syncthreads();  // also: so/sml are consumed, the ring is free for the merge's scratch
    int32_t* counter = f.counters + static_cast<int64_t>(blockIdx.x) * gridDim.y + blockIdx.y;
    if (tid == 0) s_last = atomicAdd(counter, 1) == a.splits - 1 ? 1 : 0;
    __syncthreads();
    if (!s_last) return;
    __threadfence();  // the other blocks' partials, observed after their counts
    static_assert(decode_merge::kMergeHeadsScratchBytes<kG> <= kSmemBytes - 16,
                  "merge scratch exceeds the ring (its last 16 bytes hold the arrival flag)");
    merge_heads<kD, kG>(a, tile.q_row, h0, ng, smem);
    if (tid == 0) *counter = 0;  // ready for the next launch (the next layer, or a graph replay)
  }
}


[[noreturn]] void refuse(const char* what, long long value, int line) {
  char msg[192];
  std::snprintf(msg, sizeof msg, "paged_attention_decode: %s (got %lld)", what, value);
  throw_cuda_error(cudaErrorInvalidValue, msg, __FILE__, line);
}

template <int kD, int kG, bool kFused>
void launch(const AttentionArgs& a, const DecodeQkvArgs& f, cudaStream_t stream) {
  const int32_t head_groups = (a.hq / a.hkv + kG - 1) / kG;
  const dim3 grid(a.num_tiles, a.hkv * head_groups, a.splits);
  launch_pdl(decode_kernel<kD, kG, kFused>, grid, kThreads, kSmemBytes, stream, a, f, head_groups);
  if (!kFused && a.splits > 1) launch_pdl(merge_splits_kernel<kD>, dim3(a.num_tiles, a.hq), kThreads, 0, stream, a);
}

// The tensor-core kernel (attention_decode_mma.cuh) for GQA groups of 2-8 heads at head_dim 64 or 128.
bool mma_takes(const AttentionArgs& a) {
  const int32_t G = a.hq / a.hkv;
  return G > 1 && (a.head_dim == 64 || a.head_dim == 128);
}

template <int kD, int kG, int kKv>
void launch_mma(const AttentionArgs& a, cudaStream_t stream) {
  const int32_t head_groups = (a.hq / a.hkv + kG - 1) / kG;
  const dim3 grid(a.num_tiles, a.hkv / kKv * head_groups, a.splits);
  auto* kernel = decode_mma::decode_mma_kernel<kD, kG, kKv>;
  constexpr int smem = decode_mma::kSmemBytes<kD, kKv>;
  if constexpr (smem > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  launch_pdl(kernel, grid, kKv * kThreads, smem, stream, a, head_groups);
  if (a.splits > 1) launch_pdl(merge_splits_kernel<kD>, dim3(a.num_tiles, a.hq), kThreads, 0, stream, a);
}

template <int kD, int kKv>
void dispatch_mma_heads(const AttentionArgs& a, cudaStream_t stream) {
  if (heads_per_block(a.hq / a.hkv) == 4) return launch_mma<kD, 4, kKv>(a, stream);
  return launch_mma<kD, 8, kKv>(a, stream);
}

// kv_per_block: 0 picks the default (kDecodeKvPerBlock where hkv divides by it, else 1).
template <int kD>
void dispatch_mma(const AttentionArgs& a, cudaStream_t stream, int32_t kv_per_block) {
  if (kv_per_block == 0) kv_per_block = a.hkv % kDecodeKvPerBlock == 0 ? kDecodeKvPerBlock : 1;
  switch (kv_per_block) {
    case 1: return dispatch_mma_heads<kD, 1>(a, stream);
    case 2: return dispatch_mma_heads<kD, 2>(a, stream);
    default: return dispatch_mma_heads<kD, 4>(a, stream);
  }
}

template <int kD, bool kFused>
void dispatch_heads(const AttentionArgs& a, const DecodeQkvArgs& f, cudaStream_t stream) {
  switch (heads_per_block(a.hq / a.hkv)) {
    case 1: return launch<kD, 1, kFused>(a, f, stream);
    case 4: return launch<kD, 4, kFused>(a, f, stream);
    default: return launch<kD, 8, kFused>(a, f, stream);
  }
}

// tensor_cores: -1 the CUDA-core kernel; 0 the default; 1, 2, 4 the tensor-core kernel with that many
// kv heads per block (where the shape takes it).
template <bool kFused>
void check_and_dispatch(const AttentionArgs& a, const DecodeQkvArgs& f, cudaStream_t stream, int32_t tensor_cores) {
  if (a.num_tiles == 0) return;
  if (a.hkv <= 0) refuse("hkv must be positive", a.hkv, __LINE__);
  if (a.hq <= 0 || a.hq % a.hkv != 0) refuse("hq must be a positive multiple of hkv", a.hq, __LINE__);
  if (a.max_q_len != 1) refuse("every tile must hold one token (max_q_len 1)", a.max_q_len, __LINE__);
  if (a.splits < 1 || a.splits > kMaxSplits) refuse("splits must be in [1, 1024]", a.splits, __LINE__);
  if (a.block_size <= 0) refuse("block_size must be positive", a.block_size, __LINE__);
  if (a.splits > 1 && (a.o_part == nullptr || a.ml_part == nullptr))
    refuse("splits > 1 needs the o_part and ml_part buffers", a.splits, __LINE__);
  if (kFused) {
    if (f.k_cache != a.k_cache || f.v_cache != a.v_cache)
      refuse("the fused K/V cache pointers must be the attention's", 0, __LINE__);
    if (f.inv_freq == nullptr) refuse("inv_freq is required", 0, __LINE__);
    if ((f.q_norm == nullptr) != (f.k_norm == nullptr)) refuse("q_norm and k_norm go together", 0, __LINE__);
    if (a.splits > kMaxFusedSplits) refuse("the fused launch takes at most 256 splits", a.splits, __LINE__);
    const int64_t need = attention_decode_counters(a.num_tiles, a.hq, a.hkv);
    if (a.splits > 1 && (f.counters == nullptr || f.num_counters < need))
      refuse("splits > 1 needs num_tiles x kv heads x head groups arrival counters", f.num_counters, __LINE__);
  }
  if (tensor_cores > 0 && (a.hkv % tensor_cores != 0 || (tensor_cores & (tensor_cores - 1)) != 0 || tensor_cores > 4))
    refuse("kv heads per block must be 1, 2 or 4 and divide hkv", tensor_cores, __LINE__);
  if (!kFused && tensor_cores >= 0 && mma_takes(a)) {
    if (a.head_dim == 64) return dispatch_mma<64>(a, stream, tensor_cores);
    return dispatch_mma<128>(a, stream, tensor_cores);
  }
  switch (a.head_dim) {
    case 64: return dispatch_heads<64, kFused>(a, f, stream);
    case 128: return dispatch_heads<128, kFused>(a, f, stream);
    case 256: return dispatch_heads<256, kFused>(a, f, stream);
    default: refuse("head_dim must be 64, 128 or 256", a.head_dim, __LINE__);
  }
}

}  // namespace

bool attention_decode_supported(int32_t hq, int32_t hkv, int32_t head_dim) {
  return hkv > 0 && hq > 0 && hq % hkv == 0 && (head_dim == 64 || head_dim == 128 || head_dim == 256);
}

int32_t attention_decode_splits(int32_t num_tiles, int32_t hq, int32_t hkv, int32_t head_dim, int32_t sm_count,
                                int32_t max_context, int32_t min_split_keys, bool whole_waves) {
  if (num_tiles <= 0 || !attention_decode_supported(hq, hkv, head_dim)) return 1;
  const int64_t min_keys = min_split_keys > 0 ? min_split_keys : kDecodeMinSplitKeys;
  const int32_t kg = heads_per_block(hq / hkv);
  const int64_t blocks = static_cast<int64_t>(num_tiles) * hkv * ((hq / hkv + kg - 1) / kg);
  const int64_t resident = static_cast<int64_t>(sm_count) * blocks_per_sm(kg);
  if (whole_waves && thin_last_wave(blocks, resident, sm_count)) {  // whole waves, no split under min_keys keys
    int32_t most = kWholeWaveMaxSplits;
    while (most > 1 && most * min_keys > max_context) --most;
    return whole_wave_splits(blocks, resident, most);
  }
  auto keys_allow = [&](int64_t splits) {  // the default floor's short splits only without a caller's floor
    return splits * min_keys <= max_context ||
           (min_split_keys <= 0 && splits <= kDecodeShortSplits && splits * kDecodeShortSplitKeys <= max_context);
  };
  int32_t p = 1;
  while (p < 256 && blocks * p * 2 <= resident && keys_allow(2 * p)) p *= 2;
  return p;
}

DecodeDevice decode_device(int device) {
  int major = 0, minor = 0, sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return DecodeDevice{10 * major + minor, sms};
}

void paged_attention_decode(const AttentionArgs& a, const DecodeDevice& device, cudaStream_t stream) {
  if (a.num_tiles > 0 && attention_decode_tma_default(a, device))  // Hopper
    return paged_attention_decode_tma(a, device, stream);
  check_and_dispatch<false>(a, DecodeQkvArgs{}, stream, 0);
}

void paged_attention_decode_cuda_cores(const AttentionArgs& a, cudaStream_t stream) {
  check_and_dispatch<false>(a, DecodeQkvArgs{}, stream, -1);
}

void paged_attention_decode_tc(const AttentionArgs& a, int32_t kv_heads_per_block, cudaStream_t stream) {
  if (kv_heads_per_block <= 0) refuse("kv heads per block must be 1, 2 or 4", kv_heads_per_block, __LINE__);
  check_and_dispatch<false>(a, DecodeQkvArgs{}, stream, kv_heads_per_block);
}

int64_t attention_decode_counters(int32_t num_tiles, int32_t hq, int32_t hkv) {
  if (num_tiles <= 0 || hkv <= 0 || hq <= 0) return 0;
  const int32_t kg = heads_per_block(hq / hkv);
  return static_cast<int64_t>(num_tiles) * hkv * ((hq / hkv + kg - 1) / kg);
}

void paged_attention_decode_fused(const AttentionArgs& a, const DecodeQkvArgs& f, cudaStream_t stream) {
  check_and_dispatch<true>(a, f, stream, -1);
}

}  // namespace tessera::cuda
