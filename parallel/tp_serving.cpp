// Tensor-parallel serving runtime (see tp_serving.h).
#include "parallel/tp_serving.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/cpu_model_runner.h"
#include "model/model_weights.h"
#include "parallel/sharded_model.h"
#include "parallel/tp_backend.h"
#include "parallel/tp_executor.h"

namespace tessera::parallel {
namespace {

// Folds a property every rank must share into the fingerprint (and its description).
ModelFingerprint fold(const ModelFingerprint& fp, const std::string& what) {
  std::vector<uint8_t> bytes(fp.digest.begin(), fp.digest.end());
  bytes.insert(bytes.end(), what.begin(), what.end());
  return ModelFingerprint{sha256(bytes), fp.description + ", " + what};
}

ModelFingerprint fingerprint_for(const TpModelOptions& m, const ParallelOptions& parallel) {
  ModelFingerprint fp = model_fingerprint(m.model_dir, parallel.tp);
  // Dummy weights depend on the config alone: fold the load format in so no rank mixes them.
  if (m.load_format == "dummy") fp = fold(fp, "dummy weights");
  // CPU and CUDA ranks cannot share collectives (host UCX vs NCCL): the device is part of the job,
  // and so are CUDA ranks' collectives (NCCL or staged through host memory over UCX).
  if (m.device != "cpu") {
    fp = fold(fp, m.device + " ranks");
    if (resolve_tp_backend(parallel, m.device) == "ucx") fp = fold(fp, "host-staged collectives over UCX");
  }
  return fp;
}

ShardRunner build_cpu_runner(const ShardRunnerRequest& r) {
  const TpModelOptions& m = r.model;
  int threads = m.threads;
  if (threads <= 0)
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, r.local_ranks));
  auto pool = std::make_shared<cpu::ThreadPool>(threads);
  const ModelWeights all = m.load_format == "dummy" ? make_dummy_weights(r.full, 0, *pool)
                                                    : load_weights(r.full, Checkpoint::open(m.model_dir));
  ShardRunner out;
  out.executor = std::make_unique<CpuModelRunner>(shard_config(r.full, r.plan), shard_weights(all, r.plan),
                                                  CpuRunnerOptions{m.num_kv_blocks, m.block_size}, pool,
                                                  CpuRunnerParallel{r.plan, &r.group.comm()});
  out.num_kv_blocks = m.num_kv_blocks;
  return out;
}

// Rank 0 executor that owns the runtime: the TP driver is destroyed (Stop to every rank) before
// the group and the spawned ranks.
class OwningTpExecutor final : public StepExecutor {
 public:
  OwningTpExecutor(std::unique_ptr<TpServing> runtime, std::unique_ptr<TpStepExecutor> tp)
      : runtime_(std::move(runtime)), tp_(std::move(tp)) {}
  ~OwningTpExecutor() override {
    tp_.reset();
    runtime_.reset();
  }
  StepResult execute(const StepPlan& plan) override { return tp_->execute(plan); }
  void begin_execute(const StepPlan& plan) override { tp_->begin_execute(plan); }
  StepResult end_execute() override { return tp_->end_execute(); }
  bool executes_asynchronously() const override { return tp_->executes_asynchronously(); }

 private:
  std::unique_ptr<TpServing> runtime_;
  std::unique_ptr<TpStepExecutor> tp_;
};

}  // namespace

std::vector<std::string> worker_model_args(const TpModelOptions& m) {
  std::vector<std::string> args{"worker",
          "--model",
          m.model_dir.string(),
          "--load-format",
          m.load_format,
          "--device",
          m.device,
          "--threads",
          std::to_string(m.threads),
          "--num-kv-blocks",
          std::to_string(m.num_kv_blocks),
          "--block-size",
          std::to_string(m.block_size),
          "--max-model-len",
          std::to_string(m.max_model_len),
          "--max-num-seqs",
          std::to_string(m.max_num_seqs),
          "--max-num-batched-tokens",
          std::to_string(m.max_num_batched_tokens),
          m.gemm_autotune ? "--gemm-autotune" : "--no-gemm-autotune",
          m.cuda_graph_precapture ? "--cuda-graph-precapture" : "--no-cuda-graph-precapture",
          "--gpu-memory-utilization",
          fmt::format("{}", m.gpu_memory_utilization)};
  if (!m.gemm_tuning_cache.empty()) {
    args.push_back("--gemm-tuning-cache");
    args.push_back(m.gemm_tuning_cache);
  }
  return args;
}

