// CudaRunner::launch / collect: one StepPlan. launch applies the deltas to per-sequence state with
// every id, count and block checked, lays out the step's inputs (token ids, positions, KV slots,
// attention tiles, block tables, sampling rows), uploads them, enqueues the forward pass (eagerly,
// or by replaying the decode graph of the batch's bucket) and the read-back of the sampled tokens
// into pinned memory, and returns; collect waits for the stream and builds the StepResult. A decode
// graph missing at replay time is captured here through cuda_runner_graphs.cpp's one capture path.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "common/error.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/sampling.cuh"
#include "model/cuda_runner.h"
#include "model/cuda_runner_buffers.h"
#include "model/logit_tiles.h"

namespace tessera::cuda {
namespace {

// Copies the first n elements of src into the pinned staging at `offset` and points dst at the same
// offset of the device region the staging is uploaded to.
template <typename T>
void pack(char* host, char* device, size_t offset, const std::vector<T>& src, size_t n, T*& dst) {
  TS_ASSERT(n <= src.size(), "packing {} elements of a {}-element input", n, src.size());
  if (n > 0) std::memcpy(host + offset, src.data(), n * sizeof(T));
  dst = reinterpret_cast<T*>(device + offset);
}

bool wants_entries(const SamplingParams& s) {
  return s.repetition_penalty != 1.0f || s.presence_penalty != 0.0f || s.frequency_penalty != 0.0f ||
         !s.logit_bias.empty();
}

}  // namespace

void CudaRunner::upload_inputs(int32_t rows, int32_t logit_rows, int32_t tiles, const std::vector<SampleRow>& srows,
                               int64_t table_rows) {
  Buffers& b = *buf_;
  const InputLayout lay = input_layout(rows, logit_rows, tiles, static_cast<int64_t>(srows.size()),
                                       table_rows * max_blocks_per_seq_, static_cast<int64_t>(b.h_entries.size()));
  TS_ASSERT(lay.end <= b.inputs_bytes, "step inputs of {} bytes exceed their region of {}", lay.end, b.inputs_bytes);
  char* const h = b.h_inputs;
  pack(h, b.inputs, lay.ids, b.h_ids, rows, b.ids);
  pack(h, b.inputs, lay.positions, b.h_positions, rows, b.positions);
  pack(h, b.inputs, lay.slots, b.h_slots, rows, b.slots);
  pack(h, b.inputs, lay.logit_rows, b.h_logit_rows, logit_rows, b.logit_rows);
  pack(h, b.inputs, lay.tiles, b.h_tiles, tiles, b.tiles);
  pack(h, b.inputs, lay.sample_rows, srows, srows.size(), b.sample_rows);
  pack(h, b.inputs, lay.block_tables, b.h_block_tables, table_rows * max_blocks_per_seq_, b.block_tables);
  pack(h, b.inputs, lay.entries, b.h_entries, b.h_entries.size(), b.entries);
  CUDA_CHECK(cudaMemcpyAsync(b.inputs, h, lay.end, cudaMemcpyHostToDevice, stream_));
}

StepResult CudaRunner::run(const StepPlan& plan, std::vector<float>* logits) {
  launch(plan, logits);
  return collect();
}

void CudaRunner::launch(const StepPlan& plan, std::vector<float>* logits) {
  const ModelConfig& c = config_;
  Buffers& b = *buf_;
  TS_ASSERT(!pending_.active, "a step was begun while the previous one was not collected");
  pending_ = PendingStep{};
  pending_.step_id = plan.step_id;
  TS_CHECK(plan.block_size == options_.block_size, kInvalidArgument, "plan block_size {} differs from the runner's {}",
           plan.block_size, options_.block_size);
  for (SeqId id : plan.freed) seqs_.erase(id);
  auto check_blocks = [&](const std::vector<BlockId>& ids) {
    for (BlockId blk : ids)
      TS_CHECK(blk >= 0 && blk < num_blocks_, kInvalidArgument, "block id {} outside [0, {})", blk, num_blocks_);
  };
  auto check_tokens = [&](const std::vector<TokenId>& ids) {
    for (TokenId t : ids)
      TS_CHECK(t >= 0 && t < c.vocab_size, kInvalidArgument, "token id {} outside the vocabulary [0, {})", t,
               c.vocab_size);
  };
  for (const NewSequence& n : plan.new_sequences) {
    TS_CHECK(!n.token_ids.empty(), kInvalidArgument, "new sequence {} has no tokens", n.seq_id);
    TS_CHECK(n.num_prompt_tokens >= 1 && n.num_prompt_tokens <= static_cast<int32_t>(n.token_ids.size()),
             kInvalidArgument, "sequence {}: num_prompt_tokens {} outside [1, {}]", n.seq_id, n.num_prompt_tokens,
             n.token_ids.size());
    TS_CHECK(n.num_computed_tokens >= 0 && n.num_computed_tokens < static_cast<int32_t>(n.token_ids.size()) &&
                 n.num_computed_tokens % options_.block_size == 0,
             kInvalidArgument, "sequence {}: num_computed_tokens {} invalid for {} tokens", n.seq_id,
             n.num_computed_tokens, n.token_ids.size());
    check_tokens(n.token_ids);
    check_blocks(n.block_ids);
    TS_CHECK(n.sampling.prompt_logprobs <= kMaxTopLogprobs, kInvalidArgument,
             "sequence {}: prompt_logprobs = {} exceeds the CUDA runner's maximum of {}", n.seq_id,
             n.sampling.prompt_logprobs, kMaxTopLogprobs);
    TS_CHECK(n.sampling.logprobs <= kMaxTopLogprobs, kInvalidArgument,
             "sequence {}: logprobs = {} exceeds the CUDA runner's maximum of {}", n.seq_id, n.sampling.logprobs,
             kMaxTopLogprobs);
    SeqState s;
    s.tokens = n.token_ids;
    s.num_prompt = n.num_prompt_tokens;
    s.computed = n.num_computed_tokens;
    s.blocks = n.block_ids;
    s.sampling = n.sampling;
    for (size_t i = n.num_prompt_tokens; i < n.token_ids.size(); ++i) ++s.output_counts[n.token_ids[i]];
    seqs_[n.seq_id] = std::move(s);
  }

  const int32_t nwork = static_cast<int32_t>(plan.scheduled.size());
  const int32_t rows = plan.num_tokens();
  TS_CHECK(nwork <= options_.max_num_seqs, kInvalidArgument, "step has {} sequences; max_num_seqs is {}", nwork,
           options_.max_num_seqs);
  TS_CHECK(rows <= options_.max_num_tokens, kInvalidArgument, "step has {} tokens; max_num_tokens is {}", rows,
           options_.max_num_tokens);
  if (logits != nullptr)
    TS_CHECK(rows <= options_.max_logit_rows, kInvalidArgument, "step has {} rows; max_logit_rows is {}", rows,
             options_.max_logit_rows);
  if (nwork == 0) {
    pending_.active = true;  // nothing to run: collect returns an empty result
    return;
  }
  std::vector<SeqState*> states(nwork);
  bool decode_only = nwork > 0;
  int32_t nsample = 0;
  for (int32_t w = 0; w < nwork; ++w) {
    const SequenceWork& work = plan.scheduled[w];
    auto it = seqs_.find(work.seq_id);
    TS_CHECK(it != seqs_.end(), kInvalidArgument, "scheduled sequence {} is unknown to the runner", work.seq_id);
    SeqState& s = it->second;
    check_tokens(work.appended_token_ids);
    check_blocks(work.new_block_ids);
    for (TokenId t : work.appended_token_ids) {
      s.tokens.push_back(t);
      ++s.output_counts[t];
    }
    s.blocks.insert(s.blocks.end(), work.new_block_ids.begin(), work.new_block_ids.end());
    const int64_t end = static_cast<int64_t>(s.computed) + work.num_tokens;
    TS_CHECK(work.num_tokens > 0 && end <= static_cast<int64_t>(s.tokens.size()), kInvalidArgument,
             "sequence {}: {} tokens scheduled after {} computed, but {} are known", work.seq_id, work.num_tokens,
             s.computed, s.tokens.size());
    TS_CHECK(end <= options_.max_model_len, kInvalidArgument, "sequence {} reaches {} tokens; max_model_len is {}",
             work.seq_id, end, options_.max_model_len);
    TS_CHECK(end <= static_cast<int64_t>(s.blocks.size()) * options_.block_size, kInvalidArgument,
             "sequence {}: {} blocks cannot hold {} tokens", work.seq_id, s.blocks.size(), end);
    TS_CHECK(!work.sample || end == static_cast<int64_t>(s.tokens.size()), kInvalidArgument,
             "sequence {}: sample requested before the last known token", work.seq_id);
    decode_only = decode_only && work.num_tokens == 1 && work.sample;
    nsample += work.sample ? 1 : 0;
    states[w] = &s;
  }

  // Lay out the step's inputs.
  const int32_t tile_tokens = attention_tile_tokens(c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                                                    options_.dtype == DType::kF32);
  const int32_t bucket = decode_only && options_.cuda_graphs
                             ? decode_graph_bucket(nwork, options_.max_num_seqs, options_.max_num_tokens)
                             : 0;
  const int32_t padded_rows = bucket > 0 ? bucket : rows;
  int32_t ntiles = 0, max_q = 1, row = 0, nlogit = 0, nentries = 0;
  b.h_entries.clear();
  std::vector<int32_t> sample_work;  // work index of each sampled row
  // Prompt logprobs: rows whose next token is a prompt token, per sequence that asked for them.
  struct PromptSpan {
    int32_t work, first_position, begin, count;  // begin: index into prompt_rows
  };
  std::vector<PromptSpan> prompt_spans;
  std::vector<int32_t> prompt_rows, prompt_targets;
  int32_t prompt_k = 0;
  for (int32_t w = 0; w < nwork; ++w) {
    const SequenceWork& work = plan.scheduled[w];
    const SeqState& s = *states[w];
    for (int32_t i = 0; i < work.num_tokens; ++i) {
      const int32_t pos = s.computed + i;
      b.h_ids[row + i] = s.tokens[pos];
      b.h_positions[row + i] = pos;
      b.h_slots[row + i] = static_cast<int64_t>(s.blocks[pos / options_.block_size]) * options_.block_size +
                           pos % options_.block_size;
    }
    for (int32_t off = 0; off < work.num_tokens; off += tile_tokens) {
      const int32_t n = std::min(tile_tokens, work.num_tokens - off);
      b.h_tiles[ntiles++] = AttentionTile{w, row + off, n, s.computed + off};
      max_q = std::max(max_q, n);
    }
    const int32_t nb = std::min<int32_t>(static_cast<int32_t>(s.blocks.size()), max_blocks_per_seq_);
    std::copy_n(s.blocks.begin(), nb, b.h_block_tables.begin() + static_cast<int64_t>(w) * max_blocks_per_seq_);
    if (logits == nullptr && work.sample) b.h_logit_rows[nlogit++] = row + work.num_tokens - 1;
    if (s.sampling.prompt_logprobs >= 0 && s.computed + 1 < s.num_prompt) {
      const int32_t count = std::min(work.num_tokens, s.num_prompt - 1 - s.computed);
      prompt_spans.push_back(PromptSpan{w, s.computed + 1, static_cast<int32_t>(prompt_rows.size()), count});
      for (int32_t i = 0; i < count; ++i) {
        prompt_rows.push_back(row + i);
        prompt_targets.push_back(s.tokens[s.computed + i + 1]);
      }
      prompt_k = std::max(prompt_k, s.sampling.prompt_logprobs);
    }
    if (work.sample) sample_work.push_back(w);
    row += work.num_tokens;
  }
  if (logits != nullptr) {  // every row's logits; sampling then reads the rows that sample
    for (int32_t r = 0; r < rows; ++r) b.h_logit_rows[r] = r;
    nlogit = rows;
  }
  // Sampling parameters, one row per sampled sequence (in the logits' row order when all rows exist).
  std::vector<SampleRow> srows;
  for (int32_t w : sample_work) {
    const SeqState& s = *states[w];
    const SamplingParams& sp = s.sampling;
    SampleRow r;
    r.temperature = sp.temperature;
    r.top_k = sp.top_k;
    r.top_p = sp.top_p;
    r.min_p = sp.min_p;
    r.repetition_penalty = sp.repetition_penalty;
    r.presence_penalty = sp.presence_penalty;
    r.frequency_penalty = sp.frequency_penalty;
    r.num_logprobs = std::clamp(sp.logprobs, 0, kMaxTopLogprobs);
    r.seed = sp.seed;
    r.step = static_cast<int64_t>(s.tokens.size());
    r.entries_begin = nentries;
    if (wants_entries(sp)) {
      std::map<TokenId, SampleEntry> m;
      if (sp.repetition_penalty != 1.0f)
        for (int32_t i = 0; i < s.num_prompt; ++i) m[s.tokens[i]].in_prompt = 1;
      for (const auto& [t, n] : s.output_counts) m[t].output_count = n;
      for (const auto& [t, bias] : sp.logit_bias)
        if (t >= 0 && t < c.vocab_size) m[t].bias += bias;
      TS_CHECK(nentries + static_cast<int64_t>(m.size()) <= kMaxSampleEntries, kResourceExhausted,
               "penalty/bias entries of this step exceed {}", kMaxSampleEntries);
      for (auto& [t, e] : m) {
        e.token = t;
        b.h_entries.push_back(e);
      }
      nentries = static_cast<int32_t>(b.h_entries.size());
    }
    r.entries_end = nentries;
    srows.push_back(r);
  }
  if (bucket > 0) {  // pad to the graph's bucket: rows that write nothing and sample greedily
    for (int32_t r = rows; r < bucket; ++r) {
      b.h_ids[r] = 0;
      b.h_positions[r] = 0;
      b.h_slots[r] = -1;
      b.h_logit_rows[r] = r;
      srows.push_back(SampleRow{});
    }
    for (int32_t t = ntiles; t < bucket; ++t) b.h_tiles[t] = AttentionTile{0, 0, 0, 0};
    ntiles = bucket;
    nlogit = bucket;
  }
  int32_t max_context = 1;
  for (int32_t w = 0; w < nwork; ++w)
    max_context = std::max(max_context, states[w]->computed + plan.scheduled[w].num_tokens);
  const int32_t splits = step_splits(ntiles, padded_rows, max_q == 1, max_context);
  // Rows whose outputs nothing reads (a prompt's rows before its last, chunks that do not sample): the
  // last layer drops them after attention. Never with full logits or prompt logprobs (they read every
  // row's final hidden state) or in a graph-replayed decode step (every row is sampled there). Its
  // attention then runs over the tiles holding a logit row only, uploaded after the step's tiles.
  const bool prune = options_.prune_last_layer && logits == nullptr && prompt_rows.empty() && bucket == 0 &&
                     nlogit < rows;
  int32_t logit_tiles = 0;
  if (prune && ntiles + nlogit <= max_tiles_)
    logit_tiles = copy_tiles_holding_rows(b.h_tiles.data(), ntiles, b.h_logit_rows.data(), nlogit,
                                          b.h_tiles.data() + ntiles);

  if (comm_) {  // vocabulary-parallel embedding: this rank's row of a token, or none (a zero row)
    const parallel::ShardPlan& sp = *options_.shard;
    for (int32_t r = 0; r < padded_rows; ++r) {
      const int32_t local = b.h_ids[r] - sp.first_vocab;
      b.h_ids[r] = local >= 0 && local < sp.vocab_rows ? local : -1;
    }
  }
  if (step_begin_ != nullptr) CUDA_CHECK(cudaEventRecord(step_begin_, stream_));
  // Block-table rows for the whole bucket in a graph-replayed step (its layout depends on the bucket only).
  upload_inputs(padded_rows, nlogit, ntiles + logit_tiles, srows, bucket > 0 ? bucket : nwork);

  const int32_t nsrows = static_cast<int32_t>(srows.size());
  // Every row greedy without logprobs (the padding rows are): the sampler skips its selection and
  // draw kernels; decode graphs are kept apart for the two cases.
  const bool greedy_only = std::all_of(srows.begin(), srows.end(),
                                    [](const SampleRow& r) { return r.temperature <= 0.0f && r.num_logprobs <= 0; });
  ForwardShape f;
  f.rows = rows;
  f.num_tiles = ntiles;
  f.max_q_len = max_q;
  f.splits = splits;
  f.logit_rows = nlogit;
  f.sample_rows = nsrows;
  f.greedy_only = greedy_only;
  f.no_selection = std::none_of(srows.begin(), srows.end(),
                                [&](const SampleRow& r) { return sample_row_wants_selection(r, c.vocab_size); });
  f.prune_last_layer = prune;
  f.logit_tiles = logit_tiles;
  f.logit_splits = logit_tiles > 0 ? step_splits(logit_tiles, padded_rows, false, max_context) : 1;
  pruned_steps_ += prune ? 1 : 0;
  if (logits != nullptr) {
    f.sample_rows = 0;
    forward(f);
    if (comm_) comm_->synchronize();  // the copy below blocks the host: never on a lost peer's collective
    logits->resize(static_cast<size_t>(rows) * c.vocab_size);
    CUDA_CHECK(cudaMemcpyAsync(logits->data(), b.logits, logits->size() * sizeof(float), cudaMemcpyDeviceToHost,
                               stream_));
    // Move the sampled rows' logits to the front, where the sampler reads them.
    for (int32_t i = 0; i < nsample; ++i) {
      int32_t r = 0;
      for (int32_t w = 0; w <= sample_work[i]; ++w) r += plan.scheduled[w].num_tokens;
      CUDA_CHECK(cudaMemcpyAsync(b.logits + static_cast<int64_t>(i) * c.vocab_size,
                                 b.logits + static_cast<int64_t>(r - 1) * c.vocab_size, c.vocab_size * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream_));
    }
    // (rows are in increasing order, so a later copy never reads a row an earlier one overwrote,
    // except row i == r - 1, which is a copy onto itself.)
    if (nsample > 0) launch_sampler(nsample, greedy_only, f.no_selection);
  } else if (bucket > 0) {
    // One graph per (bucket, split count, sampler launches): each is baked into the captured launches.
    const DecodeGraphKey key{bucket, splits, decode_sampler_mode(greedy_only, f.no_selection)};
    if (auto it = graphs_.find(key); it != graphs_.end()) {
      CUDA_CHECK(cudaGraphLaunch(it->second->exec, stream_));
    } else {  // not captured at start (or capture_decode_graphs never ran): this step's eager run captures it
      capture_decode_graph(decode_shape(key), key);
      ++step_graph_captures_;
      spdlog::debug("a step captured the decode graph of {}", to_string(key));
    }
  } else {
    forward(f);
  }

  // Prompt logprobs (eager steps only: a decode-only step never predicts a prompt token). Computed
  // here, synchronously: prompt-logprob steps are prefill steps, and their results are small.
  if (!prompt_rows.empty()) {
    TS_ASSERT(bucket == 0, "prompt logprob rows in a graph-replayed decode step");
    std::vector<float> p_chosen, p_top_lp;
    std::vector<int32_t> p_top_tok;
    prompt_logprobs_pass(rows, prompt_rows, prompt_targets, prompt_k, &p_chosen, &p_top_tok, &p_top_lp);
    for (const PromptSpan& span : prompt_spans) {
      PromptLogprobs& pl = pending_.prompt_logprobs.emplace_back();
      pl.seq_id = plan.scheduled[span.work].seq_id;
      pl.first_position = span.first_position;
      const int32_t k = std::min(states[span.work]->sampling.prompt_logprobs, c.vocab_size);
      for (int32_t i = span.begin; i < span.begin + span.count; ++i) {
        pl.chosen.push_back(TokenLogprob{prompt_targets[i], p_chosen[i]});
        auto& top = pl.top.emplace_back();
        for (int32_t j = 0; j < k; ++j) {
          const size_t o = static_cast<size_t>(i) * kMaxTopLogprobs + j;
          top.push_back(TokenLogprob{p_top_tok[o], p_top_lp[o]});
        }
      }
    }
  }

  // Enqueue the read-back of the sampled tokens into pinned memory; collect() waits for it.
  pending_.active = true;
  for (int32_t i = 0; i < nsample; ++i) {
    pending_.sampled_seqs.push_back(plan.scheduled[sample_work[i]].seq_id);
    pending_.num_logprobs.push_back(srows[i].num_logprobs);
    pending_.any_top = pending_.any_top || srows[i].num_logprobs > 0;
  }
  if (nsample > 0) {
    CUDA_CHECK(cudaMemcpyAsync(b.h_out_token, b.out_token, nsample * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaMemcpyAsync(b.h_out_logprob, b.out_logprob, nsample * sizeof(float), cudaMemcpyDeviceToHost,
                               stream_));
    if (pending_.any_top) {
      const size_t n = static_cast<size_t>(nsample) * kMaxTopLogprobs;
      CUDA_CHECK(cudaMemcpyAsync(b.h_out_top_tokens, b.out_top_tokens, n * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                 stream_));
      CUDA_CHECK(cudaMemcpyAsync(b.h_out_top_logprobs, b.out_top_logprobs, n * sizeof(float),
                                 cudaMemcpyDeviceToHost, stream_));
    }
  }
  if (step_end_ != nullptr) CUDA_CHECK(cudaEventRecord(step_end_, stream_));
  for (int32_t w = 0; w < nwork; ++w) states[w]->computed += plan.scheduled[w].num_tokens;
}

StepResult CudaRunner::collect() {
  TS_ASSERT(pending_.active, "a step was collected that was never begun");
  pending_.active = false;
  wait_for_stream();  // bounded under TP: never hangs on a lost peer's collective
  save_gemm_tuning();  // new shapes this step: the cache file gets their choices
  if (gemm_timed_reported_ >= 0 && gemm_->num_timed_shapes() != gemm_timed_reported_) {
    spdlog::warn("{} GEMM shape(s) were timed during a step although tune_gemms() chose every row bucket at start "
                 "(a projection it does not cover)", gemm_->num_timed_shapes() - gemm_timed_reported_);
    gemm_timed_reported_ = gemm_->num_timed_shapes();
  }
  if (step_end_ != nullptr) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, step_begin_, step_end_));
    last_device_ms_ = ms;
  }
  const Buffers& b = *buf_;
  StepResult result;
  result.step_id = pending_.step_id;
  for (size_t i = 0; i < pending_.sampled_seqs.size(); ++i) {
    SampledToken st;
    st.seq_id = pending_.sampled_seqs[i];
    st.token = b.h_out_token[i];
    st.logprob = b.h_out_logprob[i];
    for (int32_t j = 0; j < pending_.num_logprobs[i]; ++j)
      st.top.push_back(TokenLogprob{b.h_out_top_tokens[i * kMaxTopLogprobs + j],
                                    b.h_out_top_logprobs[i * kMaxTopLogprobs + j]});
    result.sampled.push_back(std::move(st));
  }
  result.prompt_logprobs = std::move(pending_.prompt_logprobs);
  pending_.prompt_logprobs.clear();
  return result;
}

}  // namespace tessera::cuda
