// CudaRunner: the StepExecutor that runs StepPlans on one GPU. bf16 weights and activations, fp32
// accumulation and residual stream, a paged bf16 KV cache sized from free device memory (or, with
// dtype kF32, all of these in fp32: the exact mode that matches the CPU engine), cuBLASLt
// projections, fused kernels, GPU sampling, a dedicated stream, and CUDA graphs for decode-only
// steps (one per batch bucket, split count and sampler mode: every one a step can need captured at
// start by capture_decode_graphs, else on first use). Per-sequence state (tokens, block table,
// penalty counts) lives here keyed by SeqId, as step_plan.h prescribes.
// Tensor parallelism: with CudaRunnerOptions::shard and ::communicator it runs one rank's slice
// (parallel::ShardPlan): vocabulary-parallel embedding + all-reduce, one all-reduce after o_proj and
// after down_proj, the LM head's logits all-gathered so every rank samples the same tokens. The
// collectives are enqueued on the runner's stream (so decode graphs capture them; a communicator
// that cannot be captured, host-staged collectives, makes every step eager) and every wait goes
// through the communicator, which gives up (aborting) when the group is lost.
// It must never parse files (weights come through TensorSource) nor know about the scheduler's
// internals.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/attention_decode.cuh"
#include "model/cuda_layer_projections.h"
#include "model/cuda_weights.h"
#include "model/decode_graph_plan.h"
#include "model/gemm_tuning_file.h"
#include "model/model_config.h"
#include "parallel/communicator.h"
#include "parallel/shard_spec.h"
#include "scheduler/step_plan.h"

