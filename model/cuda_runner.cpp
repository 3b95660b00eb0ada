// CudaRunner: plan validation and per-sequence state on the host; one packed upload per step
// (cuda_runner_step.cpp); the
// layer loop (one template for the bf16 and the fp32 element type) as kernel + cuBLASLt launches on a
// dedicated stream; decode-only steps replayed from a CUDA graph per batch-size bucket.
#include "model/cuda_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <type_traits>

#include "common/error.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/qkv_post.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/sampling.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "model/cuda_rope.h"
#include "model/cuda_runner_buffers.h"
#include "model/device_memory_budget.h"
#include "model/gemm_tuning_file.h"

namespace tessera::cuda {
namespace {

// What a GEMM tuning cache was made on: the device and the libraries whose choices it records.
GemmTuningIdentity gemm_tuning_identity(const cudaDeviceProp& prop) {
  GemmTuningIdentity id;
  id.device = prop.name;
  id.compute_capability = prop.major * 10 + prop.minor;
  id.cublaslt_version = static_cast<int64_t>(cublasLtGetVersion());
  CUDA_CHECK(cudaRuntimeGetVersion(&id.cuda_runtime_version));
  return id;
}

constexpr size_t kGemmWorkspace = 32u << 20;
// Device memory kept out of the utilisation budget for CUDA graphs, cuBLAS's own allocations and the
// like, when checking the weights and sizing the KV cache.
constexpr uint64_t kDeviceMemoryReserve = 512u << 20;

// The current device's memory as the budget sees it (model/device_memory_budget.h): what CUDA reports
// free of the total, and for runners sharing the device, how many and what this one holds.
DeviceMemory device_memory(int32_t sharers, uint64_t own_bytes) {
  DeviceMemory m;
  CUDA_CHECK(cudaMemGetInfo(&m.free_bytes, &m.total_bytes));
  m.sharers = sharers;
  m.own_bytes = own_bytes;
  return m;
}

// The fused decode launch's view of qkv_post's arguments (bf16 only) and the runner's counters.
DecodeQkvArgs decode_qkv_args(const QkvPostArgs& q, int32_t* counters, int64_t num_counters) {
  DecodeQkvArgs f;
  f.k_cache = q.k_cache;
  f.v_cache = q.v_cache;
  f.bias = q.bias;
  f.q_norm = q.q_norm;
  f.k_norm = q.k_norm;
  f.norm_eps = q.norm_eps;
  f.inv_freq = q.inv_freq;
  f.counters = counters;
  f.num_counters = num_counters;
  return f;
}

}  // namespace

CudaRunner::CudaRunner(const ModelConfig& config, const CudaRunnerOptions& options)
    : config_(options.shard ? parallel::shard_config(config, *options.shard) : config),
      options_(options),
      buf_(std::make_unique<Buffers>()) {
  TS_CHECK(options_.shard.has_value() == static_cast<bool>(options_.communicator), kInvalidArgument,
           "a tensor-parallel CUDA runner needs both a shard and a communicator (shard {}, communicator {})",
           options_.shard.has_value(), static_cast<bool>(options_.communicator));
  TS_CHECK(config_.head_dim == 64 || config_.head_dim == 128 || config_.head_dim == 256, kUnimplemented,
           "the CUDA backend supports head_dim 64, 128 or 256; config has {}", config_.head_dim);
  TS_CHECK(config_.hidden_size % 8 == 0 && config_.intermediate_size % 8 == 0, kUnimplemented,
           "the CUDA backend needs hidden_size and intermediate_size divisible by 8; got {} and {}",
           config_.hidden_size, config_.intermediate_size);
  TS_CHECK(options_.gpu_memory_utilization > 0.05f && options_.gpu_memory_utilization <= 0.99f, kInvalidArgument,
           "--gpu-memory-utilization must be in (0.05, 0.99]; got {}", options_.gpu_memory_utilization);
  TS_CHECK(options_.decode_splits >= 0 && options_.decode_splits <= 8, kInvalidArgument,
           "decode_splits must be in [0, 8]; got {}", options_.decode_splits);
  TS_CHECK(options_.runners_per_device >= 1 && options_.runners_per_device <= 64, kInvalidArgument,
           "runners per device must be in [1, 64]; got {}", options_.runners_per_device);
  TS_CHECK(options_.block_size > 0 && options_.block_size <= 1024, kInvalidArgument, "block size {} out of range",
           options_.block_size);
  TS_CHECK(options_.prefill_mlp_chunk_rows == 0 || options_.prefill_mlp_chunk_rows >= 2 * (kSkinnyMaxM + 1),
           kInvalidArgument, "--prefill-mlp-chunk must be 0 (off) or at least {} rows; got {}", 2 * (kSkinnyMaxM + 1),
           options_.prefill_mlp_chunk_rows);
  const int count = available_devices();
  TS_CHECK(count > 0, kFailedPrecondition, "no CUDA device is available (no GPU or no driver); use --device cpu");
  TS_CHECK(options_.device >= 0 && options_.device < count, kInvalidArgument, "CUDA device {} not present ({} found)",
           options_.device, count);
  CUDA_CHECK(cudaSetDevice(options_.device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, options_.device));
  if (!options_.gemm_tuning_cache.empty()) gemm_tuning_id_ = gemm_tuning_identity(prop);
  const int cc = prop.major * 10 + prop.minor;
  decode_device_ = DecodeDevice{cc, prop.multiProcessorCount};
  const char* path = cc == 90 ? "sm_90a native" : (cc == 100 ? "sm_100a native" : (cc == 103 ? "sm_103a native" : "PTX JIT"));
  spdlog::info("CUDA device {}: {} (compute {}.{}, {} SMs, {:.1f} GiB); kernel path: {}", options_.device, prop.name,
               prop.major, prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, path);
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  if (options_.max_model_len == 0)
    options_.max_model_len = std::min<int32_t>(std::max(config_.max_position_embeddings, 2048), 131072);
  if (options_.max_logit_rows == 0) options_.max_logit_rows = options_.max_num_seqs;
  options_.max_logit_rows = std::max(options_.max_logit_rows, options_.max_num_seqs);
  max_blocks_per_seq_ = (options_.max_model_len + options_.block_size - 1) / options_.block_size;
  if (options_.communicator) {
    comm_ = options_.communicator(options_.device, stream_);
    TS_CHECK(comm_ && comm_->world_size() == options_.shard->spec.tp_size && comm_->rank() == options_.shard->spec.rank,
             kInvalidArgument, "the communicator (rank {} of {}) does not match the shard (rank {} of {})",
             comm_ ? comm_->rank() : -1, comm_ ? comm_->world_size() : 0, options_.shard->spec.rank,
             options_.shard->spec.tp_size);
    if (!comm_->graph_capturable() && options_.cuda_graphs) {
      options_.cuda_graphs = false;  // host collectives wait on the host: a captured graph would skip them
      spdlog::info("CUDA graphs off: this rank's collectives cannot be captured (steps run eagerly)");
    }
  }
  {  // the weights are the largest allocation: refuse a model that cannot fit before taking any of it
    check_weights_fit(CudaWeights::required_bytes(config, options_.dtype, options_.shard),
                      device_memory(options_.runners_per_device, 0),  // nothing of this runner's allocated yet
                      options_.gpu_memory_utilization, kDeviceMemoryReserve,
                      options_.shard && options_.shard->spec.tp_size > 1 ? "this rank's weights" : "the model's weights");
  }
  weights_ = std::make_unique<CudaWeights>(config, options_.dtype, options_.shard);
  spdlog::info("CUDA compute dtype: {}", options_.dtype == DType::kF32 ? "float32 (exact mode)" : "bfloat16");
  allocate_activations();
  if (options_.time_device_steps) {
    CUDA_CHECK(cudaEventCreate(&step_begin_));
    CUDA_CHECK(cudaEventCreate(&step_end_));
  }
}

CudaRunner::~CudaRunner() {
  comm_.reset();  // aborts NCCL first: nothing below may wait on a collective a lost peer never joins
  graphs_.clear();
  gemm_.reset();
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);  // a step begun and never collected
  if (step_begin_ != nullptr) cudaEventDestroy(step_begin_);
  if (step_end_ != nullptr) cudaEventDestroy(step_end_);
  for (void* p : allocations_) cudaFree(p);
  for (void* p : host_allocations_) cudaFreeHost(p);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

int CudaRunner::available_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

void CudaRunner::allocate_activations() {
  const ModelConfig& c = config_;
  const int64_t T = options_.max_num_tokens, H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t L = options_.max_logit_rows, S = options_.max_num_seqs;
  const int64_t qkv = c.q_size() + 2 * c.kv_size();
  max_tiles_ = static_cast<int32_t>(T + S);
  part_rows_ = static_cast<int32_t>(std::max<int64_t>(4 * T, 512));
  uint64_t own_bytes = weights_->bytes();  // what this runner holds (DeviceMemory::own_bytes)
  auto alloc = [&](auto*& p, int64_t n) {
    void* raw = nullptr;
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(*p);
    CUDA_CHECK(cudaMalloc(&raw, bytes));
    own_bytes += bytes;
    allocations_.push_back(raw);
    p = static_cast<std::remove_reference_t<decltype(p)>>(raw);
  };
  const int64_t elem = static_cast<int64_t>(dtype_size(options_.dtype));
  auto alloc_elems = [&](void*& p, int64_t n) {  // n elements of the runner's dtype
    char* raw = nullptr;
    alloc(raw, n * elem);
    p = raw;
  };
  Buffers& b = *buf_;
  // The step inputs' region: every array at its capacity (pack_inputs never lays out more).
  b.inputs_bytes = input_layout(T, L, max_tiles_, L, S * max_blocks_per_seq_, kMaxSampleEntries).end;
  alloc(b.inputs, static_cast<int64_t>(b.inputs_bytes));
  alloc(b.residual, T * H);
  alloc_elems(b.hidden, T * H);
  alloc_elems(b.qkv, T * qkv);
  alloc_elems(b.attn, T * c.q_size());
  alloc_elems(b.gate_up, T * 2 * I);
  alloc_elems(b.act, T * I);
  alloc_elems(b.proj, T * H);
  alloc(b.o_part, static_cast<int64_t>(part_rows_) * c.num_attention_heads * c.head_dim);
  alloc(b.ml_part, static_cast<int64_t>(part_rows_) * c.num_attention_heads * 2);
  num_decode_counters_ = attention_decode_counters(max_tiles_, c.num_attention_heads, c.num_key_value_heads);
  alloc(b.decode_counters, num_decode_counters_);
  CUDA_CHECK(cudaMemset(b.decode_counters, 0, std::max<int64_t>(num_decode_counters_, 1) * sizeof(int32_t)));
  alloc_elems(b.gathered, L * H);
  alloc(b.pruned_residual, std::min(T, L) * H);
  alloc(b.logits, L * V);
  if (comm_) {
    const int64_t vpr = options_.shard->vocab_per_rank;
    alloc(b.logits_local, L * vpr);
    alloc(b.logits_all, L * vpr * comm_->world_size());
  }
  alloc(b.out_token, L);
  alloc(b.out_logprob, L);
  alloc(b.out_top_tokens, L * kMaxTopLogprobs);
  alloc(b.out_top_logprobs, L * kMaxTopLogprobs);
  {
    uint8_t* ws = nullptr;
    alloc(ws, static_cast<int64_t>(sample_workspace_bytes(static_cast<int32_t>(L))));
    CUDA_CHECK(cudaMemset(ws, 0, sample_workspace_bytes(static_cast<int32_t>(L))));
    b.sample_workspace = ws;
    b.sample_workspace_rows = static_cast<int32_t>(L);
  }
  alloc(b.prompt_rows, T);
  alloc(b.prompt_targets, T);
  alloc(b.prompt_chosen, T);
  alloc(b.prompt_top_tokens, T * kMaxTopLogprobs);
  alloc(b.prompt_top_logprobs, T * kMaxTopLogprobs);
  alloc(b.inv_freq, c.head_dim / 2);
  auto alloc_host = [&](auto*& p, int64_t n) {
    void* raw = nullptr;
    CUDA_CHECK(cudaMallocHost(&raw, std::max<int64_t>(n, 1) * sizeof(*p)));
    host_allocations_.push_back(raw);
    p = static_cast<std::remove_reference_t<decltype(p)>>(raw);
  };
  alloc_host(b.h_inputs, static_cast<int64_t>(b.inputs_bytes));
  alloc_host(b.h_out_token, L);
  alloc_host(b.h_out_logprob, L);
  alloc_host(b.h_out_top_tokens, L * kMaxTopLogprobs);
  alloc_host(b.h_out_top_logprobs, L * kMaxTopLogprobs);
  char* ws = nullptr;
  alloc(ws, static_cast<int64_t>(kGemmWorkspace));
  b.gemm_workspace = ws;
  // Scratch the GEMM tuner overwrites before each timed call (more than the L2), so the skinny
  // tensor-core kernel, the gemv and cuBLASLt are timed with their weights in DRAM.
  const size_t skinny_bytes = 64u << 20;
  char* skinny_ws = nullptr;
  alloc(skinny_ws, static_cast<int64_t>(skinny_bytes));
  gemm_ = std::make_unique<Gemm>(b.gemm_workspace, kGemmWorkspace, skinny_ws, skinny_bytes);
  gemm_->set_autotune(options_.gemm_autotune);
  gemm_->set_warp_variant_margin(options_.gemv_warp_margin);
  gemm_->set_sustained_tuning_rows(options_.gemm_sustained_tuning_rows);
  gemm_->set_prefill_swiglu(options_.prefill_swiglu_gemm);
  gemm_->set_swiglu_variant(options_.prefill_swiglu_variant);
  if (!options_.gemm_tuning_cache.empty()) {
    gemm_tuning_path_ = options_.gemm_tuning_cache;
    if (options_.shard && options_.shard->spec.tp_size > 1)
      gemm_tuning_path_ += ".rank" + std::to_string(options_.shard->spec.rank);
    for (const GemmChoice& choice : read_gemm_tuning(gemm_tuning_path_, gemm_tuning_id_)) gemm_->preset(choice);
  }
  const auto freq = rope_inv_freq(c);
  CUDA_CHECK(cudaMemcpy(b.inv_freq, freq.data(), freq.size() * sizeof(float), cudaMemcpyHostToDevice));

  // The KV cache takes what the utilisation budget leaves (a margin for graphs and cuBLAS kept aside).
  const int64_t block_bytes =
      2LL * c.num_hidden_layers * options_.block_size * c.num_key_value_heads * c.head_dim * elem;
  const int64_t blocks = kv_cache_blocks(device_memory(options_.runners_per_device, own_bytes),
                                         options_.gpu_memory_utilization, kDeviceMemoryReserve, block_bytes,
                                         options_.max_kv_blocks);
  num_blocks_ = blocks;
  alloc_elems(b.kv, blocks * block_bytes / elem);
  spdlog::info("CUDA KV cache: {} blocks of {} tokens ({:.2f} GiB); weights {:.2f} GiB", num_blocks_,
               options_.block_size, blocks * block_bytes / 1073741824.0, weights_->bytes() / 1073741824.0);

  b.h_ids.resize(T);
  b.h_positions.resize(T);
  b.h_slots.resize(T);
  b.h_logit_rows.resize(L);
  b.h_tiles.resize(max_tiles_);
  b.h_block_tables.resize(S * max_blocks_per_seq_);
  b.h_entries.reserve(1024);
}

void CudaRunner::save_gemm_tuning() {
  if (gemm_tuning_path_.empty() || gemm_->num_plans() == gemm_plans_saved_) return;
  gemm_plans_saved_ = gemm_->num_plans();
  try {
    write_gemm_tuning(gemm_tuning_path_, gemm_tuning_id_, gemm_->choices());
  } catch (const Error& e) {  // a cache: serving goes on without it
    spdlog::warn("{}", e.what());
  }
}

void CudaRunner::load_dummy_weights(uint64_t seed) { weights_->fill_dummy(seed, stream_); }

void CudaRunner::load_weights(const TensorSource& source) { weights_->load(source, stream_); }

void CudaRunner::forward(const ForwardShape& f) {
  if (options_.dtype == DType::kF32) return forward_as<float>(f);
  forward_as<__nv_bfloat16>(f);
}

template <typename T>
void CudaRunner::forward_as(const ForwardShape& f) {
  const int32_t rows = f.rows, num_tiles = f.num_tiles, max_q_len = f.max_q_len, splits = f.splits,
                logit_rows = f.logit_rows, sample_rows = f.sample_rows;
  const ModelConfig& c = config_;
  Buffers& b = *buf_;
  const int32_t H = c.hidden_size, I = c.intermediate_size;
  const int32_t qkv_n = c.q_size() + 2 * c.kv_size();
  const int64_t layer_slots = num_blocks_ * options_.block_size;
  const int64_t cache_elems = layer_slots * c.num_key_value_heads * c.head_dim;
  auto as = [](const void* p) { return static_cast<const T*>(p); };
  T* const hidden = static_cast<T*>(b.hidden);
  T* const qkv = static_cast<T*>(b.qkv);
  T* const attn = static_cast<T*>(b.attn);
  T* const gate_up = static_cast<T*>(b.gate_up);
  T* const act = static_cast<T*>(b.act);
  T* const proj = static_cast<T*>(b.proj);
  T* const gathered = static_cast<T*>(b.gathered);
  T* const kv = static_cast<T*>(b.kv);
  // The layer's GEMMs as layer_projections() describes them (tune_gemms() times the same): y[m, n] =
  // x[m, k] · w[n, k]ᵀ in T (bf16: the autotuned cuBLASLt/gemv path; fp32: cuBLASLt fp32). Steps above
  // kSkinnyMaxM rows (prefill chunks, large batches) on one GPU: o_proj and down_proj add into the
  // fp32 residual in cuBLASLt's epilogue and the norms after them only read it (half the norm
  // kernels' traffic). Every activation buffer holds max_num_tokens rows: the tuner's row buckets may
  // use them all. Returns what the next norm adds to the residual (nullptr: already added). No row past
  // m is live in any of them (nor in the residual), so steps of 65-127 rows run their plain projections
  // over the full 128-row bucket (Gemm's pad_rows: full cuBLASLt row tiles, faster in the chain).
  const int32_t cap = options_.max_num_tokens;
  // m: the rows the layer runs on, the step's, or the logit rows after a pruned last layer's attention.
  int32_t m = rows;
  LayerProjections gemms = layer_projections(rows);
  using Store = LayerProjection::Store;
  auto project = [&](const LayerProjection& g, const CudaLayerWeights& w) -> const T* {
    const void* wt = w.*g.weight;
    if constexpr (std::is_same_v<T, float>) {
      TS_ASSERT(g.store == Store::kPlain, "the exact mode's GEMMs store their product plainly");
      gemm_->run_f32(as(g.x), as(wt), static_cast<T*>(g.y), m, g.n, g.k, stream_, cap);
    } else if (g.store == Store::kAddToResidual) {
      gemm_->run_accumulate(g.x, wt, b.residual, static_cast<float*>(g.y), m, g.n, g.k, stream_, cap, true);
      return nullptr;
    } else if (g.store == Store::kSiluMul) {
      gemm_->run_silu_mul(g.x, g.act, wt, g.y, m, g.n, g.k, stream_, cap, true);
    } else if (g.store == Store::kGateUpSilu) {
      if (gemm_->run_gate_up_silu(g.x, wt, g.y, g.act, m, g.n / 2, g.k, stream_, cap)) return as(g.act);
    } else {
      gemm_->run(g.x, wt, g.y, m, g.n, g.k, false, stream_, cap, true);
    }
    if (g.row_parallel) reduce_across_ranks(g.y, static_cast<int64_t>(m) * g.n);
    return as(g.y);
  };
  const T* to_add = proj;  // what the next norm adds to the residual (nullptr: already added)
  embedding(b.ids, rows, as(weights_->embed()), weights_->plan().vocab_rows, H, proj, stream_);
  reduce_across_ranks(proj, static_cast<int64_t>(rows) * H);  // vocabulary-parallel: one rank holds each row
  for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
    const CudaLayerWeights& w = weights_->layers()[i];
    add_rmsnorm(to_add, b.residual, as(w.input_norm), hidden, rows, H, c.rms_norm_eps, i == 0, stream_);
    project(gemms.qkv, w);
    QkvPostArgsT<T> q;
    q.qkv = qkv;
    q.bias = as(w.qkv_bias);
    q.q_norm = as(w.q_norm);
    q.k_norm = as(w.k_norm);
    q.norm_eps = c.rms_norm_eps;
    q.positions = b.positions;
    q.inv_freq = b.inv_freq;
    q.slot_mapping = b.slots;
    q.k_cache = kv + (2 * i) * cache_elems;
    q.v_cache = kv + (2 * i + 1) * cache_elems;
    q.tokens = rows;
    q.hq = c.num_attention_heads;
    q.hkv = c.num_key_value_heads;
    q.head_dim = c.head_dim;
    AttentionArgsT<T> a;
    a.q = qkv;
    a.q_row_stride = qkv_n;
    a.k_cache = q.k_cache;
    a.v_cache = q.v_cache;
    a.block_tables = b.block_tables;
    a.max_blocks_per_seq = max_blocks_per_seq_;
    a.block_size = options_.block_size;
    a.tiles = b.tiles;
    a.num_tiles = num_tiles;
    a.max_q_len = max_q_len;
    a.hq = c.num_attention_heads;
    a.hkv = c.num_key_value_heads;
    a.head_dim = c.head_dim;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    a.splits = splits;
    a.tokens = rows;
    a.o_part = b.o_part;
    a.ml_part = b.ml_part;
    a.out = attn;
    // Decode-only bf16 steps (every tile one token) take the decode kernel; the split count was chosen
    // for it. With options_.fused_decode_attention it also does qkv_post's work on the raw projection
    // and merges its splits (one launch). fp32 (the exact mode) always runs qkv_post + attention.cu's
    // CUDA-core kernel.
    const bool prune = f.prune_last_layer && i + 1 == c.num_hidden_layers;
    if (prune && logit_rows == 0) {
      qkv_post(q, stream_);  // no row's output is read: the K/V cache is all this layer is for
      return;
    }
    const bool decode_kernel = max_q_len == 1 && attention_decode_supported(a.hq, a.hkv, a.head_dim);
    if (prune && f.logit_tiles > 0 && (std::is_same_v<T, float> || !decode_kernel)) {
      a.tiles = b.tiles + num_tiles;  // only the tiles holding a logit row: the others' outputs are dropped
      a.num_tiles = f.logit_tiles;
      a.splits = f.logit_splits;
    }
    if constexpr (std::is_same_v<T, float>) {
      qkv_post(q, stream_);
      paged_attention(a, stream_);
    } else if (decode_kernel) {
      if (options_.fused_decode_attention) {
        paged_attention_decode_fused(a, decode_qkv_args(q, b.decode_counters, num_decode_counters_), stream_);
      } else {
        qkv_post(q, stream_);
        paged_attention_decode(a, decode_device_, stream_);
      }
    } else {
      qkv_post(q, stream_);
      paged_attention(a, stream_, options_.prefill_attention_variant);
    }
    if (prune) {
      keep_logit_rows(rows, logit_rows);
      m = logit_rows;
      gemms = layer_projections(m);
    }
    add_rmsnorm(project(gemms.o, w), b.residual, as(w.post_norm), hidden, m, H, c.rms_norm_eps, false, stream_);
    if (gemms.down.store == Store::kAddToResidual && options_.prefill_mlp_chunk_rows > 0 &&
        m > options_.prefill_mlp_chunk_rows) {
      mlp_in_row_chunks(w, m);  // down's products are added into the residual
      to_add = nullptr;
    } else if (project(gemms.gate_up, w) == act) {  // SiLU-and-multiply stored by the gate/up gemv: down reads act
      to_add = project(gemms.down_of_act, w);
    } else {
      if (gemms.down.store != Store::kSiluMul) silu_mul(gate_up, m, I, act, stream_);
      to_add = project(gemms.down, w);
    }
  }
  add_rmsnorm(to_add, b.residual, as(weights_->final_norm()), hidden, m, H, c.rms_norm_eps, false, stream_);
  if (f.prune_last_layer || (max_q_len == 1 && logit_rows == rows)) {
    lm_head(hidden, logit_rows);  // every hidden row is a logit row, in order (no gather)
  } else {
    embedding(b.logit_rows, logit_rows, hidden, rows, H, gathered, stream_, /*pdl=*/true);  // gather the rows
    lm_head(gathered, logit_rows);
  }
  if (sample_rows > 0) {
    launch_sampler(sample_rows, f.greedy_only, f.no_selection);
  }
}

