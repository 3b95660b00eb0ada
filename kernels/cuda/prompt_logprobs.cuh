// Prompt logprobs on the GPU: for each row of raw fp32 logits [rows, vocab], the log-softmax value of
// the row's target token (the prompt token that follows the row's position) and the top k
// alternatives, most likely first, ties to the lower token id (the CPU sampler's order). No
// temperature, penalties or bias: prompt logprobs are the model's own distribution. k <=
// kMaxTopLogprobs (sampling.cuh). Never allocates, never modifies the logits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

struct PromptLogprobArgs {
  const float* logits = nullptr;     // [rows, vocab]
  int32_t rows = 0;
  int32_t vocab = 0;
  const int32_t* targets = nullptr;  // [rows], each in [0, vocab) (checked by the caller)
  int32_t k = 0;                     // top alternatives per row, 0..kMaxTopLogprobs
  float* out_chosen = nullptr;       // [rows]
  int32_t* out_top_tokens = nullptr; // [rows, kMaxTopLogprobs]; the first k of each row are written
  float* out_top_logprobs = nullptr; // [rows, kMaxTopLogprobs]
};

void prompt_logprobs(const PromptLogprobArgs& args, cudaStream_t stream);

}  // namespace tessera::cuda
