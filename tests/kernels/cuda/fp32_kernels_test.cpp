// The fp32 instantiations of the CUDA kernels (the exact mode, --dtype float32): embedding, RMSNorm +
// residual, SiLU-and-mul, random fill, the attention input stage, paged attention (prefill chunks
// with a cached prefix, decode, split-K, GQA/MHA/MQA) and the fp32 cuBLASLt projection, each against a
// double-precision CPU reference with fresh random inputs and poisoned outputs. Tolerances are fp32's
// (1e-5 and below), so any bf16 or TF32 rounding on the way fails them. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/qkv_post.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

std::vector<float> random_f32(size_t n, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> out(n);
  for (auto& v : out) v = d(rng);
  return out;
}

TEST(CudaF32Embedding, CopiesRowsExactlyAndZeroesOutOfRangeIds) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 1000, hidden = 264;
  const auto table_f = random_f32(static_cast<size_t>(vocab) * hidden, rng, 1.0f);
  DeviceBuffer<float> table(table_f);
  std::vector<int32_t> ids = {5, 999, 0, 1000, -3, 42};
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<float> out(ids.size() * hidden);
  out.poison();
  embedding(d_ids.get(), static_cast<int32_t>(ids.size()), table.get(), vocab, hidden, out.get(), nullptr);
  const auto got = out.download();
  for (size_t t = 0; t < ids.size(); ++t)
    for (int32_t i = 0; i < hidden; ++i) {
      const bool valid = ids[t] >= 0 && ids[t] < vocab;
      const float want = valid ? table_f[static_cast<size_t>(ids[t]) * hidden + i] : 0.0f;
      ASSERT_EQ(got[t * hidden + i], want) << "token " << t << " elem " << i;
    }
}

void check_rmsnorm(bool first) {
  std::mt19937 rng(std::random_device{}());
  const int32_t rows = 7, n = 4104;
  const float eps = 1e-5f;
  const auto x_f = random_f32(static_cast<size_t>(rows) * n, rng, 2.0f);
  const auto w_f = random_f32(n, rng, 1.5f);
  const auto res0 = random_f32(static_cast<size_t>(rows) * n, rng, 3.0f);
  DeviceBuffer<float> x(x_f), w(w_f), res(res0);
  DeviceBuffer<float> out(static_cast<size_t>(rows) * n);
  out.poison();
  add_rmsnorm(x.get(), res.get(), w.get(), out.get(), rows, n, eps, first, nullptr);
  const auto got = out.download();
  const auto got_res = res.download();
  std::vector<double> want(got.size()), want_res(got.size());
  for (int32_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int32_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(r) * n + i;
      want_res[k] = first ? x_f[k] : static_cast<double>(res0[k]) + x_f[k];
      ss += want_res[k] * want_res[k];
    }
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (int32_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(r) * n + i;
      want[k] = want_res[k] * inv * w_f[i];
    }
  }
  EXPECT_LT(rel_error(got_res, want_res), 1e-7);
  EXPECT_LT(rel_error(got, want), 2e-6);
}

TEST(CudaF32RmsNorm, FirstLayerStartsTheResidualStream) { check_rmsnorm(true); }
TEST(CudaF32RmsNorm, AddsIntoTheResidualStreamThenNormalises) { check_rmsnorm(false); }

TEST(CudaF32SiluMul, MatchesReference) {
  std::mt19937 rng(std::random_device{}());
  const int32_t rows = 5, inter = 1416;
  const auto gu_f = random_f32(static_cast<size_t>(rows) * 2 * inter, rng, 4.0f);
  DeviceBuffer<float> gu(gu_f);
  DeviceBuffer<float> out(static_cast<size_t>(rows) * inter);
  out.poison();
  silu_mul(gu.get(), rows, inter, out.get(), nullptr);
  const auto got = out.download();
  std::vector<double> want(got.size());
  for (int32_t r = 0; r < rows; ++r)
    for (int32_t i = 0; i < inter; ++i) {
      const double g = gu_f[static_cast<size_t>(r) * 2 * inter + i];
      const double u = gu_f[static_cast<size_t>(r) * 2 * inter + inter + i];
      want[static_cast<size_t>(r) * inter + i] = g / (1 + std::exp(-g)) * u;
    }
  EXPECT_LT(rel_error(got, want), 2e-6);
}

