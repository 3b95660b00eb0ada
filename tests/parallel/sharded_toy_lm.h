// A small Megatron-sharded language model for testing the TP runtime without the real model
// runner (a test runner, like the scheduler's fake runner): vocabulary-parallel embedding with an
// all-reduce, residual MLP blocks with gate/up column-parallel and down row-parallel (one
// all-reduce each), a vocabulary-parallel LM head whose logits are all-gathered, greedy sampling.
// Every rank generates the same full weights from a seed and keeps the slice ShardPlan::slice_for
// names, so the test checks the slicing rules as well as the collectives. With comm == nullptr it
// is the unsharded reference (TP = 1).
#pragma once

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/shard_spec.h"
#include "scheduler/step_plan.h"

namespace tessera::parallel::testing {

struct ToyShape {
  int hidden = 64;
  int inter = 96;
  int vocab = 203;  // not divisible by 2 or 4: exercises the padded last rank
  int layers = 2;
};

inline ModelConfig toy_config(const ToyShape& s) {
  ModelConfig c;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.inter;
  c.vocab_size = s.vocab;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = 12;  // divisible by 1, 2, 3 and 4 ranks
  c.num_key_value_heads = 12;
  c.head_dim = 8;
  return c;
}

// Row-major [rows, cols] matrix; slice keeps rows or columns per WeightSlice.
struct Mat {
  int rows = 0, cols = 0;
  std::vector<float> v;
  float at(int r, int c) const { return v[static_cast<size_t>(r) * cols + c]; }
};

inline Mat random_mat(int rows, int cols, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Mat m{rows, cols, std::vector<float>(static_cast<size_t>(rows) * cols)};
  for (auto& x : m.v) x = d(rng);
  return m;
}

inline Mat slice(const Mat& m, const WeightSlice& s) {
  if (s.dim == -1) return m;
  Mat out;
  if (s.dim == 0) {
    out = {static_cast<int>(s.length), m.cols, {}};
    out.v.assign(m.v.begin() + s.begin * m.cols, m.v.begin() + (s.begin + s.length) * m.cols);
  } else {
    out = {m.rows, static_cast<int>(s.length), std::vector<float>(static_cast<size_t>(m.rows) * s.length)};
    for (int r = 0; r < m.rows; ++r)
      for (int c = 0; c < s.length; ++c) out.v[static_cast<size_t>(r) * s.length + c] = m.at(r, s.begin + c);
  }
  return out;
}

// y[rows of W] = W x  (HF nn.Linear: W is [out, in]).
inline std::vector<float> matvec(const Mat& w, const std::vector<float>& x) {
  std::vector<float> y(w.rows, 0.0f);
  for (int r = 0; r < w.rows; ++r) {
    double s = 0;
    for (int c = 0; c < w.cols; ++c) s += static_cast<double>(w.at(r, c)) * x[c];
    y[r] = static_cast<float>(s);
  }
  return y;
}

class ShardedToyLm final : public StepExecutor {
 public:
  ShardedToyLm(const ToyShape& shape, ShardSpec spec, Communicator* comm, uint64_t seed = 1234)
      : shape_(shape), plan_(make_shard_plan(toy_config(shape), spec)), comm_(comm) {
    embed_ = slice(random_mat(shape.vocab, shape.hidden, seed, 1.0f), plan_.slice_for("model.embed_tokens.weight"));
    for (int l = 0; l < shape.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
      gate_.push_back(slice(random_mat(shape.inter, shape.hidden, seed + 10 + l, 0.2f), plan_.slice_for(p + "gate_proj.weight")));
      up_.push_back(slice(random_mat(shape.inter, shape.hidden, seed + 20 + l, 0.2f), plan_.slice_for(p + "up_proj.weight")));
      down_.push_back(slice(random_mat(shape.hidden, shape.inter, seed + 30 + l, 0.2f), plan_.slice_for(p + "down_proj.weight")));
    }
    head_ = slice(random_mat(shape.vocab, shape.hidden, seed + 99, 0.3f), plan_.slice_for("lm_head.weight"));
  }

  StepResult execute(const StepPlan& plan) override {
    for (SeqId id : plan.freed) last_token_.erase(id);
    for (const auto& s : plan.new_sequences) last_token_[s.seq_id] = s.token_ids.back();
    StepResult res;
    res.step_id = plan.step_id;
    last_logits_.clear();
    for (const auto& w : plan.scheduled) {
      if (!w.appended_token_ids.empty()) last_token_[w.seq_id] = w.appended_token_ids.back();
      // Every rank must run the collectives, sampled row or not.
      std::vector<float> logits = forward(last_token_.at(w.seq_id));
      if (!w.sample) continue;
      int best = 0;
      for (int i = 1; i < shape_.vocab; ++i)
        if (logits[i] > logits[best]) best = i;
      res.sampled.push_back({w.seq_id, best, 0.0f, {}});
      last_logits_.push_back(std::move(logits));
    }
    return res;
  }
  const std::vector<std::vector<float>>& last_logits() const { return last_logits_; }

 private:
  void all_reduce(std::vector<float>& v) {
    if (comm_) comm_->all_reduce_sum(v.data(), v.size(), DType::kF32);
  }

  std::vector<float> forward(TokenId token) {
    std::vector<float> h(shape_.hidden, 0.0f);
    if (token >= plan_.first_vocab && token < plan_.first_vocab + plan_.vocab_rows)
      for (int c = 0; c < shape_.hidden; ++c) h[c] = embed_.at(token - plan_.first_vocab, c);
    all_reduce(h);
    for (size_t l = 0; l < gate_.size(); ++l) {
      auto g = matvec(gate_[l], h), u = matvec(up_[l], h);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      auto d = matvec(down_[l], g);
      all_reduce(d);
      for (int c = 0; c < shape_.hidden; ++c) h[c] += d[c];
    }
    auto local = matvec(head_, h);
    local.resize(plan_.vocab_per_rank, -INFINITY);
    if (!comm_) return local;
    std::vector<float> all(static_cast<size_t>(plan_.vocab_per_rank) * comm_->world_size());
    comm_->all_gather(local.data(), all.data(), local.size(), DType::kF32);
    // Rank r's block starts at r * vocab_per_rank == its first_vocab: drop the padding at the end.
    all.resize(shape_.vocab);
    return all;
  }

  ToyShape shape_;
  ShardPlan plan_;
  Communicator* comm_;
  Mat embed_, head_;
  std::vector<Mat> gate_, up_, down_;
  std::map<SeqId, TokenId> last_token_;
  std::vector<std::vector<float>> last_logits_;
};

}  // namespace tessera::parallel::testing
