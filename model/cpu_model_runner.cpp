// CpuModelRunner (see cpu_model_runner.h): the Llama-family forward pass over one StepBatch.
#include "model/cpu_model_runner.h"

#include <cmath>
#include <span>

#include "common/error.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/transformer_ops.h"
#include "model/rope_frequencies.h"

namespace tessera {
namespace {

void grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

void project(const std::vector<float>& x, int64_t m, const WeightMatrix& w, const std::vector<float>& bias,
             std::vector<float>& y, cpu::ThreadPool& pool) {
  cpu::linear(x.data(), m, w.cols, w.data, w.dtype, w.rows, bias.empty() ? nullptr : bias.data(), y.data(), pool);
}

}  // namespace

CpuModelRunner::CpuModelRunner(ModelConfig config, ModelWeights weights, CpuRunnerOptions options,
                               std::shared_ptr<cpu::ThreadPool> pool, CpuRunnerParallel parallel)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      pool_(pool ? std::move(pool) : std::make_shared<cpu::ThreadPool>(0)),
      cache_(config_, options.num_kv_blocks, options.block_size),
      table_(config_.vocab_size, options.num_kv_blocks, options.block_size),
      inv_freq_(rope_inv_frequencies(config_)),
      sampler_(config_.vocab_size),
      shard_(std::move(parallel.shard)),
      comm_(parallel.comm),
      prune_last_layer_(options.prune_last_layer) {
  TS_CHECK(shard_.has_value() == (comm_ != nullptr), kInvalidArgument,
           "a tensor-parallel runner needs both a shard plan and a communicator");
  TS_CHECK(static_cast<int32_t>(weights_.layers.size()) == config_.num_hidden_layers, kInternal,
           "weights have {} layers, config {}", weights_.layers.size(), config_.num_hidden_layers);
}

StepResult CpuModelRunner::execute(const StepPlan& plan) { return run(plan, nullptr); }

StepResult CpuModelRunner::execute_with_logits(const StepPlan& plan, std::vector<float>& logits) {
  logits.clear();
  return run(plan, &logits);
}

void CpuModelRunner::ensure_buffers(int64_t rows, int64_t logits_rows) {
  const ModelConfig& c = config_;
  if (rows > buf_.capacity) {
    grow(buf_.x, rows * c.hidden_size);
    grow(buf_.h, rows * std::max(c.hidden_size, c.q_size()));
    grow(buf_.q, rows * c.q_size());
    grow(buf_.k, rows * c.kv_size());
    grow(buf_.v, rows * c.kv_size());
    grow(buf_.attn, rows * c.q_size());
    grow(buf_.gate, rows * c.intermediate_size);
    grow(buf_.up, rows * c.intermediate_size);
    buf_.rows.resize(static_cast<size_t>(rows));
    buf_.capacity = rows;
  }
  grow(buf_.logits_in, logits_rows * c.hidden_size);
  if (static_cast<int64_t>(buf_.x_row.size()) < logits_rows) buf_.x_row.resize(static_cast<size_t>(logits_rows));
  grow(buf_.logits, logits_rows * c.vocab_size);
  if (shard_) {
    grow(buf_.logits_local, logits_rows * shard_->vocab_per_rank);
    grow(buf_.logits_gathered, logits_rows * shard_->vocab_per_rank * shard_->spec.tp_size);
    if (static_cast<int64_t>(buf_.local_ids.size()) < rows) buf_.local_ids.resize(static_cast<size_t>(rows));
  }
}

// Tensor parallel: sums a row-parallel partial result over the ranks (no-op on one process).
void CpuModelRunner::tp_all_reduce(std::vector<float>& v, int64_t count) {
  if (comm_) comm_->all_reduce_sum(v.data(), static_cast<size_t>(count), DType::kF32);
}

// Token embeddings; with a vocabulary-parallel table, rows whose token lives on another rank are
// zero here and the all-reduce fills them in.
void CpuModelRunner::embed(int64_t n) {
  const int64_t hidden = config_.hidden_size;
  if (!shard_) {
    cpu::embedding(weights_.embed.data, weights_.embed.dtype, hidden, batch_.token_ids.data(), n, buf_.x.data(),
                   *pool_);
    return;
  }
  const int32_t first = shard_->first_vocab, count = shard_->vocab_rows;
  for (int64_t r = 0; r < n; ++r) {
    const TokenId t = batch_.token_ids[r];
    buf_.local_ids[r] = (t >= first && t < first + count) ? t - first : 0;
  }
  if (count > 0)
    cpu::embedding(weights_.embed.data, weights_.embed.dtype, hidden, buf_.local_ids.data(), n, buf_.x.data(),
                   *pool_);
  for (int64_t r = 0; r < n; ++r) {
    const TokenId t = batch_.token_ids[r];
    if (count == 0 || t < first || t >= first + count)
      std::fill(buf_.x.begin() + r * hidden, buf_.x.begin() + (r + 1) * hidden, 0.0f);
  }
  tp_all_reduce(buf_.x, n * hidden);
}

// Vocabulary-parallel LM head: this rank's logits block (padded to vocab_per_rank with -inf),
// all-gathered and laid out as [rows, vocab].
void CpuModelRunner::tp_logits(int64_t m) {
  const int64_t vpr = shard_->vocab_per_rank, rows_here = shard_->vocab_rows, vocab = config_.vocab_size;
  const int tp = shard_->spec.tp_size;
  if (rows_here > 0)
    project(buf_.logits_in, m, weights_.lm_head, {}, buf_.logits_local, *pool_);
  // project() wrote [m, rows_here]; spread to [m, vpr] from the back so rows do not overlap.
  for (int64_t i = m - 1; i >= 0; --i) {
    float* dst = buf_.logits_local.data() + i * vpr;
    std::copy_backward(buf_.logits_local.data() + i * rows_here, buf_.logits_local.data() + (i + 1) * rows_here,
                       dst + rows_here);
    std::fill(dst + rows_here, dst + vpr, -INFINITY);
  }
  comm_->all_gather(buf_.logits_local.data(), buf_.logits_gathered.data(), static_cast<size_t>(m * vpr),
                    DType::kF32);
  for (int64_t i = 0; i < m; ++i)
    for (int r = 0; r < tp; ++r) {
      const int64_t begin = r * vpr, len = std::min<int64_t>(vpr, vocab - begin);
      if (len <= 0) continue;
      const float* src = buf_.logits_gathered.data() + (static_cast<int64_t>(r) * m + i) * vpr;
      std::copy(src, src + len, buf_.logits.data() + i * vocab + begin);
    }
}

void CpuModelRunner::forward_layer(int32_t li, int64_t n) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[li];
  cpu::ThreadPool& pool = *pool_;
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;

