// The decode attention kernel (attention_decode.cuh) against a double-precision CPU reference: fresh
// random bf16 q/K/V, shuffled block tables whose unused entries point far outside the cache (a read
// past a sequence's keys is caught by memcheck), poisoned outputs and partials, contexts 1..32768,
// GQA ratios 1/3/4/8/16, head_dim 64/128/256, forced and heuristic split counts, a padding tile, a
// CUDA-graph replay with new contexts, and the refusals. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <numeric>
#include <random>

#include "common/error.h"
#include "kernels/cuda/attention_decode.cuh"
#include "tests/kernels/cuda/attention_reference.h"
#include "tests/kernels/cuda/decode_batch.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

struct DecodeCase {
  int32_t hq, hkv, head_dim;
  int32_t splits;  // 0: attention_decode_splits' choice for 132 SMs
};

class CudaDecodeAttention : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(CudaDecodeAttention, EveryContextLengthMatchesReference) {
  const DecodeCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b(c.hq, c.hkv, c.head_dim, {1, 15, 16, 17, 1000, 32768}, rng);
  const auto tiles = b.tiles(1);
  const int32_t splits = c.splits > 0 ? c.splits
                                      : attention_decode_splits(static_cast<int32_t>(tiles.size()), c.hq, c.hkv,
                                                                c.head_dim, 132, 32768);
  const std::vector<double> want = b.reference();
  // The default path (tensor cores for GQA groups at head_dim 64/128), the CUDA-core kernel (-1), and
  // the tensor-core kernel with 1, 2 and 4 kv heads per block where they divide hkv.
  for (const int32_t variant : {0, -1, 1, 2, 4}) {
    if (variant > 0 && c.hkv % variant != 0) continue;
    DecodeLaunch l(b, tiles, splits);
    if (variant == 0)
      paged_attention_decode(l.a, this_device(), nullptr);
    else if (variant < 0)
      paged_attention_decode_cuda_cores(l.a, nullptr);
    else
      paged_attention_decode_tc(l.a, variant, nullptr);
    const auto got = to_float(l.out.download());
    EXPECT_LT(worst_sequence_error(got, want, b.nseq()), 8e-3) << "splits " << splits << " variant " << variant;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaDecodeAttention,
                         ::testing::Values(DecodeCase{32, 8, 128, 1}, DecodeCase{32, 8, 128, 0},
                                           DecodeCase{32, 8, 128, 64}, DecodeCase{8, 8, 64, 0},
                                           DecodeCase{8, 8, 64, 5}, DecodeCase{16, 2, 256, 0},
                                           DecodeCase{16, 2, 256, 3}, DecodeCase{32, 4, 128, 16},
                                           DecodeCase{6, 2, 128, 7}, DecodeCase{32, 2, 64, 4},
                                           DecodeCase{16, 8, 64, 0}, DecodeCase{16, 8, 64, 2},
                                           DecodeCase{12, 3, 128, 0},
                                           // more splits than merge threads (the merge's later load rounds)
                                           DecodeCase{32, 8, 128, 300}, DecodeCase{8, 2, 64, 1024}));

TEST(CudaDecodeAttention, HeuristicSplitsFillTheGpuOnlyForLongContexts) {
  // 32 q / 8 kv heads: one sequence at 32k spreads over 64 splits; 64 sequences at 1k need none.
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 32768), 64);
  EXPECT_EQ(attention_decode_splits(64, 32, 8, 128, 132, 1024), 1);
  EXPECT_EQ(attention_decode_splits(30, 32, 8, 128, 132, 1024), 2);  // 240 blocks: two splits fit
  EXPECT_EQ(attention_decode_splits(16, 32, 8, 128, 132, 8192), 4);
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 300), 16);  // up to 32 splits: none under 16 keys
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 100), 4);
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 60), 2);
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 30), 1);
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 512), 32);  // 1 x 512 keys in 32 splits of 16
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 1024), 32);  // 64 splits would be 16 keys: 32 of 32
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 2048), 64);  // 64 splits of 32 keys
  // Another minimum split (the runner's decode_min_split_keys).
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 512, 256), 2);
  EXPECT_EQ(attention_decode_splits(64, 32, 8, 128, 132, 1024, 16), 1);  // residency still caps it
}

