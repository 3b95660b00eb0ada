// `tessera serve --tp N`'s runtime end to end on the CPU backend: TpServing spawns real
// `tessera worker` processes, shards the built-in default model (Qwen3 shape, 4 heads / 2 KV
// heads: TP = 4 replicates KV heads), and the real Engine generates through the TP executor the
// same greedy tokens as one process. Killing a worker with SIGKILL mid-stream ends the in-flight
// request with kUnavailable within 10 s, the engine reports not ready, and nothing hangs.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>

#include "engine/engine.h"
#include "model/checkpoint.h"
#include "model/cpu_model_runner.h"
#include "model/default_model.h"
#include "parallel/tp_serving.h"
#include "tests/parallel/forked_ranks.h"
#include "tokenizer/tokenizer.h"

namespace tessera::parallel {
namespace {

using Clock = std::chrono::steady_clock;

const char* real_env(const char* name) { return std::getenv(name); }

TpModelOptions model_options() {
  TpModelOptions m;
  m.model_dir = ensure_default_model();
  m.threads = 1;
  m.num_kv_blocks = 64;
  m.block_size = 16;
  return m;
}

EngineConfig engine_config(const ModelConfig& c) {
  EngineConfig ec;
  ec.block_size = 16;
  ec.num_kv_blocks = 64;
  ec.max_model_len = 512;
  ec.eos_token_ids = c.eos_token_ids;
  return ec;
}

// Generates greedily; returns the tokens, or throws the request's error.
std::vector<TokenId> generate(Engine& engine, const std::vector<TokenId>& prompt, int max_tokens,
                              const std::function<void()>& after_first = {}) {
  GenerationRequest req;
  req.request_id = "tp";
  req.prompt_token_ids = prompt;
  req.sampling.temperature = 0.0f;
  req.stopping.max_tokens = max_tokens;
  req.stopping.ignore_eos = true;
  auto stream = engine.submit(std::move(req));
  std::vector<TokenId> out;
  bool fired = false;
  for (;;) {
    auto o = stream->pop(std::chrono::milliseconds(20000));
    if (!o) throw Error(ErrorCode::kDeadlineExceeded, "no output within 20 s");
    for (const auto& d : o->choices) out.insert(out.end(), d.token_ids.begin(), d.token_ids.end());
    if (!fired && !out.empty() && after_first) {
      fired = true;
      after_first();
    }
    if (o->error) throw *o->error;
    if (o->finished) return out;
  }
}

std::unique_ptr<Engine> tp_engine(int tp, std::shared_ptr<const Tokenizer> tok, MetricsRegistry& metrics,
                                  std::vector<pid_t>* children) {
  ParallelOptions p;
  p.tp = tp;
  p.rendezvous_timeout_s = 60;
  p.heartbeat_timeout_ms = 3000;
  p.collective_timeout_ms = 8000;
  auto serving = TpServing::start(p, model_options(), real_env, TESSERA_BINARY);
  if (children) *children = serving->child_pids();
  const ModelConfig c = ModelConfig::from_directory(model_options().model_dir);
  auto engine = std::make_unique<Engine>(engine_config(c), TpServing::into_executor(std::move(serving), {}), tok,
                                         metrics);
  engine->start();
  return engine;
}

int greedy_parity(int tp) {
  const auto dir = model_options().model_dir;
  auto tok = Tokenizer::from_directory(dir);
  const auto prompt = tok->encode("Tensor parallel ranks must agree to the last logit.", true);
  MetricsRegistry m1, m2;
  std::vector<TokenId> ref;
  {
    const ModelConfig c = ModelConfig::from_directory(dir);
    auto pool = std::make_shared<cpu::ThreadPool>(1);
    auto runner = std::make_unique<CpuModelRunner>(c, load_weights(c, Checkpoint::open(dir)),
                                                   CpuRunnerOptions{64, 16}, pool);
    Engine e(engine_config(c), std::move(runner), tok, m1);
    e.start();
    ref = generate(e, prompt, 12);
  }
  std::vector<TokenId> got;
  {
    auto e = tp_engine(tp, tok, m2, nullptr);
    got = generate(*e, prompt, 12);
  }
  if (got != ref) {
    std::fprintf(stderr, "TP=%d greedy tokens differ from one process\n", tp);
    return 1;
  }
  return ref.size() == 12 ? 0 : 2;
}

TEST(TpEngine, GreedyOutputOfTwoRanksEqualsOneProcess) {
  EXPECT_EQ(testing::run_forked_ranks(1, [](testing::RankContext&) { return greedy_parity(2); },
                                      std::chrono::seconds(150)),
            std::vector<int>{0});
}

TEST(TpEngine, GreedyOutputOfFourRanksEqualsOneProcess) {
  EXPECT_EQ(testing::run_forked_ranks(1, [](testing::RankContext&) { return greedy_parity(4); },
                                      std::chrono::seconds(150)),
            std::vector<int>{0});
}

TEST(TpEngine, KilledWorkerFailsInFlightRequestWithinTenSeconds) {
  auto codes = testing::run_forked_ranks(
      1,
      [](testing::RankContext&) {
        auto tok = Tokenizer::from_directory(model_options().model_dir);
        MetricsRegistry metrics;
        std::vector<pid_t> children;
        auto engine = tp_engine(2, tok, metrics, &children);
        if (children.size() != 1) return 10;
        Clock::time_point killed;
        try {
          generate(*engine, tok->encode("a long answer", true), 400, [&] {
            killed = Clock::now();
            kill(children[0], SIGKILL);
          });
          return 11;  // must not finish
        } catch (const Error& e) {
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count();
          std::fprintf(stderr, "request failed %lld ms after the kill: %s\n", static_cast<long long>(ms), e.what());
          if (e.code() != ErrorCode::kUnavailable) return 12;
          if (ms > 10000) return 13;
        }
        const EngineHealth h = engine->health();
        if (h.ready) return 14;
        std::fprintf(stderr, "health: %s\n", h.reason.c_str());
        return 0;
      },
      std::chrono::seconds(120));
  EXPECT_EQ(codes, std::vector<int>{0});
}

}  // namespace
}  // namespace tessera::parallel
