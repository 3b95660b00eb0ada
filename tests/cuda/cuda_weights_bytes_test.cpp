// CudaWeights::required_bytes, which the runner checks against its memory budget before allocating:
// computed without a device (so it runs everywhere), equal to two or four bytes per parameter of the
// built-in shapes up to the per-tensor 256-byte alignment, and one rank's share under tensor
// parallelism.
#include <gtest/gtest.h>

#include <cstdint>

#include "model/cuda_weights.h"
#include "model/model_config.h"
#include "parallel/shard_spec.h"

namespace tessera::cuda {
namespace {

// Parameters of a Llama-family config, counted from its fields (not from CudaWeights' layout).
int64_t parameters(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t qkv = c.q_size() + 2 * c.kv_size();
  int64_t layer = H * qkv + int64_t{c.q_size()} * H + 3 * H * I + 2 * H;
  if (c.attention_bias) layer += qkv;
  if (c.qk_norm) layer += 2 * int64_t{c.head_dim};
  return c.num_hidden_layers * layer + V * H * (c.tie_word_embeddings ? 1 : 2) + H;
}

// At most 255 bytes of padding per tensor: 7-9 per layer plus embed, final norm and lm_head.
int64_t slack(const ModelConfig& c) { return 256 * (9 * int64_t{c.num_hidden_layers} + 3); }

TEST(CudaWeightsBytes, TwoBytesPerParameterInBf16AndFourInFp32) {
  for (const char* name : {"llama-3-8b", "llama-3-70b", "qwen3-32b"}) {
    SCOPED_TRACE(name);
    const ModelConfig c = ModelConfig::builtin_shape(name);
    const int64_t p = parameters(c);
    const auto bf16 = static_cast<int64_t>(CudaWeights::required_bytes(c, DType::kBF16));
    const auto f32 = static_cast<int64_t>(CudaWeights::required_bytes(c, DType::kF32));
    EXPECT_GE(bf16, 2 * p);
    EXPECT_LE(bf16, 2 * p + slack(c));
    EXPECT_GE(f32, 4 * p);
    EXPECT_LE(f32, 4 * p + slack(c));
  }
  // The figure the one-H200 refusal rests on: Llama-3-70B is over 131 GiB in bf16.
  EXPECT_GT(CudaWeights::required_bytes(ModelConfig::builtin_shape("llama-3-70b"), DType::kBF16),
            uint64_t{131} << 30);
}

TEST(CudaWeightsBytes, EachRankOfTwoHoldsHalfBesideTheReplicatedNorms) {
  const ModelConfig c = ModelConfig::builtin_shape("llama-3-8b");
  const auto whole = static_cast<int64_t>(CudaWeights::required_bytes(c, DType::kBF16));
  int64_t sum = 0;
  for (int32_t r = 0; r < 2; ++r) {
    const auto rank = static_cast<int64_t>(
        CudaWeights::required_bytes(c, DType::kBF16, parallel::make_shard_plan(c, parallel::ShardSpec{r, 2})));
    EXPECT_LT(rank, whole / 2 + whole / 1000) << "rank " << r;
    sum += rank;
  }
  // The norms (2 per layer + the final one) are on both ranks; everything else is split.
  const int64_t norms = 2 * (2 * int64_t{c.num_hidden_layers} + 1) * c.hidden_size;
  EXPECT_GE(sum, whole + norms - slack(c));
  EXPECT_LE(sum, whole + norms + 2 * slack(c));
}

}  // namespace
}  // namespace tessera::cuda
