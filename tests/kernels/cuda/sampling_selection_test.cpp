// The sampler's sliced top-k / top-p / logprob selection (histogram pass, gather and exact finish
// in the draw pass's last block) against CPU references: every draw equals the Gumbel-max over the exact
// reference kept set (ties at the k-th value, mass in one token, min-p, k past the finite logits,
// -inf logits, vocabularies that are no multiple of the slice), the top logprobs equal a double
// log-softmax's, the results are bitwise those of the one-block search the first version ran (the
// reference_selection path, also the fallback for rows whose candidates do not fit), and one
// workspace serves rows 1 / 3 / 64 and CUDA graph replays. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/sampling.cuh"
#include "tests/kernels/cuda/device_buffer.h"
#include "tests/kernels/cuda/sampling_harness.h"

namespace tessera::cuda::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Every sampled row's token is the reference draw over its reference kept set; every row's top
// logprobs are the reference's. Returns how many rows' kept sets were checked (margins too small for
// a double reference are left out and not counted).
int32_t expect_matches_reference(const std::vector<float>& x, int32_t vocab, const std::vector<SampleRow>& p,
                                 const Result& r, const std::string& what) {
  int32_t checked = 0;
  for (int32_t row = 0; row < static_cast<int32_t>(p.size()); ++row) {
    const float* xr = x.data() + static_cast<size_t>(row) * vocab;
    const bool greedy = p[row].temperature <= 0.0f;
    const std::vector<float> v = scaled_row(xr, vocab, greedy ? 1.0f : p[row].temperature);
    const int32_t k = std::min(p[row].num_logprobs, kMaxTopLogprobs);
    if (k > 0) {
      const auto top = reference_top(v, k);
      for (int32_t j = 0; j < k; ++j) {
        EXPECT_EQ(r.top_tokens[row * kMaxTopLogprobs + j], top[j].first) << what << " row " << row << " rank " << j;
        const float got = r.top_logprobs[row * kMaxTopLogprobs + j];
        if (std::isinf(top[j].second)) {
          EXPECT_EQ(got, -kInf) << what << " row " << row << " rank " << j;
        } else {
          EXPECT_NEAR(got, top[j].second, 1e-4) << what << " row " << row << " rank " << j;
        }
      }
    }
    if (greedy) continue;
    double margin = 0;
    const std::vector<char> keep = kept_set(v, p[row], &margin);
    const int32_t t = r.token[row];
    if (t < 0 || t >= vocab) {
      ADD_FAILURE() << what << " row " << row << ": token " << t;
      continue;
    }
    if (margin < 1.0) continue;
    ++checked;
    EXPECT_TRUE(keep[t]) << what << " row " << row << ": token " << t << " (value " << v[t] << ") is not kept";
    int32_t runner_up = -1;
    const int32_t want = reference_draw(v, keep, p[row], &runner_up);
    if (t != runner_up) {
      EXPECT_EQ(t, want) << what << " row " << row;
    }
  }
  return checked;
}

// Sampled rows sharing `one` row of logits, one seed per row, every row its own step.
std::vector<SampleRow> draws(int32_t rows, SampleRow base) {
  std::vector<SampleRow> p(rows, base);
  for (int32_t r = 0; r < rows; ++r) p[r].seed = 1000 + r, p[r].step = 3 * r + 1;
  return p;
}

std::vector<float> repeat(const std::vector<float>& one, int32_t rows) {
  std::vector<float> x;
  for (int32_t r = 0; r < rows; ++r) x.insert(x.end(), one.begin(), one.end());
  return x;
}

// Bitwise: the sliced selection's tokens, logprobs and alternatives against the one-block search's.
void expect_bitwise_equal(const Result& a, const Result& b, int32_t rows, const std::vector<SampleRow>& p,
                          const std::string& what) {
  EXPECT_EQ(a.token, b.token) << what;
  EXPECT_EQ(0, std::memcmp(a.logprob.data(), b.logprob.data(), sizeof(float) * rows)) << what;
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t k = std::min(p[r].num_logprobs, kMaxTopLogprobs);
    for (int32_t j = 0; j < k; ++j) {
      const size_t at = static_cast<size_t>(r) * kMaxTopLogprobs + j;
      EXPECT_EQ(a.top_tokens[at], b.top_tokens[at]) << what << " row " << r << " rank " << j;
      EXPECT_EQ(0, std::memcmp(&a.top_logprobs[at], &b.top_logprobs[at], sizeof(float))) << what << " row " << r;
    }
  }
}

