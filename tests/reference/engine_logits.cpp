// engine_logits: runs Tessera's CPU runner on a checkpoint and writes the logits of the last
// N_LAST positions of each prompt (0: every position) as JSON, for the reference comparisons. Each
// prompt is one sequence: a prefill chunk up to the first compared position, then one decode step
// per token. Usage: engine_logits MODEL_DIR PROMPTS_JSON N_LAST OUT_JSON
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/cpu_model_runner.h"

using namespace tessera;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: engine_logits MODEL_DIR PROMPTS_JSON N_LAST OUT_JSON\n";
    return 2;
  }
  try {
    const ModelConfig config = ModelConfig::from_directory(argv[1]);
    auto pool = std::make_shared<cpu::ThreadPool>(0);
    CpuModelRunner runner(config, load_weights(config, Checkpoint::open(argv[1])), CpuRunnerOptions{64, 16}, pool);
    const auto prompts = nlohmann::json::parse(std::ifstream(argv[2]));
    const int n_last = std::stoi(argv[3]);
    nlohmann::json out = nlohmann::json::array();
    uint64_t step = 0;
    SeqId seq = 1;
    for (const auto& p : prompts) {
      const std::vector<TokenId> ids = p.get<std::vector<TokenId>>();
      const int last = n_last > 0 ? n_last : static_cast<int>(ids.size());
      const int first = static_cast<int>(ids.size()) - last + 1;
      StepPlan plan;
      plan.step_id = step++;
      NewSequence ns;
      ns.seq_id = seq;
      ns.token_ids.assign(ids.begin(), ids.begin() + first);
      ns.num_prompt_tokens = first;
      for (BlockId b = 0; b * 16 < static_cast<int>(ids.size()); ++b) ns.block_ids.push_back(b);
      ns.sampling.temperature = 0.0f;
      plan.new_sequences.push_back(ns);
      plan.scheduled.push_back(SequenceWork{seq, {}, first, {}, true});
      nlohmann::json rows = nlohmann::json::array();
      std::vector<float> logits;
      runner.execute_with_logits(plan, logits);
      rows.push_back(logits);
      for (size_t j = first; j < ids.size(); ++j) {
        StepPlan d;
        d.step_id = step++;
        d.scheduled.push_back(SequenceWork{seq, {ids[j]}, 1, {}, true});
        runner.execute_with_logits(d, logits);
        rows.push_back(logits);
      }
      StepPlan f;
      f.step_id = step++;
      f.freed.push_back(seq++);
      runner.execute(f);
      out.push_back(rows);
    }
    std::ofstream(argv[4]) << nlohmann::json{{"logits", out}}.dump();
  } catch (const Error& e) {
    std::cerr << error_code_name(e.code()) << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