TEST(CudaF32FillRandom, FillsBoundedNonZeroValuesThatRoundToTheBf16Fill) {
  const int64_t n = 1 << 20;
  DeviceBuffer<float> x(n);
  x.poison();
  fill_random_f32(x.get(), n, 1234, 0.5f, 0.25f, nullptr);
  const auto got = x.download();
  double sum = 0;
  int64_t zeros = 0, distinct_from_bf16 = 0;
  for (float v : got) {
    ASSERT_TRUE(v >= 0.25f && v <= 0.75f) << v;
    sum += v;
    zeros += v == 0.0f;
    distinct_from_bf16 += from_bf16(to_bf16(v)) != v;
  }
  EXPECT_EQ(zeros, 0);
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  EXPECT_GT(distinct_from_bf16, n / 2);  // really fp32 values, not bf16 ones widened
  DeviceBuffer<__nv_bfloat16> y(n);
  fill_random_bf16(y.get(), n, 1234, 0.5f, 0.25f, nullptr);
  const auto b = to_float(y.download());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(b[i], from_bf16(to_bf16(got[i]))) << "element " << i;
}

struct QkvCase {
  int32_t hq, hkv, head_dim;
  bool bias, qk_norm;
};

class CudaF32QkvPost : public ::testing::TestWithParam<QkvCase> {};

TEST_P(CudaF32QkvPost, MatchesReferenceAndWritesTheCacheSlots) {
  const QkvCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const int32_t tokens = 9, D = c.head_dim, heads = c.hq + 2 * c.hkv, slots = 64;
  const float eps = 1e-6f;
  const auto qkv_f = random_f32(static_cast<size_t>(tokens) * heads * D, rng, 2.0f);
  const auto bias_f = random_f32(static_cast<size_t>(heads) * D, rng, 0.5f);
  const auto qn_f = random_f32(D, rng, 1.5f);
  const auto kn_f = random_f32(D, rng, 1.5f);
  DeviceBuffer<float> qkv(qkv_f), bias(bias_f), qn(qn_f), kn(kn_f);
  std::vector<int32_t> pos(tokens);
  std::vector<int64_t> slot(tokens);
  std::uniform_int_distribution<int32_t> pd(0, 40000);
  std::vector<int64_t> perm(slots);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int32_t t = 0; t < tokens; ++t) {
    pos[t] = pd(rng);
    slot[t] = t == 3 ? -1 : perm[t];  // token 3 is padding: nothing written
  }
  std::vector<float> inv_freq(D / 2);
  for (int32_t i = 0; i < D / 2; ++i) inv_freq[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * i / D));
  DeviceBuffer<int32_t> d_pos(pos);
  DeviceBuffer<int64_t> d_slot(slot);
  DeviceBuffer<float> d_freq(inv_freq);
  DeviceBuffer<float> kc(static_cast<size_t>(slots) * c.hkv * D), vc(static_cast<size_t>(slots) * c.hkv * D);
  kc.poison();
  vc.poison();
  QkvPostArgsT<float> a;
  a.qkv = qkv.get();
  a.bias = c.bias ? bias.get() : nullptr;
  a.q_norm = c.qk_norm ? qn.get() : nullptr;
  a.k_norm = c.qk_norm ? kn.get() : nullptr;
  a.norm_eps = eps;
  a.positions = d_pos.get();
  a.inv_freq = d_freq.get();
  a.slot_mapping = d_slot.get();
  a.k_cache = kc.get();
  a.v_cache = vc.get();
  a.tokens = tokens;
  a.hq = c.hq;
  a.hkv = c.hkv;
  a.head_dim = D;
  qkv_post(a, nullptr);
  const auto got = qkv.download();
  const auto got_k = kc.download();
  const auto got_v = vc.download();
  std::vector<double> want(got.size());
  std::vector<float> got_sel;
  std::vector<double> want_sel;
  for (int32_t t = 0; t < tokens; ++t)
    for (int32_t h = 0; h < heads; ++h) {
      const size_t base = (static_cast<size_t>(t) * heads + h) * D;
      std::vector<double> x(D);
      for (int32_t i = 0; i < D; ++i) x[i] = qkv_f[base + i] + (c.bias ? bias_f[h * D + i] : 0.0);
      const bool is_q = h < c.hq, is_k = !is_q && h < c.hq + c.hkv;
      if ((is_q || is_k) && c.qk_norm) {
        double ss = 0;
        for (double v : x) ss += v * v;
        const double inv = 1.0 / std::sqrt(ss / D + eps);
        for (int32_t i = 0; i < D; ++i) x[i] *= inv * (is_q ? qn_f[i] : kn_f[i]);
      }
      if (is_q || is_k) {
        std::vector<double> y(D);
        for (int32_t i = 0; i < D / 2; ++i) {
          // The angle is rounded to fp32 as the kernel (and transformers) compute it.
          const double ang = static_cast<double>(static_cast<float>(pos[t]) * inv_freq[i]);
          y[i] = x[i] * std::cos(ang) - x[i + D / 2] * std::sin(ang);
          y[i + D / 2] = x[i + D / 2] * std::cos(ang) + x[i] * std::sin(ang);
        }
        x = y;
      }
      for (int32_t i = 0; i < D; ++i) want[base + i] = x[i];
      if (!is_q && slot[t] >= 0) {
        const auto& cache = is_k ? got_k : got_v;
        const int32_t kvh = is_k ? h - c.hq : h - c.hq - c.hkv;
        for (int32_t i = 0; i < D; ++i) {
          got_sel.push_back(cache[(static_cast<size_t>(slot[t]) * c.hkv + kvh) * D + i]);
          want_sel.push_back(x[i]);
        }
      }
    }
  EXPECT_LT(rel_error(got, want), 5e-6);
  EXPECT_LT(rel_error(got_sel, want_sel), 5e-6);
  for (int32_t s = 0; s < slots; ++s) {
    if (std::find(slot.begin(), slot.end(), s) != slot.end()) continue;
    ASSERT_TRUE(std::isnan(got_k[static_cast<size_t>(s) * c.hkv * D])) << "slot " << s << " was written";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaF32QkvPost,
                         ::testing::Values(QkvCase{32, 8, 128, false, false}, QkvCase{8, 2, 64, true, false},
                                           QkvCase{16, 4, 128, false, true}, QkvCase{4, 1, 256, true, true}));

