// GPU sampling against CPU expectations: greedy argmax and logprobs, penalties and bias, top-k /
// top-p / min-p truncation, seeded determinism, and the sampled distribution. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/cuda/sampling.cuh"
#include "tests/kernels/cuda/device_buffer.h"
#include "tests/kernels/cuda/sampling_harness.h"

namespace tessera::cuda::test {
namespace {

double log_softmax_at(const float* x, int32_t vocab, int32_t i, double inv_t = 1.0) {
  double mx = -1e300, z = 0;
  for (int32_t j = 0; j < vocab; ++j) mx = std::max(mx, x[j] * inv_t);
  for (int32_t j = 0; j < vocab; ++j) z += std::exp(x[j] * inv_t - mx);
  return x[i] * inv_t - mx - std::log(z);
}

TEST(CudaSampling, GreedyPicksArgmaxWithLogprobAndTopAlternatives) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, rows = 3;
  const auto x = random_logits(rows, vocab, rng, 3.0f);
  std::vector<SampleRow> params(rows);
  params[1].num_logprobs = 5;
  params[2].num_logprobs = kMaxTopLogprobs;
  const auto r = run(x, vocab, params, {});
  for (int32_t i = 0; i < rows; ++i) {
    const float* row = x.data() + static_cast<size_t>(i) * vocab;
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + kMaxTopLogprobs, order.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    EXPECT_EQ(r.token[i], order[0]);
    EXPECT_NEAR(r.logprob[i], log_softmax_at(row, vocab, order[0]), 1e-4);
    for (int32_t j = 0; j < params[i].num_logprobs; ++j) {
      EXPECT_EQ(r.top_tokens[i * kMaxTopLogprobs + j], order[j]) << "row " << i << " rank " << j;
      EXPECT_NEAR(r.top_logprobs[i * kMaxTopLogprobs + j], log_softmax_at(row, vocab, order[j]), 1e-4);
    }
  }
}

TEST(CudaSampling, BiasAndPenaltiesChangeTheArgmax) {
  const int32_t vocab = 1000;
  std::vector<float> x(4 * vocab, 0.0f);
  for (int32_t r = 0; r < 4; ++r) {
    x[r * vocab + 10] = 5.0f;  // the winner before penalties
    x[r * vocab + 20] = 4.0f;  // the runner-up
  }
  std::vector<SampleRow> p(4);
  std::vector<SampleEntry> e;
  p[0].repetition_penalty = 1.5f;  // 5/1.5 < 4
  e.push_back({10, 0, 1, 0.0f});
  p[0].entries_end = 1;
  p[1].presence_penalty = 1.5f;  // 5 - 1.5 < 4
  e.push_back({10, 1, 0, 0.0f});
  p[1].entries_begin = 1, p[1].entries_end = 2;
  p[2].frequency_penalty = 0.4f;  // 5 - 3*0.4 < 4
  e.push_back({10, 3, 0, 0.0f});
  p[2].entries_begin = 2, p[2].entries_end = 3;
  e.push_back({700, 0, 0, 9.0f});  // logit_bias lifts token 700 to 9
  p[3].entries_begin = 3, p[3].entries_end = 4;
  const auto r = run(x, vocab, p, e);
  EXPECT_EQ(r.token[0], 20);
  EXPECT_EQ(r.token[1], 20);
  EXPECT_EQ(r.token[2], 20);
  EXPECT_EQ(r.token[3], 700);
}

// The logits keep their bias and penalties in place but never the temperature (applied as they are
// read, not written back); the sampled logprob is still that of the scaled value.
TEST(CudaSampling, LogitsKeepBiasAndPenaltiesButNotTheTemperature) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 5003, rows = 3;
  const std::vector<float> x = random_logits(rows, vocab, rng, 2.0f);
  std::vector<SampleRow> p(rows);
  p[0].temperature = 0.5f;
  p[0].repetition_penalty = 1.3f;
  p[0].entries_end = 2;
  p[1].temperature = 0.0f;
  p[2].temperature = 2.0f;
  p[2].top_p = 0.9f;
  p[2].num_logprobs = 3;
  p[2].entries_begin = 2, p[2].entries_end = 3;
  for (int32_t r = 0; r < rows; ++r) p[r].seed = 5 + r, p[r].step = r;
  const std::vector<SampleEntry> e = {{7, 0, 0, 2.0f}, {4999, 1, 1, 0.0f}, {3, 0, 0, -1.5f}};
  SampleBuffers b(rows, vocab, e.size());
  b.logits.upload(x);
  b.params.upload(p);
  b.entries.upload(e);
  b.poison_outputs();
  DeviceBuffer<uint8_t> ws(sample_workspace_bytes(rows));
  CUDA_CHECK(cudaMemset(ws.get(), 0, sample_workspace_bytes(rows)));
  sample(b.args(ws.get(), rows), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> want = x;
  want[7] += 2.0f;
  const float v = want[4999];
  want[4999] = v > 0.0f ? v / 1.3f : v * 1.3f;
  want[2 * vocab + 3] -= 1.5f;
  EXPECT_EQ(b.logits.download(), want);
  const Result r = b.outputs();
  for (int32_t row : {0, 2}) {
    const float* xr = want.data() + static_cast<size_t>(row) * vocab;
    ASSERT_GE(r.token[row], 0);
    ASSERT_LT(r.token[row], vocab);
    EXPECT_NEAR(r.logprob[row], log_softmax_at(xr, vocab, r.token[row], 1.0 / p[row].temperature), 1e-4)
        << "row " << row;
  }
  const int32_t top = r.top_tokens[2 * kMaxTopLogprobs];
  ASSERT_GE(top, 0);
  ASSERT_LT(top, vocab);
  EXPECT_NEAR(r.top_logprobs[2 * kMaxTopLogprobs], log_softmax_at(want.data() + 2 * vocab, vocab, top, 0.5), 1e-4);
}

TEST(CudaSampling, TruncationKeepsOnlyTheAllowedTokens) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 5000, rows = 64;
  std::vector<float> one = random_logits(1, vocab, rng, 2.0f);
  std::vector<float> x;
  for (int32_t r = 0; r < rows; ++r) x.insert(x.end(), one.begin(), one.end());
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return one[a] > one[b]; });
  // top-k 3 (rows 0-15), top-p 0.2 (16-31), min-p 0.5 (32-47), top-k 1 at temperature 5 (48-63).
  std::vector<SampleRow> p(rows);
  double mx = one[order[0]], z = 0;
  for (float v : one) z += std::exp(v - mx);
  double cum = 0;
  int32_t nucleus = 0;
  while (cum < 0.2) cum += std::exp(one[order[nucleus++]] - mx) / z;
  for (int32_t r = 0; r < rows; ++r) {
    p[r].temperature = r < 48 ? 1.0f : 5.0f;
    p[r].seed = 77 + r;
    p[r].step = r;
    if (r < 16) p[r].top_k = 3;
    else if (r < 32) p[r].top_p = 0.2f;
    else if (r < 48) p[r].min_p = 0.5f;
    else p[r].top_k = 1;
  }
  const auto res = run(x, vocab, p, {});
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t t = res.token[r];
    const auto rank = std::find(order.begin(), order.end(), t) - order.begin();
    if (r < 16) EXPECT_LT(rank, 3) << r;
    else if (r < 32) EXPECT_LT(rank, nucleus) << r;
    else if (r < 48) EXPECT_GE(one[t] - mx, std::log(0.5) - 1e-5) << r;
    else EXPECT_EQ(rank, 0) << r;
  }
}

