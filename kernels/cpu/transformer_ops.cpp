// Elementwise and normalisation kernels (see transformer_ops.h).
#include "kernels/cpu/transformer_ops.h"

#include <cmath>

#include "kernels/cpu/reference_linear.h"

namespace tessera::cpu {
namespace {
// Below this many elements an elementwise op costs less than waking the pool.
constexpr int64_t kSerialElements = int64_t{1} << 16;
}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight, float eps, float* out,
              ThreadPool& pool) {
  pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * stride;
      float* o = out + r * stride;
      float ss = 0.0f;
      for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
      for (int64_t i = 0; i < dim; ++i) o[i] = xr[i] * inv * weight[i];
    }
  });
}

void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int32_t* positions,
          const double* inv_freq, ThreadPool& pool) {
  const int64_t half = head_dim / 2;
  pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const double pos = positions[r];
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos * inv_freq[i];
        const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
        for (int64_t h = 0; h < heads; ++h) {
          float* v = x + r * row_stride + h * head_dim;
          const float a = v[i], b = v[i + half];
          v[i] = a * c - b * s;
          v[i + half] = b * c + a * s;
        }
      }
    }
  });
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out, ThreadPool& pool) {
  auto body = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  };
  if (n < kSerialElements) {
    body(0, n);
  } else {
    pool.parallel_for(n, body);
  }
}

void embedding(const void* table, DType dtype, int64_t dim, const int32_t* ids, int64_t rows, float* out,
               ThreadPool& pool) {
  const int64_t esize = static_cast<int64_t>(dtype_size(dtype));
  pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      convert_to_f32(static_cast<const uint8_t*>(table) + int64_t{ids[r]} * dim * esize, dtype, dim, out + r * dim);
    }
  });
}

void add_inplace(float* y, const float* x, int64_t n, ThreadPool& pool) {
  auto body = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] += x[i];
  };
  if (n < kSerialElements) {
    body(0, n);
  } else {
    pool.parallel_for(n, body);
  }
}

}  // namespace tessera::cpu
