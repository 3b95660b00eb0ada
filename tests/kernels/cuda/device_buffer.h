// Test helper: an owning device buffer with host round trips and poisoning (0xFF bytes: NaN in
// bf16 and fp32), so a kernel that skips an output element is caught. Tests only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "common/dtype.h"
#include "kernels/cuda/cuda_check.h"

namespace tessera::cuda::test {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T))); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    CUDA_CHECK(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void poison() { CUDA_CHECK(cudaMemset(p_, 0xFF, n_ * sizeof(T))); }

 private:
  T* p_ = nullptr;
  size_t n_;
};

inline __nv_bfloat16 to_bf16(float f) {
  __nv_bfloat16_raw raw;
  raw.x = f32_to_bf16(f).bits;
  return __nv_bfloat16(raw);
}
inline float from_bf16(__nv_bfloat16 v) {
  const __nv_bfloat16_raw raw(v);
  return bf16_to_f32(bf16{raw.x});
}

// Random bf16 values in [-scale, scale]; `exact` receives the values as floats (already rounded).
inline std::vector<__nv_bfloat16> random_bf16(size_t n, std::mt19937& rng, float scale, std::vector<float>* exact) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<__nv_bfloat16> out(n);
  if (exact != nullptr) exact->resize(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = to_bf16(d(rng));
    if (exact != nullptr) (*exact)[i] = from_bf16(out[i]);
  }
  return out;
}

inline std::vector<float> to_float(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = from_bf16(v[i]);
  return out;
}

inline std::vector<float> to_float(const std::vector<float>& v) { return v; }

// Random values of element type T (bf16 or float) in [-scale, scale]; `exact` receives them as floats.
template <typename T>
std::vector<T> random_values(size_t n, std::mt19937& rng, float scale, std::vector<float>* exact) {
  if constexpr (std::is_same_v<T, float>) {
    std::uniform_real_distribution<float> d(-scale, scale);
    std::vector<float> out(n);
    for (auto& v : out) v = d(rng);
    if (exact != nullptr) *exact = out;
    return out;
  } else {
    return random_bf16(n, rng, scale, exact);
  }
}

// y[m, n] = x[m, k] · w[n, k]ᵀ in double (the nn.Linear layout the projections use).
inline std::vector<double> linear_reference(const std::vector<float>& x, const std::vector<float>& w, int32_t m,
                                            int32_t n, int32_t k) {
  std::vector<double> y(static_cast<size_t>(m) * n);
  for (int32_t i = 0; i < m; ++i)
    for (int32_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int32_t l = 0; l < k; ++l)
        acc += static_cast<double>(x[static_cast<size_t>(i) * k + l]) * w[static_cast<size_t>(j) * k + l];
      y[static_cast<size_t>(i) * n + j] = acc;
    }
  return y;
}

// bf16(silu(gate) * up) per row of gate_up [m, 2k], as silu_mul stores it.
inline std::vector<float> silu_mul_reference(const std::vector<float>& gate_up, int32_t m, int32_t k) {
  std::vector<float> act(static_cast<size_t>(m) * k);
  for (int32_t i = 0; i < m; ++i)
    for (int32_t l = 0; l < k; ++l) {
      const float g = gate_up[static_cast<size_t>(i) * 2 * k + l], u = gate_up[static_cast<size_t>(i) * 2 * k + k + l];
      act[static_cast<size_t>(i) * k + l] = from_bf16(to_bf16(g / (1.0f + std::exp(-g)) * u));
    }
  return act;
}

// ||a - b|| / ||b||, with NaN anywhere giving infinity.
inline double rel_error(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == a[i])) return 1e30;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace tessera::cuda::test