TEST(CudaSampling, SameSeedAndStepGiveTheSameTokenAndTheDistributionMatchesSoftmax) {
  const int32_t vocab = 8;
  const std::vector<float> one = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f, 1.5f, -2.0f, 0.2f};
  const int32_t rows = 8192;
  std::vector<float> x;
  for (int32_t r = 0; r < rows; ++r) x.insert(x.end(), one.begin(), one.end());
  std::vector<SampleRow> p(rows);
  for (int32_t r = 0; r < rows; ++r) {
    p[r].temperature = 1.0f;
    p[r].seed = 1234;
    p[r].step = r;  // a different step per row: independent draws
  }
  const auto a = run(x, vocab, p, {});
  const auto b = run(x, vocab, p, {});
  EXPECT_EQ(a.token, b.token);
  std::vector<double> count(vocab, 0);
  for (int32_t t : a.token) count[t] += 1;
  double z = 0;
  for (float v : one) z += std::exp(v);
  for (int32_t i = 0; i < vocab; ++i) {
    const double expect = std::exp(one[i]) / z * rows;
    EXPECT_NEAR(count[i], expect, 5 * std::sqrt(expect) + 5) << "token " << i;
  }
  p[0].seed = 99;  // another seed, another stream
  int32_t differ = 0;
  for (int32_t r = 0; r < rows; ++r) p[r].seed = 99;
  const auto c = run(x, vocab, p, {});
  for (int32_t r = 0; r < rows; ++r) differ += c.token[r] != a.token[r];
  EXPECT_GT(differ, rows / 4);
}

