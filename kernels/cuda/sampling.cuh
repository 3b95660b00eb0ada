// Token sampling on the GPU over fp32 logits [rows, vocab], so logits never cross PCIe:
// logit bias and penalties (repetition over prompt+output, presence/frequency over output), then
// greedy argmax, or temperature + top-k + top-p + min-p and a draw from a counter-based generator
// keyed by (seed, step): the same seed and step give the same token, batch composition does not
// matter. Also the sampled token's logprob and the top-k logprobs (after bias/penalties/temperature).
// Bias and penalties are applied to the logits in place; temperature is applied as they are read
// (the logits are never rescaled in place). Never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kMaxTopLogprobs = 20;

struct SampleRow {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t num_logprobs = 0;  // top alternatives wanted (<= kMaxTopLogprobs)
  uint64_t seed = 0;
  int64_t step = 0;          // index of the token being sampled within its sequence
  int32_t entries_begin = 0; // [begin, end) into the entries array
  int32_t entries_end = 0;
};

// One distinct token of a row that carries a bias or a penalty.
struct SampleEntry {
  int32_t token = 0;
  int32_t output_count = 0;  // occurrences among generated tokens
  int32_t in_prompt = 0;     // 1 when it occurs in the prompt
  float bias = 0.0f;         // logit_bias
};

// Whether a row needs the selection passes: a top-k or top-p threshold (min-p alone is set by the
// statistics pass) or top logprob alternatives. The one definition the kernels and the host's launch
// promises (SampleArgs::no_selection) share.
__host__ __device__ inline bool sample_row_wants_threshold(const SampleRow& p, int32_t vocab) {
  return !(p.temperature <= 0.0f) && ((p.top_k > 0 && p.top_k < vocab) || p.top_p < 1.0f);
}
__host__ __device__ inline bool sample_row_wants_selection(const SampleRow& p, int32_t vocab) {
  return sample_row_wants_threshold(p, vocab) || p.num_logprobs > 0;
}

struct SampleArgs {
  float* logits = nullptr;          // [rows, vocab]
  int32_t rows = 0;
  int32_t vocab = 0;
  const SampleRow* params = nullptr;     // [rows]
  const SampleEntry* entries = nullptr;  // CSR, unique tokens per row
  int32_t* out_token = nullptr;          // [rows]
  float* out_logprob = nullptr;          // [rows]
  int32_t* out_top_tokens = nullptr;     // [rows, kMaxTopLogprobs]
  float* out_top_logprobs = nullptr;     // [rows, kMaxTopLogprobs]
  // Device scratch of sample_workspace_bytes(rows) bytes, zeroed once when allocated (the kernels
  // leave it zeroed again for the next launch, also when replayed from a CUDA graph).
  void* workspace = nullptr;
  int32_t workspace_rows = 0;  // the rows it was sized for (>= rows): its layout depends on this only
  // Host-side promise that every row is greedy and wants no logprobs: only the statistics kernel is
  // launched (it writes greedy rows' tokens), not the selection and draw kernels.
  bool greedy_only = false;
  // Host-side promise that no row wants a selection (sample_row_wants_selection: temperature, min-p and
  // penalties only): the histogram pass, which would find nothing to do, is not launched.
  bool no_selection = false;
  // Tests only: every row takes the one-block top-k / top-p / logprob search that the sliced
  // selection falls back to (its first version), the reference the sliced results must equal.
  bool reference_selection = false;
};

size_t sample_workspace_bytes(int32_t rows);

// Launches the sampler for args.rows rows (PDL launches: the first waits for the previous kernel).
void sample(const SampleArgs& args, cudaStream_t stream);

}  // namespace tessera::cuda
