// The fused decode launch (paged_attention_decode_fused: qkv_post's bias/norm/RoPE/cache write, the
// decode attention and its split merge in one kernel) against the fp64 reference and against the
// unfused path (qkv_post + paged_attention_decode + merge kernel) on the same fresh random inputs:
// new keys at the first and last key of a split and alone in a split, empty splits, 1..64 splits,
// GQA/MHA/MQA and a GQA ratio of 16 (two head groups per kv head: one cache writer), bias and q/k
// norm, head_dim 64/128/256, a padding tile. The new keys' cache rows start poisoned (NaN), so a
// read of one before it is written shows; every other cache byte must stay as it was, the raw qkv
// rows must not change and the arrival counters must be left at zero. Graph replays equal eager
// launches bit for bit. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>

#include "common/error.h"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/qkv_post.cuh"
#include "tests/kernels/cuda/attention_reference.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

constexpr int32_t kBlock = 16;
using bf16 = __nv_bfloat16;

uint16_t bits(bf16 v) { return __nv_bfloat16_raw(v).x; }

bool same_bits(const std::vector<bf16>& a, const std::vector<bf16>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(bf16)) == 0;
}

struct FusedCase {
  int32_t hq, hkv, head_dim;
  bool bias, qk_norm;
  int32_t splits;  // 0: attention_decode_splits' choice for 132 SMs
};

// One decode step's inputs: raw qkv rows (one per sequence, then one padding row), bias, norms,
// RoPE frequencies, shuffled block tables, and caches whose new-key rows are poisoned.
struct Step {
  FusedCase c;
  std::vector<int32_t> contexts;  // keys per sequence, this step's included
  int32_t max_blocks = 0, rows = 0, heads = 0;
  std::vector<float> raw_f, bias_f, qn_f, kn_f, k_f, v_f, freq;  // exact values of the bf16 inputs
  std::vector<int32_t> tables;
  std::vector<int64_t> new_slots;
  std::vector<bf16> raw, k0, v0;
  std::vector<AttentionTile> tiles;
  DeviceBuffer<bf16> d_raw, d_bias, d_qn, d_kn;
  DeviceBuffer<float> d_freq;
  std::unique_ptr<DeviceBuffer<int32_t>> d_tables;
  DeviceBuffer<int32_t> d_pos;
  DeviceBuffer<int64_t> d_slots;
  DeviceBuffer<AttentionTile> d_tiles;

  static int32_t blocks_of(int32_t ctx) { return (ctx + kBlock - 1) / kBlock; }