// The exact kept sets on a Llama-3-sized vocabulary: top-k keeps the k largest values (ties at the
// k-th value kept), top-p the smallest prefix of the sorted values whose mass reaches p (after top-k).
// Many draws per row: every sampled token lies in its set, and most of a small set is seen.
TEST(CudaSampling, TopKAndTopPOnALargeVocabularyKeepExactlyTheReferenceSets) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, draws = 96;
  std::vector<float> one = random_logits(1, vocab, rng, 3.0f);
  // A tie at the k-th value: three tokens from further down take the 40th largest value.
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return one[a] > one[b]; });
  const float tie = one[order[39]];
  for (int32_t j : {1000, 1001, 1002}) one[order[j]] = tie;
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return one[a] > one[b]; });
  auto top_k_set = [&](int32_t k) {
    const float kth = one[order[k - 1]];
    std::vector<char> keep(vocab, 0);
    for (int32_t i = 0; i < vocab; ++i) keep[i] = one[i] >= kth;
    return keep;
  };
  auto top_p_set = [&](const std::vector<char>& survivors, double p) {
    const double mx = one[order[0]];
    double total = 0;
    for (int32_t i = 0; i < vocab; ++i)
      if (survivors[i]) total += std::exp(one[i] - mx);
    std::vector<char> keep(vocab, 0);
    double cum = 0;
    for (int32_t j = 0; j < vocab && cum < p * total; ++j) {
      const int32_t i = order[j];
      if (!survivors[i]) continue;
      cum += std::exp(one[i] - mx);
      for (int32_t e = j; e < vocab && one[order[e]] == one[i]; ++e) keep[order[e]] = 1;  // ties
    }
    return keep;
  };
  struct Case {
    int32_t top_k;
    float top_p;
  };
  const std::vector<Case> cases = {{40, 1.0f}, {1, 1.0f}, {0, 0.5f}, {0, 0.95f}, {200, 0.7f}};
  for (const Case& c : cases) {
    const std::vector<char> all(vocab, 1);
    const std::vector<char> after_k = c.top_k > 0 ? top_k_set(c.top_k) : all;
    const std::vector<char> keep = c.top_p < 1.0f ? top_p_set(after_k, c.top_p) : after_k;
    const int64_t kept = std::count(keep.begin(), keep.end(), 1);
    std::vector<float> x;
    std::vector<SampleRow> p(draws);
    for (int32_t r = 0; r < draws; ++r) {
      x.insert(x.end(), one.begin(), one.end());
      p[r].temperature = 1.0f;
      p[r].top_k = c.top_k;
      p[r].top_p = c.top_p;
      p[r].seed = 1000 + r;
      p[r].step = r;
    }
    const auto res = run(x, vocab, p, {});
    std::vector<char> seen(vocab, 0);
    for (int32_t r = 0; r < draws; ++r) {
      const int32_t t = res.token[r];
      ASSERT_TRUE(t >= 0 && t < vocab) << "top_k " << c.top_k << " top_p " << c.top_p << " row " << r << ": " << t;
      EXPECT_TRUE(keep[t]) << "top_k " << c.top_k << " top_p " << c.top_p << ": token " << t << " (value " << one[t]
                           << ") is outside the " << kept << " kept tokens";
      seen[t] = 1;
    }
    const int64_t distinct = std::count(seen.begin(), seen.end(), 1);
    if (kept == 1) {
      EXPECT_EQ(distinct, 1);
    } else {
      EXPECT_GT(distinct, 1) << "top_k " << c.top_k << " top_p " << c.top_p << ": " << kept << " kept";
    }
  }
  // The reference itself: the tie at the 40th value makes top-k 40 keep 43 tokens.
  const std::vector<char> k40 = top_k_set(40);
  EXPECT_EQ(std::count(k40.begin(), k40.end(), 1), 43);
}

