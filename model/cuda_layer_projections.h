// One transformer layer's GEMMs as plain data: the buffer each reads, which of the layer's weights,
// where its product goes, its shape and how the product is stored. CudaRunner::layer_projections
// fills it per step; forward_as() launches from it and tune_gemms() times from it, so the tuner can
// never time a shape or output type the layer does not run. Plain data: never launches or allocates.
#pragma once

#include <cstdint>

#include "model/cuda_weights.h"

namespace tessera::cuda {

struct LayerProjection {
  enum class Store {
    kPlain,          // y = x · wᵀ in the runner's dtype (Gemm::run, or run_f32 in the exact mode)
    kAddToResidual,  // residual += x · wᵀ in cuBLASLt's epilogue (Gemm::run_accumulate: an fp32-output
                     // plan; y is its fp32 scratch, dead where the product is added)
    kSiluMul,        // y = silu_mul(x) · wᵀ with x the [rows, 2k] gate/up rows (Gemm::run_silu_mul;
                     // act its [rows, k] scratch)
    kGateUpSilu,     // the gate/up rows (n = 2 x inter) into y, or, where the chosen gemv variant can
                     // (Gemm::run_gate_up_silu), act = silu(gate) * up [rows, inter] stored instead; the
                     // down projection then reads act plainly. Tuned as a plain projection.
  };
  const void* x = nullptr;                      // [rows, k] input rows
  void* CudaLayerWeights::*weight = nullptr;    // [n, k], the layer's
  void* y = nullptr;                            // [rows, n] product (kAddToResidual: fp32 scratch)
  void* act = nullptr;                          // kSiluMul, kGateUpSilu only
  int32_t n = 0;
  int32_t k = 0;
  Store store = Store::kPlain;
  bool row_parallel = false;  // under tensor parallelism y is this rank's partial sum (o, down)
};

// A layer's GEMMs, in the order forward_as() launches them.
struct LayerProjections {
  LayerProjection qkv, o, gate_up, down;
  // The down projection when gate_up (kGateUpSilu) stored act itself: act · wᵀ, plain. Its shape and
  // output are down's, so tuning down tunes it.
  LayerProjection down_of_act;
};

}  // namespace tessera::cuda
