// CPU tensor-parallel serving runtime (see tp_cpu_serving.h).
#include "parallel/tp_cpu_serving.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <thread>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/cpu_model_runner.h"
#include "model/model_weights.h"
#include "parallel/sharded_model.h"
#include "parallel/tp_executor.h"

namespace tessera::parallel {
namespace {

ModelFingerprint fingerprint_for(const TpModelOptions& m, int tp) {
  ModelFingerprint fp = model_fingerprint(m.model_dir, tp);
  if (m.load_format == "dummy") {
    // Dummy weights depend on the config alone: fold the load format in so no rank mixes them.
    fp = ModelFingerprint{sha256(std::vector<uint8_t>(fp.digest.begin(), fp.digest.end())),
                          fp.description + ", dummy weights"};
  }
  return fp;
}

// Rank 0 executor that owns the runtime: the TP driver is destroyed (Stop to every rank) before
// the group and the spawned ranks.
class OwningTpExecutor final : public StepExecutor {
 public:
  OwningTpExecutor(std::unique_ptr<TpCpuServing> runtime, std::unique_ptr<TpStepExecutor> tp)
      : runtime_(std::move(runtime)), tp_(std::move(tp)) {}
  ~OwningTpExecutor() override {
    tp_.reset();
    runtime_.reset();
  }
  StepResult execute(const StepPlan& plan) override { return tp_->execute(plan); }

 private:
  std::unique_ptr<TpCpuServing> runtime_;
  std::unique_ptr<TpStepExecutor> tp_;
};

}  // namespace

std::vector<std::string> worker_model_args(const TpModelOptions& m) {
  return {"worker",
          "--model",
          m.model_dir.string(),
          "--load-format",
          m.load_format,
          "--threads",
          std::to_string(m.threads),
          "--num-kv-blocks",
          std::to_string(m.num_kv_blocks),
          "--block-size",
          std::to_string(m.block_size)};
}

void TpCpuServing::build_runner(const TpModelOptions& m, int local_ranks) {
  TS_CHECK(m.load_format == "auto" || m.load_format == "dummy", kInvalidArgument,
           "--load-format must be auto or dummy, got '{}'", m.load_format);
  RankGroup& g = group_ ? *group_ : process_->group();
  const ModelConfig full = ModelConfig::from_directory(m.model_dir);
  const ShardPlan plan = make_shard_plan(full, {g.rank(), g.world_size()});
  int threads = m.threads;
  if (threads <= 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, local_ranks));
  auto pool = std::make_shared<cpu::ThreadPool>(threads);
  const ModelWeights all = m.load_format == "dummy" ? make_dummy_weights(full, 0, *pool)
                                                    : load_weights(full, Checkpoint::open(m.model_dir));
  runner_ = std::make_unique<CpuModelRunner>(shard_config(full, plan), shard_weights(all, plan),
                                             CpuRunnerOptions{m.num_kv_blocks, m.block_size}, pool,
                                             CpuRunnerParallel{plan, &g.comm()});
  // Every rank has its weights before the first plan: a rank that failed to load is reported now.
  g.comm().barrier();
}

std::unique_ptr<TpCpuServing> TpCpuServing::start(const ParallelOptions& parallel, const TpModelOptions& model,
                                                  const GetEnv& getenv, const std::string& exe) {
  std::unique_ptr<TpCpuServing> s(new TpCpuServing);
  TpProcessConfig pc;
  pc.options = parallel;
  pc.fingerprint = fingerprint_for(model, parallel.tp);
  pc.exe = exe;
  pc.worker_args = worker_model_args(model);
  s->process_ = TpProcess::start(pc, getenv);
  s->world_size_ = s->process_->plan().world_size;
  s->build_runner(model, s->process_->plan().local_ranks);
  return s;
}

std::unique_ptr<TpCpuServing> TpCpuServing::join_as_worker(int rank, const ParallelOptions& parallel,
                                                           const TpModelOptions& model) {
  auto secret = LaunchSecret::from_environment();
  if (!secret && !parallel.secret_file.empty()) secret = LaunchSecret::from_file(parallel.secret_file);
  TS_CHECK(secret.has_value(), kInvalidArgument, "a worker rank needs the launch secret in {} or --tp-secret-file",
           kSecretEnv);
  std::unique_ptr<TpCpuServing> s(new TpCpuServing);
  const ModelFingerprint fp = fingerprint_for(model, parallel.tp);
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
  s->build_runner(model, 1);
  return s;
}

TpCpuServing::~TpCpuServing() {
  runner_.reset();
  group_.reset();
  process_.reset();
}

bool TpCpuServing::is_rank0() const { return rank() == 0; }

int TpCpuServing::rank() const { return group_ ? group_->rank() : process_->group().rank(); }

std::unique_ptr<StepExecutor> TpCpuServing::into_executor(std::unique_ptr<TpCpuServing> self,
                                                          std::function<void(const std::string&)> on_failure) {
  TS_CHECK(self && self->is_rank0() && self->runner_, kInvalidArgument, "only rank 0 drives the TP group");
  RankGroup& g = self->group_ ? *self->group_ : self->process_->group();
  auto tp = std::make_unique<TpStepExecutor>(g, std::move(self->runner_), std::move(on_failure));
  return std::make_unique<OwningTpExecutor>(std::move(self), std::move(tp));
}

int TpCpuServing::run_worker() {
  TS_CHECK(!is_rank0() && runner_, kInvalidArgument, "rank 0 does not run the worker loop");
  RankGroup& g = group_ ? *group_ : process_->group();
  return run_worker_loop(g, *runner_);
}

}  // namespace tessera::parallel
