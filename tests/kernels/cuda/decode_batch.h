// Test fixtures of the decode-attention kernel tests (attention_decode_test.cpp,
// attention_decode_tma_test.cpp): one decode batch (fresh random bf16 q/K/V, shuffled block tables
// whose unused entries point far outside the cache, optionally NaN in every cache row past a
// sequence's last key), its double-precision reference, the per-sequence error and one launch's
// arguments with poisoned outputs and partials. Host test code only.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_check.h"
#include "tests/kernels/cuda/attention_reference.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {

// The current device as the decode launches take it (read once per call: tests only).
inline DecodeDevice this_device() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  return decode_device(device);
}

// One decode batch in host and device memory: sequence s attends to keys [0, contexts[s]) in cache
// blocks of bs keys. With nan_past_end the rows of each sequence's last block past its last key hold
// NaN (kernels that copy whole pages must not let them reach the output).
struct DecodeBatch {
  int32_t hq, hkv, D, bs, max_blocks = 0;
  std::vector<int32_t> contexts, tables;
  std::vector<float> q_f, k_f, v_f;
  int64_t q_stride = 0;
  std::unique_ptr<DeviceBuffer<__nv_bfloat16>> q, kc, vc;
  std::unique_ptr<DeviceBuffer<int32_t>> d_tables;

  DecodeBatch(int32_t hq_, int32_t hkv_, int32_t d_, std::vector<int32_t> ctx, std::mt19937& rng, int32_t bs_ = 16,
              bool nan_past_end = false)
      : hq(hq_), hkv(hkv_), D(d_), bs(bs_), contexts(std::move(ctx)) {
    const int32_t nseq = static_cast<int32_t>(contexts.size());
    int32_t total = 0;
    for (int32_t c : contexts) {
      max_blocks = std::max(max_blocks, (c + bs - 1) / bs + 2);  // spare entries, never read
      total += (c + bs - 1) / bs;
    }
    std::vector<int32_t> perm(total);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    tables.assign(static_cast<size_t>(nseq) * max_blocks, INT32_MAX / 2);
    int32_t next = 0;
    for (int32_t s = 0; s < nseq; ++s)
      for (int32_t b = 0; b < (contexts[s] + bs - 1) / bs; ++b) tables[s * max_blocks + b] = perm[next++];
    const size_t row = static_cast<size_t>(hkv) * D, cache_elems = static_cast<size_t>(total) * bs * row;
    auto k = random_bf16(cache_elems, rng, 1.0f, &k_f), v = random_bf16(cache_elems, rng, 1.0f, &v_f);
    if (nan_past_end) {
      __nv_bfloat16_raw nan_bits;
      nan_bits.x = 0xFFFF;
      const __nv_bfloat16 nan(nan_bits);
      for (int32_t s = 0; s < nseq; ++s) {  // the rest of each sequence's last block
        const int32_t nb = (contexts[s] + bs - 1) / bs;
        for (int32_t key = contexts[s]; key < nb * bs; ++key) {
          const size_t slot = static_cast<size_t>(tables[s * max_blocks + key / bs]) * bs + key % bs;
          std::fill(k.begin() + slot * row, k.begin() + (slot + 1) * row, nan);
          std::fill(v.begin() + slot * row, v.begin() + (slot + 1) * row, nan);
        }
      }
    }
    kc = std::make_unique<DeviceBuffer<__nv_bfloat16>>(k);
    vc = std::make_unique<DeviceBuffer<__nv_bfloat16>>(v);
    q_stride = static_cast<int64_t>(hq + 2 * hkv) * D;  // q inside a fused qkv row
    q = std::make_unique<DeviceBuffer<__nv_bfloat16>>(
        random_bf16(static_cast<size_t>(nseq) * q_stride, rng, 2.0f, &q_f));
    d_tables = std::make_unique<DeviceBuffer<int32_t>>(tables);
  }

  int32_t nseq() const { return static_cast<int32_t>(contexts.size()); }

  // Tiles (one token per sequence) plus `padding` empty tiles, as CUDA-graph buckets use.
  std::vector<AttentionTile> tiles(int32_t padding) const {
    std::vector<AttentionTile> t;
    for (int32_t s = 0; s < nseq(); ++s) t.push_back({s, s, 1, contexts[s] - 1});
    for (int32_t i = 0; i < padding; ++i) t.push_back({0, 0, 0, 0});
    return t;
  }

  // softmax(q.K / sqrt(D)) V in double, [nseq, hq, D].
  std::vector<double> reference() const {
    std::vector<ReferenceChunk> chunks;
    for (int32_t s = 0; s < nseq(); ++s) chunks.push_back({s, contexts[s] - 1, 1});
    return paged_attention_reference(q_f, q_stride, PagedKvView{k_f, v_f, tables, max_blocks, bs}, chunks, hq, hkv, D);
  }
};

// ||got - want|| / ||want|| for each sequence on its own (a long context's small outputs are not hidden
// behind a short one's), the worst of them.
inline double worst_sequence_error(const std::vector<float>& got, const std::vector<double>& want, int32_t nseq) {
  const size_t per = got.size() / nseq;
  double worst = 0;
  for (int32_t s = 0; s < nseq; ++s) {
    const std::vector<float> g(got.begin() + s * per, got.begin() + (s + 1) * per);
    const std::vector<double> w(want.begin() + s * per, want.begin() + (s + 1) * per);
    worst = std::max(worst, rel_error(g, w));
  }
  return worst;
}

// Device-side arguments and outputs for one launch over a batch; tiles and outputs poisoned fresh.
struct DecodeLaunch {
  DeviceBuffer<AttentionTile> tiles;
  DeviceBuffer<float> o_part, ml_part;
  DeviceBuffer<__nv_bfloat16> out;
  AttentionArgs a;

  DecodeLaunch(const DecodeBatch& b, const std::vector<AttentionTile>& t, int32_t splits)
      : tiles(t),
        o_part(static_cast<size_t>(splits) * b.nseq() * b.hq * b.D),
        ml_part(static_cast<size_t>(splits) * b.nseq() * b.hq * 2),
        out(static_cast<size_t>(b.nseq()) * b.hq * b.D) {
    out.poison();
    o_part.poison();
    ml_part.poison();
    a.q = b.q->get();
    a.q_row_stride = b.q_stride;
    a.k_cache = b.kc->get();
    a.v_cache = b.vc->get();
    a.block_tables = b.d_tables->get();
    a.max_blocks_per_seq = b.max_blocks;
    a.block_size = b.bs;
    a.tiles = tiles.get();
    a.num_tiles = static_cast<int32_t>(t.size());
    a.max_q_len = 1;
    a.hq = b.hq;
    a.hkv = b.hkv;
    a.head_dim = b.D;
    a.scale = 1.0f / std::sqrt(static_cast<float>(b.D));
    a.splits = splits;
    a.tokens = b.nseq();
    a.o_part = o_part.get();
    a.ml_part = ml_part.get();
    a.out = out.get();
  }
};

}  // namespace tessera::cuda::test
