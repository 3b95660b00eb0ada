// tessera_cuda_sampling_bench: the GPU sampler (kernels/cuda/sampling.cuh) over fp32 logits of a
// Llama-3-sized vocabulary, per sampling mode and batch, replayed from a CUDA graph, each time next to
// the time one read of the logits takes at the copy bandwidth measured in the same run. Prints one
// JSON object per line.
// The logits are random normal values (never zeros), re-uploaded before each timed launch, since
// the sampler applies bias and penalties in place. `--rows N` and `--mode NAME` run one batch size /
// mode, `--reps N` sets the timed replays (30): to profile a few launches (ncu).
// Unknown arguments are an error.
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda/device_limits.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.cuh"

using namespace tessera::cuda;

namespace {

struct Mode {
  std::string name;
  SampleRow row;
};

std::vector<Mode> modes() {
  SampleRow greedy;
  SampleRow temp;
  temp.temperature = 0.7f;
  SampleRow top_k = temp;
  top_k.top_k = 50;
  SampleRow top_p = temp;
  top_p.top_p = 0.9f;
  SampleRow both = top_p;
  both.top_k = 50;
  SampleRow logprobs = greedy;
  logprobs.num_logprobs = 5;
  return {{"greedy", greedy}, {"temperature", temp}, {"top_k_50", top_k},
          {"top_p_0.9", top_p}, {"top_k_50_top_p_0.9", both}, {"greedy_logprobs_5", logprobs}};
}

// Median of `reps` replays of the sampler captured in a CUDA graph (as the runner replays decode
// steps), each after restoring the logits and a 64 MiB device copy that keeps the GPU busy while the
// host submits the replay: the events time the kernels alone, not the host's launch calls.
double time_sample(const SampleArgs& a, const float* fresh, size_t bytes, void* pad, size_t pad_bytes, cudaStream_t s,
                   int reps) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  sample(a, s);
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<double> t;
  for (int i = 0; i < reps + 2; ++i) {
    CUDA_CHECK(cudaMemcpyAsync(a.logits, fresh, bytes, cudaMemcpyDeviceToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(pad) + pad_bytes / 2, pad, pad_bytes / 2, cudaMemcpyDeviceToDevice, s));
    CUDA_CHECK(cudaEventRecord(e0, s));
    CUDA_CHECK(cudaGraphLaunch(exec, s));
    CUDA_CHECK(cudaEventRecord(e1, s));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (i >= 2) t.push_back(ms * 1e-3);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int32_t only_rows = 0, reps = 30;
  std::string only_mode;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 < argc && arg == "--rows") {
      only_rows = std::atoi(argv[++i]);
    } else if (i + 1 < argc && arg == "--mode") {
      only_mode = argv[++i];
    } else if (i + 1 < argc && arg == "--reps") {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::cerr << "tessera_cuda_sampling_bench: unknown argument '" << arg
                << "' (options: --rows N, --mode NAME, --reps N)" << std::endl;
      return 2;
    }
  }
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreate(&s));
  const tessera::bench::DeviceLimits lim = tessera::bench::measure_device_limits(s);
  const int32_t vocab = 128256;
  constexpr size_t kPadBytes = 128u << 20;
  void* pad = nullptr;
  CUDA_CHECK(cudaMalloc(&pad, kPadBytes));
  CUDA_CHECK(cudaMemset(pad, 1, kPadBytes));
  std::mt19937 rng(20261125);
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (int32_t rows : {1, 64}) {
    if (only_rows != 0 && rows != only_rows) continue;
    const size_t n = static_cast<size_t>(rows) * vocab, bytes = n * sizeof(float);
    std::vector<float> h(n);
    for (auto& v : h) v = d(rng);
    float *fresh = nullptr, *logits = nullptr, *lp = nullptr, *top_lp = nullptr;
    int32_t *tok = nullptr, *top_tok = nullptr;
    SampleRow* params = nullptr;
    SampleEntry* entries = nullptr;
    CUDA_CHECK(cudaMalloc(&fresh, bytes));
    CUDA_CHECK(cudaMalloc(&logits, bytes));
    CUDA_CHECK(cudaMemcpy(fresh, h.data(), bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&tok, rows * sizeof(int32_t)));
    CUDA_CHECK(cudaMalloc(&lp, rows * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&top_tok, rows * kMaxTopLogprobs * sizeof(int32_t)));
    CUDA_CHECK(cudaMalloc(&top_lp, rows * kMaxTopLogprobs * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&params, rows * sizeof(SampleRow)));
    CUDA_CHECK(cudaMalloc(&entries, sizeof(SampleEntry)));
    void* ws = nullptr;
    CUDA_CHECK(cudaMalloc(&ws, sample_workspace_bytes(rows)));
    CUDA_CHECK(cudaMemset(ws, 0, sample_workspace_bytes(rows)));
    for (const Mode& m : modes()) {
      if (!only_mode.empty() && m.name != only_mode) continue;
      std::vector<SampleRow> p(rows, m.row);
      for (int32_t r = 0; r < rows; ++r) p[r].seed = 7 + r, p[r].step = r;
      CUDA_CHECK(cudaMemcpy(params, p.data(), rows * sizeof(SampleRow), cudaMemcpyHostToDevice));
      SampleArgs a;
      a.logits = logits;
      a.rows = rows;
      a.vocab = vocab;
      a.params = params;
      a.entries = entries;
      a.out_token = tok;
      a.out_logprob = lp;
      a.out_top_tokens = top_tok;
      a.out_top_logprobs = top_lp;
      a.workspace = ws;
      a.workspace_rows = rows;
      a.greedy_only = m.row.temperature <= 0.0f && m.row.num_logprobs == 0;  // as the runner decides
      a.no_selection = !sample_row_wants_selection(m.row, vocab);
      const double t = time_sample(a, fresh, bytes, pad, kPadBytes, s, reps);
      const double one_read = static_cast<double>(bytes) / (lim.copy_bytes_per_s / 2);  // read only
      nlohmann::json row{{"kernel", "sample"}, {"mode", m.name}, {"rows", rows}, {"vocab", vocab},
                         {"us", t * 1e6}, {"one_read_at_copy_bw_us", one_read * 1e6},
                         {"copy_bandwidth_GBps", lim.copy_bytes_per_s / 1e9}};
      std::cout << row.dump() << std::endl;
    }
    for (void* q : {(void*)fresh, (void*)logits, (void*)tok, (void*)lp, (void*)top_tok, (void*)top_lp,
                    (void*)params, (void*)entries, ws})
      cudaFree(q);
  }
  cudaFree(pad);
  cudaStreamDestroy(s);
  return 0;
}