void CudaRunner::keep_logit_rows(int32_t rows, int32_t logit_rows) {
  Buffers& b = *buf_;
  const int32_t H = config_.hidden_size, qn = config_.q_size();
  TS_ASSERT(logit_rows > 0 && logit_rows <= lm_head_rows() && logit_rows <= rows, "keep_logit_rows: {} of {} rows",
            logit_rows, rows);
  // Gathered into scratch (qkv is dead once attention has read it), then copied to the front: a gather
  // in place could overwrite a row before another block reads it.
  const size_t attn_bytes = static_cast<size_t>(logit_rows) * qn * dtype_size(options_.dtype);
  if (options_.dtype == DType::kF32) {
    embedding(b.logit_rows, logit_rows, static_cast<const float*>(b.attn), rows, qn, static_cast<float*>(b.qkv),
              stream_, /*pdl=*/true);
  } else {
    embedding(b.logit_rows, logit_rows, static_cast<const bf16_t*>(b.attn), rows, qn, static_cast<bf16_t*>(b.qkv),
              stream_, /*pdl=*/true);
  }
  CUDA_CHECK(cudaMemcpyAsync(b.attn, b.qkv, attn_bytes, cudaMemcpyDeviceToDevice, stream_));
  embedding(b.logit_rows, logit_rows, b.residual, rows, H, b.pruned_residual, stream_, /*pdl=*/true);
  CUDA_CHECK(cudaMemcpyAsync(b.residual, b.pruned_residual, static_cast<size_t>(logit_rows) * H * sizeof(float),
                             cudaMemcpyDeviceToDevice, stream_));
}