  Step(const FusedCase& fc, std::vector<int32_t> ctx, std::mt19937& rng)
      : c(fc),
        contexts(std::move(ctx)),
        rows(static_cast<int32_t>(contexts.size()) + 1),
        heads(fc.hq + 2 * fc.hkv),
        raw(random_bf16(static_cast<size_t>(rows) * heads * fc.head_dim, rng, 2.0f, &raw_f)),
        d_raw(raw),
        d_bias(random_bf16(static_cast<size_t>(heads) * fc.head_dim, rng, 0.5f, &bias_f)),
        d_qn(random_bf16(fc.head_dim, rng, 1.5f, &qn_f)),
        d_kn(random_bf16(fc.head_dim, rng, 1.5f, &kn_f)),
        d_freq(fc.head_dim / 2),
        d_pos(rows),
        d_slots(rows),
        d_tiles(rows) {
    const int32_t nseq = rows - 1, D = c.head_dim;
    int32_t total = 0;
    for (int32_t n : contexts) {
      max_blocks = std::max(max_blocks, blocks_of(n) + 2);  // spare entries, never read
      total += blocks_of(n);
    }
    std::vector<int32_t> perm(total);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    tables.assign(static_cast<size_t>(nseq) * max_blocks, INT32_MAX / 2);
    int32_t next = 0;
    std::vector<int32_t> pos;
    for (int32_t s = 0; s < nseq; ++s) {
      for (int32_t b = 0; b < blocks_of(contexts[s]); ++b) tables[s * max_blocks + b] = perm[next++];
      const int32_t p = contexts[s] - 1;
      pos.push_back(p);
      new_slots.push_back(static_cast<int64_t>(tables[s * max_blocks + p / kBlock]) * kBlock + p % kBlock);
      tiles.push_back({s, s, 1, p});
    }
    pos.push_back(0);
    tiles.push_back({0, 0, 0, 0});  // a graph bucket's padding tile
    std::vector<int64_t> slots = new_slots;
    slots.push_back(-1);
    const size_t cache_elems = static_cast<size_t>(total) * kBlock * c.hkv * D;
    k0 = random_bf16(cache_elems, rng, 1.0f, &k_f);
    v0 = random_bf16(cache_elems, rng, 1.0f, &v_f);
    __nv_bfloat16_raw nan_bits;
    nan_bits.x = 0xFFFF;  // NaN, as DeviceBuffer::poison writes
    const bf16 nan(nan_bits);
    for (int64_t slot : new_slots)
      for (int64_t i = slot * c.hkv * D; i < (slot + 1) * c.hkv * D; ++i) k0[i] = v0[i] = nan;
    freq.resize(D / 2);
    for (int32_t i = 0; i < D / 2; ++i) freq[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * i / D));
    d_freq.upload(freq);
    d_tables = std::make_unique<DeviceBuffer<int32_t>>(tables);
    d_pos.upload(pos);
    d_slots.upload(slots);
    d_tiles.upload(tiles);
  }

  int32_t nseq() const { return rows - 1; }
  int32_t splits() const {
    return c.splits > 0 ? c.splits
                        : attention_decode_splits(rows, c.hq, c.hkv, c.head_dim, 132,
                                                  *std::max_element(contexts.begin(), contexts.end()));
  }

  // qkv_post's function of one raw head (row r, head h) in double.
  std::vector<double> post(int32_t r, int32_t h) const {
    const int32_t D = c.head_dim;
    std::vector<double> x(D);
    for (int32_t i = 0; i < D; ++i)
      x[i] = raw_f[(static_cast<size_t>(r) * heads + h) * D + i] + (c.bias ? bias_f[h * D + i] : 0.0);
    const bool is_q = h < c.hq, is_k = !is_q && h < c.hq + c.hkv;
    if (!is_q && !is_k) return x;
    if (c.qk_norm) {
      double ss = 0;
      for (double v : x) ss += v * v;
      const double inv = 1.0 / std::sqrt(ss / D + 1e-6);
      for (int32_t i = 0; i < D; ++i) x[i] *= inv * (is_q ? qn_f[i] : kn_f[i]);
    }
    std::vector<double> y(D);
    for (int32_t i = 0; i < D / 2; ++i) {
      const double ang = static_cast<double>(static_cast<float>(contexts[r] - 1) * freq[i]);
      y[i] = x[i] * std::cos(ang) - x[i + D / 2] * std::sin(ang);
      y[i + D / 2] = x[i + D / 2] * std::cos(ang) + x[i] * std::sin(ang);
    }
    return y;
  }

  // The attention output [nseq, hq, D] and the new keys' K and V rows [nseq, hkv, D], in double.
  void reference(std::vector<double>* out, std::vector<double>* k_rows, std::vector<double>* v_rows) const {
    const int32_t D = c.head_dim;
    std::vector<float> q(static_cast<size_t>(nseq()) * c.hq * D), kf = k_f, vf = v_f;
    k_rows->clear();
    v_rows->clear();
    for (int32_t s = 0; s < nseq(); ++s) {
      for (int32_t h = 0; h < c.hq; ++h) {
        const auto x = post(s, h);
        for (int32_t i = 0; i < D; ++i) q[(static_cast<size_t>(s) * c.hq + h) * D + i] = static_cast<float>(x[i]);
      }
      for (int32_t kvh = 0; kvh < c.hkv; ++kvh) {
        const auto k = post(s, c.hq + kvh), v = post(s, c.hq + c.hkv + kvh);
        for (int32_t i = 0; i < D; ++i) {
          kf[(new_slots[s] * c.hkv + kvh) * D + i] = static_cast<float>(k[i]);
          vf[(new_slots[s] * c.hkv + kvh) * D + i] = static_cast<float>(v[i]);
        }
        k_rows->insert(k_rows->end(), k.begin(), k.end());
        v_rows->insert(v_rows->end(), v.begin(), v.end());
      }
    }
    std::vector<ReferenceChunk> chunks;
    for (int32_t s = 0; s < nseq(); ++s) chunks.push_back({s, contexts[s] - 1, 1});
    *out = paged_attention_reference(q, static_cast<int64_t>(c.hq) * D, PagedKvView{kf, vf, tables, max_blocks, kBlock},
                                     chunks, c.hq, c.hkv, D);
  }

  // The new keys' rows of a cache, [nseq, hkv, D].
  std::vector<float> new_rows(const std::vector<bf16>& cache) const {
    std::vector<float> r;
    const int64_t row = static_cast<int64_t>(c.hkv) * c.head_dim;
    for (int64_t slot : new_slots)
      for (int64_t i = slot * row; i < (slot + 1) * row; ++i) r.push_back(from_bf16(cache[i]));
    return r;
  }

  // Whether every cache element outside the new keys' rows kept its initial bits.
  bool rest_unchanged(const std::vector<bf16>& cache, const std::vector<bf16>& initial) const {
    const int64_t row = static_cast<int64_t>(c.hkv) * c.head_dim;
    for (size_t i = 0; i < cache.size(); ++i) {
      const int64_t slot = static_cast<int64_t>(i) / row;
      if (std::find(new_slots.begin(), new_slots.end(), slot) != new_slots.end()) continue;
      if (bits(cache[i]) != bits(initial[i])) return false;
    }
    return true;
  }
};