// The 50th largest value is shared by four tokens (ranks 48-51) near the top of a flat head, so the
// boundary tokens are drawn often: top-k 50 must keep 52 and never the 53rd..60th.
TEST(CudaSamplingSelection, TopKKeepsEveryTieAtTheThreshold) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, rows = 256;
  std::vector<float> one = random_logits(1, vocab, rng, 1.0f);
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  std::vector<int32_t> head;
  while (head.size() < 60) {
    const int32_t t = tok(rng);
    if (std::find(head.begin(), head.end(), t) == head.end()) head.push_back(t);
  }
  for (int32_t j = 0; j < 60; ++j) one[head[j]] = 9.0f - 0.02f * static_cast<float>(j / 4);  // groups of 4 ties
  SampleRow base;
  base.temperature = 1.0f;
  base.top_k = 50;
  const auto p = draws(rows, base);
  const auto x = repeat(one, rows);
  const Result r = run(x, vocab, p, {});
  EXPECT_EQ(expect_matches_reference(x, vocab, p, r, "top-k 50 with ties"), rows);
  std::vector<char> seen(vocab, 0);
  for (int32_t t : r.token) seen[t] = 1;
  int32_t boundary = 0;
  for (int32_t j = 48; j < 52; ++j) boundary += seen[head[j]];
  EXPECT_GT(boundary, 0) << "no tied boundary token was drawn in " << rows << " rows";
  for (int32_t j = 52; j < 60; ++j) EXPECT_FALSE(seen[head[j]]) << "rank " << j << " was drawn";
  expect_bitwise_equal(r, run(x, vocab, p, {}, {.reference_selection = true}), rows, p, "top-k ties");
}

// One token holds nearly all the mass: top-p 0.9 keeps it alone; with a second heavy token one nat
// below it (27% of the pair's mass), top-p 0.99 keeps both and top-k 2 + top-p 0.5 the first alone.
TEST(CudaSamplingSelection, TopPWithTheMassInOneToken) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, rows = 64;
  std::vector<float> one = random_logits(1, vocab, rng, 1.0f);
  one[77777] = 40.0f;
  SampleRow base;
  base.temperature = 1.0f;
  base.top_p = 0.9f;
  auto p = draws(rows, base);
  auto x = repeat(one, rows);
  Result r = run(x, vocab, p, {});
  for (int32_t t : r.token) EXPECT_EQ(t, 77777);
  expect_matches_reference(x, vocab, p, r, "one heavy token");
  one[5] = 39.0f;
  x = repeat(one, rows);
  base.top_p = 0.99f;
  p = draws(rows, base);
  for (int32_t row = rows / 2; row < rows; ++row) p[row].top_k = 2, p[row].top_p = 0.5f;
  r = run(x, vocab, p, {});
  int32_t both[2] = {0, 0};
  for (int32_t row = 0; row < rows; ++row) {
    const int32_t t = r.token[row];
    if (row < rows / 2) {
      ASSERT_TRUE(t == 5 || t == 77777) << row << ": " << t;
      ++both[t == 5 ? 0 : 1];
    } else {
      EXPECT_EQ(t, 77777) << row;
    }
  }
  EXPECT_GT(both[0], 0);
  EXPECT_GT(both[1], 0);
  expect_matches_reference(x, vocab, p, r, "two heavy tokens");
  expect_bitwise_equal(r, run(x, vocab, p, {}, {.reference_selection = true}), rows, p, "heavy tokens");
}