  cpu::rms_norm(buf_.x.data(), n, c.hidden_size, c.hidden_size, w.input_norm.data(), c.rms_norm_eps, buf_.h.data(),
                pool);
  project(buf_.h, n, w.q, w.q_bias, buf_.q, pool);
  project(buf_.h, n, w.k, w.k_bias, buf_.k, pool);
  project(buf_.h, n, w.v, w.v_bias, buf_.v, pool);
  if (c.qk_norm) {
    cpu::rms_norm(buf_.q.data(), n * nh, hd, hd, w.q_norm.data(), c.rms_norm_eps, buf_.q.data(), pool);
    cpu::rms_norm(buf_.k.data(), n * nkv, hd, hd, w.k_norm.data(), c.rms_norm_eps, buf_.k.data(), pool);
  }
  cpu::rope(buf_.q.data(), n, c.q_size(), nh, hd, batch_.positions.data(), inv_freq_.data(), pool);
  cpu::rope(buf_.k.data(), n, c.kv_size(), nkv, hd, batch_.positions.data(), inv_freq_.data(), pool);
  const cpu::PagedKvLayer cache = cache_.layer(li);
  cpu::write_kv(buf_.k.data(), buf_.v.data(), n, c.kv_size(), buf_.rows.data(), cache, pool);
  // The last layer: only the rows whose logits are computed go on (all of them where every row's are).
  if (li + 1 == c.num_hidden_layers) n = keep_logit_rows(n);
  if (n == 0) return;
  cpu::paged_attention(buf_.q.data(), n, c.q_size(), nh, buf_.rows.data(), cache,
                       static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))), buf_.attn.data(), pool);
  project(buf_.attn, n, w.o, {}, buf_.h, pool);
  tp_all_reduce(buf_.h, n * c.hidden_size);
  cpu::add_inplace(buf_.x.data(), buf_.h.data(), n * c.hidden_size, pool);

  cpu::rms_norm(buf_.x.data(), n, c.hidden_size, c.hidden_size, w.post_attention_norm.data(), c.rms_norm_eps,
                buf_.h.data(), pool);
  project(buf_.h, n, w.gate, {}, buf_.gate, pool);
  project(buf_.h, n, w.up, {}, buf_.up, pool);
  cpu::silu_mul(buf_.gate.data(), buf_.up.data(), n * c.intermediate_size, buf_.gate.data(), pool);
  project(buf_.gate, n, w.down, {}, buf_.h, pool);
  tp_all_reduce(buf_.h, n * c.hidden_size);
  cpu::add_inplace(buf_.x.data(), buf_.h.data(), n * c.hidden_size, pool);
}