// Device state of one launch: caches from the step's initial contents, poisoned outputs/partials.
struct Launch {
  DeviceBuffer<bf16> qkv, kc, vc, out;
  DeviceBuffer<float> o_part, ml_part;
  DeviceBuffer<int32_t> counters;
  AttentionArgs a;
  DecodeQkvArgs f;

  Launch(const Step& st, int32_t splits)
      : qkv(st.raw),
        kc(st.k0),
        vc(st.v0),
        out(static_cast<size_t>(st.rows) * st.c.hq * st.c.head_dim),
        o_part(static_cast<size_t>(splits) * st.rows * st.c.hq * st.c.head_dim),
        ml_part(static_cast<size_t>(splits) * st.rows * st.c.hq * 2),
        counters(std::vector<int32_t>(attention_decode_counters(st.rows, st.c.hq, st.c.hkv), 0)) {
    out.poison();
    o_part.poison();
    ml_part.poison();
    a.q = qkv.get();
    a.q_row_stride = static_cast<int64_t>(st.heads) * st.c.head_dim;
    a.k_cache = kc.get();
    a.v_cache = vc.get();
    a.block_tables = st.d_tables->get();
    a.max_blocks_per_seq = st.max_blocks;
    a.block_size = kBlock;
    a.tiles = st.d_tiles.get();
    a.num_tiles = st.rows;
    a.max_q_len = 1;
    a.hq = st.c.hq;
    a.hkv = st.c.hkv;
    a.head_dim = st.c.head_dim;
    a.scale = 1.0f / std::sqrt(static_cast<float>(st.c.head_dim));
    a.splits = splits;
    a.tokens = st.rows;
    a.o_part = o_part.get();
    a.ml_part = ml_part.get();
    a.out = out.get();
    f.k_cache = kc.get();
    f.v_cache = vc.get();
    f.bias = st.c.bias ? st.d_bias.get() : nullptr;
    f.q_norm = st.c.qk_norm ? st.d_qn.get() : nullptr;
    f.k_norm = st.c.qk_norm ? st.d_kn.get() : nullptr;
    f.norm_eps = 1e-6f;
    f.inv_freq = st.d_freq.get();
    f.counters = counters.get();
    f.num_counters = static_cast<int64_t>(counters.size());
  }

  // The unfused path on the same state: qkv_post (rewrites qkv in place) + decode kernel + merge. The
  // CUDA-core decode kernel: the fused launch is its variant, so their arithmetic is the same.
  void run_unfused(const Step& st) {
    QkvPostArgs q;
    q.qkv = qkv.get();
    q.bias = f.bias;
    q.q_norm = f.q_norm;
    q.k_norm = f.k_norm;
    q.norm_eps = f.norm_eps;
    q.positions = st.d_pos.get();
    q.inv_freq = f.inv_freq;
    q.slot_mapping = st.d_slots.get();
    q.k_cache = kc.get();
    q.v_cache = vc.get();
    q.tokens = st.rows;
    q.hq = st.c.hq;
    q.hkv = st.c.hkv;
    q.head_dim = st.c.head_dim;
    qkv_post(q, nullptr);
    paged_attention_decode_cuda_cores(a, nullptr);
  }
  // Output rows of the real sequences (the padding row is never written).
  std::vector<bf16> real_out(const Step& st) const {
    auto o = out.download();
    o.resize(static_cast<size_t>(st.nseq()) * st.c.hq * st.c.head_dim);
    return o;
  }
};

const std::vector<int32_t> kContexts = {1, 2, 33, 64, 65, 97, 128, 129, 256, 257, 1000};

double worst_sequence_error(const std::vector<float>& got, const std::vector<double>& want, int32_t nseq) {
  const size_t per = got.size() / nseq;
  double worst = 0;
  for (int32_t s = 0; s < nseq; ++s)
    worst = std::max(worst, rel_error(std::vector<float>(got.begin() + s * per, got.begin() + (s + 1) * per),
                                      std::vector<double>(want.begin() + s * per, want.begin() + (s + 1) * per)));
  return worst;
}