struct AttnCase {
  int32_t hq, hkv, head_dim;
  int32_t splits;  // 0: attention_splits' choice
};

struct Chunk {
  int32_t first_pos, q_len;  // keys [0, first_pos + q_len) exist in the cache
};

class CudaF32PagedAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(CudaF32PagedAttention, MixedPrefillAndDecodeMatchReference) {
  const AttnCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const int32_t D = c.head_dim, bs = 16;
  // A decode at 1,000 keys, a chunk after a cached prefix, a first chunk, a one-token prompt, a long decode.
  const std::vector<Chunk> chunks = {{999, 1}, {160, 37}, {0, 21}, {0, 1}, {3000, 1}};
  const int32_t nseq = static_cast<int32_t>(chunks.size());
  int32_t tokens = 0, max_blocks = 0;
  for (const auto& ch : chunks) {
    tokens += ch.q_len;
    max_blocks = std::max(max_blocks, (ch.first_pos + ch.q_len + bs - 1) / bs);
  }
  const int32_t num_blocks = nseq * max_blocks;
  std::vector<int32_t> tables(static_cast<size_t>(num_blocks));
  std::iota(tables.begin(), tables.end(), 0);
  std::shuffle(tables.begin(), tables.end(), rng);
  const size_t cache_elems = static_cast<size_t>(num_blocks) * bs * c.hkv * D;
  const auto k_f = random_f32(cache_elems, rng, 1.0f);
  const auto v_f = random_f32(cache_elems, rng, 1.0f);
  const int64_t q_stride = static_cast<int64_t>(c.hq + 2 * c.hkv) * D;  // q inside a fused qkv row
  const auto q_f = random_f32(static_cast<size_t>(tokens) * q_stride, rng, 1.5f);
  DeviceBuffer<float> kc(k_f), vc(v_f), q(q_f);
  const int32_t tile_tokens = attention_tile_tokens(c.hq, c.hkv, D, /*fp32=*/true);
  std::vector<AttentionTile> tiles;
  int32_t row = 0, max_q = 1;
  for (int32_t s = 0; s < nseq; ++s) {
    for (int32_t off = 0; off < chunks[s].q_len; off += tile_tokens) {
      const int32_t n = std::min(tile_tokens, chunks[s].q_len - off);
      tiles.push_back({s, row + off, n, chunks[s].first_pos + off});
      max_q = std::max(max_q, n);
    }
    row += chunks[s].q_len;
  }
  tiles.push_back({0, 0, 0, 0});  // a padding tile, as CUDA-graph buckets use
  const int32_t splits =
      c.splits > 0 ? c.splits : attention_splits(static_cast<int32_t>(tiles.size()), c.hq, c.hkv, D, 132, 3001);
  DeviceBuffer<int32_t> d_tables(tables);
  DeviceBuffer<AttentionTile> d_tiles(tiles);
  DeviceBuffer<float> o_part(static_cast<size_t>(splits) * tokens * c.hq * D);
  DeviceBuffer<float> ml_part(static_cast<size_t>(splits) * tokens * c.hq * 2);
  DeviceBuffer<float> out(static_cast<size_t>(tokens) * c.hq * D);
  out.poison();
  o_part.poison();
  ml_part.poison();
  AttentionArgsT<float> a;
  a.q = q.get();
  a.q_row_stride = q_stride;
  a.k_cache = kc.get();
  a.v_cache = vc.get();
  a.block_tables = d_tables.get();
  a.max_blocks_per_seq = max_blocks;
  a.block_size = bs;
  a.tiles = d_tiles.get();
  a.num_tiles = static_cast<int32_t>(tiles.size());
  a.max_q_len = max_q;
  a.hq = c.hq;
  a.hkv = c.hkv;
  a.head_dim = D;
  a.scale = 1.0f / std::sqrt(static_cast<float>(D));
  a.splits = splits;
  a.tokens = tokens;
  a.o_part = o_part.get();
  a.ml_part = ml_part.get();
  a.out = out.get();
  paged_attention(a, nullptr);
  const auto got = out.download();