// Many rows of mixed settings on a Llama-3 and a Qwen vocabulary, two logit scales (a peaked row
// whose top-p cut lies in the tail, a flat one whose cut lies in the bulk): every draw is the
// reference's, and every result is bitwise the one-block search's.
TEST(CudaSamplingSelection, MixedSettingsMatchTheReferenceAndTheOneBlockSearchBitwise) {
  std::mt19937 rng(std::random_device{}());
  for (const auto& [vocab, scale] : std::vector<std::pair<int32_t, float>>{{128256, 3.0f}, {151936, 1.0f}}) {
    const int32_t rows = 40;
    const std::vector<float> x = random_logits(rows, vocab, rng, scale);
    std::vector<SampleRow> p(rows);
    const int32_t top_ks[] = {0, 1, 5, 50, 1000, 4000};
    const float top_ps[] = {1.0f, 0.5f, 0.9f, 0.95f};
    for (int32_t r = 0; r < rows; ++r) {
      p[r].temperature = r % 5 == 4 ? 0.0f : 0.6f + 0.1f * static_cast<float>(r % 7);
      p[r].top_k = top_ks[r % 6];
      p[r].top_p = top_ps[(r / 6) % 4];
      p[r].min_p = r % 9 == 3 ? 0.05f : 0.0f;
      p[r].num_logprobs = r % 3 == 0 ? 5 : r % 3 == 1 ? 0 : kMaxTopLogprobs;
      p[r].seed = 17 + r;
      p[r].step = 5 * r;
    }
    const Result sliced = run(x, vocab, p, {});
    const std::string what = "vocab " + std::to_string(vocab);
    EXPECT_GT(expect_matches_reference(x, vocab, p, sliced, what), rows / 2);
    expect_bitwise_equal(sliced, run(x, vocab, p, {}, {.reference_selection = true}), rows, p, what);
  }
}

// 64 rows (two histogram blocks of 64,128 tokens each per row) whose first 64,000 tokens tie at the
// maximum: one block adds 64,000 weights of 2^32 into one bin, the most its two 32-bit mass sums
// (high and low 16 bits of each weight) hold. The rest is a spread 0.1-4 below, where the top-p
// cut falls (few candidates: the sliced plan, not the fallback), so the plan's total mass must be
// exact: every draw is the reference's and bitwise the one-block search's (64-bit sums).
TEST(CudaSamplingSelection, TopPMassOfASliceTiedAtTheMaximumIsExact) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, rows = 64, ties = 64000;
  std::normal_distribution<float> d(3.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows) * vocab);
  for (int32_t r = 0; r < rows; ++r)
    for (int32_t i = 0; i < vocab; ++i)
      x[static_cast<size_t>(r) * vocab + i] = i < ties ? 5.0f : std::clamp(d(rng), 1.0f, 4.9f);
  const float top_ps[] = {0.95f, 0.97f, 0.9f, 0.99f};
  std::vector<SampleRow> p(rows);
  for (int32_t r = 0; r < rows; ++r) {
    p[r].temperature = 1.0f;
    p[r].top_p = top_ps[r % 4];
    p[r].seed = 90 + r;
    p[r].step = r;
  }
  const Result sliced = run(x, vocab, p, {});
  // Each token near the cut carries ~1e-6 of the mass, so a double reference decides only some rows.
  EXPECT_GT(expect_matches_reference(x, vocab, p, sliced, "ties at the maximum"), rows / 8);
  expect_bitwise_equal(sliced, run(x, vocab, p, {}, {.reference_selection = true}), rows, p, "ties at the maximum");
}

// min-p alone and with top-p, at temperature 0.7.
TEST(CudaSamplingSelection, MinPKeepsTokensWithinItsRatioOfTheTop) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 32000, rows = 128;
  const std::vector<float> one = random_logits(1, vocab, rng, 2.5f);
  SampleRow base;
  base.temperature = 0.7f;
  base.min_p = 0.1f;
  auto p = draws(rows, base);
  for (int32_t r = 0; r < rows; r += 2) p[r].top_p = 0.8f;
  const auto x = repeat(one, rows);
  const Result r = run(x, vocab, p, {});
  EXPECT_GT(expect_matches_reference(x, vocab, p, r, "min-p"), rows / 2);
}