class CudaFusedDecodeAttention : public ::testing::TestWithParam<FusedCase> {};

TEST_P(CudaFusedDecodeAttention, MatchesReferenceAndTheUnfusedPath) {
  std::mt19937 rng(std::random_device{}());
  Step st(GetParam(), kContexts, rng);
  const int32_t splits = st.splits();
  SCOPED_TRACE(::testing::Message() << "splits " << splits);
  Launch fused(st, splits);
  paged_attention_decode_fused(fused.a, fused.f, nullptr);
  const auto out = fused.real_out(st);
  const auto kc = fused.kc.download(), vc = fused.vc.download();

  std::vector<double> want, want_k, want_v;
  st.reference(&want, &want_k, &want_v);
  EXPECT_LT(worst_sequence_error(to_float(out), want, st.nseq()), 1e-2);
  EXPECT_LT(rel_error(st.new_rows(kc), want_k), 6e-3);
  EXPECT_LT(rel_error(st.new_rows(vc), want_v), 6e-3);
  EXPECT_TRUE(st.rest_unchanged(kc, st.k0)) << "a K cache row other than the new keys' was written";
  EXPECT_TRUE(st.rest_unchanged(vc, st.v0)) << "a V cache row other than the new keys' was written";
  EXPECT_TRUE(same_bits(fused.qkv.download(), st.raw)) << "the raw qkv rows were rewritten";
  for (int32_t n : fused.counters.download()) ASSERT_EQ(n, 0) << "an arrival counter was left set";

  Launch unfused(st, splits);
  unfused.run_unfused(st);
  const auto u_out = unfused.real_out(st);
  const auto u_kc = unfused.kc.download(), u_vc = unfused.vc.download();
  if (!GetParam().qk_norm) {  // the same arithmetic in the same order: equal bit for bit
    EXPECT_TRUE(same_bits(out, u_out)) << "fused output differs from qkv_post + decode + merge";
    EXPECT_TRUE(same_bits(kc, u_kc) && same_bits(vc, u_vc)) << "fused cache differs from qkv_post's";
  } else {  // the norm's sum of squares runs in another order: last-bit differences
    std::vector<double> u(u_out.size());
    for (size_t i = 0; i < u.size(); ++i) u[i] = from_bf16(u_out[i]);
    EXPECT_LT(rel_error(to_float(out), u), 1e-2);
    std::vector<double> uk;
    for (float x : st.new_rows(u_kc)) uk.push_back(x);
    EXPECT_LT(rel_error(st.new_rows(kc), uk), 8e-3);
    EXPECT_TRUE(same_bits(vc, u_vc)) << "v takes no norm: it must equal qkv_post's bit for bit";
  }

  // Deterministic: a second launch on fresh state gives the same bits.
  Launch again(st, splits);
  paged_attention_decode_fused(again.a, again.f, nullptr);
  EXPECT_TRUE(same_bits(again.real_out(st), out));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaFusedDecodeAttention,
                         ::testing::Values(FusedCase{32, 8, 128, false, false, 1}, FusedCase{32, 8, 128, false, false, 0},
                                           FusedCase{32, 8, 128, false, false, 8}, FusedCase{32, 8, 128, true, true, 8},
                                           FusedCase{32, 8, 128, false, false, 64}, FusedCase{8, 8, 64, true, false, 3},
                                           FusedCase{16, 2, 256, false, true, 5}, FusedCase{6, 2, 128, true, true, 7},
                                           FusedCase{32, 2, 64, false, false, 4}, FusedCase{8, 1, 128, true, false, 4},
                                           FusedCase{32, 2, 128, false, true, 2}));

// The new key as the first or last key of a split, and alone in the last split (4 splits of 32 keys
// at head_dim 128: contexts 65/97/129 put the new key first in a split, 64/128 last).
TEST(CudaFusedDecodeAttention, NewKeyAtSplitBoundaries) {
  std::mt19937 rng(std::random_device{}());
  Step st(FusedCase{8, 2, 128, true, false, 4}, {65, 64, 97, 96, 129, 128, 33, 32}, rng);
  Launch fused(st, 4);
  paged_attention_decode_fused(fused.a, fused.f, nullptr);
  Launch unfused(st, 4);
  unfused.run_unfused(st);
  std::vector<double> want, want_k, want_v;
  st.reference(&want, &want_k, &want_v);
  const auto out = fused.real_out(st);
  EXPECT_LT(worst_sequence_error(to_float(out), want, st.nseq()), 1e-2);
  EXPECT_TRUE(same_bits(out, unfused.real_out(st)));
  EXPECT_TRUE(same_bits(fused.kc.download(), unfused.kc.download()));
}

