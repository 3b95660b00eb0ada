// The attention input stage (bias, q/k norm, RoPE, paged-KV write) and paged attention (prefill
// chunks with a cached prefix, decode, GQA/MHA/MQA, split-K) against double-precision CPU references,
// with fresh random inputs, shuffled block tables and poisoned outputs, in bf16 (serving) and fp32
// (the exact mode: tolerances of 1e-5 and below, so any bf16 or TF32 rounding fails). GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/qkv_post.cuh"
#include "tests/kernels/cuda/attention_reference.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

struct QkvCase {
  int32_t hq, hkv, head_dim;
  bool bias, qk_norm;
};

// Tolerances per element type (relative L2 error against the fp64 reference).
template <typename T>
struct Tolerance {
  static constexpr double qkv = std::is_same_v<T, float> ? 5e-6 : 6e-3;
  static constexpr double attention = std::is_same_v<T, float> ? 1e-5 : 8e-3;
};

// The inputs of one qkv_post launch (device buffers owned by the test) as its arguments.
template <typename T>
struct QkvInputs {
  T* qkv;
  const T *bias, *q_norm, *k_norm;
  const int32_t* positions;
  const float* inv_freq;
  const int64_t* slots;
  T *k_cache, *v_cache;
};

template <typename T>
QkvPostArgsT<T> qkv_args(const QkvCase& c, const QkvInputs<T>& in, int32_t tokens, QkvPostLayout layout) {
  QkvPostArgsT<T> a;
  a.qkv = in.qkv;
  a.bias = c.bias ? in.bias : nullptr;
  a.q_norm = c.qk_norm ? in.q_norm : nullptr;
  a.k_norm = c.qk_norm ? in.k_norm : nullptr;
  a.positions = in.positions;
  a.inv_freq = in.inv_freq;
  a.slot_mapping = in.slots;
  a.k_cache = in.k_cache;
  a.v_cache = in.v_cache;
  a.tokens = tokens;
  a.hq = c.hq;
  a.hkv = c.hkv;
  a.head_dim = c.head_dim;
  a.layout = layout;
  return a;
}

// Every layout a case can take: the launcher's choice, one, two and four heads per warp, and without a
// q/k norm four pairs per lane.
std::vector<QkvPostLayout> qkv_layouts(const QkvCase& c) {
  std::vector<QkvPostLayout> out = {QkvPostLayout::kAuto, QkvPostLayout::kOneHeadPerWarp,
                                    QkvPostLayout::kTwoHeadsPerWarp, QkvPostLayout::kFourHeadsPerWarp};
  if (!c.qk_norm) out.push_back(QkvPostLayout::kFourPairsPerLane);
  return out;
}

std::string layout_name(QkvPostLayout l) { return "layout " + std::to_string(static_cast<int32_t>(l)); }

template <typename T>
void check_qkv_post(const QkvCase& c, QkvPostLayout layout) {
  std::mt19937 rng(std::random_device{}());
  const int32_t tokens = 9, D = c.head_dim, heads = c.hq + 2 * c.hkv, slots = 64;
  const float eps = 1e-6f;
  std::vector<float> qkv_f, bias_f, qn_f, kn_f;
  DeviceBuffer<T> qkv(random_values<T>(static_cast<size_t>(tokens) * heads * D, rng, 2.0f, &qkv_f));
  DeviceBuffer<T> bias(random_values<T>(static_cast<size_t>(heads) * D, rng, 0.5f, &bias_f));
  DeviceBuffer<T> qn(random_values<T>(D, rng, 1.5f, &qn_f));
  DeviceBuffer<T> kn(random_values<T>(D, rng, 1.5f, &kn_f));
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
  DeviceBuffer<T> kc(static_cast<size_t>(slots) * c.hkv * D), vc(static_cast<size_t>(slots) * c.hkv * D);
  kc.poison();
  vc.poison();
  QkvPostArgsT<T> a = qkv_args<T>(
      c, {qkv.get(), bias.get(), qn.get(), kn.get(), d_pos.get(), d_freq.get(), d_slot.get(), kc.get(), vc.get()},
      tokens, layout);
  a.norm_eps = eps;
  qkv_post(a, nullptr);
  const auto got = to_float(qkv.download());
  const auto got_k = to_float(kc.download());
  const auto got_v = to_float(vc.download());
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
  EXPECT_LT(rel_error(got, want), Tolerance<T>::qkv);
  EXPECT_LT(rel_error(got_sel, want_sel), Tolerance<T>::qkv);
  // Slots no token maps to keep their poison.
  for (int32_t s = 0; s < slots; ++s) {
    if (std::find(slot.begin(), slot.end(), s) != slot.end()) continue;
    ASSERT_TRUE(std::isnan(got_k[static_cast<size_t>(s) * c.hkv * D])) << "slot " << s << " was written";
  }
}