// Two launches over the same rows with top-p give the same tokens (the mass sums are integers).
TEST(CudaSampling, TopPIsBitwiseDeterministic) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 151936, rows = 32;
  const std::vector<float> x = random_logits(rows, vocab, rng, 1.5f);
  std::vector<SampleRow> p(rows);
  for (int32_t r = 0; r < rows; ++r) {
    p[r].temperature = 0.8f;
    p[r].top_p = 0.9f;
    p[r].top_k = r % 2 ? 1000 : 0;
    p[r].seed = 42;
    p[r].step = r;
  }
  const auto a = run(x, vocab, p, {});
  const auto b = run(x, vocab, p, {});
  EXPECT_EQ(a.token, b.token);
  EXPECT_EQ(a.logprob, b.logprob);
}

// The per-row "last block" counters return to zero after every launch, so one workspace serves
// launch after launch (as a replayed CUDA graph does), with any row count up to its capacity (as the
// runner's eager steps do): launches of 6, 2, 9, 16 and 6 rows on one workspace sized for 16, greedy
// and sampled rows mixed, equal the same launches each on a fresh workspace. Vocabulary 1001 takes
// the unvectorised path; equal maxima in two slices go to the lower token id.
TEST(CudaSampling, OneWorkspaceServesLaunchesOfAnyRowCountAndTiesGoToTheLowerId) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 1001, capacity = 16;
  DeviceBuffer<uint8_t> ws(sample_workspace_bytes(capacity));
  CUDA_CHECK(cudaMemset(ws.get(), 0, sample_workspace_bytes(capacity)));
  int launch = 0;
  for (int32_t rows : {6, 2, 9, 16, 6}) {
    std::vector<SampleRow> p(rows);
    for (int32_t r = 0; r < rows; ++r) {
      p[r].temperature = r % 2 ? 0.9f : 0.0f;
      p[r].top_p = r % 3 == 1 ? 0.8f : 1.0f;
      p[r].num_logprobs = r == 0 ? 3 : 0;
      p[r].seed = 5 + r;
      p[r].step = r;
    }
    std::vector<float> x = random_logits(rows, vocab, rng, 2.0f);
    x[0 * vocab + 900] = 50.0f;  // row 0: equal maxima at 900 and 37 (other slices)
    x[0 * vocab + 37] = 50.0f;
    const Result fresh = run(x, vocab, p, {});
    const Result shared = run(x, vocab, p, {}, {.workspace = ws.get(), .workspace_rows = capacity});
    EXPECT_EQ(shared.token, fresh.token) << "launch " << launch << " of " << rows << " rows";
    EXPECT_EQ(shared.logprob, fresh.logprob) << "launch " << launch;
    for (int32_t j = 0; j < 3; ++j) EXPECT_EQ(shared.top_tokens[j], fresh.top_tokens[j]) << "launch " << launch;
    EXPECT_EQ(fresh.token[0], 37);
    EXPECT_EQ(fresh.top_tokens[0], 37);
    EXPECT_EQ(fresh.top_tokens[1], 900);
    ++launch;
  }
}

