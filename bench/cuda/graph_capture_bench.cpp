// tessera_cuda_graph_bench: what capturing the decode CUDA graphs at start saves. For a model of a
// built-in shape with dummy weights it runs, per batch bucket, a few greedy decode steps and times
// each with a host clock around CudaRunner::execute: once on a runner that captures each graph on
// first use (the first step of a bucket runs eagerly, captures and instantiates) and once on a
// runner that called capture_decode_graphs() at start (whose time, graph count and device memory it
// reports). Each first step is printed next to the same runner's replayed steps (its limit: what a
// step costs once its graph exists). One JSON object on stdout.
// Usage: tessera_cuda_graph_bench [--shape S] [--max-num-seqs N] [--max-model-len N] [--context N]
//        [--steps N] [--gemm-tuning-cache PATH]. Unknown arguments are an error.
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "bench/cuda/median.h"
#include "kernels/cuda/cuda_check.h"
#include "model/cuda_runner.h"
#include "model/decode_graph_plan.h"
#include "model/model_config.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string shape = "llama-3-8b";
  int32_t max_num_seqs = 256;
  int32_t max_model_len = 4096;
  int32_t context = 16;  // prompt tokens per sequence
  int32_t steps = 8;     // decode steps per bucket (the first, then replays)
  std::string gemm_tuning_cache;
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double used_mib() {
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return static_cast<double>(total_b - free_b) / 1048576.0;
}

// One bucket's decode steps on `r`: `bucket` sequences prefilled with o.context tokens, then o.steps
// greedy decode steps of all of them, each timed; the sequences are freed after.
std::vector<double> decode_steps(cuda::CudaRunner& r, const Options& o, int32_t bucket, uint64_t& step_id) {
  const int32_t bs = r.block_size();
  const int32_t blocks_each = (o.context + o.steps + bs) / bs;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  std::vector<SeqId> ids;
  std::vector<TokenId> last(bucket, 0);
  // Prefill, whole sequences per step within max_num_tokens (8192 >= 512 x 16).
  for (int32_t first = 0; first < bucket;) {
    StepPlan p;
    p.step_id = step_id++;
    p.block_size = bs;
    int32_t budget = 8192;
    for (; first < bucket && budget >= o.context; ++first, budget -= o.context) {
      NewSequence n;
      n.seq_id = static_cast<SeqId>(first + 1);
      for (int32_t i = 0; i < o.context; ++i) n.token_ids.push_back((first * 131 + i * 7) % 32000);
      n.num_prompt_tokens = o.context;
      for (int32_t b = 0; b < blocks_each; ++b) n.block_ids.push_back(first * blocks_each + b);
      n.sampling = greedy;
      p.scheduled.push_back(SequenceWork{n.seq_id, {}, o.context, {}, true});
      p.new_sequences.push_back(std::move(n));
      ids.push_back(static_cast<SeqId>(first + 1));
    }
    const StepResult res = r.execute(p);
    for (const SampledToken& st : res.sampled) last[st.seq_id - 1] = st.token;
  }
  std::vector<double> times;
  for (int32_t s = 0; s < o.steps; ++s) {
    StepPlan p;
    p.step_id = step_id++;
    p.block_size = bs;
    for (int32_t i = 0; i < bucket; ++i) p.scheduled.push_back(SequenceWork{ids[i], {last[i]}, 1, {}, true});
    const auto t0 = Clock::now();
    const StepResult res = r.execute(p);
    times.push_back(seconds_since(t0) * 1e3);
    for (const SampledToken& st : res.sampled) last[st.seq_id - 1] = st.token;
  }
  StepPlan f;
  f.step_id = step_id++;
  f.block_size = bs;
  f.freed = ids;
  r.execute(f);
  return times;
}