const auto kQkvCases = ::testing::Values(QkvCase{32, 8, 128, false, false}, QkvCase{8, 2, 64, true, false},
                                         QkvCase{16, 4, 128, false, true}, QkvCase{4, 1, 256, true, true});

class CudaQkvPost : public ::testing::TestWithParam<QkvCase> {};
TEST_P(CudaQkvPost, MatchesReferenceAndWritesTheCacheSlots) {
  for (QkvPostLayout l : qkv_layouts(GetParam())) {
    SCOPED_TRACE(layout_name(l));
    check_qkv_post<__nv_bfloat16>(GetParam(), l);
  }
}
INSTANTIATE_TEST_SUITE_P(Shapes, CudaQkvPost, kQkvCases);

class CudaF32QkvPost : public ::testing::TestWithParam<QkvCase> {};
TEST_P(CudaF32QkvPost, MatchesReferenceAndWritesTheCacheSlots) {
  for (QkvPostLayout l : qkv_layouts(GetParam())) {
    SCOPED_TRACE(layout_name(l));
    check_qkv_post<float>(GetParam(), l);
  }
}
INSTANTIATE_TEST_SUITE_P(Shapes, CudaF32QkvPost, kQkvCases);

// Every heads-per-warp choice writes the same bits (the per-element arithmetic and the norm's reduction
// order are the same), over enough tokens that the launcher's own choice is the wide one, with a head
// count that leaves the last warp's heads partly past the end.
TEST_P(CudaQkvPost, EveryHeadsPerWarpWritesTheSameBits) {
  const QkvCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const int32_t tokens = kQkvPostWideTokens + 6, D = c.head_dim, heads = c.hq + 2 * c.hkv;
  const auto input = random_values<__nv_bfloat16>(static_cast<size_t>(tokens) * heads * D, rng, 2.0f, nullptr);
  DeviceBuffer<__nv_bfloat16> bias(random_values<__nv_bfloat16>(static_cast<size_t>(heads) * D, rng, 0.5f, nullptr));
  DeviceBuffer<__nv_bfloat16> qn(random_values<__nv_bfloat16>(D, rng, 1.5f, nullptr));
  DeviceBuffer<__nv_bfloat16> kn(random_values<__nv_bfloat16>(D, rng, 1.5f, nullptr));
  std::vector<int32_t> pos(tokens);
  std::vector<int64_t> slot(tokens);
  std::uniform_int_distribution<int32_t> pd(0, 120000);
  for (int32_t t = 0; t < tokens; ++t) {
    pos[t] = pd(rng);
    slot[t] = t % 7 == 3 ? -1 : tokens - 1 - t;
  }
  std::vector<float> inv_freq(D / 2);
  for (int32_t i = 0; i < D / 2; ++i) inv_freq[i] = static_cast<float>(1.0 / std::pow(1000000.0, 2.0 * i / D));
  DeviceBuffer<int32_t> d_pos(pos);
  DeviceBuffer<int64_t> d_slot(slot);
  DeviceBuffer<float> d_freq(inv_freq);
  struct Out {
    std::vector<__nv_bfloat16> qkv, k, v;
  };
  auto run = [&](QkvPostLayout layout) {
    DeviceBuffer<__nv_bfloat16> qkv(input);
    DeviceBuffer<__nv_bfloat16> kc(static_cast<size_t>(tokens) * c.hkv * D), vc(static_cast<size_t>(tokens) * c.hkv * D);
    kc.poison();
    vc.poison();
    qkv_post(qkv_args<__nv_bfloat16>(c,
                                      {qkv.get(), bias.get(), qn.get(), kn.get(), d_pos.get(), d_freq.get(),
                                       d_slot.get(), kc.get(), vc.get()},
                                      tokens, layout),
             nullptr);
    return Out{qkv.download(), kc.download(), vc.download()};
  };
  auto same_bits = [](const std::vector<__nv_bfloat16>& x, const std::vector<__nv_bfloat16>& y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0;
  };
  const Out one = run(QkvPostLayout::kOneHeadPerWarp);
  EXPECT_FALSE(same_bits(one.qkv, input)) << "qkv_post left the projection unchanged";
  for (QkvPostLayout l : qkv_layouts(c)) {
    const Out o = run(l);
    EXPECT_TRUE(same_bits(o.qkv, one.qkv)) << "q/k/v rows, " << layout_name(l);
    EXPECT_TRUE(same_bits(o.k, one.k)) << "k cache, " << layout_name(l);
    EXPECT_TRUE(same_bits(o.v, one.v)) << "v cache, " << layout_name(l);
  }
}

