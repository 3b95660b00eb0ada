// The prompt-logprobs kernel against a double-precision CPU log-softmax: the target token's logprob,
// the top k in (logit desc, token asc) order with exact ties present, k = 0 and k = 20, fresh random
// logits and poisoned outputs. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "kernels/cuda/prompt_logprobs.cuh"
#include "kernels/cuda/sampling.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

void check(int32_t rows, int32_t vocab, int32_t k) {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> d(0.0f, 4.0f);
  std::vector<float> logits(static_cast<size_t>(rows) * vocab);
  for (auto& v : logits) v = d(rng);
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  std::vector<int32_t> targets(rows);
  for (int32_t r = 0; r < rows; ++r) {
    float* x = logits.data() + static_cast<size_t>(r) * vocab;
    const int32_t top = static_cast<int32_t>(std::max_element(x, x + vocab) - x);
    for (int32_t c = 0; c < 3; ++c) x[tok(rng)] = x[top];  // exact ties with the maximum: lower id first
    targets[r] = r == 0 ? top : tok(rng);
  }
  DeviceBuffer<float> d_logits(logits);
  DeviceBuffer<int32_t> d_targets(targets);
  DeviceBuffer<float> chosen(rows);
  DeviceBuffer<int32_t> top_tok(static_cast<size_t>(rows) * kMaxTopLogprobs);
  DeviceBuffer<float> top_lp(static_cast<size_t>(rows) * kMaxTopLogprobs);
  chosen.poison();
  top_tok.poison();
  top_lp.poison();
  PromptLogprobArgs a;
  a.logits = d_logits.get();
  a.rows = rows;
  a.vocab = vocab;
  a.targets = d_targets.get();
  a.k = k;
  a.out_chosen = chosen.get();
  a.out_top_tokens = top_tok.get();
  a.out_top_logprobs = top_lp.get();
  prompt_logprobs(a, nullptr);
  const auto got_chosen = chosen.download();
  const auto got_tok = top_tok.download();
  const auto got_lp = top_lp.download();
  EXPECT_EQ(d_logits.download(), logits);  // the logits are left as they were
  for (int32_t r = 0; r < rows; ++r) {
    const float* x = logits.data() + static_cast<size_t>(r) * vocab;
    const double m = *std::max_element(x, x + vocab);
    double sum = 0;
    for (int32_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
    const double lse = m + std::log(sum);
    EXPECT_NEAR(got_chosen[r], x[targets[r]] - lse, 2e-5) << "row " << r;
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t p, int32_t q) { return x[p] > x[q] || (x[p] == x[q] && p < q); });
    for (int32_t j = 0; j < k; ++j) {
      const size_t o = static_cast<size_t>(r) * kMaxTopLogprobs + j;
      ASSERT_EQ(got_tok[o], order[j]) << "row " << r << " rank " << j;
      EXPECT_NEAR(got_lp[o], x[order[j]] - lse, 2e-5) << "row " << r << " rank " << j;
    }
  }
}

TEST(CudaPromptLogprobs, TopTwentyMatchesReferenceOrderWithTies) { check(9, 151936, kMaxTopLogprobs); }
TEST(CudaPromptLogprobs, SmallVocabularyAndFewAlternatives) { check(33, 3000, 5); }
TEST(CudaPromptLogprobs, ZeroAlternativesStillGivesTheTargetLogprob) { check(4, 1000, 0); }

}  // namespace
}  // namespace tessera::cuda::test
