// Double-precision paged attention for the kernel tests: every query row attends causally to its
// sequence's keys [0, position], read through the sequence's block table, as softmax(q·Kᵀ/√D)·V.
// The one reference the prefill, decode, general and fp32 attention tests compare against. Tests only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda::test {

// q_len consecutive query rows of sequence `seq` (its row of the block tables) at positions
// first_pos.. ; the rows of successive chunks follow each other in q.
struct ReferenceChunk {
  int32_t seq = 0;
  int32_t first_pos = 0;
  int32_t q_len = 0;
};

struct PagedKvView {
  const std::vector<float>& k;  // [slots, hkv, head_dim]
  const std::vector<float>& v;
  const std::vector<int32_t>& tables;  // [seqs, max_blocks]
  int32_t max_blocks = 0;
  int32_t block_size = 0;
};

// The runner's tile layout: each chunk cut into tiles of at most tile_tokens rows, rows of successive
// chunks following each other; *max_q receives the longest tile.
inline std::vector<AttentionTile> tiles_for(const std::vector<ReferenceChunk>& chunks, int32_t tile_tokens,
                                            int32_t* max_q) {
  std::vector<AttentionTile> tiles;
  int32_t row = 0;
  *max_q = 1;
  for (const auto& c : chunks) {
    for (int32_t off = 0; off < c.q_len; off += tile_tokens) {
      const int32_t n = std::min(tile_tokens, c.q_len - off);
      tiles.push_back({c.seq, row + off, n, c.first_pos + off});
      *max_q = std::max(*max_q, n);
    }
    row += c.q_len;
  }
  return tiles;
}

// Returns [rows, hq, head_dim]; q row r's head h starts at q[r * q_stride + h * head_dim].
inline std::vector<double> paged_attention_reference(const std::vector<float>& q, int64_t q_stride,
                                                     const PagedKvView& kv, const std::vector<ReferenceChunk>& chunks,
                                                     int32_t hq, int32_t hkv, int32_t head_dim) {
  const int32_t D = head_dim, g = hq / hkv, bs = kv.block_size;
  int64_t rows = 0;
  for (const auto& c : chunks) rows += c.q_len;
  std::vector<double> want(static_cast<size_t>(rows) * hq * D, 0.0);
  int64_t row = 0;
  for (const auto& c : chunks) {
    const int32_t keys = c.first_pos + c.q_len;
    std::vector<size_t> slot(keys);
    for (int32_t k = 0; k < keys; ++k)
      slot[k] = static_cast<size_t>(kv.tables[static_cast<size_t>(c.seq) * kv.max_blocks + k / bs]) * bs + k % bs;
    for (int32_t i = 0; i < c.q_len; ++i) {
      const int32_t pos = c.first_pos + i;
      for (int32_t h = 0; h < hq; ++h) {
        const int32_t kvh = h / g;
        const float* qr = &q[static_cast<size_t>((row + i) * q_stride + h * D)];
        std::vector<double> sc(pos + 1);
        double mx = -1e300;
        for (int32_t k = 0; k <= pos; ++k) {
          const float* kr = &kv.k[(slot[k] * hkv + kvh) * D];
          double dot = 0;
          for (int32_t d = 0; d < D; ++d) dot += static_cast<double>(qr[d]) * kr[d];
          sc[k] = dot / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, sc[k]);
        }
        double z = 0;
        for (auto& x : sc) z += (x = std::exp(x - mx));
        double* dst = &want[(static_cast<size_t>(row + i) * hq + h) * D];
        for (int32_t k = 0; k <= pos; ++k) {
          const float* vr = &kv.v[(slot[k] * hkv + kvh) * D];
          for (int32_t d = 0; d < D; ++d) dst[d] += sc[k] * vr[d];
        }
        for (int32_t d = 0; d < D; ++d) dst[d] /= z;
      }
    }
    row += c.q_len;
  }
  return want;
}

}  // namespace tessera::cuda::test
