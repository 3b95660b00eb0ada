// CudaRunner + NCCL or host-staged collectives for one tensor-parallel rank (see tp_cuda_runner.h).
#include "parallel/tp_cuda_runner.h"

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/cuda_runner.h"
#include "parallel/host_staged_communicator.h"
#include "parallel/nccl_communicator.h"
#include "parallel/tp_backend.h"

namespace tessera::parallel {

CudaRankOptions cuda_rank_options(const ParallelOptions& parallel) {
  CudaRankOptions o;
  o.host_staged = resolve_tp_backend(parallel, "cuda") == "ucx";
  o.ranks_per_device = parallel.ranks_per_device;
  o.collective_timeout = std::chrono::milliseconds(parallel.collective_timeout_ms);
  return o;
}

ShardRunner make_cuda_shard_runner(const ShardRunnerRequest& r, const CudaRankOptions& ro) {
  const TpModelOptions& m = r.model;
  TS_CHECK(m.device == "cuda", kInvalidArgument, "a CUDA rank was asked for device '{}'", m.device);
  TS_CHECK(ro.ranks_per_device == 1 || ro.host_staged, kInvalidArgument,
           "--tp-ranks-per-device {} needs --tp-backend ucx (NCCL refuses two ranks on one GPU)", ro.ranks_per_device);
  cuda::CudaRunnerOptions co;
  co.device = cuda_device_of(r.local_index, ro.ranks_per_device);
  const int devices = cuda::CudaRunner::available_devices();
  TS_CHECK(co.device < devices, kInvalidArgument,
           "rank {} (local index {}) with --tp-ranks-per-device {} runs on CUDA device {}, but {} are present",
           r.plan.spec.rank, r.local_index, ro.ranks_per_device, co.device, devices);
  co.gpu_memory_utilization = m.gpu_memory_utilization;
  co.runners_per_device = ro.ranks_per_device;
  co.block_size = m.block_size;
  co.max_model_len = m.max_model_len;
  co.max_num_seqs = m.max_num_seqs;
  co.max_num_tokens = m.max_num_batched_tokens;
  co.gemm_autotune = m.gemm_autotune;
  co.gemm_tuning_cache = m.gemm_tuning_cache;
  if (m.num_kv_blocks > 0) co.max_kv_blocks = m.num_kv_blocks;
  co.shard = r.plan;
  RankGroup* group = &r.group;
  const auto timeout = ro.collective_timeout;
  if (ro.host_staged) {
    co.communicator = [group, timeout](int32_t, cudaStream_t stream) -> std::unique_ptr<Communicator> {
      return std::make_unique<HostStagedCommunicator>(group->comm(), stream, group->health_ptr(), timeout);
    };
  } else {
    co.communicator = [group, timeout](int32_t device, cudaStream_t stream) -> std::unique_ptr<Communicator> {
      return NcclCommunicator::create(*group, device, stream, timeout);
    };
  }
  auto runner = std::make_unique<cuda::CudaRunner>(r.full, co);
  if (m.load_format == "dummy") {
    runner->load_dummy_weights(0);
  } else {
    runner->load_weights(cuda::checkpoint_tensor_source(Checkpoint::open(m.model_dir)));
  }
  runner->tune_gemms();  // every step size's GEMM choice now, not while requests wait
  // Every decode graph now, on every rank in the same order (their forwards run collectives); none
  // over host-staged collectives (the runner runs eagerly).
  if (m.cuda_graph_precapture) runner->capture_decode_graphs();
  spdlog::info("rank {} of {}: CUDA device {}, heads [{}, {}), KV heads [{}, {}), MLP columns [{}, {}), vocab [{}, {}); "
               "{:.2f} GiB of weights, {} KV blocks, collectives on {}",
               r.plan.spec.rank, r.plan.spec.tp_size, co.device, r.plan.first_head,
               r.plan.first_head + r.plan.num_heads, r.plan.first_kv_head, r.plan.first_kv_head + r.plan.num_kv_heads,
               r.plan.first_intermediate, r.plan.first_intermediate + r.plan.intermediate, r.plan.first_vocab,
               r.plan.first_vocab + r.plan.vocab_rows, runner->weight_bytes() / 1073741824.0, runner->num_kv_blocks(),
               ro.host_staged ? fmt::format("UCX through host memory ({} ranks on this device, eager steps)",
                                            ro.ranks_per_device)
                              : std::string("NCCL"));
  ShardRunner out;
  out.num_kv_blocks = runner->num_kv_blocks();
  out.executor = std::move(runner);
  return out;
}

}  // namespace tessera::parallel
