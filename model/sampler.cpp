// Sampler (see sampler.h).
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"

namespace tessera {
namespace {

inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Ties break toward the lower token id, so results never depend on sort stability.
struct ByLogitDesc {
  const float* l;
  bool operator()(int32_t a, int32_t b) const { return l[a] > l[b] || (l[a] == l[b] && a < b); }
};

}  // namespace

double sampling_uniform(uint64_t seed, uint64_t index) {
  const uint64_t h = mix(mix(seed) ^ mix(index ^ 0x5851f42d4c957f2dull));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

Sampler::Sampler(int32_t vocab_size)
    : vocab_(vocab_size),
      work_(vocab_size),
      logprob_(vocab_size),
      prob_(vocab_size),
      index_(vocab_size),
      counts_(vocab_size, 0),
      seen_(vocab_size, 0) {
  TS_CHECK(vocab_size > 0, kInvalidArgument, "Sampler: vocab_size = {} must be > 0", vocab_size);
}

void Sampler::apply_penalties(const SamplingParams& p, std::span<const TokenId> prompt,
                              std::span<const TokenId> outputs) {
  auto valid = [this](TokenId t) { return t >= 0 && t < vocab_; };
  if (p.repetition_penalty != 1.0f) {
    auto penalise = [&](TokenId t) {
      if (!valid(t) || seen_[t]) return;
      seen_[t] = 1;
      work_[t] = work_[t] > 0.0f ? work_[t] / p.repetition_penalty : work_[t] * p.repetition_penalty;
    };
    for (TokenId t : prompt) penalise(t);
    for (TokenId t : outputs) penalise(t);
    for (TokenId t : prompt) if (valid(t)) seen_[t] = 0;
    for (TokenId t : outputs) if (valid(t)) seen_[t] = 0;
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (TokenId t : outputs) if (valid(t)) ++counts_[t];
    for (TokenId t : outputs) {
      if (!valid(t) || counts_[t] == 0) continue;
      work_[t] -= p.frequency_penalty * static_cast<float>(counts_[t]) + p.presence_penalty;
      counts_[t] = 0;  // applied once per distinct token; also resets the scratch
    }
  }
}

void Sampler::log_softmax() {
  float m = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < vocab_; ++i) m = std::max(m, work_[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < vocab_; ++i) sum += std::exp(static_cast<double>(work_[i]) - m);
  const double lse = m + std::log(sum);
  for (int32_t i = 0; i < vocab_; ++i) logprob_[i] = static_cast<float>(work_[i] - lse);
}

void Sampler::top_logprobs(int32_t k, std::vector<TokenLogprob>& out) {
  out.clear();
  if (k <= 0) return;
  k = std::min(k, vocab_);
  for (int32_t i = 0; i < vocab_; ++i) index_[i] = i;
  std::partial_sort(index_.begin(), index_.begin() + k, index_.end(), ByLogitDesc{logprob_.data()});
  for (int32_t i = 0; i < k; ++i) out.push_back(TokenLogprob{index_[i], logprob_[index_[i]]});
}

TokenId Sampler::draw(const SamplingParams& p, double u) {
  int32_t n = vocab_;
  for (int32_t i = 0; i < vocab_; ++i) index_[i] = i;
  const ByLogitDesc desc{work_.data()};
  const bool need_sorted = p.top_p < 1.0f;
  if (p.top_k > 0 && p.top_k < n) {
    std::nth_element(index_.begin(), index_.begin() + (p.top_k - 1), index_.begin() + n, desc);
    n = p.top_k;
  }
  if (need_sorted) std::sort(index_.begin(), index_.begin() + n, desc);
  float m = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n; ++i) m = std::max(m, work_[index_[i]]);
  // Unnormalised probabilities of the candidates, by candidate position.
  std::vector<float>& prob = prob_;
  double total = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    prob[i] = std::exp(work_[index_[i]] - m);
    total += prob[i];
  }
  if (need_sorted) {  // smallest prefix whose probability reaches top_p
    double cum = 0.0;
    int32_t keep = n;
    for (int32_t i = 0; i < n; ++i) {
      cum += prob[i];
      if (cum >= p.top_p * total) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
    total = cum;
  }
  if (p.min_p > 0.0f) {  // the max candidate has prob exp(0) = 1 before normalisation
    total = 0.0;
    for (int32_t i = 0; i < n; ++i) {
      if (prob[i] < p.min_p) prob[i] = 0.0f;
      total += prob[i];
    }
  }
  const double target = u * total;
  double cum = 0.0;
  int32_t last = -1;
  for (int32_t i = 0; i < n; ++i) {
    if (prob[i] <= 0.0f) continue;
    last = i;
    cum += prob[i];
    if (cum > target) return index_[i];
  }
  TS_ASSERT(last >= 0, "no token left to sample (n = {})", n);
  return index_[last];  // rounding: u * total reached the very end
}

SampledToken Sampler::sample(const float* logits, const SamplingParams& p, std::span<const TokenId> prompt,
                             std::span<const TokenId> outputs, uint64_t index) {
  std::copy(logits, logits + vocab_, work_.begin());
  for (const auto& [t, b] : p.logit_bias) {
    if (t >= 0 && t < vocab_) work_[t] += b;
  }
  apply_penalties(p, prompt, outputs);
  if (!p.greedy()) {
    const float inv_t = 1.0f / p.temperature;
    for (int32_t i = 0; i < vocab_; ++i) work_[i] *= inv_t;
  }
  SampledToken out;
  if (p.logprobs >= 0) {
    log_softmax();
    top_logprobs(p.logprobs, out.top);
  }
  out.token = p.greedy() ? static_cast<TokenId>(std::max_element(work_.begin(), work_.end()) - work_.begin())
                         : draw(p, sampling_uniform(p.seed, index));
  if (p.logprobs >= 0) out.logprob = logprob_[out.token];
  return out;
}

TokenLogprob Sampler::logprob_of(const float* logits, TokenId chosen, int32_t top, std::vector<TokenLogprob>& top_out) {
  TS_ASSERT(chosen >= 0 && chosen < vocab_, "token {} outside the vocabulary of {}", chosen, vocab_);
  std::copy(logits, logits + vocab_, work_.begin());
  log_softmax();
  top_logprobs(top, top_out);
  return TokenLogprob{chosen, logprob_[chosen]};
}

}  // namespace tessera
