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

// Device buffers, and host staging for the inputs (uploads happen outside graphs).
struct CudaRunner::Buffers {
  // Inputs, uploaded per step in ONE copy: pointers into `inputs`, laid out by pack_inputs() (for a
  // graph-replayed step the layout depends on its bucket only, so captured pointers stay valid).
  char* inputs = nullptr;       // device, inputs_bytes
  char* h_inputs = nullptr;     // pinned host staging of the same layout
  size_t inputs_bytes = 0;
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
  float* pruned_residual = nullptr;  // [lm_head rows, hidden]: the logit rows' residual, gathered (prune_last_layer)
  float* logits = nullptr;
  float* logits_local = nullptr;  // tensor parallel: this rank's [rows, vocab_per_rank]
  float* logits_all = nullptr;    // tensor parallel: every rank's block, [tp][rows][vocab_per_rank]
  int32_t* out_token = nullptr;
  float* out_logprob = nullptr;
  int32_t* out_top_tokens = nullptr;
  float* out_top_logprobs = nullptr;
  void* sample_workspace = nullptr;  // sample_workspace_bytes(max logit rows), zeroed at allocation
  int32_t sample_workspace_rows = 0;
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
  // Host assembly of the inputs, packed into h_inputs before the upload.
  std::vector<int32_t> h_ids, h_positions, h_logit_rows, h_block_tables;
  std::vector<int64_t> h_slots;
  std::vector<AttentionTile> h_tiles;
  std::vector<SampleEntry> h_entries;
};

// Byte offsets of one step's inputs in the packed upload (256-byte aligned, in this order). A step's
// counts give its layout; the capacities give the region's size.
struct InputLayout {
  size_t ids = 0, positions = 0, slots = 0, logit_rows = 0, tiles = 0, sample_rows = 0, block_tables = 0,
         entries = 0, end = 0;
};

inline InputLayout input_layout(int64_t rows, int64_t logit_rows, int64_t tiles, int64_t sample_rows,
                                int64_t block_table_entries, int64_t entries) {
  auto aligned = [](int64_t bytes) { return static_cast<size_t>((bytes + 255) / 256 * 256); };
  InputLayout l;
  size_t o = 0;
  l.ids = o, o += aligned(rows * static_cast<int64_t>(sizeof(int32_t)));
  l.positions = o, o += aligned(rows * static_cast<int64_t>(sizeof(int32_t)));
  l.slots = o, o += aligned(rows * static_cast<int64_t>(sizeof(int64_t)));
  l.logit_rows = o, o += aligned(logit_rows * static_cast<int64_t>(sizeof(int32_t)));
  l.tiles = o, o += aligned(tiles * static_cast<int64_t>(sizeof(AttentionTile)));
  l.sample_rows = o, o += aligned(sample_rows * static_cast<int64_t>(sizeof(SampleRow)));
  l.block_tables = o, o += aligned(block_table_entries * static_cast<int64_t>(sizeof(int32_t)));
  l.entries = o, o += aligned(entries * static_cast<int64_t>(sizeof(SampleEntry)));
  l.end = o;
  return l;
}

struct CudaRunner::Graph {
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
  }
};

}  // namespace tessera::cuda