namespace tessera::cuda {

class Gemm;
struct SampleRow;

struct CudaRunnerOptions {
  int32_t device = 0;
  float gpu_memory_utilization = 0.90f;  // share of the device's memory Tessera may hold in all
  // Runners sharing the device (tensor-parallel ranks with --tp-ranks-per-device K): above 1 this
  // runner's budget is gpu_memory_utilization / K of the device for what it allocates itself (weights,
  // activations, KV cache; 512 MiB kept aside for its context and libraries), whatever the others hold.
  int32_t runners_per_device = 1;
  int32_t block_size = 16;
  int32_t max_num_tokens = 8192;         // rows of one step (prefill chunks + decodes)
  int32_t max_num_seqs = 256;            // sequences in one step
  int32_t max_model_len = 0;             // 0: config.max_position_embeddings (at most 131072)
  int32_t max_logit_rows = 0;            // rows whose logits one step may return; 0: max_num_seqs
  bool cuda_graphs = true;
  bool gemm_autotune = true;             // false: Gemm::set_autotune(false) (reproducible across processes)
  int64_t max_kv_blocks = 0;             // 0: as many as memory allows
  // Tensor parallelism (parallel/): this rank's slice of the model, and the factory of the
  // communicator its collectives run on, called once with the device and the runner's stream
  // (an NcclCommunicator; a one-rank group at --tp 1 --tp-backend nccl; or a HostStagedCommunicator).
  // Both or neither. A communicator that is not graph_capturable() turns cuda_graphs off.
  std::optional<parallel::ShardPlan> shard;
  std::function<std::unique_ptr<parallel::Communicator>(int32_t device, cudaStream_t stream)> communicator;
  DType dtype = DType::kBF16;            // element type of weights, activations and KV cache: kBF16 or kF32
  int32_t decode_min_split_keys = 0;     // decode attention: fewest keys per split (0: the kernel's 32, or 16 up to 32 splits)
  bool decode_whole_waves = true;        // decode attention: thin last waves split for whole waves (false: the rule before)
  int32_t decode_splits = 0;             // decode attention: this many key splits on every decode step (0: the rule)
  bool time_device_steps = false;        // record CUDA events around each step (last_device_ms())
  // A file keeping the GEMM autotuner's choices across restarts (model/gemm_tuning_file.h): read at
  // start (choices for this device and library build replace timing), rewritten whenever a step
  // brought new shapes. Tensor-parallel ranks append ".rank<r>". Empty: none.
  std::string gemm_tuning_cache;
  // bf16 one-token steps: qkv_post + decode attention + merge in one launch (paged_attention_decode_fused).
  // Off by default: on nvidia-h200 it measured no faster than the three kernels (docs/CUDA.md).
  bool fused_decode_attention = false;
  // Steps of more than kSkinnyMaxM rows on one GPU (no tensor parallelism): o_proj and down_proj add
  // into the fp32 residual stream in cuBLASLt's epilogue (Gemm::run_accumulate), so the norms after
  // them read the residual once instead of reading it, the projection and writing it back. Changes
  // those steps' rounding (the sum is taken before the bf16 rounding of the projection). Off: the
  // projection is rounded to bf16 and added by add_rmsnorm, as in decode steps.
  bool fused_residual_gemm = true;
  // Gemm::set_warp_variant_margin: how much faster, timed alone, a warp-per-column gemv variant must be
  // than the best split-K one to be chosen (0: never).
  float gemv_warp_margin = 0.97f;
  // Gemm::set_sustained_tuning_rows: shapes tuned at this many rows or more choose their cuBLASLt
  // algorithm again among the burst's near-winners timed at the board's power cap (0: never). On
  // nvidia-h200 a 4,096-token prefill ran 98.1-98.4 ms with it against 99.1-101.3 without, and its
  // choices repeated across processes where the burst's did not (docs/CUDA.md); start-up pays ~2 s.
  int32_t gemm_sustained_tuning_rows = 2048;
  // The prefill attention kernel's variant (kernels/cuda/attention_prefill_tc.cuh; 0: its default for
  // the device). For benchmarks comparing them.
  int32_t prefill_attention_variant = 0;
  // Steps whose o/down projections add into the residual (fuses_residual) and that have more rows than
  // this run the MLP (gate/up GEMM, silu_mul, down GEMM) this many rows at a time, so a chunk's gate/up
  // product (rows x 2 x intermediate bf16) is still in L2 when silu_mul and down read it. 0: the whole
  // step at once. Rows are independent in the MLP, so only the GEMM algorithms (those of the chunk's
  // row bucket) differ from an unchunked step. Off by default: on nvidia-h200 every chunk size measured
  // no faster than the whole step (docs/CUDA.md).
  int32_t prefill_mlp_chunk_rows = 0;
  // Steps of more than kSkinnyMaxM rows on compute capability 9.0 run the MLP's gate/up projection as
  // one GEMM with the SwiGLU epilogue (Gemm::set_prefill_swiglu, kernels/cuda/gemm_swiglu_wgmma.cuh):
  // act is stored directly, the gate/up product never reaches memory and silu_mul is not launched.
  // On by default since session 10: on nvidia-h200 its clustered variant runs the 4,096-row gate/up
  // projection in 1,269 µs against 1,305 for cuBLASLt + silu_mul, and the 4,096-token prefill was
  // faster with it in 3 of 3 alternating pairs (docs/CUDA.md). With GEMM autotuning it is timed against
  // cuBLASLt + silu_mul per row bucket and kept only where faster. Tensor-parallel ranks never take it
  // (their o/down GEMMs do not add into the residual: fuses_residual).
  bool prefill_swiglu_gemm = true;
  // That GEMM's variant (Gemm::set_swiglu_variant; -1: the fastest timed per row bucket). For A/B runs.
  int32_t prefill_swiglu_variant = -1;
  // Eager steps with rows whose outputs nothing reads (prefill rows before a sequence's last; no
  // prompt logprobs, no full logits): after the last layer's attention only the rows whose logits
  // are computed go on (o_proj, MLP, final norm), gathered to the front; every row's K/V is still
  // written to the cache. The kept rows' values are those of the whole step up to the GEMM algorithms
  // of the smaller row count. Off: every row runs to the final norm, as the prompt-logprob pass needs.
  bool prune_last_layer = true;
  // With GEMM autotuning, bf16 and one GPU: the projection paths of decode steps of up to kSkinnyMaxM
  // rows are chosen again inside the whole decode step (CudaRunner::tune_decode_chain), where
  // programmatic dependent launch overlaps a gemv's or skinny kernel's first loads with the kernel
  // before it, which timing one launch alone cannot show. On nvidia-h200 five processes timing alone ran b1/512 at 3.880-3.975 ms
  // by their choices, and a process replaying a slow process's choices stayed slow (docs/CUDA.md).
  bool decode_chain_tuning = true;
};

class CudaRunner : public StepExecutor {
 public:
  // Allocates weights (uninitialised), activations and the KV cache; logs the device and path.
  // `config` is the whole model's; with options.shard the runner holds that rank's slice.
  CudaRunner(const ModelConfig& config, const CudaRunnerOptions& options);
  ~CudaRunner() override;

