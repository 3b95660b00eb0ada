// The model's weights on the GPU in bf16, in the layout the CUDA runner computes with: q/k/v fused
// into one [q + 2kv, hidden] matrix per layer, gate/up fused into [2*inter, hidden]. One device
// allocation holds them all. Filled either with random values generated on the GPU (--load-format
// dummy) or from host tensors named as in a Hugging Face checkpoint (converted to bf16 on upload).
// With a tensor-parallel ShardPlan (parallel/shard_spec.h) it holds only that rank's slice: load()
// reads the slice of each full checkpoint tensor (parallel::slice_weight: row slices are views, only
// a column slice's columns are gathered), and the dummy fill generates exactly the values the
// whole-model fill would put at the slice's elements, so TP = N computes what TP = 1 does.
// It must never read files itself: the safetensors loader hands it tensors.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "model/model_config.h"
#include "parallel/shard_spec.h"

namespace tessera {
class Checkpoint;
}

namespace tessera::cuda {

// A tensor in host memory, as read from a checkpoint. data holds prod(shape) elements of dtype.
struct HostTensor {
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Returns the tensor of that Hugging Face name; throws tessera::Error(kNotFound) when absent.
using TensorSource = std::function<HostTensor(const std::string& name)>;

// Tensors of a memory-mapped checkpoint (kept alive by the source).
TensorSource checkpoint_tensor_source(std::shared_ptr<const Checkpoint> checkpoint);

struct CudaLayerWeights {
  __nv_bfloat16* qkv = nullptr;       // [q + 2kv, hidden]
  __nv_bfloat16* qkv_bias = nullptr;  // [q + 2kv] (attention_bias) or null
  __nv_bfloat16* o = nullptr;         // [hidden, q]
  __nv_bfloat16* gate_up = nullptr;   // [2 * inter, hidden]
  __nv_bfloat16* down = nullptr;      // [hidden, inter]
  __nv_bfloat16* input_norm = nullptr;
  __nv_bfloat16* post_norm = nullptr;
  __nv_bfloat16* q_norm = nullptr;    // [head_dim] (qk_norm) or null
  __nv_bfloat16* k_norm = nullptr;
};

class CudaWeights {
 public:
  // Allocates (uninitialised) the weights of `full`, or only `shard`'s slice of them; embed and
  // lm_head then hold the rank's vocab_per_rank rows (padding rows zeroed).
  explicit CudaWeights(const ModelConfig& full, const std::optional<parallel::ShardPlan>& shard = std::nullopt);
  ~CudaWeights();
  CudaWeights(const CudaWeights&) = delete;
  CudaWeights& operator=(const CudaWeights&) = delete;

  void fill_dummy(uint64_t seed, cudaStream_t stream);
  void load(const TensorSource& source, cudaStream_t stream);

  size_t bytes() const { return bytes_; }
  const std::vector<CudaLayerWeights>& layers() const { return layers_; }
  const __nv_bfloat16* embed() const { return embed_; }
  const __nv_bfloat16* final_norm() const { return final_norm_; }
  const __nv_bfloat16* lm_head() const { return lm_head_; }
  // The rank's slice ranges (the whole model at --tp 1); vocab rows of embed/lm_head held.
  const parallel::ShardPlan& plan() const { return plan_; }

 private:
  ModelConfig full_;
  parallel::ShardPlan plan_;
  ModelConfig config_;  // the rank's shape (== full_ without a shard)
  bool sharded_ = false;
  void* base_ = nullptr;
  size_t bytes_ = 0;
  std::vector<CudaLayerWeights> layers_;
  __nv_bfloat16* embed_ = nullptr;
  __nv_bfloat16* final_norm_ = nullptr;
  __nv_bfloat16* lm_head_ = nullptr;  // == embed_ when tied
};

}  // namespace tessera::cuda