// More tokens tie at the top than the candidate list holds: the top alternatives are still the
// lowest token ids among the tied, in order.
TEST(CudaSampling, TopLogprobsWithManyTiesTakeTheLowestIds) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256;
  std::vector<float> x = random_logits(1, vocab, rng, 1.0f);
  std::vector<int32_t> tied;
  for (int32_t i = 0; i < 100; ++i) tied.push_back(500 + 1201 * i);
  for (int32_t t : tied) x[t] = 30.0f;
  std::vector<SampleRow> p(1);
  p[0].num_logprobs = 5;
  const auto r = run(x, vocab, p, {});
  EXPECT_EQ(r.token[0], tied[0]);
  double rest = 0;  // the untied tokens' share of the normaliser, relative to exp(30)
  for (int32_t i = 0; i < vocab; ++i)
    if (x[i] != 30.0f) rest += std::exp(static_cast<double>(x[i]) - 30.0);
  const double lp = -std::log(100.0 + rest);
  for (int32_t j = 0; j < 5; ++j) {
    EXPECT_EQ(r.top_tokens[j], tied[j]) << "rank " << j;
    EXPECT_NEAR(r.top_logprobs[j], lp, 1e-4) << "rank " << j;
  }
}

// With every row greedy and no logprobs the host may launch the statistics kernel alone: the same
// tokens and logprobs as the full launch, for 1, 9 and 40 rows (32, 16 and 8 slices per row), with
// bias and penalties applied.
TEST(CudaSampling, GreedyOnlyLaunchEqualsTheFullLaunch) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256;
  for (int32_t rows : {1, 9, 40}) {
    const std::vector<float> x = random_logits(rows, vocab, rng, 2.0f);
    std::vector<SampleRow> p(rows);
    std::vector<SampleEntry> e;
    p[0].repetition_penalty = 1.3f;  // entries in more than one slice
    e.push_back({7, 1, 1, 0.0f});
    e.push_back({vocab - 3, 0, 0, 40.0f});
    p[0].entries_begin = 0, p[0].entries_end = 2;
    const Result full = run(x, vocab, p, e);
    const Result only = run(x, vocab, p, e, {.greedy_only = true});
    EXPECT_EQ(only.token, full.token) << rows << " rows";
    EXPECT_EQ(only.logprob, full.logprob) << rows << " rows";
    EXPECT_EQ(full.token[0], vocab - 3);  // the bias lifts it above every logit
  }
}

// With no row wanting a top-k/top-p threshold or logprobs (temperature, min-p, penalties, greedy rows
// beside them) the host may skip the histogram pass: the same tokens and logprobs as the full launch,
// for 1, 9 and 40 rows, and the host's promise agrees with the rows.
TEST(CudaSampling, NoSelectionLaunchEqualsTheFullLaunch) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256;
  for (int32_t rows : {1, 9, 40}) {
    const std::vector<float> x = random_logits(rows, vocab, rng, 2.0f);
    std::vector<SampleRow> p(rows);
    std::vector<SampleEntry> e;
    for (int32_t r = 0; r < rows; ++r) {
      p[r].temperature = r % 4 == 3 ? 0.0f : 0.5f + 0.25f * static_cast<float>(r % 3);
      p[r].min_p = r % 2 == 0 ? 0.05f : 0.0f;
      p[r].top_k = r % 5 == 1 ? vocab : 0;  // as large as the vocabulary: no threshold
      p[r].seed = rng();
      p[r].step = r;
    }
    p[0].repetition_penalty = 1.3f;
    e.push_back({7, 1, 1, 0.0f});
    e.push_back({vocab - 3, 0, 0, 4.0f});
    p[0].entries_begin = 0, p[0].entries_end = 2;
    for (const SampleRow& r : p) ASSERT_FALSE(sample_row_wants_selection(r, vocab));
    const Result full = run(x, vocab, p, e);
    const Result skipped = run(x, vocab, p, e, {.no_selection = true});
    EXPECT_EQ(skipped.token, full.token) << rows << " rows";
    EXPECT_EQ(skipped.logprob, full.logprob) << rows << " rows";
  }
  SampleRow top_p;
  top_p.temperature = 1.0f;
  top_p.top_p = 0.9f;
  EXPECT_TRUE(sample_row_wants_selection(top_p, vocab));
  SampleRow logprobs;
  logprobs.num_logprobs = 1;
  EXPECT_TRUE(sample_row_wants_selection(logprobs, vocab));
}

}  // namespace
}  // namespace tessera::cuda::test
