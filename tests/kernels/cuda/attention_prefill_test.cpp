// The FlashAttention-2-style prefill kernel (attention_prefill_tc) against a double-precision CPU
// reference: several sequences per launch, chunks after a cached prefix, lengths that are not a
// multiple of the tile, GQA groups 1/4/8, head_dim 64/128, cache blocks of 16, 48 and 1 keys, every
// kernel variant, shuffled block tables, fresh random inputs and poisoned outputs (a row no tile
// covers must stay poisoned); and keys that grow along the sequence, so that rows' running maxima
// move in later key blocks by small and by large steps (the online softmax's rescaling of O at work).
// Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "common/error.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_prefill_tc.cuh"
#include "tests/kernels/cuda/attention_reference.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

struct PrefillCase {
  int32_t hq, hkv, head_dim;
  int32_t block_size = 16;  // cache block: the kernel fetches each key's slot ahead of its stage
};

struct Chunk {
  int32_t first_pos, q_len;  // keys [0, first_pos + q_len) are in the cache
};

// Inputs of one launch, kept on the host for the reference.
struct Problem {
  int32_t tokens = 0, max_blocks = 0, block_size = 16;
  int64_t q_stride = 0;
  std::vector<int32_t> tables;
  std::vector<float> q, k, v;
};

// out[token, h, :] = softmax(q k^T / sqrt(D)) v over keys [0, position], in double precision.
std::vector<double> reference(const Problem& p, const std::vector<Chunk>& chunks, const PrefillCase& c) {
  std::vector<ReferenceChunk> ref_chunks;
  for (size_t s = 0; s < chunks.size(); ++s)
    ref_chunks.push_back({static_cast<int32_t>(s), chunks[s].first_pos, chunks[s].q_len});
  return paged_attention_reference(p.q, p.q_stride, PagedKvView{p.k, p.v, p.tables, p.max_blocks, p.block_size},
                                   ref_chunks, c.hq, c.hkv, c.head_dim);
}

// Keys of position j scaled by 1 + growth * j (every kv head), in the cache and in the host copy.
void grow_keys(std::vector<__nv_bfloat16>& k, Problem& p, const std::vector<Chunk>& chunks, int32_t hkv, int32_t D,
               float growth) {
  const size_t row = static_cast<size_t>(hkv) * D;
  for (size_t s = 0; s < chunks.size(); ++s)
    for (int32_t j = 0; j < chunks[s].first_pos + chunks[s].q_len; ++j) {
      const int64_t slot =
          static_cast<int64_t>(p.tables[s * p.max_blocks + j / p.block_size]) * p.block_size + j % p.block_size;
      for (size_t i = slot * row; i < (slot + 1) * row; ++i) {
        k[i] = to_bf16(p.k[i] * (1.0f + growth * static_cast<float>(j)));
        p.k[i] = from_bf16(k[i]);
      }
    }
}