void CudaRunner::launch_sampler(int32_t rows, bool greedy_only, bool no_selection) {
  Buffers& b = *buf_;
  SampleArgs s;
  s.logits = b.logits;
  s.rows = rows;
  s.vocab = config_.vocab_size;
  s.params = b.sample_rows;
  s.entries = b.entries;
  s.out_token = b.out_token;
  s.out_logprob = b.out_logprob;
  s.out_top_tokens = b.out_top_tokens;
  s.out_top_logprobs = b.out_top_logprobs;
  s.workspace = b.sample_workspace;
  s.workspace_rows = b.sample_workspace_rows;
  s.greedy_only = greedy_only;
  s.no_selection = no_selection;
  sample(s, stream_);
}

void CudaRunner::reduce_across_ranks(void* x, int64_t count) {
  if (comm_) comm_->all_reduce_sum(x, static_cast<size_t>(count), options_.dtype);
}

void CudaRunner::lm_head(const void* x, int32_t rows) {
  Buffers& b = *buf_;
  const int64_t H = config_.hidden_size, V = config_.vocab_size;
  // fp32 logits [rows, n] of the rows x against the rank's LM head rows. x (the hidden or gathered
  // rows) and the logits hold lm_head_rows() rows.
  const int32_t cap = lm_head_rows();
  auto project = [&](float* out, int64_t n) {
    if (options_.dtype == DType::kF32) {
      gemm_->run_f32(static_cast<const float*>(x), static_cast<const float*>(weights_->lm_head()), out, rows,
                     static_cast<int32_t>(n), static_cast<int32_t>(H), stream_, cap);
    } else {
      gemm_->run(x, weights_->lm_head(), out, rows, static_cast<int32_t>(n), static_cast<int32_t>(H), true,
                 stream_, cap);
    }
  };
  if (!comm_) {
    project(b.logits, V);
    return;
  }
  // Each rank computes its vocab_per_rank columns; the gathered blocks [rank][rows][vpr] are laid
  // side by side into [rows, vocab], the last rank's padding columns left out.
  const int64_t vpr = options_.shard->vocab_per_rank;
  project(b.logits_local, vpr);
  comm_->all_gather(b.logits_local, b.logits_all, static_cast<size_t>(rows) * vpr, DType::kF32);
  for (int r = 0; r < comm_->world_size(); ++r) {
    const int64_t first = r * vpr, width = std::min(vpr, V - first);
    if (width <= 0) continue;
    CUDA_CHECK(cudaMemcpy2DAsync(b.logits + first, V * sizeof(float), b.logits_all + r * rows * vpr,
                                 vpr * sizeof(float), width * sizeof(float), rows, cudaMemcpyDeviceToDevice, stream_));
  }
}

void CudaRunner::wait_for_stream() {
  if (comm_) {
    comm_->synchronize();
  } else {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
}

StepResult CudaRunner::execute(const StepPlan& plan) { return run(plan, nullptr); }

void CudaRunner::begin_execute(const StepPlan& plan) { launch(plan, nullptr); }

StepResult CudaRunner::end_execute() { return collect(); }

StepResult CudaRunner::execute_with_logits(const StepPlan& plan, std::vector<float>* logits) {
  return run(plan, logits);
}

}  // namespace tessera::cuda
