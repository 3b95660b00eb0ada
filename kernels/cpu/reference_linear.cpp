// reference_linear: scalar dot products, split over output columns.
#include "kernels/cpu/reference_linear.h"

namespace tessera::cpu {
namespace {

template <typename Load>
void run(const float* x, int64_t m, int64_t k, int64_t n, const float* bias, float* y, ThreadPool& pool, Load load) {
  pool.parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t i = 0; i < m; ++i) {
        const float* xr = x + i * k;
        float acc = 0.0f;
        for (int64_t t = 0; t < k; ++t) acc += xr[t] * load(j * k + t);
        y[i * n + j] = acc + (bias != nullptr ? bias[j] : 0.0f);
      }
    }
  });
}

}  // namespace

void reference_linear(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
                      const float* bias, float* y, ThreadPool& pool) {
  switch (w_dtype) {
    case DType::kF32: {
      const float* wf = static_cast<const float*>(w);
      run(x, m, k, n, bias, y, pool, [wf](int64_t i) { return wf[i]; });
      break;
    }
    case DType::kBF16: {
      const bf16* wb = static_cast<const bf16*>(w);
      run(x, m, k, n, bias, y, pool, [wb](int64_t i) { return bf16_to_f32(wb[i]); });
      break;
    }
    case DType::kF16: {
      const f16* wh = static_cast<const f16*>(w);
      run(x, m, k, n, bias, y, pool, [wh](int64_t i) { return f16_to_f32(wh[i]); });
      break;
    }
  }
}

void convert_to_f32(const void* src, DType dtype, int64_t n, float* dst) {
  switch (dtype) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<const float*>(src)[i];
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(static_cast<const bf16*>(src)[i]);
      break;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(static_cast<const f16*>(src)[i]);
      break;
  }
}

}  // namespace tessera::cpu