  // CUDA devices this process can use; 0 when there is no GPU or driver (never throws).
  static int available_devices();

  void load_dummy_weights(uint64_t seed);
  void load_weights(const TensorSource& source);
  // Chooses the GEMM path of every row bucket a step can use (powers of two up to max_num_tokens; the
  // LM head's up to max_logit_rows) now, timed on random activations, so a step of a new size never
  // stops to time shapes while requests wait (Gemm row buckets: any m takes its bucket's choice).
  // With the tuning cache only what it lacks is timed; without autotuning nothing is. Call after the
  // weights are loaded. Returns the number of shapes timed.
  int tune_gemms();
  // What a step of `rows` rows runs for the MLP's gate/up projection once tuned: the SwiGLU GEMM's
  // variant (>= 0), -1 cuBLASLt + silu_mul (chosen by timing, or the kernel not taken), -2 not tuned yet.
  int gate_up_swiglu_choice(int32_t rows) const;
  // The attention key splits a decode step of `batch` sequences whose longest context is max_context
  // takes (padded to its graph bucket as the step would be).
  int32_t decode_step_splits(int32_t batch, int32_t max_context) const;
  // Captures now the decode graph of every key a decode-only step can need (decode_graph_keys: each
  // batch bucket up to max_num_seqs, each split count the heuristic returns for a context up to
  // max_model_len, each sampler mode), so no serving step stops to capture one. Each key runs once
  // eagerly on padding rows (they write no KV and sample greedily), then is captured; keys already
  // held are skipped. Call after tune_gemms, with no step in flight; under tensor parallelism every
  // rank at the same point (the forwards run collectives). Logs the count, time and device memory
  // taken; returns the number captured (0 without options.cuda_graphs).
  int capture_decode_graphs();
  // Decode graphs held, and how many of them a step captured itself (a key not captured at start).
  size_t num_decode_graphs() const { return graphs_.size(); }
  int64_t step_graph_captures() const { return step_graph_captures_; }
  // The paths a decode step of `rows` rows (its bucket's plans) runs qkv, o, gate/up, down and the LM
  // head on, in that order (kernels/cuda/gemm.h; both -2 where not chosen yet).
  std::vector<DecodePath> decode_projection_paths(int32_t rows) const;
  // Steps whose last layer ran on their logit rows only (CudaRunnerOptions::prune_last_layer).
  int64_t pruned_steps() const { return pruned_steps_; }

  StepResult execute(const StepPlan& plan) override;
  // Asynchronous halves (see StepExecutor): begin_execute enqueues the step and its read-back on the
  // runner's stream and returns; end_execute waits for them and builds the result.
  void begin_execute(const StepPlan& plan) override;
  StepResult end_execute() override;
  bool executes_asynchronously() const override { return true; }
  // With options.time_device_steps: the device time of the last collected step, from its first
  // upload to the end of its read-back (CUDA events on the runner's stream); 0 otherwise.
  double last_device_ms() const { return last_device_ms_; }
  // Executes a plan and also returns the fp32 logits [rows, vocab] of every row of the step (before
  // sampling processing), for correctness checks. Needs num_tokens <= max_logit_rows.
  StepResult execute_with_logits(const StepPlan& plan, std::vector<float>* logits);

  int64_t num_kv_blocks() const { return num_blocks_; }
  int32_t block_size() const { return options_.block_size; }
  size_t weight_bytes() const { return weights_->bytes(); }
  const ModelConfig& config() const { return config_; }  // this rank's shape under a shard
  DType dtype() const { return options_.dtype; }
  cudaStream_t stream() const { return stream_; }
  int32_t sm_count() const { return decode_device_.sm_count; }

 private:
  struct SeqState {
    std::vector<TokenId> tokens;
    int32_t num_prompt = 0;
    int32_t computed = 0;
    std::vector<BlockId> blocks;
    SamplingParams sampling;
    std::unordered_map<TokenId, int32_t> output_counts;  // for presence/frequency penalties
  };
  struct Graph;

