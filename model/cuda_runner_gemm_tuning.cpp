// CudaRunner's layer GEMMs: layer_projections (what forward_as() launches per layer) and tune_gemms,
// the GEMM autotuner's choices for every row bucket a step can use, made at start on random
// activations (never zeros) from the same layer_projections, so serving never pauses mid-request to
// time a shape. execute() logs any shape timed after this ran (a drift between the two).
#include <spdlog/spdlog.h>

#include <chrono>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "model/cuda_runner.h"
#include "model/cuda_runner_buffers.h"
#include "model/decode_graph_plan.h"

namespace tessera::cuda {

bool CudaRunner::fuses_residual(int32_t rows) const {
  return options_.dtype == DType::kBF16 && options_.fused_residual_gemm && comm_ == nullptr && rows > kSkinnyMaxM &&
         config_.intermediate_size >= config_.hidden_size;
}

int32_t CudaRunner::lm_head_columns() const {
  return static_cast<int32_t>(comm_ ? options_.shard->vocab_per_rank : config_.vocab_size);
}

int CudaRunner::gate_up_swiglu_choice(int32_t rows) const {
  const LayerProjection g = layer_projections(rows).gate_up;
  if (g.store != LayerProjection::Store::kGateUpSilu || !gemm_->takes_prefill_swiglu(rows, g.n / 2, g.k)) return -1;
  return gemm_->chosen_swiglu_variant(rows, g.n / 2, g.k, options_.max_num_tokens);
}

LayerProjections CudaRunner::layer_projections(int32_t rows) const {
  const ModelConfig& c = config_;
  const Buffers& b = *buf_;
  const int32_t H = c.hidden_size, I = c.intermediate_size;
  using Store = LayerProjection::Store;
  LayerProjections p;
  p.qkv = {.x = b.hidden, .weight = &CudaLayerWeights::qkv, .y = b.qkv, .n = c.q_size() + 2 * c.kv_size(), .k = H};
  p.gate_up = {.x = b.hidden, .weight = &CudaLayerWeights::gate_up, .y = b.gate_up, .n = 2 * I, .k = H};
  if (fuses_residual(rows)) {
    // o and down add into the fp32 residual (the norms after them only read it); their fp32
    // scratch is gate_up's buffer, dead at both points (down reads act, silu_mul's output).
    p.o = {.x = b.attn, .weight = &CudaLayerWeights::o, .y = b.gate_up, .n = H, .k = c.q_size(),
           .store = Store::kAddToResidual, .row_parallel = true};
    p.down = {.x = b.act, .weight = &CudaLayerWeights::down, .y = b.gate_up, .n = H, .k = I,
              .store = Store::kAddToResidual, .row_parallel = true};
    if (options_.prefill_swiglu_gemm) {  // act stored by the SwiGLU GEMM where Gemm takes it; down reads act
      p.gate_up.store = Store::kGateUpSilu;
      p.gate_up.act = b.act;
      p.down_of_act = p.down;
    }
    return p;
  }
  p.o = {.x = b.attn, .weight = &CudaLayerWeights::o, .y = b.proj, .n = H, .k = c.q_size(), .row_parallel = true};
  if (options_.dtype == DType::kBF16) {  // decode-sized bf16 steps: SiLU stored by the gate/up gemv where it can
    p.gate_up.store = Store::kGateUpSilu;
    p.gate_up.act = b.act;
    p.down_of_act = {.x = b.act, .weight = &CudaLayerWeights::down, .y = b.proj, .n = H, .k = I, .row_parallel = true};
  }
  if (options_.dtype == DType::kF32)  // silu_mul into act, then a plain fp32 GEMM
    p.down = {.x = b.act, .weight = &CudaLayerWeights::down, .y = b.proj, .n = H, .k = I, .row_parallel = true};
  else  // SiLU fused into the GEMM where it pays (Gemm::run_silu_mul chooses)
    p.down = {.x = b.gate_up, .weight = &CudaLayerWeights::down, .y = b.proj, .act = b.act, .n = H, .k = I,
              .store = Store::kSiluMul, .row_parallel = true};
  return p;
}

int CudaRunner::tune_gemms() {
  if (!options_.gemm_autotune) return 0;  // fixed choices: nothing is timed, now or later
  const auto t0 = std::chrono::steady_clock::now();
  const int before = gemm_->num_timed_shapes();
  const ModelConfig& c = config_;
  Buffers& b = *buf_;
  const int32_t T = options_.max_num_tokens, H = c.hidden_size, I = c.intermediate_size;
  const int32_t head_rows = lm_head_rows();
  const bool f32 = options_.dtype == DType::kF32;
  // Random activations in every GEMM input (and the rows beyond a step's, which bucket timing reads).
  auto randomize = [&](void* p, int64_t n, uint64_t seed) {
    if (f32) fill_random_f32(static_cast<float*>(p), n, seed, 0.0f, 1.0f, stream_);
    else fill_random_bf16(static_cast<bf16_t*>(p), n, seed, 0.0f, 1.0f, stream_);
  };
  randomize(b.hidden, int64_t{T} * H, 101);
  randomize(b.attn, int64_t{T} * c.q_size(), 102);
  randomize(b.gate_up, int64_t{T} * 2 * I, 103);
  randomize(b.act, int64_t{T} * I, 104);
  randomize(b.gathered, int64_t{head_rows} * H, 105);
  const CudaLayerWeights& w = weights_->layers().front();
  // One GEMM as forward_as() runs it: bf16 through Gemm::warm (kAddToResidual: the fp32-output plan
  // run_accumulate takes) or warm_silu_mul, fp32 through run_f32 (which chooses on first use).
  using Store = LayerProjection::Store;
  // cap: the row capacity the choice is made for (T: m is timed at its power-of-two bucket; m: exactly).
  auto tune = [&](const LayerProjection& g, int32_t m, int32_t cap) {
    const void* wt = w.*g.weight;
    if (g.store == Store::kGateUpSilu && gemm_->warm_prefill_swiglu(m, g.n / 2, g.k, g.x, wt, g.y, g.act, stream_, cap) >= 0)
      return;  // the fused SwiGLU GEMM's variant chosen: no plain projection to time
    if (f32) {
      gemm_->run_f32(static_cast<const float*>(g.x), static_cast<const float*>(wt), static_cast<float*>(g.y), m, g.n,
                     g.k, stream_, cap);
    } else if (g.store == Store::kSiluMul) {
      gemm_->warm_silu_mul(m, g.n, g.k, g.x, g.act, wt, g.y, stream_, cap);
    } else {  // forward_as runs these padded (Gemm's pad_rows): the plan of the rows they run at
      const int32_t r = gemm_->padded_rows(m, T, true);
      gemm_->warm(r, g.n, g.k, g.store == Store::kAddToResidual, g.x, wt, g.y, stream_, r == m ? cap : T);
    }
  };
  auto tune_layer = [&](int32_t rows, int32_t cap) {
    const LayerProjections p = layer_projections(rows);
    for (const LayerProjection* g : {&p.qkv, &p.o, &p.gate_up, &p.down, &p.down_of_act})
      if (g->weight != nullptr) tune(*g, rows, cap);
  };
  // The LM head as lm_head() runs it: fp32 logits of up to head_rows rows.
  const int32_t head_n = lm_head_columns();
  float* const head_out = comm_ ? b.logits_local : b.logits;
  auto tune_head = [&](int32_t m) {
    if (f32) gemm_->run_f32(static_cast<const float*>(b.gathered), static_cast<const float*>(weights_->lm_head()),
                            head_out, m, head_n, H, stream_, head_rows);
    else gemm_->warm(m, head_n, H, true, b.gathered, weights_->lm_head(), head_out, stream_, head_rows);
  };
  for (int64_t m = 1;; m = std::min<int64_t>(m * 2, T)) {
    const auto rows = static_cast<int32_t>(m);
    tune_layer(rows, T);
    if (rows <= head_rows) tune_head(rows);
    if (rows == T) break;
  }
  if (head_rows < T && (head_rows & (head_rows - 1)) != 0)  // the LM head's own capacity is a bucket too
    tune_head(head_rows);
  // The largest decode graph bucket when it is not a power of two (--max-num-seqs 96): its steps run
  // at exactly that many rows, so their GEMMs are timed at it rather than taking the next bucket's
  // (those forward_as runs padded, the plain projections of 65-127 rows, take the 128-row bucket's:
  // tune() asks for that plan, already timed above).
  const std::vector<int32_t> buckets = decode_graph_buckets(options_.max_num_seqs, T);
  if (!buckets.empty() && (buckets.back() & (buckets.back() - 1)) != 0 && buckets.back() < T)
    tune_layer(buckets.back(), buckets.back());
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  const int timed = gemm_->num_timed_shapes() - before;
  gemm_timed_reported_ = gemm_->num_timed_shapes();
  spdlog::info("GEMM tuning: {} shapes timed in {:.2f} s (row buckets 1..{}, LM head to {}; {} of them again at the "
               "power cap){}",
               timed, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), T, head_rows,
               gemm_->num_sustained_shapes(), gemm_tuning_path_.empty() ? "" : "; the rest came from " + gemm_tuning_path_);
  tune_decode_chain();  // logs its own time
  save_gemm_tuning();
  return timed;
}

}  // namespace tessera::cuda
