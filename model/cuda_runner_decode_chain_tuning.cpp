// CudaRunner::tune_decode_chain: the decode steps' projection kernels chosen inside the step they run in.
// Gemm times each path alone (cuBLASLt, gemv and skinny variants), with the L2 flushed; in a decode step
// a gemv or skinny kernel loads its first weights before the kernel ahead of it has finished
// (programmatic dependent launch), so paths within a few percent of each other alone rank differently
// in the step. On nvidia-h200 five processes
// ran b1/512 at 3.880-3.975 ms by the variants their timing alone happened to pick, and a process given a
// slow process's tuning cache stayed as slow (docs/CUDA.md). Here each near-winner is timed again as a
// whole padded decode step (the forward a decode graph captures: padding rows write no KV), and the
// fastest kept. Every contender computes the same product; only its rounding may differ. Never runs under
// tensor parallelism (the ranks' contenders could differ while their forwards run collectives in step).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "model/cuda_runner.h"
#include "model/cuda_runner_buffers.h"
#include "model/decode_graph_plan.h"

namespace tessera::cuda {
namespace {

// A path timed alone within this factor of its shape's fastest is timed again in the step. The five
// processes above picked variants 7, 8 and 9 for the down projection, each within ~3% of the others.
constexpr float kContenderMargin = 1.06f;
// At most this many of them, fastest alone first: the skinny kernel's 30-odd variants often fall within
// the margin at 2-64 rows, and each contender costs a capture and kRounds replays (on nvidia-h200 every
// contender of buckets 1-64 took 10.5 s at start; the winners came from the first few).
constexpr size_t kMaxContenders = 4;
// Timed replays of each contender's step, taken in turns (one untimed turn first), median kept.
constexpr int kRounds = 7;

struct ProjectionShape {
  const char* name;
  int32_t n, k;
  bool out_f32;
};

// The decode step's projections as Gemm keys their plans (decode buckets run them unpadded, plain):
// qkv, o, gate/up, down, and the LM head (fp32 logits, head_n of them per row).
std::array<ProjectionShape, 5> projection_shapes(const LayerProjections& p, int32_t head_n, int32_t hidden) {
  return {{{"qkv", p.qkv.n, p.qkv.k, false},
           {"o", p.o.n, p.o.k, false},
           {"gate_up", p.gate_up.n, p.gate_up.k, false},
           {"down", p.down.n, p.down.k, false},
           {"lm_head", head_n, hidden, true}}};
}

}  // namespace

std::vector<DecodePath> CudaRunner::decode_projection_paths(int32_t rows) const {
  const int32_t bucket = std::max(1, decode_graph_bucket(rows, options_.max_num_seqs, options_.max_num_tokens));
  std::vector<DecodePath> out;
  for (const ProjectionShape& s : projection_shapes(layer_projections(bucket), lm_head_columns(), config_.hidden_size))
    out.push_back(gemm_->chosen_decode_path(bucket, s.n, s.k, s.out_f32));
  return out;
}

int CudaRunner::tune_decode_chain() {
  if (!options_.decode_chain_tuning || !options_.gemm_autotune || options_.dtype != DType::kBF16 || comm_) return 0;
  TS_CHECK(!pending_.active, kFailedPrecondition, "GEMM tuning cannot run while step {} is in flight",
           pending_.step_id);
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = config_;
  cudaEvent_t start = nullptr, stop = nullptr;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  auto replay_ms = [&](const Graph& g) {
    CUDA_CHECK(cudaEventRecord(start, stream_));
    CUDA_CHECK(cudaGraphLaunch(g.exec, stream_));
    CUDA_CHECK(cudaEventRecord(stop, stream_));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  };
  int changed = 0, timed = 0;
  std::string log;
  const int32_t context = std::max(1, std::min(options_.max_model_len, 1024));
  for (const int32_t bucket : decode_graph_buckets(options_.max_num_seqs, options_.max_num_tokens)) {
    if (bucket > kSkinnyMaxM) break;
    const ForwardShape f = decode_shape(
        DecodeGraphKey{bucket, step_splits(bucket, bucket, true, context), DecodeSamplerMode::kGreedyOnly});
    upload_padding_inputs(bucket);
    for (const ProjectionShape& s : projection_shapes(layer_projections(bucket), lm_head_columns(), c.hidden_size)) {
      const std::vector<DecodePath> contenders =
          gemm_->decode_contenders(bucket, s.n, s.k, s.out_f32, kContenderMargin, kMaxContenders);
      if (contenders.size() < 2) continue;
      const DecodePath before = gemm_->chosen_decode_path(bucket, s.n, s.k, s.out_f32);
      std::vector<std::unique_ptr<Graph>> graphs;
      for (const DecodePath& path : contenders) {
        gemm_->choose_decode_path(bucket, s.n, s.k, s.out_f32, path);
        graphs.push_back(capture_forward(f));
      }
      std::vector<std::vector<float>> ms(contenders.size());
      for (int round = 0; round <= kRounds; ++round)
        for (size_t i = 0; i < graphs.size(); ++i) {
          const float t = replay_ms(*graphs[i]);
          if (round > 0) ms[i].push_back(t);
        }
      std::vector<float> median(contenders.size());
      for (size_t i = 0; i < ms.size(); ++i) {
        std::nth_element(ms[i].begin(), ms[i].begin() + kRounds / 2, ms[i].end());
        median[i] = ms[i][kRounds / 2];
      }
      const size_t best = std::min_element(median.begin(), median.end()) - median.begin();
      const size_t was = std::find(contenders.begin(), contenders.end(), before) - contenders.begin();
      gemm_->choose_decode_path(bucket, s.n, s.k, s.out_f32, contenders[best]);
      ++timed;
      if (!(contenders[best] == before)) {
        ++changed;
        log += fmt::format("; {} rows {}: {} -> {} ({:.3f} -> {:.3f} ms a step)", bucket, s.name, to_string(before),
                           to_string(contenders[best]), was < median.size() ? median[was] : 0.0f, median[best]);
      }
    }
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  spdlog::info("decode chain tuning: {} shapes timed in the decode step, {} changed, in {:.2f} s{}", timed, changed,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), log);
  return changed;
}

}  // namespace tessera::cuda
