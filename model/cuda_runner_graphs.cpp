// CudaRunner's decode CUDA graphs: the one capture path (capture_decode_graph, used at start by
// capture_decode_graphs and by a step that finds its graph missing), the split count a step's
// launches bake in, and the padding inputs a capture at start runs on. Which graphs exist is
// model/decode_graph_plan.h's business; this file must never choose keys of its own.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.cuh"
#include "model/cuda_runner.h"
#include "model/cuda_runner_buffers.h"

namespace tessera::cuda {

int32_t CudaRunner::step_splits(int32_t ntiles, int32_t padded_rows, bool one_token_tiles, int32_t max_context) const {
  const ModelConfig& c = config_;
  // forward_as() routes one-token bf16 steps to the decode kernel the same way.
  const bool decode_kernel = options_.dtype != DType::kF32 && one_token_tiles &&
                             attention_decode_supported(c.num_attention_heads, c.num_key_value_heads, c.head_dim);
  const int32_t splits = decode_kernel && options_.decode_splits > 0 ? options_.decode_splits
                         : decode_kernel ? attention_decode_splits(ntiles, c.num_attention_heads, c.num_key_value_heads,
                                                                 c.head_dim, decode_device_.sm_count, max_context,
                                                                 options_.decode_min_split_keys, options_.decode_whole_waves)
                                       : attention_splits(ntiles, c.num_attention_heads, c.num_key_value_heads,
                                                          c.head_dim, decode_device_.sm_count, max_context);
  return std::max(1, std::min(splits, part_rows_ / std::max(padded_rows, 1)));  // the partials' capacity
}

int32_t CudaRunner::decode_step_splits(int32_t batch, int32_t max_context) const {
  const int32_t bucket =
      options_.cuda_graphs ? decode_graph_bucket(batch, options_.max_num_seqs, options_.max_num_tokens) : 0;
  const int32_t rows = bucket > 0 ? bucket : batch;
  return step_splits(rows, rows, /*one_token_tiles=*/true, max_context);
}

CudaRunner::ForwardShape CudaRunner::decode_shape(const DecodeGraphKey& key) {
  ForwardShape f;
  f.rows = f.num_tiles = f.logit_rows = f.sample_rows = key.bucket;
  f.max_q_len = 1;
  f.splits = key.splits;
  f.greedy_only = greedy_only(key.mode);
  f.no_selection = no_selection(key.mode);
  return f;
}

std::unique_ptr<CudaRunner::Graph> CudaRunner::capture_forward(const ForwardShape& f) {
  forward(f);
  wait_for_stream();
  auto g = std::make_unique<Graph>();
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    forward(f);
  } catch (...) {
    cudaStreamEndCapture(stream_, &graph);
    if (graph != nullptr) cudaGraphDestroy(graph);
    throw;
  }
  CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  const cudaError_t inst = cudaGraphInstantiate(&g->exec, graph, 0);
  cudaGraphDestroy(graph);
  CUDA_CHECK(inst);
  return g;
}

CudaRunner::Graph& CudaRunner::capture_decode_graph(const ForwardShape& f, const DecodeGraphKey& key) {
  TS_ASSERT(!graphs_.contains(key), "the decode graph of {} was captured twice", to_string(key));
  return *graphs_.emplace(key, capture_forward(f)).first->second;
}

void CudaRunner::upload_padding_inputs(int32_t bucket) {
  Buffers& b = *buf_;
  // launch()'s padding rows: no KV slot, an empty tile, their own logits, a default (greedy) sample
  // row. Under tensor parallelism the token is looked up as launch maps it (none: a zero row).
  int32_t pad_id = 0;
  if (comm_) pad_id = options_.shard->first_vocab == 0 && options_.shard->vocab_rows > 0 ? 0 : -1;
  for (int32_t r = 0; r < bucket; ++r) {
    b.h_ids[r] = pad_id;
    b.h_positions[r] = 0;
    b.h_slots[r] = -1;
    b.h_logit_rows[r] = r;
    b.h_tiles[r] = AttentionTile{0, 0, 0, 0};
  }
  std::fill_n(b.h_block_tables.begin(), static_cast<int64_t>(bucket) * max_blocks_per_seq_, 0);
  b.h_entries.clear();
  upload_inputs(bucket, bucket, bucket, std::vector<SampleRow>(bucket), bucket);
}

int CudaRunner::capture_decode_graphs() {
  if (!options_.cuda_graphs) return 0;
  TS_CHECK(!pending_.active, kFailedPrecondition, "decode graphs cannot be captured while step {} is in flight",
           pending_.step_id);
  const auto t0 = std::chrono::steady_clock::now();
  size_t free_before = 0, free_after = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
  const std::vector<int32_t> buckets = decode_graph_buckets(options_.max_num_seqs, options_.max_num_tokens);
  const std::vector<DecodeGraphKey> keys =
      decode_graph_keys(buckets, options_.max_model_len, [this](int32_t bucket, int32_t max_context) {
        return step_splits(bucket, bucket, /*one_token_tiles=*/true, max_context);
      });
  int captured = 0;
  int32_t uploaded = 0;  // the bucket whose padding rows the input region holds
  for (const DecodeGraphKey& key : keys) {
    if (graphs_.contains(key)) continue;
    if (key.bucket != uploaded) {
      upload_padding_inputs(key.bucket);
      uploaded = key.bucket;
    }
    capture_decode_graph(decode_shape(key), key);
    ++captured;
  }
  CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
  const double mib = (static_cast<double>(free_before) - static_cast<double>(free_after)) / 1048576.0;
  spdlog::info("CUDA graphs: {} decode graphs captured in {:.2f} s (batch buckets 1..{}, contexts to {}, 3 sampler "
               "modes; {} held); {:.0f} MiB of device memory",
               captured, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               buckets.empty() ? 0 : buckets.back(), options_.max_model_len, graphs_.size(), mib);
  return captured;
}

}  // namespace tessera::cuda