// Only 30 finite logits (the rest -inf): top-k 100 keeps all 30 (the 100th largest is -inf), with
// top-p too; 20 logprobs list the 30's top 20, and with 10 finite the -inf alternatives follow by
// token id.
TEST(CudaSamplingSelection, TopKBeyondTheFiniteLogitsKeepsThemAll) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 5000, rows = 96;
  std::vector<float> one(vocab, -kInf);
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  std::normal_distribution<float> d(0.0f, 0.5f);
  std::vector<int32_t> finite;
  while (finite.size() < 30) {
    const int32_t t = tok(rng);
    if (one[t] == -kInf) one[t] = d(rng), finite.push_back(t);
  }
  SampleRow base;
  base.temperature = 1.0f;
  base.top_k = 100;
  auto p = draws(rows, base);
  for (int32_t r = rows / 2; r < rows; ++r) p[r].top_p = 0.95f;
  p[0].num_logprobs = kMaxTopLogprobs;
  const auto x = repeat(one, rows);
  const Result r = run(x, vocab, p, {});
  EXPECT_GT(expect_matches_reference(x, vocab, p, r, "30 finite"), rows / 2);
  std::vector<char> seen(vocab, 0);
  for (int32_t row = 0; row < rows / 2; ++row) seen[r.token[row]] = 1;
  int32_t distinct = 0;
  for (int32_t t : finite) distinct += seen[t];
  EXPECT_GT(distinct, 10) << "top-k 100 over 30 finite logits drew only " << distinct << " of them";
  // 10 finite logits and 20 alternatives: 10 finite, then the lowest -inf token ids.
  std::vector<float> ten(vocab, -kInf);
  for (int32_t j = 0; j < 10; ++j) ten[finite[j]] = one[finite[j]];
  std::vector<SampleRow> g(1);
  g[0].num_logprobs = kMaxTopLogprobs;
  const Result gr = run(ten, vocab, g, {});
  expect_matches_reference(ten, vocab, g, gr, "10 finite, 20 logprobs");
}

// -inf scattered through a large row (a tenth of the tokens), with top-k, top-p, both and logprobs.
TEST(CudaSamplingSelection, NegativeInfinityLogitsAreNeverKeptOrCounted) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, rows = 48;
  std::vector<float> x = random_logits(rows, vocab, rng, 2.0f);
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  for (int32_t r = 0; r < rows; ++r)
    for (int32_t j = 0; j < vocab / 10; ++j) x[static_cast<size_t>(r) * vocab + tok(rng)] = -kInf;
  std::vector<SampleRow> p(rows);
  for (int32_t r = 0; r < rows; ++r) {
    p[r].temperature = 0.8f;
    p[r].top_k = r % 3 == 0 ? 40 : r % 3 == 1 ? 0 : 300;
    p[r].top_p = r % 3 == 0 ? 1.0f : 0.9f;
    p[r].num_logprobs = r % 4 == 0 ? 5 : 0;
    p[r].seed = 9 + r;
    p[r].step = r;
  }
  const Result res = run(x, vocab, p, {});
  EXPECT_GT(expect_matches_reference(x, vocab, p, res, "-inf logits"), rows / 2);
  expect_bitwise_equal(res, run(x, vocab, p, {}, {.reference_selection = true}), rows, p, "-inf logits");
}

// Vocabularies that are no multiple of the slice width or of 4 (the last slice is short), at rows
// 1 / 3 / 64 (32, 32 and 8 slices per row).
TEST(CudaSamplingSelection, VocabulariesThatAreNoMultipleOfTheSlice) {
  std::mt19937 rng(std::random_device{}());
  for (int32_t vocab : {1001, 4099, 128257}) {
    for (int32_t rows : {1, 3, 64}) {
      const std::vector<float> x = random_logits(rows, vocab, rng, 2.0f);
      std::vector<SampleRow> p(rows);
      for (int32_t r = 0; r < rows; ++r) {
        p[r].temperature = 0.9f;
        p[r].top_k = r % 2 ? 0 : 20;
        p[r].top_p = r % 3 ? 0.9f : 1.0f;
        p[r].num_logprobs = r % 2 ? 3 : 0;
        p[r].seed = 3 + r;
        p[r].step = r;
      }
      const Result res = run(x, vocab, p, {});
      const std::string what = "vocab " + std::to_string(vocab) + " rows " + std::to_string(rows);
      expect_matches_reference(x, vocab, p, res, what);
      expect_bitwise_equal(res, run(x, vocab, p, {}, {.reference_selection = true}), rows, p, what);
    }
  }
}

