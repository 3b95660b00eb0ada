// linear(): validates the call, picks the instruction-set path once per call from the runtime CPU
// features, and splits the output columns (weight rows) across the pool. It must never allocate and
// never pick a path the CPU cannot run.
#include "kernels/cpu/linear.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_avx512.h"
#include "kernels/cpu/linear_kernels.h"

namespace tessera::cpu {
namespace {

using detail::LinearArgs;
using ColsFn = void (*)(const LinearArgs&, int64_t, int64_t);

// From this many rows of x on, the packed GEMM beats streaming inner products (bench linear).
constexpr int64_t kGemmMinRows = 16;

// Below this many multiply-adds the pool's wake-up costs more than it saves.
constexpr int64_t kSerialWork = 1 << 15;

void validate(const float* x, int64_t m, int64_t k, const void* w, int64_t n, float* y) {
  TS_CHECK(m >= 0 && k >= 0 && n >= 0, kInvalidArgument, "linear: negative shape m={} k={} n={}", m, k, n);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 8;
  TS_CHECK(k == 0 || (m <= kMax / k && n <= kMax / k), kInvalidArgument, "linear: shape m={} k={} n={} overflows",
           m, k, n);
  TS_CHECK(n == 0 || m <= kMax / n, kInvalidArgument, "linear: output m={} n={} overflows", m, n);
  TS_CHECK(m == 0 || k == 0 || x != nullptr, kInvalidArgument, "linear: x is null for m={} k={}", m, k);
  TS_CHECK(n == 0 || k == 0 || w != nullptr, kInvalidArgument, "linear: w is null for n={} k={}", n, k);
  TS_CHECK(m == 0 || n == 0 || y != nullptr, kInvalidArgument, "linear: y is null for m={} n={}", m, n);
}

ColsFn cols_fn(LinearIsa isa) {
  switch (isa) {
    case LinearIsa::kAvx512: return &detail::linear_cols_avx512;
    case LinearIsa::kAvx2: return &detail::linear_cols_avx2;
    case LinearIsa::kScalar: return &detail::linear_cols_scalar;
    case LinearIsa::kAuto: break;
  }
  return cols_fn(linear_best_isa());
}

}  // namespace

bool linear_isa_available(LinearIsa isa) {
  switch (isa) {
    case LinearIsa::kAuto:
    case LinearIsa::kScalar: return true;
    case LinearIsa::kAvx2: return cpu_features().avx2_fma;
    case LinearIsa::kAvx512: return cpu_features().avx512;
  }
  return false;
}

const char* linear_isa_name(LinearIsa isa) {
  switch (isa) {
    case LinearIsa::kAuto: return "auto";
    case LinearIsa::kScalar: return "scalar";
    case LinearIsa::kAvx2: return "avx2";
    case LinearIsa::kAvx512: return "avx512";
  }
  return "unknown";
}

LinearIsa linear_best_isa() {
  static const LinearIsa best = cpu_features().avx512     ? LinearIsa::kAvx512
                                : cpu_features().avx2_fma ? LinearIsa::kAvx2
                                                          : LinearIsa::kScalar;
  return best;
}

void linear_isa(LinearIsa isa, const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
                const float* bias, float* y, ThreadPool& pool) {
  TS_CHECK(linear_isa_available(isa), kInvalidArgument, "linear: this CPU cannot run the {} path",
           linear_isa_name(isa));
  validate(x, m, k, w, n, y);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] = bias ? bias[j] : 0.0f;
    return;
  }
  const LinearArgs args{x, m, k, w, w_dtype, n, bias, y};
  const LinearIsa resolved = isa == LinearIsa::kAuto ? linear_best_isa() : isa;
  if (resolved == LinearIsa::kAvx512 && m >= kGemmMinRows) {
    detail::gemm(args, pool);
    return;
  }
  const ColsFn fn = cols_fn(resolved);
  // Split the weight rows in units that keep each kernel's row tiles whole.
  const int64_t unit = m == 1 ? 8 : 4;
  const int64_t units = (n + unit - 1) / unit;
  if (static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) <= kSerialWork || units == 1) {
    fn(args, 0, n);
    return;
  }
  pool.parallel_for(units, [&](int64_t b, int64_t e) { fn(args, b * unit, std::min(n, e * unit)); });
}

void linear(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n, const float* bias, float* y,
            ThreadPool& pool) {
  linear_isa(LinearIsa::kAuto, x, m, k, w, w_dtype, n, bias, y, pool);
}

}  // namespace tessera::cpu