int64_t agree_on_minimum(RankGroup& g, int64_t mine) {
  // Each rank writes its value at its own index of a zero vector; the sum holds everyone's. fp32
  // is exact for the integers below 2^24 sent here (larger values are clamped).
  constexpr int64_t kExact = (int64_t{1} << 24) - 1;
  std::vector<float> all(static_cast<size_t>(g.world_size()), 0.0f);
  all[static_cast<size_t>(g.rank())] = static_cast<float>(std::clamp<int64_t>(mine, 0, kExact));
  g.comm().all_reduce_sum(all.data(), all.size(), DType::kF32);
  int64_t lowest = kExact;
  for (float v : all) lowest = std::min(lowest, static_cast<int64_t>(v));
  return lowest;
}

RankGroup& TpServing::group() { return group_ ? *group_ : process_->group(); }

void TpServing::build_runner(const TpModelOptions& m, int local_index, int local_ranks,
                             const ShardRunnerFactory& factory) {
  TS_CHECK(m.load_format == "auto" || m.load_format == "dummy", kInvalidArgument,
           "--load-format must be auto or dummy, got '{}'", m.load_format);
  RankGroup& g = group();
  const ModelConfig full = ModelConfig::from_directory(m.model_dir);
  const ShardPlan plan = make_shard_plan(full, {g.rank(), g.world_size()});
  ShardRunner r = factory ? factory(ShardRunnerRequest{m, full, plan, g, local_index, local_ranks})
                          : build_cpu_runner(ShardRunnerRequest{m, full, plan, g, local_index, local_ranks});
  TS_CHECK(r.executor != nullptr && r.num_kv_blocks >= 1, kInternal, "rank {}: the shard runner was not built",
           g.rank());
  runner_ = std::move(r.executor);
  // Every rank has its weights before the first plan (a rank that failed to load is reported now),
  // and the scheduler only hands out blocks every rank holds.
  num_kv_blocks_ = agree_on_minimum(g, r.num_kv_blocks);
  g.comm().barrier();
}

std::unique_ptr<TpServing> TpServing::start(const ParallelOptions& parallel, const TpModelOptions& model,
                                            const GetEnv& getenv, const std::string& exe,
                                            const ShardRunnerFactory& factory) {
  std::unique_ptr<TpServing> s(new TpServing);
  TpProcessConfig pc;
  pc.options = parallel;
  pc.fingerprint = fingerprint_for(model, parallel);
  pc.exe = exe;
  pc.worker_args = worker_model_args(model);
  s->process_ = TpProcess::start(pc, getenv);
  s->world_size_ = s->process_->plan().world_size;
  s->build_runner(model, s->process_->plan().first_local_index, s->process_->plan().local_ranks, factory);
  return s;
}

std::unique_ptr<TpServing> TpServing::join_as_worker(int rank, int local_index, const ParallelOptions& parallel,
                                                     const TpModelOptions& model, const ShardRunnerFactory& factory) {
  auto secret = LaunchSecret::from_environment();
  if (!secret && !parallel.secret_file.empty()) secret = LaunchSecret::from_file(parallel.secret_file);
  TS_CHECK(secret.has_value(), kInvalidArgument, "a worker rank needs the launch secret in {} or --tp-secret-file",
           kSecretEnv);
  std::unique_ptr<TpServing> s(new TpServing);
  const ModelFingerprint fp = fingerprint_for(model, parallel);
  RankGroupConfig g;
  g.rank = rank;
  g.world_size = parallel.tp;
  g.rendezvous = parallel.rendezvous;
  g.fingerprint = fp.digest;
  g.description = fp.description;
  g.rendezvous_timeout = std::chrono::seconds(parallel.rendezvous_timeout_s);
  g.collective_timeout = std::chrono::milliseconds(parallel.collective_timeout_ms);
  g.liveness.timeout = std::chrono::milliseconds(parallel.heartbeat_timeout_ms);
  s->group_ = RankGroup::join(g, *secret);
  s->world_size_ = parallel.tp;
  s->build_runner(model, local_index, 1, factory);
  return s;
}

TpServing::~TpServing() {
  runner_.reset();
  group_.reset();
  process_.reset();
}

bool TpServing::is_rank0() const { return rank() == 0; }

int TpServing::rank() const { return group_ ? group_->rank() : process_->group().rank(); }

std::unique_ptr<StepExecutor> TpServing::into_executor(std::unique_ptr<TpServing> self,
                                                          std::function<void(const std::string&)> on_failure) {
  TS_CHECK(self && self->is_rank0() && self->runner_, kInvalidArgument, "only rank 0 drives the TP group");
  RankGroup& g = self->group();
  auto tp = std::make_unique<TpStepExecutor>(g, std::move(self->runner_), std::move(on_failure));
  return std::make_unique<OwningTpExecutor>(std::move(self), std::move(tp));
}

int TpServing::run_worker() {
  TS_CHECK(!is_rank0() && runner_, kInvalidArgument, "rank 0 does not run the worker loop");
  return run_worker_loop(group(), *runner_);
}

}  // namespace tessera::parallel
