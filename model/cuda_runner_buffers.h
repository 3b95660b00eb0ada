// The CUDA runner's device buffers and host staging (private to model/cuda_runner*.cpp).
// Plain pointers into allocations CudaRunner owns; it must never own or free anything itself.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <vector>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/sampling.cuh"
#include "model/cuda_runner.h"

namespace tessera::cuda {

constexpr int32_t kMaxSampleEntries = 1 << 20;
using bf16_t = __nv_bfloat16;

// Device buffers, and host staging for the inputs (pageable: uploads happen outside graphs).
struct CudaRunner::Buffers {
  // Inputs, uploaded per step.
  int32_t* ids = nullptr;
  int32_t* positions = nullptr;
  int64_t* slots = nullptr;
  int32_t* logit_rows = nullptr;
  AttentionTile* tiles = nullptr;
  int32_t* block_tables = nullptr;
  SampleRow* sample_rows = nullptr;
  SampleEntry* entries = nullptr;
  // Activations; void* ones hold elements of the runner's dtype (bf16, or fp32 in the exact mode).
  float* residual = nullptr;
  void* hidden = nullptr;
  void* qkv = nullptr;
  void* attn = nullptr;
  void* gate_up = nullptr;
  void* act = nullptr;
  void* proj = nullptr;
  float* o_part = nullptr;
  float* ml_part = nullptr;
  int32_t* decode_counters = nullptr;  // fused decode attention's arrival counters (zero between launches)
  void* gathered = nullptr;
  float* logits = nullptr;
  float* logits_local = nullptr;  // tensor parallel: this rank's [rows, vocab_per_rank]
  float* logits_all = nullptr;    // tensor parallel: every rank's block, [tp][rows][vocab_per_rank]
  int32_t* out_token = nullptr;
  float* out_logprob = nullptr;
  int32_t* out_top_tokens = nullptr;
  float* out_top_logprobs = nullptr;
  int32_t* prompt_rows = nullptr;        // [max_num_tokens]: step rows whose next token is a prompt token
  int32_t* prompt_targets = nullptr;     // [max_num_tokens]: that token
  float* prompt_chosen = nullptr;        // [max_num_tokens]
  int32_t* prompt_top_tokens = nullptr;  // [max_num_tokens, kMaxTopLogprobs]
  float* prompt_top_logprobs = nullptr;  // [max_num_tokens, kMaxTopLogprobs]
  float* inv_freq = nullptr;
  void* gemm_workspace = nullptr;
  void* kv = nullptr;  // [layers][2][blocks * block_size][hkv][head_dim], the runner's dtype
  // Sampled outputs read back each step: pinned, so the copies are asynchronous and begin_execute
  // returns while the GPU runs (kMaxTopLogprobs entries per row for the top lists).
  int32_t* h_out_token = nullptr;
  float* h_out_logprob = nullptr;
  int32_t* h_out_top_tokens = nullptr;
  float* h_out_top_logprobs = nullptr;
  // Host staging of the inputs (pageable: cudaMemcpyAsync stages them before returning).
  std::vector<int32_t> h_ids, h_positions, h_logit_rows, h_block_tables;
  std::vector<int64_t> h_slots;
  std::vector<AttentionTile> h_tiles;
  std::vector<SampleRow> h_sample_rows;
  std::vector<SampleEntry> h_entries;
};

struct CudaRunner::Graph {
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
  }
};

}  // namespace tessera::cuda
