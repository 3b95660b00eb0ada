// linear(): every instruction-set path this CPU can run matches a double-precision reference on fresh
// random inputs, for odd shapes (k and n not multiples of the vector width), with and without bias, in
// f32, f16 and bf16 weights; every output element is written (poisoned with NaN first).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/cpu/linear.h"

namespace tessera::cpu {
namespace {

struct Case {
  int64_t m, k, n;
  DType dtype;
  bool bias;
};

// Weights stored in `dtype`, plus their exact fp32 values for the reference.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> exact;
};

Weights make_weights(std::mt19937& rng, int64_t count, DType dtype) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Weights w;
  w.exact.resize(static_cast<size_t>(count));
  w.bytes.resize(static_cast<size_t>(count) * dtype_size(dtype));
  for (int64_t i = 0; i < count; ++i) {
    const float v = dist(rng);
    float exact = v;
    if (dtype == DType::kBF16) {
      const bf16 b = f32_to_bf16(v);
      exact = bf16_to_f32(b);
      std::memcpy(w.bytes.data() + i * 2, &b, 2);
    } else if (dtype == DType::kF16) {
      const f16 h = f32_to_f16(v);
      exact = f16_to_f32(h);
      std::memcpy(w.bytes.data() + i * 2, &h, 2);
    } else {
      std::memcpy(w.bytes.data() + i * 4, &v, 4);
    }
    w.exact[static_cast<size_t>(i)] = exact;
  }
  return w;
}

void check_case(LinearIsa isa, const Case& c, ThreadPool& pool, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(c.m * c.k));
  for (auto& v : x) v = dist(rng);
  const Weights w = make_weights(rng, c.n * c.k, c.dtype);
  std::vector<float> bias(static_cast<size_t>(c.n));
  for (auto& v : bias) v = dist(rng);
  std::vector<float> y(static_cast<size_t>(c.m * c.n), std::numeric_limits<float>::quiet_NaN());
  linear_isa(isa, x.data(), c.m, c.k, w.bytes.data(), c.dtype, c.n, c.bias ? bias.data() : nullptr, y.data(), pool);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      double ref = c.bias ? bias[static_cast<size_t>(j)] : 0.0;
      double mag = std::abs(ref);
      for (int64_t q = 0; q < c.k; ++q) {
        const double p = static_cast<double>(x[static_cast<size_t>(i * c.k + q)]) * w.exact[static_cast<size_t>(j * c.k + q)];
        ref += p;
        mag += std::abs(p);
      }
      const float got = y[static_cast<size_t>(i * c.n + j)];
      ASSERT_TRUE(std::isfinite(got)) << "unwritten/NaN output at (" << i << "," << j << ") " << linear_isa_name(isa)
                                      << " m=" << c.m << " k=" << c.k << " n=" << c.n << " " << dtype_name(c.dtype)
                                      << " seed=" << seed;
      // fp32 accumulation: the error is a small multiple of eps times the sum of |terms|.
      ASSERT_LE(std::abs(got - ref), 1e-5 * mag + 1e-30)
          << "at (" << i << "," << j << ") got " << got << " want " << ref << " path " << linear_isa_name(isa)
          << " m=" << c.m << " k=" << c.k << " n=" << c.n << " " << dtype_name(c.dtype) << " bias=" << c.bias
          << " seed=" << seed;
    }
  }
}

std::vector<LinearIsa> available_isas() {
  std::vector<LinearIsa> isas;
  for (LinearIsa isa : {LinearIsa::kScalar, LinearIsa::kAvx2, LinearIsa::kAvx512})
    if (linear_isa_available(isa)) isas.push_back(isa);
  return isas;
}

class LinearMatchesReference : public ::testing::TestWithParam<DType> {};

TEST_P(LinearMatchesReference, AcrossShapesPathsAndBias) {
  const DType dtype = GetParam();
  ThreadPool pool(3);
  const uint32_t base_seed = std::random_device{}();
  uint32_t seed = base_seed;
  for (LinearIsa isa : available_isas()) {
    for (int64_t m : {1, 2, 3, 7, 16, 64}) {
      for (auto [k, n] : {std::pair<int64_t, int64_t>{1, 1}, {17, 33}, {100, 37}, {259, 70}}) {
        for (bool bias : {false, true}) check_case(isa, Case{m, k, n, dtype, bias}, pool, seed++);
      }
    }
    // Prefill-sized m with a thin weight, and a decode-sized row longer than any register tile.
    for (bool bias : {false, true}) {
      check_case(isa, Case{513, 67, 45, dtype, bias}, pool, seed++);
      check_case(isa, Case{1, 2053, 131, dtype, bias}, pool, seed++);
      check_case(isa, Case{5, 1031, 29, dtype, bias}, pool, seed++);
      // k longer than one GEMM k-slice (2048), for both GEMM tile widths.
      check_case(isa, Case{17, 4133, 25, dtype, bias}, pool, seed++);
      check_case(isa, Case{40, 2049, 14, dtype, bias}, pool, seed++);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, LinearMatchesReference,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Linear, SameResultForAnyThreadCount) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t m = 9, k = 301, n = 203;
  std::vector<float> x(m * k);
  for (auto& v : x) v = dist(rng);
  const Weights w = make_weights(rng, n * k, DType::kBF16);
  std::vector<float> y1(m * n), y4(m * n);
  ThreadPool p1(1), p4(4);
  linear(x.data(), m, k, w.bytes.data(), DType::kBF16, n, nullptr, y1.data(), p1);
  linear(x.data(), m, k, w.bytes.data(), DType::kBF16, n, nullptr, y4.data(), p4);
  EXPECT_EQ(y1, y4);
}

TEST(Linear, ZeroKGivesBias) {
  ThreadPool pool(2);
  const float bias[3] = {1.5f, -2.0f, 0.25f};
  std::vector<float> y(6, std::numeric_limits<float>::quiet_NaN());
  linear(nullptr, 2, 0, nullptr, DType::kF32, 3, bias, y.data(), pool);
  EXPECT_EQ(y, (std::vector<float>{1.5f, -2.0f, 0.25f, 1.5f, -2.0f, 0.25f}));
  linear(nullptr, 2, 0, nullptr, DType::kF32, 3, nullptr, y.data(), pool);
  EXPECT_EQ(y, std::vector<float>(6, 0.0f));
}

TEST(Linear, RejectsBadArguments) {
  ThreadPool pool(1);
  float buf[4] = {};
  EXPECT_THROW(linear(buf, -1, 2, buf, DType::kF32, 2, nullptr, buf, pool), Error);
  EXPECT_THROW(linear(nullptr, 1, 2, buf, DType::kF32, 2, nullptr, buf, pool), Error);
  EXPECT_THROW(linear(buf, 1, 2, nullptr, DType::kF32, 2, nullptr, buf, pool), Error);
  EXPECT_THROW(linear(buf, 1, 2, buf, DType::kF32, 2, nullptr, nullptr, pool), Error);
  EXPECT_THROW(linear(buf, int64_t{1} << 40, int64_t{1} << 40, buf, DType::kF32, 2, nullptr, buf, pool), Error);
  try {
    linear(buf, 1, -3, buf, DType::kF32, 2, nullptr, buf, pool);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("k=-3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::cpu
