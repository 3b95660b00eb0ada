// `tessera bench engine`: CPU runner decode/prefill throughput next to the measured read bandwidth;
// prints one JSON object.
#include <iostream>
#include <memory>
#include <string>

#include "bench/engine/engine_bench.h"
#include "cli/commands.h"
#include "common/error.h"

#ifdef TESSERA_HAVE_CUDA_BENCH
#include "bench/cuda/cuda_engine_bench.h"
#endif

namespace tessera::cli {

void register_bench_engine_command(CLI::App& bench, CommandRunner& runner) {
  auto opts = std::make_shared<bench::EngineBenchOptions>();
  // --device cuda (bench/cuda): decode at --batch/--context, or a prefill when --prefill is given.
  struct CudaFlags {
    int32_t batch = 1, context = 512;
    float gpu_memory_utilization = 0.90f;
    bool cuda_graphs = true;
    int32_t decode_min_split_keys = 0;
    bool decode_whole_waves = true;
    int32_t decode_splits = 0;
    bool fused_decode_attention = false;
    bool fused_residual_gemm = true;
    float gemv_warp_margin = 0.97f;
    std::string gemm_tuning_cache;
    int32_t prefill_attention_variant = 0;
    int32_t prefill_mlp_chunk = -1;
    int32_t gemm_sustained_tuning_rows = -1;
    std::string prefill_swiglu_gemm;
    int32_t prefill_swiglu_variant = -1;
    std::string kernel_timeline;
    bool decode_chain_tuning = true;
  };
  auto cuda = std::make_shared<CudaFlags>();
  auto* cmd = bench.add_subcommand(
      "engine", "Batch-1 decode and prefill tokens/s of the model runner, next to the read bandwidth and decode bound");
  cmd->add_option("--device", opts->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--batch", cuda->batch, "cuda: decode sequences per step")->capture_default_str();
  cmd->add_option("--context", cuda->context, "cuda: tokens already in each sequence's KV cache")->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", cuda->gpu_memory_utilization,
                  "cuda: share of device memory for weights, activations and KV cache")
      ->capture_default_str();
  cmd->add_flag("!--no-cuda-graphs", cuda->cuda_graphs, "cuda: run decode steps eagerly instead of graph replay");
  cmd->add_option("--decode-min-split-keys", cuda->decode_min_split_keys,
                  "cuda: fewest keys per decode-attention split (0: the kernel's default: 32, or 16 up to 32 splits)")
      ->capture_default_str();
  cmd->add_flag("!--no-decode-whole-waves", cuda->decode_whole_waves,
                "cuda: split decode attention by the rule before whole waves (largest power of two resident at once)");
  cmd->add_option("--decode-splits", cuda->decode_splits,
                  "cuda: key splits of every decode step's attention, 1-8 (0: the split rule's choice)")
      ->capture_default_str();
  cmd->add_flag("--fused-decode-attention", cuda->fused_decode_attention,
                "cuda: run qkv_post, decode attention and its split merge as one kernel on one-token steps");
  cmd->add_flag("!--no-fused-residual", cuda->fused_residual_gemm,
                "cuda: add o_proj/down_proj to the residual in add_rmsnorm instead of cuBLASLt's epilogue");
  cmd->add_option("--gemv-warp-margin", cuda->gemv_warp_margin,
                  "cuda: a warp-per-column gemv variant is chosen only below this x the best split-K time (0: never)")
      ->capture_default_str();
  cmd->add_option("--gemm-tuning-cache", cuda->gemm_tuning_cache,
                  "cuda: read the GEMM autotuner's choices from FILE if it fits this device, write them there after");
  cmd->add_option("--prefill-attention-variant", cuda->prefill_attention_variant,
                  "cuda: the prefill attention kernel's variant (0: the device's default)")
      ->capture_default_str();
  cmd->add_option("--prefill-mlp-chunk", cuda->prefill_mlp_chunk,
                  "cuda: run a long step's MLP this many rows at a time (0: whole step; -1: the runner's default)")
      ->capture_default_str();
  cmd->add_option("--gemm-sustained-tuning-rows", cuda->gemm_sustained_tuning_rows,
                  "cuda: GEMM shapes tuned at this many rows or more choose among the burst's near-winners at the "
                  "power cap (0: never; -1: the runner's default)")
      ->check(CLI::Range(-1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--prefill-swiglu-gemm", cuda->prefill_swiglu_gemm,
                  "cuda: on or off: steps above the skinny range on compute 9.0 run the gate/up projection with "
                  "the SwiGLU epilogue in one GEMM (default: the runner's)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--prefill-swiglu-variant", cuda->prefill_swiglu_variant,
                  "cuda: that GEMM's variant for every step (-1: the fastest timed per row bucket; "
                  "kernels/cuda/gemm_swiglu_wgmma.cuh lists them)")
      ->check(CLI::Range(-1, 15))
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--prune-last-layer", [opts](const std::string& v) { opts->prune_last_layer = v == "on"; },
         "on or off: the last layer runs attention (cuda: after it), o_proj and the MLP only for the rows whose "
         "logits are computed (default on, as the runners')")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option_function<std::string>(
         "--decode-chain-tuning", [cuda](const std::string& v) { cuda->decode_chain_tuning = v == "on"; },
         "cuda: on or off: decode steps' gemv variants that came close timed alone are timed again inside the "
         "decode step and the fastest kept (default on, as the runner's)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--kernel-timeline", cuda->kernel_timeline,
                  "cuda: trace every kernel through CUPTI (libcupti loaded at run time); add each kernel's exposed "
                  "time per step to the JSON and write the middle step's kernel sequence to FILE (TSV)");
  cmd->add_option("--shape", opts->shape, "built-in shape: llama-3.2-1b, llama-3-8b, llama-3-70b, qwen3-32b")
      ->capture_default_str();
  cmd->add_option("--model", opts->model_dir, "a Hugging Face model directory instead of --shape");
  cmd->add_option("--load-format", opts->load_format, "dummy (seeded random weights) or safetensors (with --model)")
      ->capture_default_str();
  cmd->add_option("--dtype", opts->dtype,
                  "cpu: weight dtype of dummy weights (bf16, fp16 or fp32); cuda: compute dtype (bf16 or fp32)")
      ->capture_default_str();
  cmd->add_option("--prefill", opts->prefill_tokens, "prompt tokens of the prefill measurement")->capture_default_str();
  cmd->add_option("--decode-tokens", opts->decode_tokens, "decode steps measured (median reported)")
      ->capture_default_str();
  cmd->add_option("--num-layers", opts->num_layers, "keep only this many layers (0 = all; for smoke tests)")
      ->capture_default_str();
  cmd->add_option("--threads", opts->threads, "CPU threads (0 = one per core)")->capture_default_str();
  cmd->callback([opts, cuda, cmd, &runner] {
    const bool prefill_given = cmd->count("--prefill") > 0;
    runner.run = [opts, cuda, prefill_given] {
      if (opts->device == "cuda") {
#ifdef TESSERA_HAVE_CUDA_BENCH
        TS_CHECK(opts->load_format == "dummy" && opts->model_dir.empty(), kInvalidArgument,
                 "bench engine --device cuda takes --shape with --load-format dummy; got --load-format {}",
                 opts->load_format);
        bench::CudaEngineBenchOptions c;
        c.shape = opts->shape;
        c.batch = cuda->batch;
        c.context = cuda->context;
        c.prefill = prefill_given ? opts->prefill_tokens : 0;
        c.steps = opts->decode_tokens;
        c.gpu_memory_utilization = cuda->gpu_memory_utilization;
        c.cuda_graphs = cuda->cuda_graphs;
        c.dtype = opts->dtype;
        c.decode_min_split_keys = cuda->decode_min_split_keys;
        c.decode_whole_waves = cuda->decode_whole_waves;
        c.decode_splits = cuda->decode_splits;
        c.fused_decode_attention = cuda->fused_decode_attention;
        c.fused_residual_gemm = cuda->fused_residual_gemm;
        c.gemv_warp_margin = cuda->gemv_warp_margin;
        c.gemm_tuning_cache = cuda->gemm_tuning_cache;
        c.prefill_attention_variant = cuda->prefill_attention_variant;
        c.kernel_timeline = cuda->kernel_timeline;
        c.prefill_mlp_chunk = cuda->prefill_mlp_chunk;
        c.gemm_sustained_tuning_rows = cuda->gemm_sustained_tuning_rows;
        if (!cuda->prefill_swiglu_gemm.empty()) c.prefill_swiglu_gemm = cuda->prefill_swiglu_gemm == "on" ? 1 : 0;
        c.prefill_swiglu_variant = cuda->prefill_swiglu_variant;
        c.prune_last_layer = opts->prune_last_layer;
        c.decode_chain_tuning = cuda->decode_chain_tuning;
        std::cout << bench::run_cuda_engine_bench(c).dump() << std::endl;
        return 0;
#else
        TS_THROW(kUnimplemented, "--device cuda: this build has no CUDA backend (nvcc was not found at configure time)");
#endif
      }
      std::cout << bench::run_engine_bench(*opts).dump() << std::endl;
      return 0;
    };
  });
}

}  // namespace tessera::cli