TEST(CudaQkvPostArgs, AnUnknownLayoutIsAnError) {
  DeviceBuffer<__nv_bfloat16> qkv(std::vector<__nv_bfloat16>(3 * 64, __float2bfloat16(1.0f)));
  QkvPostArgs a;
  a.qkv = qkv.get();
  a.tokens = 1;
  a.hq = 1;
  a.hkv = 1;
  a.head_dim = 64;
  for (int32_t bad : {3, 16}) {
    a.layout = static_cast<QkvPostLayout>(bad);
    try {
      qkv_post(a, nullptr);
      FAIL() << "layout " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("got " + std::to_string(bad)), std::string::npos) << e.what();
    }
  }
  DeviceBuffer<__nv_bfloat16> norm(std::vector<__nv_bfloat16>(64, __float2bfloat16(1.0f)));
  a.layout = QkvPostLayout::kFourPairsPerLane;
  a.q_norm = norm.get();
  a.k_norm = norm.get();
  try {
    qkv_post(a, nullptr);
    FAIL() << "the vector-lane kernel accepted a q/k norm";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q/k norm"), std::string::npos) << e.what();
  }
}

struct AttnCase {
  int32_t hq, hkv, head_dim;
  int32_t splits;  // 0: attention_splits' choice
};

struct Chunk {
  int32_t first_pos, q_len;  // keys [0, first_pos + q_len) exist in the cache
};

template <typename T>
void check_paged_attention(const AttnCase& c) {
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
  std::vector<int32_t> perm(num_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> tables(static_cast<size_t>(nseq) * max_blocks);
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = perm[i];
  std::vector<float> k_f, v_f, q_f;
  const size_t cache_elems = static_cast<size_t>(num_blocks) * bs * c.hkv * D;
  DeviceBuffer<T> kc(random_values<T>(cache_elems, rng, 1.0f, &k_f));
  DeviceBuffer<T> vc(random_values<T>(cache_elems, rng, 1.0f, &v_f));
  const int64_t q_stride = static_cast<int64_t>(c.hq + 2 * c.hkv) * D;  // q inside a fused qkv row
  DeviceBuffer<T> q(random_values<T>(static_cast<size_t>(tokens) * q_stride, rng, 1.5f, &q_f));
  const int32_t tile_tokens = attention_tile_tokens(c.hq, c.hkv, D, std::is_same_v<T, float>);
  std::vector<ReferenceChunk> ref_chunks;
  for (int32_t s = 0; s < nseq; ++s) ref_chunks.push_back({s, chunks[s].first_pos, chunks[s].q_len});
  int32_t max_q = 1;
  std::vector<AttentionTile> tiles = tiles_for(ref_chunks, tile_tokens, &max_q);
  tiles.push_back({0, 0, 0, 0});  // a padding tile, as CUDA-graph buckets use
  const int32_t splits =
      c.splits > 0 ? c.splits : attention_splits(static_cast<int32_t>(tiles.size()), c.hq, c.hkv, D, 132, 3001);
  DeviceBuffer<int32_t> d_tables(tables);
  DeviceBuffer<AttentionTile> d_tiles(tiles);
  DeviceBuffer<float> o_part(static_cast<size_t>(splits) * tokens * c.hq * D);
  DeviceBuffer<float> ml_part(static_cast<size_t>(splits) * tokens * c.hq * 2);
  DeviceBuffer<T> out(static_cast<size_t>(tokens) * c.hq * D);
  out.poison();
  o_part.poison();
  ml_part.poison();
  AttentionArgsT<T> a;
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
  const auto got = to_float(out.download());

  const auto want = paged_attention_reference(q_f, q_stride, PagedKvView{k_f, v_f, tables, max_blocks, bs}, ref_chunks,
                                              c.hq, c.hkv, D);
  EXPECT_LT(rel_error(got, want), Tolerance<T>::attention) << "splits " << splits;
}

class CudaPagedAttention : public ::testing::TestWithParam<AttnCase> {};
TEST_P(CudaPagedAttention, MixedPrefillAndDecodeMatchReference) { check_paged_attention<__nv_bfloat16>(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Shapes, CudaPagedAttention,
                         ::testing::Values(AttnCase{32, 8, 128, 1}, AttnCase{32, 8, 128, 0}, AttnCase{8, 8, 64, 0},
                                           AttnCase{8, 8, 64, 3}, AttnCase{16, 1, 256, 0}, AttnCase{6, 2, 128, 7}));

class CudaF32PagedAttention : public ::testing::TestWithParam<AttnCase> {};
TEST_P(CudaF32PagedAttention, MixedPrefillAndDecodeMatchReference) { check_paged_attention<float>(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Shapes, CudaF32PagedAttention,
                         ::testing::Values(AttnCase{32, 8, 128, 1}, AttnCase{32, 8, 128, 0}, AttnCase{8, 8, 64, 0},
                                           AttnCase{8, 8, 64, 3}, AttnCase{16, 1, 256, 0}, AttnCase{6, 2, 128, 7},
                                           AttnCase{14, 2, 64, 1}));

}  // namespace
}  // namespace tessera::cuda::test