  // What end_execute needs of the step begin_execute enqueued.
  struct PendingStep {
    bool active = false;
    uint64_t step_id = 0;
    std::vector<SeqId> sampled_seqs;   // in sampled-row order
    std::vector<int32_t> num_logprobs;  // per sampled row
    bool any_top = false;
    std::vector<PromptLogprobs> prompt_logprobs;  // computed (synchronously) by launch
  };

  StepResult run(const StepPlan& plan, std::vector<float>* logits);
  void launch(const StepPlan& plan, std::vector<float>* logits);
  StepResult collect();
  // What one forward pass runs over (plain data; a decode graph bakes it in).
  struct ForwardShape {
    int32_t rows = 0;         // step rows (a graph's bucket when padded)
    int32_t num_tiles = 0;    // attention tiles
    int32_t max_q_len = 0;    // longest query span of a tile (1: decode-only)
    int32_t splits = 1;       // attention key splits
    int32_t logit_rows = 0;   // rows whose logits are computed
    int32_t sample_rows = 0;  // the first sample_rows logit rows are sampled
    bool greedy_only = false;   // see launch_sampler
    bool no_selection = false;  // see launch_sampler
    // After the last layer's attention only the logit rows go on (CudaRunnerOptions::prune_last_layer;
    // eager steps whose other rows' outputs nothing reads). Then the final hidden rows are the logit
    // rows, in order.
    bool prune_last_layer = false;
    // With it: the tiles holding a logit row, uploaded after the step's num_tiles (0: the last layer's
    // attention runs over every tile), and their attention key splits.
    int32_t logit_tiles = 0;
    int32_t logit_splits = 1;
  };
  // The shape a decode graph of `key` captures (every row a one-token tile whose logits are sampled).
  static ForwardShape decode_shape(const DecodeGraphKey& key);
  // The one capture path (cuda_runner_graphs.cpp): runs f eagerly (GEMM choices and kernel loading
  // happen outside the capture; for a step that captures, this run is its work), captures f and
  // keeps the graph under `key`.
  Graph& capture_decode_graph(const ForwardShape& f, const DecodeGraphKey& key);
  // Runs f eagerly, then captures and instantiates it (the capture path's work; no key kept).
  std::unique_ptr<Graph> capture_forward(const ForwardShape& f);
  // Decode-sized GEMMs chosen inside the step (model/cuda_runner_decode_chain_tuning.cpp): for each
  // decode graph bucket of at most kSkinnyMaxM rows, each projection whose paths (cuBLASLt, gemv and
  // skinny variants) came close timed alone is timed again in the whole padded decode step, once per
  // contender, and the fastest kept. Returns the number of choices changed. Called by tune_gemms.
  int tune_decode_chain();
  // Attention key splits of a step of ntiles tiles padded to padded_rows rows whose longest context
  // is max_context (one_token_tiles: a decode-only step, which the bf16 decode kernel takes).
  int32_t step_splits(int32_t ntiles, int32_t padded_rows, bool one_token_tiles, int32_t max_context) const;
  // Packs the step's inputs (the b.h_* arrays' first entries, srows, b.h_entries) into pinned memory
  // and enqueues their one upload, pointing the Buffers' input pointers into it. A graph-replayed
  // step's layout depends on its bucket only, so the pointers a graph captured stay right.
  void upload_inputs(int32_t rows, int32_t logit_rows, int32_t tiles, const std::vector<SampleRow>& srows,
                     int64_t table_rows);
  // Uploads `bucket` padding rows (what launch pads a graph's batch with) for a capture at start.
  void upload_padding_inputs(int32_t bucket);
  // The step's forward pass.
  void forward(const ForwardShape& f);
  template <typename T>  // __nv_bfloat16 or float: options_.dtype
  void forward_as(const ForwardShape& f);
  // Prompt logprobs of step rows `rows` (their next tokens `targets`), top k alternatives each, from
  // the final hidden states the forward pass left (cuda_runner_prompt_logprobs.cpp).
  void prompt_logprobs_pass(int32_t step_rows, const std::vector<int32_t>& rows, const std::vector<int32_t>& targets,
                            int32_t k, std::vector<float>* chosen, std::vector<int32_t>* top_tokens,
                            std::vector<float>* top_logprobs);
  template <typename T>
  void lm_head_rows(const int32_t* rows, int32_t n, int32_t step_rows);
  void allocate_activations();
  // Tensor parallelism: sums `count` elements (of options_.dtype) across the ranks (nothing without a
  // communicator).
  void reduce_across_ranks(void* x, int64_t count);
  // Logits [rows, vocab] of the rows x [rows, hidden] (final-normed): the LM head GEMM, all-gathered
  // across the ranks.
  void lm_head(const void* x, int32_t rows);
  // Whether a step of `rows` rows adds o_proj and down_proj into the fp32 residual in cuBLASLt's
  // epilogue (bf16, one GPU, more than kSkinnyMaxM rows; options.fused_residual_gemm).
  bool fuses_residual(int32_t rows) const;
  // One layer's GEMMs for a step of `rows` rows (model/cuda_layer_projections.h): what forward_as()
  // launches and tune_gemms() times, from this one description.
  LayerProjections layer_projections(int32_t rows) const;
  // A bf16 step's MLP in chunks of options_.prefill_mlp_chunk_rows rows (cuda_runner_mlp_chunks.cpp):
  // per chunk gate/up into the start of gate_up, silu_mul into act, down added into the chunk's
  // residual rows. Only for steps where layer_projections(rows).down adds into the residual.
  void mlp_in_row_chunks(const CudaLayerWeights& w, int32_t rows);
  // A pruned last layer (ForwardShape::prune_last_layer): the attention output and residual rows of the
  // step's logit rows (b.logit_rows, ascending) gathered to the front of attn and the residual.
  void keep_logit_rows(int32_t rows, int32_t logit_rows);
  // Logit columns this runner's LM head computes: the vocabulary, or this rank's slice of it.
  int32_t lm_head_columns() const;
  // Rows both of the LM head's inputs (hidden, gathered) and the logits hold.
  int32_t lm_head_rows() const { return std::min(options_.max_num_tokens, options_.max_logit_rows); }
  // Samples the first `rows` rows of b.logits with the uploaded SampleRows (kernels/cuda/sampling.cuh);
  // greedy_only: every row greedy without logprobs (SampleArgs::greedy_only); no_selection: no row
  // wants a top-k/top-p threshold or logprobs (SampleArgs::no_selection).
  void launch_sampler(int32_t rows, bool greedy_only, bool no_selection);
  // Waits for the stream: through the communicator under TP (bounded, aborts when the group is lost).
  void wait_for_stream();