// Launches whose one-split blocks end in a wave of fewer blocks than SMs split for whole waves of the
// resident blocks (decode_wave_splits.h; 132 SMs x 4 = 528 here), at most 4 splits and none under 32
// keys (or the caller's floor); the others, and every launch without whole_waves, by the rule before:
// the largest power of two all resident.
TEST(CudaDecodeAttention, ThinLastWavesSplitForWholeWaves) {
  EXPECT_EQ(attention_decode_splits(80, 32, 8, 128, 132, 1024), 3);   // 640 blocks: 1,920 in 3.64 waves
  EXPECT_EQ(attention_decode_splits(70, 32, 8, 128, 132, 1024), 4);   // 560: none to 90%; 2,240 (0.85)
  EXPECT_EQ(attention_decode_splits(96, 32, 8, 128, 132, 1024), 1);   // 768: 240 in the last wave
  EXPECT_EQ(attention_decode_splits(112, 32, 8, 128, 132, 1024), 1);
  EXPECT_EQ(attention_decode_splits(48, 32, 8, 128, 132, 1024), 1);
  EXPECT_EQ(attention_decode_splits(40, 32, 8, 128, 132, 1024), 1);
  EXPECT_EQ(attention_decode_splits(32, 32, 8, 128, 132, 1024), 2);
  EXPECT_EQ(attention_decode_splits(128, 32, 8, 128, 132, 1024), 1);
  EXPECT_EQ(attention_decode_splits(80, 32, 8, 128, 132, 64), 2);        // 64 keys: two splits of 32 at most
  EXPECT_EQ(attention_decode_splits(80, 32, 8, 128, 132, 1024, 512), 2);  // the caller's 512-key floor
  EXPECT_EQ(attention_decode_splits(80, 32, 8, 128, 132, 31), 1);
  EXPECT_EQ(attention_decode_splits(16, 32, 8, 128, 132, 1024), 4);  // 128 blocks < 132 SMs: the rule before
  // The rule before, on request.
  EXPECT_EQ(attention_decode_splits(80, 32, 8, 128, 132, 1024, 0, false), 1);
  EXPECT_EQ(attention_decode_splits(96, 32, 8, 128, 132, 1024, 0, false), 1);
  EXPECT_EQ(attention_decode_splits(32, 32, 8, 128, 132, 1024, 0, false), 2);
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 32768, 0, false), 64);
}

// 64 sequences x 8 kv heads (the b64 engine shape's 512 blocks) at 1 and 2 splits: every variant
// against the reference, on contexts of every length up to 600 (empty second splits included).
TEST(CudaDecodeAttention, FullWaveOfSequencesMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  std::vector<int32_t> ctx = {1, 17, 31, 32, 33, 64, 95, 600};
  std::uniform_int_distribution<int32_t> len(1, 600);
  while (ctx.size() < 64) ctx.push_back(len(rng));
  DecodeBatch b(32, 8, 128, ctx, rng);
  const auto tiles = b.tiles(1);
  const std::vector<double> want = b.reference();
  for (const int32_t splits : {1, 2})
    for (const int32_t variant : {0, -1, 1, 2, 4}) {
      DecodeLaunch l(b, tiles, splits);
      if (variant == 0)
        paged_attention_decode(l.a, this_device(), nullptr);
      else if (variant < 0)
        paged_attention_decode_cuda_cores(l.a, nullptr);
      else
        paged_attention_decode_tc(l.a, variant, nullptr);
      const auto got = to_float(l.out.download());
      EXPECT_LT(worst_sequence_error(got, want, b.nseq()), 8e-3) << "splits " << splits << " variant " << variant;
    }
}

TEST(CudaDecodeAttention, GraphReplayReadsNewContextsFromDeviceMemory) {
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b(32, 8, 128, {3000, 700, 5000}, rng);
  std::vector<AttentionTile> t = b.tiles(1);
  DecodeLaunch l(b, t, 8);
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  paged_attention_decode(l.a, this_device(), s);
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  // The next step: each sequence shorter or longer than at capture, the same split count.
  for (auto& ctx : b.contexts) ctx = ctx == 5000 ? 4999 : ctx + 1;
  for (int32_t i = 0; i < b.nseq(); ++i) t[i].first_pos = b.contexts[i] - 1;
  l.tiles.upload(t);
  l.out.poison();
  CUDA_CHECK(cudaGraphLaunch(exec, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  const auto got = to_float(l.out.download());
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  EXPECT_LT(worst_sequence_error(got, b.reference(), b.nseq()), 8e-3);
}

TEST(CudaDecodeAttention, RefusesWhatItDoesNotTake) {
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b(8, 2, 64, {40}, rng);
  DecodeLaunch l(b, b.tiles(0), 2);
  AttentionArgs bad = l.a;
  bad.head_dim = 96;
  EXPECT_THROW(paged_attention_decode(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.max_q_len = 2;
  EXPECT_THROW(paged_attention_decode(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.hq = 7;
  EXPECT_THROW(paged_attention_decode(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.splits = 1025;
  EXPECT_THROW(paged_attention_decode(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.o_part = nullptr;
  EXPECT_THROW(paged_attention_decode(bad, this_device(), nullptr), Error);
  EXPECT_THROW(paged_attention_decode_tc(l.a, 4, nullptr), Error);  // 4 kv heads per block, hkv 2
  EXPECT_THROW(paged_attention_decode_tc(l.a, 3, nullptr), Error);
  EXPECT_THROW(paged_attention_decode_tc(l.a, 0, nullptr), Error);
  EXPECT_FALSE(attention_decode_supported(8, 2, 96));
  EXPECT_TRUE(attention_decode_supported(32, 8, 128));
}

}  // namespace
}  // namespace tessera::cuda::test
