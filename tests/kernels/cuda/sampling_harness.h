// Test harness for the GPU sampler: one launch over host rows with poisoned outputs, and the CPU
// references its results are checked against: the kept set of a sampled row (top-k with ties kept,
// top-p over the top-k survivors, min-p), the Gumbel-max draw the kernels make from a kept set, and
// the top logprob alternatives. Tests only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/sampling.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {

struct Result {
  std::vector<int32_t> token;
  std::vector<float> logprob;
  std::vector<int32_t> top_tokens;
  std::vector<float> top_logprobs;
};

struct RunOptions {
  bool greedy_only = false;
  bool no_selection = false;         // SampleArgs::no_selection
  bool reference_selection = false;  // the one-block search for every row
  void* workspace = nullptr;         // zeroed, sized for workspace_rows; null: a fresh one
  int32_t workspace_rows = 0;
};

// Device buffers of one sampler launch over `rows` rows of `vocab` logits (with room for `entries`
// penalty/bias entries), and the SampleArgs that point at them.
struct SampleBuffers {
  SampleBuffers(int32_t rows, int32_t vocab, size_t entries)
      : rows(rows),
        vocab(vocab),
        logits(static_cast<size_t>(rows) * vocab),
        params(rows),
        entries(std::max<size_t>(entries, 1)),
        tok(rows),
        top_tok(static_cast<size_t>(rows) * kMaxTopLogprobs),
        lp(rows),
        top_lp(static_cast<size_t>(rows) * kMaxTopLogprobs) {}
  int32_t rows, vocab;
  DeviceBuffer<float> logits;
  DeviceBuffer<SampleRow> params;
  DeviceBuffer<SampleEntry> entries;
  DeviceBuffer<int32_t> tok, top_tok;
  DeviceBuffer<float> lp, top_lp;

  SampleArgs args(void* workspace, int32_t workspace_rows) const {
    SampleArgs a;
    a.logits = logits.get();
    a.rows = rows;
    a.vocab = vocab;
    a.params = params.get();
    a.entries = entries.get();
    a.out_token = tok.get();
    a.out_logprob = lp.get();
    a.out_top_tokens = top_tok.get();
    a.out_top_logprobs = top_lp.get();
    a.workspace = workspace;
    a.workspace_rows = workspace_rows;
    return a;
  }
  void poison_outputs() {
    tok.poison();
    lp.poison();
    top_tok.poison();
    top_lp.poison();
  }
  Result outputs() const { return {tok.download(), lp.download(), top_tok.download(), top_lp.download()}; }
};

// One launch of the sampler over `rows` (and a synchronize).
inline Result run(const std::vector<float>& logits, int32_t vocab, const std::vector<SampleRow>& rows,
                  const std::vector<SampleEntry>& entries, const RunOptions& o = {}) {
  const int32_t n = static_cast<int32_t>(rows.size());
  SampleBuffers b(n, vocab, entries.size());
  b.logits.upload(logits);
  b.params.upload(rows);
  if (!entries.empty()) b.entries.upload(entries);
  b.poison_outputs();
  DeviceBuffer<uint8_t> ws(o.workspace == nullptr ? sample_workspace_bytes(n) : 1);
  if (o.workspace == nullptr) CUDA_CHECK(cudaMemset(ws.get(), 0, sample_workspace_bytes(n)));
  SampleArgs a = o.workspace == nullptr ? b.args(ws.get(), n) : b.args(o.workspace, o.workspace_rows);
  a.greedy_only = o.greedy_only;
  a.no_selection = o.no_selection;
  a.reference_selection = o.reference_selection;
  sample(a, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  return b.outputs();
}

inline std::vector<float> random_logits(int32_t rows, int32_t vocab, std::mt19937& rng, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(rows) * vocab);
  for (auto& v : x) v = d(rng);
  return x;
}

// The values the kernels sample from: the logits times 1/temperature in fp32, as the stats pass
// scales them (not at all at temperature 1).
inline std::vector<float> scaled_row(const float* x, int32_t vocab, float temperature) {
  const float inv_t = 1.0f / temperature;
  std::vector<float> v(x, x + vocab);
  if (inv_t != 1.0f)
    for (float& f : v) f *= inv_t;
  return v;
}