// More values tie at the threshold than the candidate list holds (3,000 at one value below 10 larger
// ones; 2,500 tied at the maximum for the logprobs): those rows take the one-block search, whose
// results the reference confirms.
TEST(CudaSamplingSelection, RowsWhoseCandidatesDoNotFitTakeTheOneBlockSearch) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, rows = 32;
  std::vector<float> one = random_logits(1, vocab, rng, 1.0f);
  for (int32_t j = 0; j < 3000; ++j) one[17 + 41 * j] = 5.0f;
  for (int32_t j = 0; j < 10; ++j) one[100001 + j] = 6.0f + 0.1f * static_cast<float>(j);
  SampleRow base;
  base.temperature = 1.0f;
  base.top_k = 100;  // the 100th largest is 5.0: all 3,010 kept
  auto p = draws(rows, base);
  for (int32_t r = rows / 2; r < rows; ++r) p[r].top_p = 0.9f;
  const auto x = repeat(one, rows);
  const Result r = run(x, vocab, p, {});
  EXPECT_GT(expect_matches_reference(x, vocab, p, r, "3,000 ties"), rows / 2);
  std::vector<float> tied = random_logits(1, vocab, rng, 1.0f);
  for (int32_t j = 0; j < 2500; ++j) tied[30 + 50 * j] = 12.0f;
  std::vector<SampleRow> g(1);
  g[0].num_logprobs = 5;
  const Result gr = run(tied, vocab, g, {});
  for (int32_t j = 0; j < 5; ++j) EXPECT_EQ(gr.top_tokens[j], 30 + 50 * j) << "rank " << j;
  expect_matches_reference(tied, vocab, g, gr, "2,500 ties at the top");
}

// One workspace sized for 64 rows serves launches of 1, 3 and 64 rows in turn (counters, histograms
// and candidate counts all left zeroed), and a CUDA graph of a 3-row launch replayed with new logits
// and settings gives what fresh eager launches give.
TEST(CudaSamplingSelection, OneWorkspaceServesRows1And3And64AndGraphReplays) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 128256, capacity = 64;
  DeviceBuffer<uint8_t> ws(sample_workspace_bytes(capacity));
  CUDA_CHECK(cudaMemset(ws.get(), 0, sample_workspace_bytes(capacity)));
  auto settings = [&](int32_t rows, int32_t salt) {
    std::vector<SampleRow> p(rows);
    for (int32_t r = 0; r < rows; ++r) {
      p[r].temperature = (r + salt) % 4 == 0 ? 0.0f : 0.8f;
      p[r].top_k = (r + salt) % 3 == 0 ? 50 : 0;
      p[r].top_p = (r + salt) % 2 == 0 ? 0.9f : 1.0f;
      p[r].num_logprobs = (r + salt) % 5 == 0 ? 5 : 0;
      p[r].seed = 100 + r + salt;
      p[r].step = r + salt;
    }
    return p;
  };
  int32_t salt = 0;
  for (int32_t rows : {1, 3, 64, 3, 1, 64}) {
    const std::vector<float> x = random_logits(rows, vocab, rng, 3.0f);
    const auto p = settings(rows, salt++);
    const Result fresh = run(x, vocab, p, {});
    const Result shared = run(x, vocab, p, {}, {.workspace = ws.get(), .workspace_rows = capacity});
    expect_bitwise_equal(shared, fresh, rows, p, "rows " + std::to_string(rows));
    expect_matches_reference(x, vocab, p, shared, "rows " + std::to_string(rows));
  }
  // The graph: fixed buffers, contents replaced between replays.
  const int32_t rows = 3;
  SampleBuffers buf(rows, vocab, 0);
  const SampleArgs a = buf.args(ws.get(), capacity);
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  sample(a, s);
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 4; ++replay) {
    const std::vector<float> x = random_logits(rows, vocab, rng, replay % 2 ? 1.0f : 3.0f);
    const auto p = settings(rows, 7 * replay);
    buf.logits.upload(x);
    buf.params.upload(p);
    buf.poison_outputs();
    CUDA_CHECK(cudaGraphLaunch(exec, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    const Result replayed = buf.outputs();
    expect_bitwise_equal(replayed, run(x, vocab, p, {}), rows, p, "replay " + std::to_string(replay));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

}  // namespace
}  // namespace tessera::cuda::test
