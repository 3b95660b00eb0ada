// tessera_cuda_logits: the C++ half of the device parity check (hf_parity.py). Loads a Hugging Face
// model directory into the CUDA runner and, over a token file:
//   1. teacher-forced logits of every position, computed as real serving computes them: a prefill in
//      two chunks (the second reading the first's KV from the cache), then one-token decode steps;
//      written as float32 [n, vocab] to --logits;
//   2. greedy generation of --gen tokens twice with CUDA graphs and once without; prints one JSON
//      object with the tokens and whether the runs were bitwise identical.
//   3. with --prompt-logprobs FILE: the whole token list as one prompt (two chunks, beside a second
//      sequence) with prompt_logprobs = 5, through execute(); writes {first_position, chosen,
//      top_tokens, top_logprobs} as JSON to FILE.
// --dtype auto|bfloat16|float32 picks the runner's element type (float32: the exact mode).
// A test tool: it must never be shipped in the server.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/cuda_runner.h"
#include "model/model_config.h"

namespace {

using namespace tessera;

cuda::TensorSource source_of(const Checkpoint& ckpt) {
  return [&ckpt](const std::string& name) {
    const TensorView& v = ckpt.tensor(name);
    TS_CHECK(v.dtype.has_value(), kUnimplemented, "tensor {} has unsupported dtype {}", name, v.dtype_name);
    return cuda::HostTensor{*v.dtype, v.shape, v.data};
  };
}

StepPlan new_plan(uint64_t& step, int32_t bs) {
  StepPlan p;
  p.step_id = step++;
  p.block_size = bs;
  return p;
}

std::vector<BlockId> blocks_for(int32_t tokens, int32_t bs) {
  std::vector<BlockId> b((tokens + bs - 1) / bs);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<BlockId>(b.size() - 1 - i);  // not in order
  return b;
}

// Teacher-forced logits over `tokens`: chunks [0, c1), [c1, c2), then one token per step.
std::vector<float> teacher_forced(cuda::CudaRunner& r, const std::vector<TokenId>& tokens, int32_t c1, int32_t c2) {
  const int32_t bs = r.block_size(), n = static_cast<int32_t>(tokens.size()), V = r.config().vocab_size;
  std::vector<float> all(static_cast<size_t>(n) * V);
  uint64_t step = 0;
  NewSequence s;
  s.seq_id = 1;
  s.token_ids.assign(tokens.begin(), tokens.begin() + c2);
  s.num_prompt_tokens = c2;
  s.block_ids = blocks_for(n, bs);
  s.sampling.temperature = 0.0f;
  std::vector<float> logits;
  StepPlan p = new_plan(step, bs);
  p.new_sequences.push_back(s);
  p.scheduled.push_back(SequenceWork{1, {}, c1, {}, false});
  r.execute_with_logits(p, &logits);
  std::copy(logits.begin(), logits.end(), all.begin());
  p = new_plan(step, bs);
  p.scheduled.push_back(SequenceWork{1, {}, c2 - c1, {}, true});
  r.execute_with_logits(p, &logits);
  std::copy(logits.begin(), logits.end(), all.begin() + static_cast<size_t>(c1) * V);
  for (int32_t i = c2; i < n; ++i) {
    p = new_plan(step, bs);
    p.scheduled.push_back(SequenceWork{1, {tokens[i]}, 1, {}, true});
    r.execute_with_logits(p, &logits);
    std::copy(logits.begin(), logits.end(), all.begin() + static_cast<size_t>(i) * V);
  }
  p = new_plan(step, bs);
  p.freed.push_back(1);
  r.execute(p);
  return all;
}

// Prompt logprobs (top 5) of `tokens` as one prompt in chunks [0, c1), [c1, n), the first chunk
// beside another sequence's whole prompt, so rows of several sequences share the step.
nlohmann::json prompt_logprobs_of(cuda::CudaRunner& r, const std::vector<TokenId>& tokens, int32_t c1) {
  const int32_t bs = r.block_size(), n = static_cast<int32_t>(tokens.size());
  uint64_t step = 500;
  NewSequence s;
  s.seq_id = 7;
  s.token_ids = tokens;
  s.num_prompt_tokens = n;
  s.block_ids = blocks_for(n + 1, bs);
  s.sampling.temperature = 0.0f;
  s.sampling.prompt_logprobs = 5;
  NewSequence other;
  other.seq_id = 8;
  other.token_ids.assign(tokens.rbegin(), tokens.rbegin() + 17);
  other.num_prompt_tokens = 17;
  for (BlockId b : blocks_for(18, bs)) other.block_ids.push_back(b + static_cast<BlockId>(s.block_ids.size()));
  other.sampling.temperature = 0.0f;
  StepPlan p = new_plan(step, bs);
  p.new_sequences = {other, s};
  p.scheduled.push_back(SequenceWork{8, {}, 17, {}, true});
  p.scheduled.push_back(SequenceWork{7, {}, c1, {}, false});
  StepResult first = r.execute(p);
  p = new_plan(step, bs);
  p.scheduled.push_back(SequenceWork{7, {}, n - c1, {}, true});
  StepResult second = r.execute(p);
  p = new_plan(step, bs);
  p.freed = {7, 8};
  r.execute(p);
  TS_CHECK(first.prompt_logprobs.size() == 1 && second.prompt_logprobs.size() == 1, kInternal,
           "expected one prompt-logprobs entry per step, got {} and {}", first.prompt_logprobs.size(),
           second.prompt_logprobs.size());
  nlohmann::json out;
  out["first_position"] = first.prompt_logprobs[0].first_position;
  out["second_first_position"] = second.prompt_logprobs[0].first_position;
  out["seq_id"] = first.prompt_logprobs[0].seq_id;
  for (const StepResult* res : {&first, &second}) {
    const PromptLogprobs& pl = res->prompt_logprobs[0];
    for (size_t i = 0; i < pl.chosen.size(); ++i) {
      out["chosen_tokens"].push_back(pl.chosen[i].token);
      out["chosen"].push_back(pl.chosen[i].logprob);
      nlohmann::json tt = nlohmann::json::array(), tl = nlohmann::json::array();
      for (const TokenLogprob& t : pl.top[i]) {
        tt.push_back(t.token);
        tl.push_back(t.logprob);
      }
      out["top_tokens"].push_back(tt);
      out["top_logprobs"].push_back(tl);
    }
  }
  return out;
}

// Greedy generation of `gen` tokens after `prompt`, through execute() (graphs when enabled).
std::vector<TokenId> generate(cuda::CudaRunner& r, const std::vector<TokenId>& prompt, int32_t gen, SeqId id) {
  const int32_t bs = r.block_size();
  uint64_t step = 1000 * id;
  NewSequence s;
  s.seq_id = id;
  s.token_ids = prompt;
  s.num_prompt_tokens = static_cast<int32_t>(prompt.size());
  s.block_ids = blocks_for(static_cast<int32_t>(prompt.size()) + gen, bs);
  s.sampling.temperature = 0.0f;
  StepPlan p = new_plan(step, bs);
  p.new_sequences.push_back(s);
  p.scheduled.push_back(SequenceWork{id, {}, static_cast<int32_t>(prompt.size()), {}, true});
  std::vector<TokenId> out;
  out.push_back(r.execute(p).sampled.at(0).token);
  while (static_cast<int32_t>(out.size()) < gen) {
    p = new_plan(step, bs);
    p.scheduled.push_back(SequenceWork{id, {out.back()}, 1, {}, true});
    out.push_back(r.execute(p).sampled.at(0).token);
  }
  p = new_plan(step, bs);
  p.freed.push_back(id);
  r.execute(p);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Teacher-forced logits and greedy determinism of the CUDA runner on a HF checkpoint"};
  std::string model, tokens_path, logits_path;
  int32_t gen = 64;
  std::string dtype = "auto";
  std::string prompt_logprobs_path;
  app.add_option("--model", model, "Hugging Face model directory")->required();
  app.add_option("--tokens", tokens_path, "JSON array of token ids")->required();
  app.add_option("--logits", logits_path, "output: float32 [n, vocab]")->required();
  app.add_option("--gen", gen, "greedy tokens to generate for the determinism check");
  app.add_option("--prompt-logprobs", prompt_logprobs_path, "output: prompt logprobs (top 5) of the tokens, JSON");
  app.add_option("--dtype", dtype, "auto (bfloat16), bfloat16 or float32 (the exact mode)");
  std::string prefill_swiglu = "on";
  app.add_option("--prefill-swiglu-gemm", prefill_swiglu,
                 "on or off: CudaRunnerOptions::prefill_swiglu_gemm (the gate/up GEMM with the SwiGLU epilogue)")
      ->check(CLI::IsMember({"on", "off"}));
  CLI11_PARSE(app, argc, argv);
  try {
    std::ifstream tf(tokens_path);
    const std::vector<TokenId> tokens = nlohmann::json::parse(tf).get<std::vector<TokenId>>();
    TS_CHECK(tokens.size() >= 8, kInvalidArgument, "need at least 8 tokens, got {}", tokens.size());
    const ModelConfig config = ModelConfig::from_directory(model);
    const auto ckpt = Checkpoint::open(model);
    cuda::CudaRunnerOptions o;
    o.dtype = cuda::cuda_compute_dtype(dtype);
    o.max_num_tokens = static_cast<int32_t>(tokens.size()) + 16;
    o.max_num_seqs = 8;
    o.max_logit_rows = o.max_num_tokens;
    o.max_model_len = static_cast<int32_t>(tokens.size()) + gen + 16;
    o.gpu_memory_utilization = 0.5f;
    o.max_kv_blocks = 4096;
    o.prefill_swiglu_gemm = prefill_swiglu == "on";
    const int32_t n = static_cast<int32_t>(tokens.size());
    nlohmann::json out;
    out["dtype"] = o.dtype == DType::kF32 ? "float32" : "bfloat16";
    {
      cuda::CudaRunner r(config, o);
      r.load_weights(source_of(*ckpt));
      const auto logits = teacher_forced(r, tokens, n / 3, n / 2);
      std::ofstream lf(logits_path, std::ios::binary);
      lf.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
      if (!prompt_logprobs_path.empty()) {
        std::ofstream pf(prompt_logprobs_path);
        pf << prompt_logprobs_of(r, tokens, n / 3).dump() << "\n";
      }
      const std::vector<TokenId> prompt(tokens.begin(), tokens.begin() + 32);
      const auto a = generate(r, prompt, gen, 2);
      const auto b = generate(r, prompt, gen, 3);
      out["graph_tokens"] = a;
      out["graph_runs_identical"] = a == b;
      // Graphs against eager steps: two more runners with the same (fixed) GEMM algorithms, since an
      // autotuning runner times its own and two of them may pick different ones (bf16 rounding then
      // differs; the first-chosen algorithms are what `graph_tokens` above used).
      o.gemm_autotune = false;
      cuda::CudaRunner fixed(config, o);
      fixed.load_weights(source_of(*ckpt));
      const auto g = generate(fixed, prompt, gen, 5);
      o.cuda_graphs = false;
      cuda::CudaRunner eager(config, o);
      eager.load_weights(source_of(*ckpt));
      const auto e = generate(eager, prompt, gen, 4);
      out["eager_tokens"] = e;
      out["graph_equals_eager"] = g == e;
    }
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tessera_cuda_logits: " << e.what() << std::endl;
    return 1;
  }
}
