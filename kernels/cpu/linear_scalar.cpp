// The portable linear kernel: plain C++ with fp32 accumulation, for CPUs without AVX2. Slow but exact
// to the same contract; it must never use an instruction the baseline target lacks.
#include <algorithm>

#include "kernels/cpu/linear_kernels.h"

namespace tessera::cpu::detail {
namespace {

constexpr int64_t kChunk = 256;  // k elements of one weight row converted to fp32 at a time

void load_chunk(const void* w, DType t, int64_t offset, int64_t count, float* out) {
  switch (t) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(w) + offset;
      std::copy(p, p + count, out);
      break;
    }
    case DType::kBF16: {
      const bf16* p = static_cast<const bf16*>(w) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_f32(p[i]);
      break;
    }
    case DType::kF16: {
      const f16* p = static_cast<const f16*>(w) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = f16_to_f32(p[i]);
      break;
    }
  }
}

}  // namespace

void linear_cols_scalar(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  float wbuf[kChunk];
  for (int64_t j = n_begin; j < n_end; ++j) {
    const float b = a.bias ? a.bias[j] : 0.0f;
    for (int64_t i = 0; i < a.m; ++i) a.y[i * a.n + j] = 0.0f;
    for (int64_t k0 = 0; k0 < a.k; k0 += kChunk) {
      const int64_t len = std::min(kChunk, a.k - k0);
      load_chunk(a.w, a.w_dtype, j * a.k + k0, len, wbuf);
      for (int64_t i = 0; i < a.m; ++i) {
        const float* xr = a.x + i * a.k + k0;
        float s[4] = {0, 0, 0, 0};
        int64_t q = 0;
        for (; q + 4 <= len; q += 4) {
          for (int l = 0; l < 4; ++l) s[l] += xr[q + l] * wbuf[q + l];
        }
        for (; q < len; ++q) s[0] += xr[q] * wbuf[q];
        a.y[i * a.n + j] += (s[0] + s[1]) + (s[2] + s[3]);
      }
    }
    for (int64_t i = 0; i < a.m; ++i) a.y[i * a.n + j] += b;
  }
}

}  // namespace tessera::cpu::detail