TEST(CudaFusedDecodeAttention, GraphReplaysEqualEagerLaunches) {
  std::mt19937 rng(std::random_device{}());
  // Contexts not at a block boundary: the next step's key lands in the same blocks.
  Step st(FusedCase{32, 8, 128, false, true, 8}, {300, 77, 33, 510}, rng);
  Launch l(st, 8);
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CUDA_CHECK(cudaDeviceSynchronize());
  paged_attention_decode_fused(l.a, l.f, s);
  CUDA_CHECK(cudaStreamSynchronize(s));
  const auto eager = l.real_out(st);
  const auto eager_k = l.kc.download(), eager_v = l.vc.download();

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  paged_attention_decode_fused(l.a, l.f, s);
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int rep = 0; rep < 5; ++rep) {  // the counters must be back at zero for every replay
    l.kc.upload(st.k0);
    l.vc.upload(st.v0);
    l.out.poison();
    CUDA_CHECK(cudaDeviceSynchronize());  // s does not wait on the default stream's copies and memsets
    CUDA_CHECK(cudaGraphLaunch(exec, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    ASSERT_TRUE(same_bits(l.real_out(st), eager)) << "replay " << rep;
    ASSERT_TRUE(same_bits(l.kc.download(), eager_k) && same_bits(l.vc.download(), eager_v)) << "replay " << rep;
  }
  // The next step through the same graph: one more key each, tiles read from device memory.
  std::vector<AttentionTile> next = st.tiles;
  for (int32_t i = 0; i < st.nseq(); ++i) ++next[i].first_pos;
  st.d_tiles.upload(next);
  l.out.poison();
  CUDA_CHECK(cudaDeviceSynchronize());
  CUDA_CHECK(cudaGraphLaunch(exec, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  const auto replayed = l.real_out(st);
  const auto replayed_k = l.kc.download();
  l.kc.upload(eager_k);
  l.vc.upload(eager_v);
  l.out.poison();
  CUDA_CHECK(cudaDeviceSynchronize());
  paged_attention_decode_fused(l.a, l.f, s);
  CUDA_CHECK(cudaStreamSynchronize(s));
  EXPECT_TRUE(same_bits(l.real_out(st), replayed));
  EXPECT_TRUE(same_bits(l.kc.download(), replayed_k));
  for (float v : to_float(replayed)) ASSERT_TRUE(std::isfinite(v));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

TEST(CudaFusedDecodeAttention, RefusesInconsistentArguments) {
  std::mt19937 rng(std::random_device{}());
  Step st(FusedCase{8, 2, 64, false, false, 2}, {40, 9}, rng);
  Launch l(st, 2);
  DecodeQkvArgs bad = l.f;
  bad.counters = nullptr;
  EXPECT_THROW(paged_attention_decode_fused(l.a, bad, nullptr), Error);
  bad = l.f;
  bad.num_counters = attention_decode_counters(st.rows, 8, 2) - 1;
  EXPECT_THROW(paged_attention_decode_fused(l.a, bad, nullptr), Error);
  bad = l.f;
  bad.k_cache = l.vc.get();
  EXPECT_THROW(paged_attention_decode_fused(l.a, bad, nullptr), Error);
  bad = l.f;
  bad.q_norm = st.d_qn.get();  // without k_norm
  EXPECT_THROW(paged_attention_decode_fused(l.a, bad, nullptr), Error);
  bad = l.f;
  bad.inv_freq = nullptr;
  EXPECT_THROW(paged_attention_decode_fused(l.a, bad, nullptr), Error);
  AttentionArgs a = l.a;
  a.splits = 257;  // the fused merge holds two splits per thread
  EXPECT_THROW(paged_attention_decode_fused(a, l.f, nullptr), Error);
  a = l.a;
  a.max_q_len = 2;
  EXPECT_THROW(paged_attention_decode_fused(a, l.f, nullptr), Error);
  a = l.a;
  a.head_dim = 96;
  EXPECT_THROW(paged_attention_decode_fused(a, l.f, nullptr), Error);
  // One split needs no counters.
  a = l.a;
  a.splits = 1;
  bad = l.f;
  bad.counters = nullptr;
  bad.num_counters = 0;
  EXPECT_NO_THROW(paged_attention_decode_fused(a, bad, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(attention_decode_counters(3, 32, 8), 3 * 8);
  EXPECT_EQ(attention_decode_counters(3, 32, 2), 3 * 2 * 2);  // 16 q heads per kv head: two groups of 8
}

}  // namespace
}  // namespace tessera::cuda::test