// Every variant (the default last) against the fp64 reference on five chunks of one launch; keys of
// position j scaled by 1 + key_growth * j.
void check_every_variant(const PrefillCase& c, float key_growth) {
  ASSERT_TRUE(attention_prefill_tc_supported(c.hq, c.hkv, c.head_dim));
  std::mt19937 rng(std::random_device{}());
  const int32_t D = c.head_dim;
  // A long first chunk, a chunk after a 200-token prefix, a one-token prompt, a short chunk after a
  // prefix that ends mid-block, and one that starts exactly on a tile boundary: none a tile multiple.
  const std::vector<Chunk> chunks = {{0, 517}, {200, 77}, {0, 1}, {1001, 45}, {128, 130}};
  const int32_t nseq = static_cast<int32_t>(chunks.size());
  Problem p;
  p.block_size = c.block_size;
  for (const auto& ch : chunks) {
    p.tokens += ch.q_len;
    p.max_blocks = std::max(p.max_blocks, (ch.first_pos + ch.q_len + p.block_size - 1) / p.block_size);
  }
  const int32_t num_blocks = nseq * p.max_blocks;
  std::vector<int32_t> perm(num_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  p.tables.assign(perm.begin(), perm.end());
  const size_t cache_elems = static_cast<size_t>(num_blocks) * p.block_size * c.hkv * D;
  std::vector<__nv_bfloat16> k_host = random_bf16(cache_elems, rng, 1.0f, &p.k);
  if (key_growth != 0.0f) grow_keys(k_host, p, chunks, c.hkv, D, key_growth);
  DeviceBuffer<__nv_bfloat16> kc(k_host);
  DeviceBuffer<__nv_bfloat16> vc(random_bf16(cache_elems, rng, 1.0f, &p.v));
  p.q_stride = static_cast<int64_t>(c.hq + 2 * c.hkv) * D;  // q inside a fused qkv row
  DeviceBuffer<__nv_bfloat16> q(random_bf16(static_cast<size_t>(p.tokens) * p.q_stride, rng, 2.0f, &p.q));

  const int32_t tile_tokens = attention_prefill_tc_tile_tokens(c.hq, c.hkv);
  ASSERT_EQ(tile_tokens, attention_tile_tokens(c.hq, c.hkv, D));
  std::vector<ReferenceChunk> ref_chunks;
  for (int32_t s = 0; s < nseq; ++s) ref_chunks.push_back({s, chunks[s].first_pos, chunks[s].q_len});
  int32_t max_q = 1;
  std::vector<AttentionTile> tiles = tiles_for(ref_chunks, tile_tokens, &max_q);
  tiles.insert(tiles.begin() + 2, AttentionTile{0, 0, 0, 0});  // padding tiles do nothing
  std::shuffle(tiles.begin(), tiles.end(), rng);                // tile order must not matter
  DeviceBuffer<int32_t> d_tables(p.tables);
  DeviceBuffer<AttentionTile> d_tiles(tiles);
  const size_t row_elems = static_cast<size_t>(c.hq) * D;
  DeviceBuffer<__nv_bfloat16> out((p.tokens + 1) * row_elems);  // one extra row no tile covers
  out.poison();
  AttentionArgs a;
  a.q = q.get();
  a.q_row_stride = p.q_stride;
  a.k_cache = kc.get();
  a.v_cache = vc.get();
  a.block_tables = d_tables.get();
  a.max_blocks_per_seq = p.max_blocks;
  a.block_size = p.block_size;
  a.tiles = d_tiles.get();
  a.num_tiles = static_cast<int32_t>(tiles.size());
  a.max_q_len = max_q;
  a.hq = c.hq;
  a.hkv = c.hkv;
  a.head_dim = D;
  a.scale = 1.0f / std::sqrt(static_cast<float>(D));
  a.tokens = p.tokens;
  a.out = out.get();
  const auto want = reference(p, chunks, c);
  std::vector<float> got;
  for (int variant = kPrefillTcVariants - 1; variant >= 0; --variant) {  // the default (0) last
    out.poison();
    paged_attention_prefill_tc(a, nullptr, variant);
    got = to_float(out.download());
    for (size_t i = 0; i < row_elems; ++i)
      ASSERT_TRUE(std::isnan(got[p.tokens * row_elems + i]))
          << "variant " << variant << " wrote element " << i << " of the uncovered row";
    got.resize(p.tokens * row_elems);
    EXPECT_LT(rel_error(got, want), 8e-3) << "variant " << variant;
  }

  // The generic entry point routes multi-token tiles to the default variant: the same bits.
  out.poison();
  paged_attention(a, nullptr);
  auto again = to_float(out.download());
  again.resize(p.tokens * row_elems);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], again[i]) << "element " << i;
}

class CudaPrefillAttention : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(CudaPrefillAttention, VariableLengthChunksWithPrefixesMatchReference) { check_every_variant(GetParam(), 0.0f); }

// Row maxima grow along the sequence: by ~3 (base 2, after the scale) per 128-key block at 0.01, so a
// stale maximum is kept for two blocks or so and then moved, and by ~16 at 0.05: every block moves it.
TEST(CudaPrefillAttention, RowMaximaThatJumpAlongTheSequenceMatchReference) {
  for (const PrefillCase c : {PrefillCase{8, 2, 128}, PrefillCase{8, 2, 64}})
    for (const float growth : {0.01f, 0.05f}) {
      SCOPED_TRACE("head_dim " + std::to_string(c.head_dim) + ", key growth " + std::to_string(growth));
      check_every_variant(c, growth);
    }
}

INSTANTIATE_TEST_SUITE_P(Groups, CudaPrefillAttention,
                         ::testing::Values(PrefillCase{4, 4, 128}, PrefillCase{8, 2, 128}, PrefillCase{16, 2, 128},
                                           PrefillCase{4, 4, 64}, PrefillCase{8, 2, 64}, PrefillCase{16, 2, 64},
                                           // blocks that straddle key stages (48) and one key per block
                                           PrefillCase{8, 2, 128, 48}, PrefillCase{4, 4, 64, 1}),
                         [](const ::testing::TestParamInfo<PrefillCase>& info) {
                           const PrefillCase& c = info.param;
                           std::string name = "G";  // (appended, not concatenated: GCC 12's -Wrestrict)
                           name.append(std::to_string(c.hq / c.hkv)).append("_D").append(std::to_string(c.head_dim));
                           if (c.block_size != 16) name.append("_B").append(std::to_string(c.block_size));
                           return name;
                         });

TEST(CudaPrefillAttention, RefusesTilesLongerThanItsTileAndUnsupportedHeads) {
  AttentionArgs a;
  a.num_tiles = 1;
  a.hq = 8;
  a.hkv = 2;
  a.head_dim = 128;
  a.max_q_len = attention_prefill_tc_tile_tokens(8, 2) + 1;
  EXPECT_THROW(paged_attention_prefill_tc(a, nullptr), Error);
  a.max_q_len = 1;
  a.head_dim = 96;
  EXPECT_FALSE(attention_prefill_tc_supported(8, 2, 96));
  EXPECT_THROW(paged_attention_prefill_tc(a, nullptr), Error);
  EXPECT_FALSE(attention_prefill_tc_supported(6, 2, 128));  // G = 3 does not divide the 128-row tile
}

}  // namespace
}  // namespace tessera::cuda::test
