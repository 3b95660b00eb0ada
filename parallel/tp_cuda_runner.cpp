// CudaRunner + NcclCommunicator for one tensor-parallel rank (see tp_cuda_runner.h).
#include "parallel/tp_cuda_runner.h"

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/cuda_runner.h"
#include "parallel/nccl_communicator.h"

namespace tessera::parallel {

ShardRunner make_cuda_shard_runner(const ShardRunnerRequest& r, std::chrono::milliseconds collective_timeout) {
  const TpModelOptions& m = r.model;
  TS_CHECK(m.device == "cuda", kInvalidArgument, "a CUDA rank was asked for device '{}'", m.device);
  cuda::CudaRunnerOptions co;
  co.device = r.local_index;
  co.block_size = m.block_size;
  co.max_model_len = m.max_model_len;
  co.max_num_seqs = m.max_num_seqs;
  co.max_num_tokens = m.max_num_batched_tokens;
  co.gemm_autotune = m.gemm_autotune;
  co.gemm_tuning_cache = m.gemm_tuning_cache;
  if (m.num_kv_blocks > 0) co.max_kv_blocks = m.num_kv_blocks;
  co.shard = r.plan;
  RankGroup* group = &r.group;
  co.communicator = [group, collective_timeout](int32_t device, cudaStream_t stream) -> std::unique_ptr<Communicator> {
    return NcclCommunicator::create(*group, device, stream, collective_timeout);
  };
  auto runner = std::make_unique<cuda::CudaRunner>(r.full, co);
  if (m.load_format == "dummy") {
    runner->load_dummy_weights(0);
  } else {
    runner->load_weights(cuda::checkpoint_tensor_source(Checkpoint::open(m.model_dir)));
  }
  runner->tune_gemms();  // every step size's GEMM choice now, not while requests wait
  // Every decode graph now, on every rank in the same order (their forwards run collectives).
  if (m.cuda_graph_precapture) runner->capture_decode_graphs();
  spdlog::info("rank {} of {}: CUDA device {}, heads [{}, {}), KV heads [{}, {}), MLP columns [{}, {}), vocab [{}, {}); "
               "{:.2f} GiB of weights, {} KV blocks, collectives on NCCL",
               r.plan.spec.rank, r.plan.spec.tp_size, r.local_index, r.plan.first_head,
               r.plan.first_head + r.plan.num_heads, r.plan.first_kv_head, r.plan.first_kv_head + r.plan.num_kv_heads,
               r.plan.first_intermediate, r.plan.first_intermediate + r.plan.intermediate, r.plan.first_vocab,
               r.plan.first_vocab + r.plan.vocab_rows, runner->weight_bytes() / 1073741824.0, runner->num_kv_blocks());
  ShardRunner out;
  out.num_kv_blocks = runner->num_kv_blocks();
  out.executor = std::move(runner);
  return out;
}

}  // namespace tessera::parallel
