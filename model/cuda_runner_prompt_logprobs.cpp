// CudaRunner's prompt logprobs: after a step's forward pass, the rows whose next token is a prompt
// token go through the LM head again in chunks of max_logit_rows (row counts padded to a power of two,
// so the GEMM sees few shapes), and the prompt_logprobs kernel turns each row into the log-softmax
// value of that token and the top k alternatives. Runs only in eager steps (prompt rows are never
// part of a graph-replayed decode step); it must never touch the sampled rows' results.
#include <algorithm>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/prompt_logprobs.cuh"
#include "model/cuda_runner.h"
#include "model/cuda_runner_buffers.h"

namespace tessera::cuda {

template <typename T>
void CudaRunner::lm_head_rows(const int32_t* rows, int32_t n, int32_t step_rows) {
  const ModelConfig& c = config_;
  Buffers& b = *buf_;
  // b.hidden holds the final-normed hidden states of the step's rows (forward's last add_rmsnorm).
  embedding(rows, n, static_cast<const T*>(b.hidden), step_rows, c.hidden_size, static_cast<T*>(b.gathered), stream_);
  lm_head(b.gathered, n);  // the same LM head as sampling: dtype, and the all-gather across tensor-parallel ranks
}

void CudaRunner::prompt_logprobs_pass(int32_t step_rows, const std::vector<int32_t>& rows,
                                      const std::vector<int32_t>& targets, int32_t k, std::vector<float>* chosen,
                                      std::vector<int32_t>* top_tokens, std::vector<float>* top_logprobs) {
  Buffers& b = *buf_;
  const int32_t n = static_cast<int32_t>(rows.size());
  TS_ASSERT(targets.size() == rows.size() && n <= options_.max_num_tokens, "prompt logprob rows {} / targets {}", n,
            targets.size());
  TS_ASSERT(k >= 0 && k <= kMaxTopLogprobs, "prompt logprobs k {}", k);
  // Chunks of at most `chunk` rows, each padded to a power of two by repeating its last row (padding
  // rows are computed and never read back).
  const int32_t chunk = std::min(options_.max_logit_rows, options_.max_num_tokens);
  chosen->assign(n, 0.0f);
  top_tokens->assign(static_cast<size_t>(n) * kMaxTopLogprobs, 0);
  top_logprobs->assign(top_tokens->size(), 0.0f);
  std::vector<int32_t> prow, ptgt;
  for (int32_t done = 0; done < n;) {
    const int32_t m = std::min(chunk, n - done);
    int32_t padded = 1;
    while (padded < m) padded *= 2;
    padded = std::min(padded, chunk);
    prow.assign(rows.begin() + done, rows.begin() + done + m);
    ptgt.assign(targets.begin() + done, targets.begin() + done + m);
    prow.resize(padded, prow.back());
    ptgt.resize(padded, ptgt.back());
    CUDA_CHECK(cudaMemcpyAsync(b.prompt_rows, prow.data(), padded * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(
        cudaMemcpyAsync(b.prompt_targets, ptgt.data(), padded * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    if (options_.dtype == DType::kF32) {
      lm_head_rows<float>(b.prompt_rows, padded, step_rows);
    } else {
      lm_head_rows<__nv_bfloat16>(b.prompt_rows, padded, step_rows);
    }
    PromptLogprobArgs a;
    a.logits = b.logits;
    a.rows = m;
    a.vocab = config_.vocab_size;
    a.targets = b.prompt_targets;
    a.k = std::min(k, config_.vocab_size);
    a.out_chosen = b.prompt_chosen;
    a.out_top_tokens = b.prompt_top_tokens;
    a.out_top_logprobs = b.prompt_top_logprobs;
    prompt_logprobs(a, stream_);
    CUDA_CHECK(cudaMemcpyAsync(chosen->data() + done, b.prompt_chosen, m * sizeof(float), cudaMemcpyDeviceToHost,
                               stream_));
    CUDA_CHECK(cudaMemcpyAsync(top_tokens->data() + static_cast<size_t>(done) * kMaxTopLogprobs, b.prompt_top_tokens,
                               static_cast<size_t>(m) * kMaxTopLogprobs * sizeof(int32_t), cudaMemcpyDeviceToHost,
                               stream_));
    CUDA_CHECK(cudaMemcpyAsync(top_logprobs->data() + static_cast<size_t>(done) * kMaxTopLogprobs,
                               b.prompt_top_logprobs, static_cast<size_t>(m) * kMaxTopLogprobs * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_));
    // The next chunk overwrites the device buffers and prow/ptgt: wait for these copies.
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    done += m;
  }
}

}  // namespace tessera::cuda
