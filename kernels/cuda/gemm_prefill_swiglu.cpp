// Gemm's gate/up projection with SiLU-and-multiply (Gemm::run_gate_up_silu) and its choice of path:
// the SwiGLU GEMM (gemm_swiglu_wgmma.cuh) above the skinny range on compute 9.0, timed per row bucket
// against the pair it replaces (cuBLASLt's product + silu_mul); the gemv that stores act itself below;
// else the plain product for the caller to apply SiLU to. Never changes what a path computes.
#include <limits>

#include "common/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemm_swiglu_wgmma.cuh"
#include "kernels/cuda/gemm_timing.h"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace tessera::cuda {
namespace {

// The pair is kept over the SwiGLU GEMM only when it times this much faster: these are burst timings,
// and at the power cap, where a long prefill runs, the kernel gains more (it moves ~0.47 GB per
// 4,096-row layer less; nvidia-h200: 1,260 vs 1,287 µs in a burst, 1,470 vs 1,490 sustained), so
// near-ties go to the kernel instead of to timing noise.
constexpr float kSwigluPairMargin = 0.97f;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool Gemm::takes_prefill_swiglu(int32_t m, int32_t inter, int32_t k) const {
  return prefill_swiglu_ && swiglu_device_ && m > kSkinnyMaxM && inter > 0 && inter % kSwigluTileCols == 0 &&
         k > 0 && k % kSwigluStageK == 0;
}

void Gemm::set_swiglu_variant(int variant) {
  TS_CHECK(variant >= -1 && variant < kSwigluVariants, kInvalidArgument,
           "Gemm: SwiGLU GEMM variant={} (-1: timed, or 0 to {})", variant, kSwigluVariants - 1);
  swiglu_forced_ = variant;
  swiglu_variants_.clear();
}

int Gemm::chosen_swiglu_variant(int32_t m, int32_t inter, int32_t k, int32_t row_capacity) const {
  const auto it = swiglu_variants_.find(std::make_tuple(tuning_rows(m, row_capacity), inter, k));
  return it == swiglu_variants_.end() ? -2 : it->second.variant;
}

int Gemm::warm_prefill_swiglu(int32_t m, int32_t inter, int32_t k, const void* x, const void* w, void* gate_up,
                              void* act, cudaStream_t stream, int32_t row_capacity) {
  const SwigluChoice* c = prefill_swiglu(m, inter, k, x, w, gate_up, act, stream, row_capacity);
  return c != nullptr ? c->variant : -1;
}

const Gemm::SwigluChoice* Gemm::prefill_swiglu(int32_t m, int32_t inter, int32_t k, const void* x, const void* w,
                                               void* gate_up, void* act, cudaStream_t stream, int32_t row_capacity) {
  if (!takes_prefill_swiglu(m, inter, k) || !aligned16(x) || !aligned16(w) || !aligned16(act)) return nullptr;
  const int32_t t = tuning_rows(m, row_capacity);
  const auto key = std::make_tuple(t, inter, k);
  auto it = swiglu_variants_.find(key);
  if (it == swiglu_variants_.end())
    it = swiglu_variants_.emplace(key, time_prefill_swiglu(t, inter, k, x, w, gate_up, act, stream)).first;
  return it->second.variant >= 0 ? &it->second : nullptr;
}

// The choice for a row bucket of t rows: the forced variant, a preset's (a tuning cache's), the default
// one without autotuning, else
// the fastest variant, or the pair ({-1, 0}) where it times kSwigluPairMargin faster. Each variant's
// grid is asked once here (the launch cuts it to m's tiles).
Gemm::SwigluChoice Gemm::time_prefill_swiglu(int32_t t, int32_t inter, int32_t k, const void* x, const void* w,
                                             void* gate_up, void* act, cudaStream_t stream) {
  if (swiglu_forced_ >= 0) return {swiglu_forced_, gemm_swiglu_blocks(t, inter, swiglu_forced_)};
  if (const GemmChoice* c = find_preset(GemmPath::kSwiglu, t, inter, k, false);
      c != nullptr && c->swiglu_variant >= -1 && c->swiglu_variant < kSwigluVariants) {  // cached: nothing timed
    return c->swiglu_variant < 0 ? SwigluChoice{-1, 0}
                                 : SwigluChoice{c->swiglu_variant, gemm_swiglu_blocks(t, inter, c->swiglu_variant)};
  }
  if (!autotune_) return {kSwigluDefaultVariant, gemm_swiglu_blocks(t, inter, kSwigluDefaultVariant)};
  const auto* xb = static_cast<const __nv_bfloat16*>(x);
  const auto* wb = static_cast<const __nv_bfloat16*>(w);
  auto* actb = static_cast<__nv_bfloat16*>(act);
  SwigluChoice best{-1, 0};
  float best_ms = std::numeric_limits<float>::infinity();
  for (const int v : kSwigluTunedVariants) {
    const int blocks = gemm_swiglu_blocks(t, inter, v);
    const float ms = median_ms(stream, [] {}, [&] { gemm_swiglu(xb, wb, actb, t, inter, k, stream, v, blocks); });
    if (ms < best_ms) best_ms = ms, best = {v, blocks};
  }
  // The pair, at the same rows: where the kernel's tiles fit the bucket badly (one 128-row tile for 65
  // rows) cuBLASLt's own tile choice plus silu_mul can be faster.
  const Plan& p = plan_for(t, 2 * inter, k, false, x, w, gate_up, stream, t);
  const float pair_ms = median_ms(stream, [] {}, [&] {
    run_plan(p, x, w, gate_up, t, 2 * inter, k, false, stream);
    silu_mul(static_cast<const __nv_bfloat16*>(gate_up), t, inter, actb, stream);
  });
  ++timed_shapes_;
  return pair_ms < kSwigluPairMargin * best_ms ? SwigluChoice{-1, 0} : best;
}

bool Gemm::run_gate_up_silu(const void* x, const void* w, void* gate_up, void* act, int32_t m, int32_t inter,
                            int32_t k, cudaStream_t stream, int32_t row_capacity) {
  if (m == 0) return true;
  if (const SwigluChoice* c = prefill_swiglu(m, inter, k, x, w, gate_up, act, stream, row_capacity)) {
    gemm_swiglu(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w),
                static_cast<__nv_bfloat16*>(act), m, inter, k, stream, c->variant, c->blocks);
    return true;
  }
  const Plan& p = plan_for(m, 2 * inter, k, false, x, w, gate_up, stream, row_capacity);
  if (p.skinny_variant < 0 && p.gemv_variant >= 0 && gemv_silu_mul_supported(p.gemv_variant)) {
    gemv_silu_mul(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w),
                  static_cast<__nv_bfloat16*>(act), m, inter, k, p.gemv_variant, stream);
    return true;
  }
  run_plan(p, x, w, gate_up, m, 2 * inter, k, false, stream);
  return false;
}

}  // namespace tessera::cuda
