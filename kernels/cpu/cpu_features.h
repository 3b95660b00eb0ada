// Runtime CPU feature detection: which instruction sets this CPU and OS let the kernels use.
// Detected once (cpuid + xgetbv, and the Linux AMX permission request); it must never be used to
// decide at compile time, and never reads configuration.
#pragma once

#include <string>

namespace tessera::cpu {

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 + FMA + F16C, with OS-enabled YMM state
  bool avx512 = false;       // AVX-512 F/BW/VL/DQ with OS-enabled ZMM state
  bool avx512_bf16 = false;  // VDPBF16PS / VCVTNE2PS2BF16
  bool amx_bf16 = false;     // AMX tiles with BF16, and the OS granted tile-data permission
};

// The features of the CPU the process runs on (computed once, thread-safe).
const CpuFeatures& cpu_features();

// "avx512 avx512_bf16 amx_bf16" style summary for logs and benchmarks.
std::string cpu_features_string(const CpuFeatures& f);

}  // namespace tessera::cpu