  ModelConfig config_;
  CudaRunnerOptions options_;
  cudaStream_t stream_ = nullptr;
  DecodeDevice decode_device_;  // compute capability and SMs, read once (the decode kernels' choice)
  std::unique_ptr<CudaWeights> weights_;
  std::unique_ptr<Gemm> gemm_;
  std::unique_ptr<parallel::Communicator> comm_;  // tensor parallel only
  int64_t num_blocks_ = 0;
  int32_t max_blocks_per_seq_ = 0;
  int32_t max_tiles_ = 0;
  int32_t part_rows_ = 0;  // capacity of the split-K partial buffers, in (split x row)
  int64_t num_decode_counters_ = 0;  // fused decode attention's arrival counters (max_tiles_ tiles)
  std::vector<void*> allocations_;
  // Device buffers (see allocate_activations for shapes).
  struct Buffers;
  std::unique_ptr<Buffers> buf_;
  std::unordered_map<SeqId, SeqState> seqs_;
  std::map<DecodeGraphKey, std::unique_ptr<Graph>> graphs_;
  int64_t step_graph_captures_ = 0;  // graphs a step captured (none after capture_decode_graphs)
  int64_t pruned_steps_ = 0;
  std::vector<void*> host_allocations_;          // pinned (cudaMallocHost)
  PendingStep pending_;
  cudaEvent_t step_begin_ = nullptr, step_end_ = nullptr;  // options_.time_device_steps only
  double last_device_ms_ = 0;
  std::string gemm_tuning_path_;   // options_.gemm_tuning_cache (+ the rank's suffix); empty: none
  GemmTuningIdentity gemm_tuning_id_;  // this device and library build, for the cache file
  size_t gemm_plans_saved_ = 0;    // Gemm::num_plans() when the cache was last written
  int gemm_timed_reported_ = -1;   // after tune_gemms: Gemm::num_timed_shapes() last logged (-1: not tuned)
  void save_gemm_tuning();
};

}  // namespace tessera::cuda