int64_t CpuModelRunner::keep_logit_rows(int64_t n) {
  if (!prune_last_layer_) {
    for (size_t i = 0; i < batch_.logits_rows.size(); ++i) buf_.x_row[i] = batch_.logits_rows[i].row;
    return n;
  }
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, qn = c.q_size();
  int64_t m = 0;
  int32_t last = -1;
  for (size_t i = 0; i < batch_.logits_rows.size(); ++i) {
    const int32_t r = batch_.logits_rows[i].row;
    TS_ASSERT(r >= last && r < n, "logits rows out of order: row {} after {} of {}", r, last, n);
    if (r != last) {
      if (r != m) {  // rows only move forward (m <= r), so a row is read before anything overwrites it
        std::copy_n(buf_.q.data() + r * qn, qn, buf_.q.data() + m * qn);
        std::copy_n(buf_.x.data() + r * hidden, hidden, buf_.x.data() + m * hidden);
        buf_.rows[static_cast<size_t>(m)] = buf_.rows[static_cast<size_t>(r)];
      }
      last = r;
      ++m;
    }
    buf_.x_row[i] = static_cast<int32_t>(m - 1);
  }
  return m;
}

void CpuModelRunner::compute_logits(int64_t) {
  const ModelConfig& c = config_;
  const int64_t m = static_cast<int64_t>(batch_.logits_rows.size());
  if (m == 0) return;
  for (int64_t i = 0; i < m; ++i) {
    const float* src = buf_.x.data() + int64_t{buf_.x_row[static_cast<size_t>(i)]} * c.hidden_size;
    std::copy(src, src + c.hidden_size, buf_.logits_in.data() + i * c.hidden_size);
  }
  cpu::rms_norm(buf_.logits_in.data(), m, c.hidden_size, c.hidden_size, weights_.final_norm.data(), c.rms_norm_eps,
                buf_.logits_in.data(), *pool_);
  if (shard_)
    tp_logits(m);
  else
    project(buf_.logits_in, m, weights_.lm_head, {}, buf_.logits, *pool_);
}

StepResult CpuModelRunner::sample(const StepPlan& plan, std::vector<float>* sampled_logits) {
  StepResult result;
  result.step_id = plan.step_id;
  const int64_t vocab = config_.vocab_size;
  PromptLogprobs* current = nullptr;
  int32_t current_work = -1;
  for (size_t i = 0; i < batch_.logits_rows.size(); ++i) {
    const LogitsRow& lr = batch_.logits_rows[i];
    const float* logits = buf_.logits.data() + static_cast<int64_t>(i) * vocab;
    const SequenceWork& w = plan.scheduled[lr.work];
    const SequenceState& s = *batch_.work_seq[lr.work];
    if (lr.prompt_logprob) {
      if (current_work != lr.work) {
        result.prompt_logprobs.push_back(PromptLogprobs{w.seq_id, batch_.positions[lr.row] + 1, {}, {}});
        current = &result.prompt_logprobs.back();
        current_work = lr.work;
      }
      current->top.emplace_back();
      current->chosen.push_back(sampler_.logprob_of(logits, s.tokens[batch_.positions[lr.row] + 1],
                                                    s.sampling.prompt_logprobs, current->top.back()));
    }
    if (lr.sample) {
      const std::span<const TokenId> all(s.tokens);
      const auto prompt = all.subspan(0, s.num_prompt_tokens);
      const auto outputs = all.subspan(s.num_prompt_tokens);
      SampledToken t = sampler_.sample(logits, s.sampling, prompt, outputs, outputs.size());
      t.seq_id = w.seq_id;
      result.sampled.push_back(std::move(t));
      if (sampled_logits != nullptr) sampled_logits->insert(sampled_logits->end(), logits, logits + vocab);
    }
  }
  return result;
}

StepResult CpuModelRunner::run(const StepPlan& plan, std::vector<float>* sampled_logits) {
  table_.apply(plan, batch_);
  const int64_t n = batch_.num_rows();
  ensure_buffers(n, static_cast<int64_t>(batch_.logits_rows.size()));
  for (int64_t r = 0; r < n; ++r) {
    buf_.rows[r] = cpu::AttentionRow{batch_.row_seq[r]->block_table.data(), batch_.context_lens[r]};
  }
  if (n > 0) {
    embed(n);
    for (int32_t li = 0; li < config_.num_hidden_layers; ++li) forward_layer(li, n);
    compute_logits(n);
  }
  table_.commit(plan, batch_);
  return sample(plan, sampled_logits);
}

}  // namespace tessera
