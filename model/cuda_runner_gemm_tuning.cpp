// CudaRunner::tune_gemms: the GEMM autotuner's choices for every row bucket a step can use, made at
// start on random activations (never zeros), so serving never pauses mid-request to time a shape.
// The projections called here must stay the ones forward_as() calls, with the same shapes, output
// types and row capacities; execute() logs any shape timed after this ran (a drift between the two).
#include <spdlog/spdlog.h>

#include <chrono>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "model/cuda_runner.h"
#include "model/cuda_runner_buffers.h"

namespace tessera::cuda {

bool CudaRunner::fuses_residual(int32_t rows) const {
  return options_.dtype == DType::kBF16 && options_.fused_residual_gemm && comm_ == nullptr && rows > kSkinnyMaxM &&
         config_.intermediate_size >= config_.hidden_size;
}

int CudaRunner::tune_gemms() {
  if (!options_.gemm_autotune) return 0;  // fixed choices: nothing is timed, now or later
  const auto t0 = std::chrono::steady_clock::now();
  const int before = gemm_->num_timed_shapes();
  const ModelConfig& c = config_;
  Buffers& b = *buf_;
  const int32_t T = options_.max_num_tokens, H = c.hidden_size, I = c.intermediate_size;
  const int32_t qkv_n = c.q_size() + 2 * c.kv_size(), head_rows = lm_head_rows();
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
  // One projection as forward_as() runs it: bf16 through Gemm::warm, fp32 through run_f32 (which
  // chooses on first use; its product lands in a scratch buffer).
  auto tune = [&](int32_t m, const void* x, const void* wt, void* y, int32_t n, int32_t k, bool out_f32, int32_t cap) {
    if (f32) gemm_->run_f32(static_cast<const float*>(x), static_cast<const float*>(wt), static_cast<float*>(y), m, n, k,
                            stream_, cap);
    else gemm_->warm(m, n, k, out_f32, x, wt, y, stream_, cap);
  };
  const int64_t head_n = comm_ ? options_.shard->vocab_per_rank : c.vocab_size;
  float* const head_out = comm_ ? b.logits_local : b.logits;
  for (int64_t m = 1;; m = std::min<int64_t>(m * 2, T)) {
    const auto rows = static_cast<int32_t>(m);
    tune(rows, b.hidden, w.qkv, b.qkv, qkv_n, H, false, T);
    if (fuses_residual(rows)) {  // o and down accumulate into the residual: fp32-output plans, timed into gate_up
      tune(rows, b.attn, w.o, b.gate_up, H, c.q_size(), true, T);
      tune(rows, b.act, w.down, b.gate_up, H, I, true, T);
    } else {
      tune(rows, b.attn, w.o, b.proj, H, c.q_size(), false, T);
      if (f32) tune(rows, b.act, w.down, b.proj, H, I, false, T);
      else gemm_->warm_silu_mul(rows, H, I, b.gate_up, b.act, w.down, b.proj, stream_, T);
    }
    tune(rows, b.hidden, w.gate_up, b.gate_up, 2 * I, H, false, T);
    if (rows <= head_rows) tune(rows, b.gathered, weights_->lm_head(), head_out, static_cast<int32_t>(head_n), H, true,
                                head_rows);
    if (rows == T) break;
  }
  if (head_rows < T && (head_rows & (head_rows - 1)) != 0)  // the LM head's own capacity is a bucket too
    tune(head_rows, b.gathered, weights_->lm_head(), head_out, static_cast<int32_t>(head_n), H, true, head_rows);
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  const int timed = gemm_->num_timed_shapes() - before;
  gemm_timed_reported_ = gemm_->num_timed_shapes();
  spdlog::info("GEMM tuning: {} shapes timed in {:.2f} s (row buckets 1..{}, LM head to {}){}", timed,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), T, head_rows,
               gemm_tuning_path_.empty() ? "" : "; the rest came from " + gemm_tuning_path_);
  save_gemm_tuning();
  return timed;
}

}  // namespace tessera::cuda
