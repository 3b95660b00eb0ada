// Model loading for `tessera serve`; see serve_model.h.
#include "cli/serve_model.h"

#include <spdlog/spdlog.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "cli/dtype_flag.h"
#include "common/error.h"
#include "kernels/cpu/thread_pool.h"
#include "model/checkpoint.h"
#include "model/cpu_model_runner.h"
#ifdef TESSERA_HAVE_CUDA_RUNNER
#include "model/cuda_runner.h"
#endif
#include "parallel/cli_options.h"
#include "parallel/tp_backend.h"
#ifdef TESSERA_HAVE_CUDA_TP
#include "parallel/tp_cuda_runner.h"
#endif
#include "parallel/tp_serving.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#if __has_include("model/default_model.h")
#include "model/default_model.h"
#define TESSERA_HAVE_DEFAULT_MODEL 1
#endif
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tessera::cli {

void add_model_load_options(CLI::App* cmd, ModelLoadOptions& o) {
  cmd->add_option("--model", o.model_dir, "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)");
  cmd->add_option("--device", o.device, "cpu, cuda or auto")->capture_default_str();
  cmd->add_option("--dtype", o.dtype,
                  "auto, bfloat16 or float32: the runner's element type (cuda: auto = bfloat16; float32 = exact "
                  "fp32 mode; cpu: float32 only)")
      ->capture_default_str();
  cmd->add_option("--load-format", o.load_format, "auto (safetensors) or dummy (seeded random weights)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU runner threads (0: one per core)")->capture_default_str();
  cmd->add_option("--block-size", o.block_size, "Tokens per KV block")->capture_default_str();
  cmd->add_option("--num-kv-blocks", o.num_kv_blocks, "KV blocks (0: sized from --max-model-len)")
      ->capture_default_str();
  cmd->add_option("--max-model-len", o.max_model_len, "Context length (0: the model's, at most 4096)")
      ->capture_default_str();
  cmd->add_flag("--gemm-autotune,!--no-gemm-autotune", o.gemm_autotune,
                "cuda: time the GEMM algorithms of each shape at start and keep the fastest (default); with "
                "--no-gemm-autotune every process makes the same fixed choices, so outputs are bitwise reproducible "
                "across restarts, somewhat slower")
      ->capture_default_str();
  cmd->add_option("--gemm-tuning-cache", o.gemm_tuning_cache,
                  "cuda: a file that keeps the GEMM autotuner's choices across restarts (read at start for this "
                  "device and library build, rewritten when new shapes are tuned): the same choices, so bitwise the "
                  "same outputs, without timing again; tensor-parallel ranks append .rank<r>");
  cmd->add_flag("--cuda-graph-precapture,!--no-cuda-graph-precapture", o.cuda_graph_precapture,
                "cuda: capture the decode CUDA graph of every batch bucket, attention split count and sampler mode "
                "at start (default), so no serving step stops to capture one; with --no-cuda-graph-precapture each "
                "is captured by the first step that needs it")
      ->capture_default_str();
  cmd->add_option("--prefill-swiglu-gemm", o.prefill_swiglu_gemm,
                  "cuda: on or off: steps above the skinny range on compute 9.0 run the gate/up projection with the "
                  "SwiGLU epilogue in one GEMM (one GPU without --tp: tensor-parallel ranks run cuBLASLt + silu_mul)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--gpu-memory-utilization", o.gpu_memory_utilization,
                  "cuda: share of each GPU's memory Tessera may hold (weights, activations, KV cache); ranks "
                  "sharing a GPU (--tp-ranks-per-device K) get 1/K of it each")
      ->capture_default_str()
      ->check(CLI::Range(0.06, 0.99));
  parallel::add_parallel_options(cmd, o.parallel);  // tensor parallelism: --tp, --nnodes, --rendezvous, ...
}

namespace {

// `tessera serve --tp N` (or --tp-backend nccl|ucx): this process's ranks; rank 0 gets the executor.
void load_tensor_parallel(const ModelLoadOptions& o, const std::filesystem::path& dir, bool use_cuda, LoadedModel& m) {
  // nccl or ucx; refuses nccl on cpu and --tp-ranks-per-device without ucx CUDA ranks, naming the flags.
  const std::string backend = parallel::resolve_tp_backend(o.parallel, use_cuda ? "cuda" : "cpu");
  TS_CHECK(o.dummy_seed == 0, kInvalidArgument, "--tp with a dummy seed other than 0 is not supported");
  parallel::TpModelOptions tm;
  tm.model_dir = dir;
  tm.load_format = o.load_format;
  tm.device = use_cuda ? "cuda" : "cpu";
  tm.threads = o.threads;
  tm.num_kv_blocks = use_cuda ? o.num_kv_blocks : m.num_kv_blocks;  // cuda: 0 sizes from device memory
  tm.block_size = m.block_size;
  tm.max_model_len = m.max_model_len;
  tm.max_num_seqs = o.max_num_seqs;
  tm.max_num_batched_tokens = o.max_num_batched_tokens;
  tm.gemm_autotune = o.gemm_autotune;
  tm.gemm_tuning_cache = o.gemm_tuning_cache;
  tm.cuda_graph_precapture = o.cuda_graph_precapture;
  tm.gpu_memory_utilization = o.gpu_memory_utilization;
  parallel::ShardRunnerFactory factory;
#ifdef TESSERA_HAVE_CUDA_TP
  if (use_cuda) {
    factory = [ro = parallel::cuda_rank_options(o.parallel)](const parallel::ShardRunnerRequest& r) {
      return parallel::make_cuda_shard_runner(r, ro);
    };
  }
#else
  TS_CHECK(!use_cuda, kUnimplemented, "--device cuda with --tp: this build has no CUDA tensor-parallel runtime");
#endif
  auto tp = parallel::TpServing::start(o.parallel, tm, [](const char* n) { return std::getenv(n); }, "/proc/self/exe",
                                       factory);
  if (!tp->is_rank0()) {
    m.worker_exit_code = tp->run_worker();
    return;
  }
  TS_CHECK(o.num_kv_blocks <= 0 || tp->num_kv_blocks() >= o.num_kv_blocks, kResourceExhausted,
           "--num-kv-blocks {} does not fit on every rank ({} fit)", o.num_kv_blocks, tp->num_kv_blocks());
  m.num_kv_blocks = static_cast<int32_t>(std::min<int64_t>(tp->num_kv_blocks(), INT32_MAX));
  m.tp_group_lost = std::make_shared<std::atomic<bool>>(false);
  m.executor = parallel::TpServing::into_executor(std::move(tp), [lost = m.tp_group_lost](const std::string&) {
    lost->store(true);
    ::kill(::getpid(), SIGTERM);  // drain (in-flight requests have failed with 503) and exit non-zero
  });
  spdlog::info("model '{}': tensor parallel over {} ranks on {} (collectives: {}{}), {} KV blocks of {} per rank",
               m.name, o.parallel.tp, tm.device, backend, use_cuda && backend == "ucx" ? ", staged through host memory" : "",
               m.num_kv_blocks, m.block_size);
}

}  // namespace

LoadedModel load_model(const ModelLoadOptions& o) {
  std::filesystem::path dir(o.model_dir);
  if (o.model_dir.empty()) {
#ifdef TESSERA_HAVE_DEFAULT_MODEL
    spdlog::warn("no --model given: serving the built-in default model; its weights are random, it emits random text");
    dir = ensure_default_model();
    spdlog::info("built-in default model at {}", dir.string());
#else
    TS_THROW(kInvalidArgument, "--model DIR is required: this build has no built-in default model");
#endif
  }
  TS_CHECK(std::filesystem::is_directory(dir), kNotFound, "--model '{}' is not a folder", dir.string());
  TS_CHECK(o.device == "cpu" || o.device == "auto" || o.device == "cuda", kInvalidArgument,
           "--device must be cpu, cuda or auto, got '{}'", o.device);
#ifdef TESSERA_HAVE_CUDA_RUNNER
  const bool use_cuda = o.device == "cuda" || (o.device == "auto" && cuda::CudaRunner::available_devices() > 0);
#else
  TS_CHECK(o.device != "cuda", kUnimplemented, "--device cuda: this build has no CUDA backend (no nvcc at build time)");
  const bool use_cuda = false;
#endif
  const DType dtype = runner_dtype(o.dtype, use_cuda ? "cuda" : "cpu");
  TS_CHECK(o.load_format == "auto" || o.load_format == "dummy", kInvalidArgument,
           "--load-format must be auto or dummy, got '{}'", o.load_format);
  TS_CHECK(o.block_size >= 1 && o.block_size <= 1024, kInvalidArgument, "--block-size must be in [1, 1024], got {}",
           o.block_size);

  LoadedModel m;
  m.name = std::filesystem::absolute(dir).lexically_normal().filename().string();
  if (m.name.empty()) m.name = std::filesystem::absolute(dir).parent_path().filename().string();
  const ModelConfig config = ModelConfig::from_directory(dir);
  auto tokenizer = Tokenizer::from_directory(dir);
  m.tokenizer = tokenizer;
  if (const auto& src = tokenizer->chat_template_source()) {
    m.chat_template = std::make_shared<ChatTemplate>(*src, tokenizer->bos_token(), tokenizer->eos_token());
  } else {
    spdlog::warn("model '{}' has no chat template: /v1/chat/completions will be refused", m.name);
  }
  m.eos_token_ids = config.eos_token_ids;
  if (auto eos = tokenizer->eos_token_id();
      eos && std::find(m.eos_token_ids.begin(), m.eos_token_ids.end(), *eos) == m.eos_token_ids.end()) {
    m.eos_token_ids.push_back(*eos);
  }
  m.vocab_size = std::min<int32_t>(config.vocab_size, static_cast<int32_t>(tokenizer->vocab_size()));
  m.block_size = o.block_size;
  m.max_model_len = o.max_model_len > 0 ? o.max_model_len : std::min(config.max_position_embeddings, 4096);
  TS_CHECK(m.max_model_len >= 2 && m.max_model_len <= config.max_position_embeddings, kInvalidArgument,
           "--max-model-len must be in [2, {}] for this model, got {}", config.max_position_embeddings,
           m.max_model_len);
  const int32_t blocks_per_seq = (m.max_model_len + m.block_size - 1) / m.block_size;
  m.num_kv_blocks = o.num_kv_blocks > 0 ? o.num_kv_blocks : std::max(256, blocks_per_seq * 4);

  // Tensor parallelism (parallel/): ranks shard the model across processes (one per device).
  if (o.parallel.tp > 1 || o.parallel.nnodes > 1 || o.parallel.backend != "auto" || o.parallel.ranks_per_device != 1) {
    TS_CHECK(!use_cuda || dtype == DType::kBF16, kUnimplemented,
             "--dtype {} with tensor parallelism: CUDA ranks compute in bfloat16 (the float32 exact mode runs on "
             "one GPU without --tp)",
             o.dtype);
    load_tensor_parallel(o, dir, use_cuda, m);
    return m;
  }

#ifdef TESSERA_HAVE_CUDA_RUNNER
  if (use_cuda) {
    cuda::CudaRunnerOptions co;
    co.dtype = dtype;
    co.gemm_autotune = o.gemm_autotune;
    co.gemm_tuning_cache = o.gemm_tuning_cache;
    co.block_size = m.block_size;
    co.max_model_len = m.max_model_len;
    co.max_num_seqs = o.max_num_seqs;
    co.max_num_tokens = o.max_num_batched_tokens;
    co.gpu_memory_utilization = o.gpu_memory_utilization;
    co.prefill_swiglu_gemm = o.prefill_swiglu_gemm == "on";
    if (o.num_kv_blocks > 0) co.max_kv_blocks = o.num_kv_blocks;
    auto runner = std::make_unique<cuda::CudaRunner>(config, co);
    if (o.load_format == "dummy") {
      runner->load_dummy_weights(o.dummy_seed);
    } else {
      runner->load_weights(cuda::checkpoint_tensor_source(Checkpoint::open(dir)));
    }
    runner->tune_gemms();  // every step size's GEMM choice now, not while requests wait
    if (o.cuda_graph_precapture) runner->capture_decode_graphs();  // and every decode graph
    TS_CHECK(o.num_kv_blocks <= 0 || runner->num_kv_blocks() >= o.num_kv_blocks, kResourceExhausted,
             "--num-kv-blocks {} does not fit on the GPU ({} fit)", o.num_kv_blocks, runner->num_kv_blocks());
    m.num_kv_blocks = static_cast<int32_t>(std::min<int64_t>(runner->num_kv_blocks(), INT32_MAX));
    m.executor = std::move(runner);
    spdlog::info("model '{}': {} layers, hidden {}, vocab {}, {} weights on cuda, {} KV blocks of {}", m.name,
                 config.num_hidden_layers, config.hidden_size, config.vocab_size,
                 o.load_format == "dummy" ? "dummy" : "checkpoint", m.num_kv_blocks, m.block_size);
    return m;
  }
#else
  (void)use_cuda;
  (void)dtype;
#endif

  auto pool = std::make_shared<cpu::ThreadPool>(o.threads);
  ModelWeights weights = o.load_format == "dummy" ? make_dummy_weights(config, o.dummy_seed, *pool)
                                                  : load_weights(config, Checkpoint::open(dir));
  CpuRunnerOptions ro;
  ro.num_kv_blocks = m.num_kv_blocks;
  ro.block_size = m.block_size;
  m.executor = std::make_unique<CpuModelRunner>(config, std::move(weights), ro, pool);
  spdlog::info("model '{}': {} layers, hidden {}, vocab {}, {} weights on cpu ({} threads), {} KV blocks of {}",
               m.name, config.num_hidden_layers, config.hidden_size, config.vocab_size,
               o.load_format == "dummy" ? "dummy" : "checkpoint", pool->num_threads(), m.num_kv_blocks, m.block_size);
  return m;
}

}  // namespace tessera::cli