  std::vector<double> want(got.size());
  row = 0;
  const int32_t g = c.hq / c.hkv;
  for (int32_t s = 0; s < nseq; ++s) {
    for (int32_t i = 0; i < chunks[s].q_len; ++i) {
      const int32_t p = chunks[s].first_pos + i;
      for (int32_t h = 0; h < c.hq; ++h) {
        const int32_t kvh = h / g;
        auto at = [&](int32_t k) {  // element offset of key k's head kvh in the cache
          const size_t slot = static_cast<size_t>(tables[s * max_blocks + k / bs]) * bs + k % bs;
          return (slot * c.hkv + kvh) * D;
        };
        std::vector<double> sc(p + 1);
        double mx = -1e300;
        for (int32_t k = 0; k <= p; ++k) {
          double dot = 0;
          for (int32_t d = 0; d < D; ++d)
            dot += static_cast<double>(q_f[(row + i) * q_stride + h * D + d]) * k_f[at(k) + d];
          sc[k] = dot / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, sc[k]);
        }
        double z = 0;
        for (auto& v : sc) z += (v = std::exp(v - mx));
        for (int32_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int32_t k = 0; k <= p; ++k) acc += sc[k] * v_f[at(k) + d];
          want[(static_cast<size_t>(row + i) * c.hq + h) * D + d] = acc / z;
        }
      }
    }
    row += chunks[s].q_len;
  }
  EXPECT_LT(rel_error(got, want), 1e-5) << "splits " << splits;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaF32PagedAttention,
                         ::testing::Values(AttnCase{32, 8, 128, 1}, AttnCase{32, 8, 128, 0}, AttnCase{8, 8, 64, 0},
                                           AttnCase{8, 8, 64, 3}, AttnCase{16, 1, 256, 0}, AttnCase{6, 2, 128, 7},
                                           AttnCase{14, 2, 64, 1}));

struct GemmCase {
  int32_t m, n, k;
};

class CudaF32Gemm : public ::testing::TestWithParam<GemmCase> {};

// TF32 would round x and w to 10-bit mantissas (errors ~1e-3): the 1e-5 bound rules it out.
TEST_P(CudaF32Gemm, MatchesFp64ReferenceWithoutTf32Rounding) {
  const auto [m, n, k] = GetParam();
  std::mt19937 rng(std::random_device{}());
  const auto x_f = random_f32(static_cast<size_t>(m) * k, rng, 1.0f);
  const auto w_f = random_f32(static_cast<size_t>(n) * k, rng, 1.0f);
  DeviceBuffer<float> x(x_f), w(w_f);
  DeviceBuffer<float> y(static_cast<size_t>(m) * n);
  DeviceBuffer<char> ws(32 << 20);
  y.poison();
  Gemm gemm(ws.get(), 32 << 20);
  gemm.run_f32(x.get(), w.get(), y.get(), m, n, k, nullptr);
  std::vector<double> want(static_cast<size_t>(m) * n);
  for (int32_t i = 0; i < m; ++i)
    for (int32_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int32_t l = 0; l < k; ++l) acc += static_cast<double>(x_f[i * k + l]) * w_f[j * k + l];
      want[static_cast<size_t>(i) * n + j] = acc;
    }
  const auto first = y.download();
  EXPECT_LT(rel_error(first, want), 1e-5);
  y.poison();
  gemm.run_f32(x.get(), w.get(), y.get(), m, n, k, nullptr);  // the cached plan: the same bits
  EXPECT_EQ(y.download(), first);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaF32Gemm,
                         ::testing::Values(GemmCase{1, 512, 256}, GemmCase{7, 1000, 264}, GemmCase{64, 384, 1024},
                                           GemmCase{300, 200, 136}));

}  // namespace
}  // namespace tessera::cuda::test
