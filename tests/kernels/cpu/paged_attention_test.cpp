// Paged attention: both bodies (scalar and AVX-512, when the CPU has it) equal a direct softmax
// computed in double over the same keys, for head_dim with and without a 16-lane tail, GQA groups
// and block tables that are not in order.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/paged_attention_kernels.h"

namespace tessera::cpu {
namespace {

struct Case {
  int64_t head_dim, kv_heads, context;
};

class PagedAttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(PagedAttentionTest, MatchesDirectSoftmax) {
  const Case c = GetParam();
  const int64_t bs = 4, blocks = 16;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> k(blocks * bs * c.kv_heads * c.head_dim), v(k.size()), q(c.head_dim), out(c.head_dim);
  for (float& x : k) x = u(rng);
  for (float& x : v) x = u(rng);
  for (float& x : q) x = u(rng);
  const std::vector<int32_t> table = {7, 2, 11, 0, 5, 9, 1, 3, 15, 4, 6, 8, 10, 12, 13, 14};
  const PagedKvLayer cache{k.data(), v.data(), bs, c.kv_heads, c.head_dim};
  const AttentionRow row{table.data(), static_cast<int32_t>(c.context)};
  const float scale = 0.3f;
  const int64_t kvh = c.kv_heads - 1;
  // Direct: scores over positions, softmax, weighted sum, in double.
  std::vector<double> s(c.context), want(c.head_dim, 0.0);
  double mx = -1e300, z = 0.0;
  for (int64_t p = 0; p < c.context; ++p) {
    const int64_t off = detail::slot_offset(cache, table.data(), p, kvh);
    double d = 0.0;
    for (int64_t i = 0; i < c.head_dim; ++i) d += double{q[i]} * k[off + i];
    s[p] = d * scale;
    mx = std::max(mx, s[p]);
  }
  for (int64_t p = 0; p < c.context; ++p) z += std::exp(s[p] - mx);
  for (int64_t p = 0; p < c.context; ++p) {
    const int64_t off = detail::slot_offset(cache, table.data(), p, kvh);
    for (int64_t i = 0; i < c.head_dim; ++i) want[i] += std::exp(s[p] - mx) / z * v[off + i];
  }
  std::vector<detail::AttendFn> bodies = {&detail::attend_scalar};
  if (cpu_features().avx512) bodies.push_back(&detail::attend_avx512);
  for (detail::AttendFn f : bodies) {
    f(q.data(), row, cache, kvh, scale, out.data());
    for (int64_t i = 0; i < c.head_dim; ++i) EXPECT_NEAR(out[i], want[i], 2e-6) << "lane " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PagedAttentionTest,
                         ::testing::Values(Case{64, 2, 61}, Case{24, 1, 9}, Case{8, 3, 1}, Case{128, 1, 64}));

TEST(PagedAttention, GqaHeadsReadTheirGroupsKvHead) {
  // 4 query heads over 2 KV heads; one position, so each output is exactly its KV head's V.
  const int64_t d = 16;
  std::vector<float> k(1 * 4 * 2 * d, 0.5f), v(k.size()), q(4 * d, 1.0f), out(4 * d);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  ThreadPool pool(2);
  const std::vector<int32_t> table = {0};
  const PagedKvLayer cache{k.data(), v.data(), 4, 2, d};
  const AttentionRow row{table.data(), 1};
  paged_attention(q.data(), 1, 4 * d, 4, &row, cache, 1.0f, out.data(), pool);
  for (int64_t h = 0; h < 4; ++h) EXPECT_EQ(out[h * d], v[(h / 2) * d]) << "head " << h;
}

}  // namespace
}  // namespace tessera::cpu