// The tokens a sampled row keeps: values >= the k-th largest (ties kept), then among those the
// smallest prefix in value order whose mass reaches top_p of theirs (ties at its last value kept),
// then values >= max + log(min_p). `margin` gets how close the data comes to a different set, in
// units of what a double reference can tell from the kernels' fp32 / fixed-point arithmetic (1e-6 of
// the top-p mass between the target and the nearest prefix; 1e-5 of a value between it and min-p's
// cut): below 1 the set is not decided by the data alone.
inline std::vector<char> kept_set(const std::vector<float>& v, const SampleRow& p, double* margin) {
  const int32_t V = static_cast<int32_t>(v.size());
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  const float mx = v[order[0]];
  *margin = 1.0;
  float cut = -std::numeric_limits<float>::infinity();
  if (p.top_k > 0 && p.top_k < V) cut = v[order[p.top_k - 1]];
  if (p.top_p < 1.0f) {
    double total = 0;
    for (int32_t i = 0; i < V; ++i)
      if (v[i] >= cut) total += std::exp(static_cast<double>(v[i]) - mx);
    const double target = static_cast<double>(p.top_p) * total;
    double cum = 0;
    for (int32_t j = 0; j < V; ++j) {
      const float x = v[order[j]];
      if (x < cut) break;
      const double before = cum;
      cum += std::exp(static_cast<double>(x) - mx);
      if (cum >= target) {
        *margin = std::min(std::abs(cum - target), std::abs(before - target)) / total / 1e-6;
        cut = std::max(cut, x);
        break;
      }
    }
  }
  if (p.min_p > 0.0f) {
    const float m = mx + std::log(p.min_p);
    for (float x : v)
      if (x > -std::numeric_limits<float>::infinity())
        *margin = std::min(*margin, std::abs(static_cast<double>(x) - m) / (1e-5 * std::max(1.0f, std::abs(m))));
    cut = std::max(cut, m);
  }
  std::vector<char> keep(V);
  for (int32_t i = 0; i < V; ++i) keep[i] = v[i] >= cut;
  return keep;
}

inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The kernels' Gumbel noise for (seed, step, token), in fp32 (the GPU's logf may differ in an ulp).
inline float gumbel(uint64_t seed, int64_t step, int32_t token) {
  const uint64_t h = mix64(seed ^ mix64(static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ull + static_cast<uint32_t>(token)));
  const float u = std::min((static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f), 0.99999994f);
  return -std::log(-std::log(u));
}

// The token the draw must give: the Gumbel-max over the kept set; `runner_up` gets the second best
// when the two are closer than fp32 noise can separate (else -1).
inline int32_t reference_draw(const std::vector<float>& v, const std::vector<char>& keep, const SampleRow& p,
                              int32_t* runner_up) {
  int32_t best = -1, second = -1;
  float bv = -std::numeric_limits<float>::infinity(), sv = bv;
  for (int32_t i = 0; i < static_cast<int32_t>(v.size()); ++i) {
    if (!keep[i] || !(v[i] > -std::numeric_limits<float>::infinity())) continue;
    const float s = v[i] + gumbel(p.seed, p.step, i);
    if (best < 0 || s > bv) {
      second = best, sv = bv;
      best = i, bv = s;
    } else if (second < 0 || s > sv) {
      second = i, sv = s;
    }
  }
  *runner_up = second >= 0 && bv - sv < 1e-4f * std::max(1.0f, std::abs(bv)) ? second : -1;
  return best;
}

// The top k tokens of a row by (value desc, id asc) with their log-softmax in double.
inline std::vector<std::pair<int32_t, double>> reference_top(const std::vector<float>& v, int32_t k) {
  const int32_t V = static_cast<int32_t>(v.size());
  double mx = -std::numeric_limits<double>::infinity(), z = 0;
  for (float x : v) mx = std::max(mx, static_cast<double>(x));
  for (float x : v) z += std::exp(static_cast<double>(x) - mx);
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  std::vector<std::pair<int32_t, double>> out;
  for (int32_t j = 0; j < k; ++j) out.emplace_back(order[j], v[order[j]] - mx - std::log(z));
  return out;
}

}  // namespace tessera::cuda::test
