// Sampler: each filter and penalty does what SamplingParams documents, the sampled distribution
// matches softmax(logits / T), and draws depend only on (seed, index).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/sampler.h"

namespace tessera {
namespace {

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, const SamplingParams& p, int n) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) f[s.sample(logits.data(), p, {}, {}, i).token] += 1.0 / n;
  return f;
}

TEST(Sampler, GreedyPicksArgmaxWithLogprobs) {
  Sampler s(4);
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.5f};
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = 2;
  const SampledToken t = s.sample(l.data(), p, {}, {}, 0);
  EXPECT_EQ(t.token, 1);
  double z = 0;
  for (float x : l) z += std::exp(x);
  EXPECT_NEAR(t.logprob, 2.0 - std::log(z), 1e-5);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].token, 1);
  EXPECT_EQ(t.top[1].token, 3);
}

TEST(Sampler, MatchesSoftmaxDistribution) {
  Sampler s(3);
  const auto f = frequencies(s, logits_of({0.5, 0.3, 0.2}), SamplingParams{}, 40000);
  EXPECT_NEAR(f[0], 0.5, 0.012);
  EXPECT_NEAR(f[1], 0.3, 0.012);
  EXPECT_NEAR(f[2], 0.2, 0.012);
}

TEST(Sampler, TemperatureSharpens) {
  Sampler s(3);
  SamplingParams p;
  p.temperature = 0.5f;  // probabilities ∝ p^2: .25 .09 .04 -> .6579 .2368 .1053
  const auto f = frequencies(s, logits_of({0.5, 0.3, 0.2}), p, 40000);
  EXPECT_NEAR(f[0], 0.6579, 0.012);
  EXPECT_NEAR(f[2], 0.1053, 0.012);
}

TEST(Sampler, TopKTopPMinPTruncate) {
  Sampler s(4);
  const auto l = logits_of({0.4, 0.3, 0.2, 0.1});
  SamplingParams p;
  p.top_k = 2;
  auto f = frequencies(s, l, p, 20000);
  EXPECT_EQ(f[2] + f[3], 0.0);
  EXPECT_NEAR(f[0], 4.0 / 7.0, 0.015);
  p = SamplingParams{};
  p.top_p = 0.65f;  // 0.4 + 0.3 reaches 0.65
  f = frequencies(s, l, p, 20000);
  EXPECT_EQ(f[2] + f[3], 0.0);
  EXPECT_GT(f[1], 0.3);
  p.top_p = 0.35f;  // the most likely token alone (0.4) reaches it
  f = frequencies(s, l, p, 2000);
  EXPECT_EQ(f[1] + f[2] + f[3], 0.0);
  p = SamplingParams{};
  p.min_p = 0.5f;  // keep p >= 0.2
  f = frequencies(s, l, p, 20000);
  EXPECT_EQ(f[3], 0.0);
  EXPECT_GT(f[2], 0.1);
}

TEST(Sampler, PenaltiesAndBias) {
  Sampler s(4);
  const std::vector<float> l = {2.0f, 1.9f, -1.0f, 0.0f};
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = 0;
  const std::vector<TokenId> prompt = {0};
  const std::vector<TokenId> outputs = {1, 1};
  p.repetition_penalty = 2.0f;  // 2.0 -> 1.0 and 1.9 -> 0.95: token 3 (0.0) stays below
  EXPECT_EQ(s.sample(l.data(), p, prompt, {}, 0).token, 1);
  EXPECT_EQ(s.sample(l.data(), p, prompt, outputs, 0).token, 0);  // both penalised: 1.0 > 0.95
  p = SamplingParams{};
  p.temperature = 0.0f;
  p.frequency_penalty = 0.1f;  // token 0 appeared twice: 2.0 - 0.2 = 1.8 < 1.9
  EXPECT_EQ(s.sample(l.data(), p, {}, std::vector<TokenId>{0, 0}, 0).token, 1);
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.05f;  // once only: 1.95 > 1.9
  EXPECT_EQ(s.sample(l.data(), p, {}, std::vector<TokenId>{0, 0}, 0).token, 0);
  p.presence_penalty = 0.0f;
  p.logit_bias = {{2, 10.0f}};
  EXPECT_EQ(s.sample(l.data(), p, {}, {}, 0).token, 2);
  // Scratch is clean: the same call without penalties gives the plain argmax again.
  SamplingParams plain;
  plain.temperature = 0.0f;
  EXPECT_EQ(s.sample(l.data(), plain, {}, {}, 0).token, 0);
}

TEST(Sampler, DrawsDependOnlyOnSeedAndIndex) {
  Sampler a(50), b(50);
  std::vector<float> l(50);
  for (int i = 0; i < 50; ++i) l[i] = 0.1f * static_cast<float>(i % 7);
  SamplingParams p;
  p.seed = 1234;
  std::vector<TokenId> first, second;
  for (int i = 0; i < 100; ++i) first.push_back(a.sample(l.data(), p, {}, {}, i).token);
  for (int i = 99; i >= 0; --i) second.insert(second.begin(), b.sample(l.data(), p, {}, {}, i).token);
  EXPECT_EQ(first, second);
  p.seed = 1235;
  int same = 0;
  for (int i = 0; i < 100; ++i) same += a.sample(l.data(), p, {}, {}, i).token == first[i];
  EXPECT_LT(same, 30);
}

TEST(Sampler, PromptLogprobOfRawLogits) {
  Sampler s(3);
  const auto l = logits_of({0.5, 0.3, 0.2});
  std::vector<TokenLogprob> top;
  const TokenLogprob t = s.logprob_of(l.data(), 2, 3, top);
  EXPECT_NEAR(t.logprob, std::log(0.2), 1e-6);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 0);
  EXPECT_NEAR(top[1].logprob, std::log(0.3), 1e-6);
}

}  // namespace
}  // namespace tessera
