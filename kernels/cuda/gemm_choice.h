// One GEMM shape's chosen path, as Gemm::choices() reports it and Gemm::preset() takes it back, so a
// tuning cache (model/gemm_tuning_file.h) can carry the autotuner's choices across processes: the
// same choices after a restart give bitwise the same outputs, without timing anything again.
// Plain data: no CUDA types, nothing is checked here (Gemm checks a preset against the device).
// Also DecodePath, the kernel a decode-sized projection runs on.
#pragma once

#include <cstdint>
#include <string>

namespace tessera::cuda {

enum class GemmPath : int32_t {
  kBf16 = 0,          // Gemm::run: bf16 in, bf16 or fp32 out
  kBf16SiluDown = 1,  // Gemm::run_silu_mul: the MLP's down projection with SiLU-and-multiply
  kF32 = 2,           // Gemm::run_f32 (the exact mode)
  kSwiglu = 3,        // Gemm::run_gate_up_silu's SwiGLU GEMM for a row bucket (m: the bucket's rows,
                      // n: the intermediate size): swiglu_variant
};

struct GemmChoice {
  GemmPath path = GemmPath::kBf16;
  int32_t m = 0, n = 0, k = 0;
  bool out_f32 = false;          // kBf16: fp32 output
  int32_t cublas_index = 0;      // kBf16 / kF32: the algorithm's index among cuBLASLt's candidates for the shape
  int32_t gemv_variant = -1;     // kBf16: the gemv variant chosen (-1: none); kBf16SiluDown: the fused gemv
                                 // (-1: silu_mul, then the shape's kBf16 choice)
  int32_t skinny_variant = -1;   // kBf16: the skinny tensor-core variant chosen (-1: none)
  int32_t swiglu_variant = -1;   // kSwiglu: the SwiGLU GEMM's variant (-1: cuBLASLt's product + silu_mul won)
  bool operator==(const GemmChoice&) const = default;
};

// The kernel a decode-sized projection runs on (Gemm::chosen_decode_path): a gemv variant, a skinny
// tensor-core variant, or neither (both -1: the cuBLASLt algorithm kept for the shape; both -2: the
// shape not seen yet).
struct DecodePath {
  int32_t gemv_variant = -1;
  int32_t skinny_variant = -1;
  bool operator==(const DecodePath&) const = default;
};

// "gemv 9", "skinny 3", "cublas" or "none", for logs and benchmark output.
inline std::string to_string(const DecodePath& p) {
  if (p.gemv_variant >= 0) return "gemv " + std::to_string(p.gemv_variant);
  if (p.skinny_variant >= 0) return "skinny " + std::to_string(p.skinny_variant);
  return p.gemv_variant == -2 ? "none" : "cublas";
}

}  // namespace tessera::cuda