nlohmann::json run_phase(const ModelConfig& c, const Options& o, bool at_start) {
  cuda::CudaRunnerOptions ro;
  ro.max_num_seqs = o.max_num_seqs;
  ro.max_num_tokens = 8192;
  ro.max_model_len = o.max_model_len;
  ro.max_kv_blocks = int64_t{512} * ((o.context + o.steps + 16) / 16 + 1);
  ro.gemm_tuning_cache = o.gemm_tuning_cache;
  cuda::CudaRunner r(c, ro);
  r.load_dummy_weights(1);
  nlohmann::json out;
  auto t0 = Clock::now();
  out["gemm_shapes_timed"] = r.tune_gemms();
  out["tune_gemms_s"] = seconds_since(t0);
  const double mib0 = used_mib();
  if (at_start) {
    t0 = Clock::now();
    out["graphs_captured_at_start"] = r.capture_decode_graphs();
    out["capture_s"] = seconds_since(t0);
    out["capture_device_MiB"] = used_mib() - mib0;
  }
  uint64_t step_id = 0;
  nlohmann::json buckets = nlohmann::json::array();
  for (int32_t b : decode_graph_buckets(o.max_num_seqs, 8192)) {
    const std::vector<double> t = decode_steps(r, o, b, step_id);
    const double replay = median(std::vector<double>(t.begin() + 2, t.end()));  // steps 2.. (warm)
    buckets.push_back({{"bucket", b}, {"first_step_ms", t[0]}, {"second_step_ms", t[1]}, {"replay_ms", replay},
                       {"first_over_replay", t[0] / replay}});
    spdlog::info("{} bucket {}: first step {:.2f} ms, replayed {:.2f} ms", at_start ? "at start" : "first use", b, t[0],
                 replay);
  }
  out["buckets"] = buckets;
  out["graphs_held"] = r.num_decode_graphs();
  out["graphs_captured_in_steps"] = r.step_graph_captures();
  out["graph_device_MiB_after_run"] = used_mib() - mib0;
  return out;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  using tessera::bench::Options;
  Options o;
  tessera::init_logging(spdlog::level::info, tessera::LogFormat::kText);  // logs to stderr: stdout is the JSON
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        TS_CHECK(i + 1 < argc, kInvalidArgument, "{} needs a value", a);
        return argv[++i];
      };
      if (a == "--shape") o.shape = value();
      else if (a == "--max-num-seqs") o.max_num_seqs = std::stoi(value());
      else if (a == "--max-model-len") o.max_model_len = std::stoi(value());
      else if (a == "--context") o.context = std::stoi(value());
      else if (a == "--steps") o.steps = std::stoi(value());
      else if (a == "--gemm-tuning-cache") o.gemm_tuning_cache = value();
      else TS_THROW(kInvalidArgument, "unknown argument '{}'", a);
    }
    TS_CHECK(o.max_num_seqs >= 1 && o.max_num_seqs <= 512, kInvalidArgument, "--max-num-seqs must be in [1, 512]; got {}",
             o.max_num_seqs);
    TS_CHECK(o.context >= 1 && o.context <= 16, kInvalidArgument, "--context must be in [1, 16]; got {}", o.context);
    TS_CHECK(o.steps >= 3 && o.steps <= 64, kInvalidArgument, "--steps must be in [3, 64]; got {}", o.steps);
    TS_CHECK(o.max_model_len >= o.context + o.steps + 1, kInvalidArgument, "--max-model-len {} is under {}",
             o.max_model_len, o.context + o.steps + 1);
    const tessera::ModelConfig c = tessera::ModelConfig::builtin_shape(o.shape);
    nlohmann::json out;
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    out["device"] = prop.name;
    out["shape"] = o.shape;
    out["max_num_seqs"] = o.max_num_seqs;
    out["max_model_len"] = o.max_model_len;
    out["context"] = o.context;
    out["first_use"] = tessera::bench::run_phase(c, o, false);
    out["at_start"] = tessera::bench::run_phase(c, o, true);
    std::cout << out.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "tessera_cuda_graph_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
