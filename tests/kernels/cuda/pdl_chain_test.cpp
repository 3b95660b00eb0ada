// Programmatic dependent launch across the decode chain: gate_up gemv -> SiLU-fused down gemv ->
// add_rmsnorm -> gemv, each reading what the one before wrote while it may already be running. The
// chain is captured into a CUDA graph whose first nodes poison every intermediate, so a kernel that
// read before its predecessor finished would see NaN. Replays must match the eager run bit for bit and
// the CPU reference. Runs on a GPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

std::vector<float> matvec(const std::vector<float>& x, const std::vector<float>& w, int32_t n, int32_t k) {
  std::vector<float> y(n);
  for (int32_t j = 0; j < n; ++j) {
    double acc = 0;
    for (int32_t l = 0; l < k; ++l) acc += static_cast<double>(x[l]) * w[static_cast<size_t>(j) * k + l];
    y[j] = static_cast<float>(acc);
  }
  return y;
}

std::vector<float> round_bf16(std::vector<float> v) {
  for (float& f : v) f = from_bf16(to_bf16(f));
  return v;
}

struct Chain {
  int32_t h = 1024, inter = 1536, out = 777;
  std::vector<float> x_f, gu_f, down_f, norm_f, out_f, res_f;  // first: the buffers below fill them
  DeviceBuffer<__nv_bfloat16> x, w_gu, w_down, norm_w, w_out, gate_up, down, hidden;
  DeviceBuffer<float> residual, y;

  explicit Chain(std::mt19937& rng)
      : x(random_bf16(h, rng, 1.0f, &x_f)),
        w_gu(random_bf16(static_cast<size_t>(2) * inter * h, rng, 0.05f, &gu_f)),
        w_down(random_bf16(static_cast<size_t>(h) * inter, rng, 0.05f, &down_f)),
        norm_w(random_bf16(h, rng, 1.0f, &norm_f)),
        w_out(random_bf16(static_cast<size_t>(out) * h, rng, 0.1f, &out_f)),
        gate_up(2 * inter),
        down(h),
        hidden(h),
        residual(h),
        y(out) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    res_f.resize(h);
    for (float& f : res_f) f = d(rng);
    CUDA_CHECK(cudaMemcpy(residual.get(), res_f.data(), h * sizeof(float), cudaMemcpyHostToDevice));
  }

  // Poisons the intermediates (on the stream, so a graph captures it), then runs the chain. The
  // residual is reset from `res0` so every run computes the same thing.
  void run(cudaStream_t s, const float* res0, int v_gu, int v_down, int v_out) {
    CUDA_CHECK(cudaMemsetAsync(gate_up.get(), 0xFF, gate_up.size() * 2, s));
    CUDA_CHECK(cudaMemsetAsync(down.get(), 0xFF, down.size() * 2, s));
    CUDA_CHECK(cudaMemsetAsync(hidden.get(), 0xFF, hidden.size() * 2, s));
    CUDA_CHECK(cudaMemsetAsync(y.get(), 0xFF, y.size() * 4, s));
    CUDA_CHECK(cudaMemcpyAsync(residual.get(), res0, h * sizeof(float), cudaMemcpyDeviceToDevice, s));
    gemv(x.get(), w_gu.get(), gate_up.get(), 1, 2 * inter, h, false, v_gu, s);
    gemv(gate_up.get(), w_down.get(), down.get(), 1, h, inter, false, v_down, s, GemvInput::kSiluMul);
    add_rmsnorm(down.get(), residual.get(), norm_w.get(), hidden.get(), 1, h, 1e-5f, false, s);
    gemv(hidden.get(), w_out.get(), y.get(), 1, out, h, true, v_out, s);
  }

  std::vector<double> reference() const {
    const auto gu = round_bf16(matvec(x_f, gu_f, 2 * inter, h));
    std::vector<float> act(inter);
    for (int32_t i = 0; i < inter; ++i) {
      const float g = gu[i];
      act[i] = from_bf16(to_bf16(g / (1.0f + std::exp(-g)) * gu[inter + i]));
    }
    const auto dn = round_bf16(matvec(act, down_f, h, inter));
    std::vector<float> r(h), hid(h);
    double ss = 0;
    for (int32_t i = 0; i < h; ++i) {
      r[i] = res_f[i] + dn[i];
      ss += static_cast<double>(r[i]) * r[i];
    }
    const double inv = 1.0 / std::sqrt(ss / h + 1e-5);
    for (int32_t i = 0; i < h; ++i) hid[i] = from_bf16(to_bf16(static_cast<float>(r[i] * inv * norm_f[i])));
    const auto yv = matvec(hid, out_f, out, h);
    return std::vector<double>(yv.begin(), yv.end());
  }
};

TEST(CudaPdlChain, GraphReplaysMatchEagerAndReference) {
  std::mt19937 rng(std::random_device{}());
  Chain c(rng);
  DeviceBuffer<float> res0(c.h);
  CUDA_CHECK(cudaMemcpy(res0.get(), c.res_f.data(), c.h * sizeof(float), cudaMemcpyHostToDevice));
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const auto want = c.reference();
  // (warp, split-K, split-K) and (split-K (1,2), split-K (2,7), warp (1,8)) variants.
  for (const auto& [v_gu, v_down, v_out] : {std::tuple{0, 7, 10}, std::tuple{6, 11, 5}}) {
    c.run(s, res0.get(), v_gu, v_down, v_out);
    CUDA_CHECK(cudaStreamSynchronize(s));
    const auto eager = c.y.download();
    EXPECT_LT(rel_error(eager, want), 1e-2) << v_gu << " " << v_down << " " << v_out;

    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    c.run(s, res0.get(), v_gu, v_down, v_out);
    CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec = nullptr;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int rep = 0; rep < 20; ++rep) {
      CUDA_CHECK(cudaGraphLaunch(exec, s));
      CUDA_CHECK(cudaStreamSynchronize(s));
      ASSERT_EQ(c.y.download(), eager) << "replay " << rep;
    }
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    CUDA_CHECK(cudaGraphDestroy(graph));
  }
  CUDA_CHECK(cudaStreamDestroy(s));
}

}  // namespace
}  // namespace tessera::cuda::test
