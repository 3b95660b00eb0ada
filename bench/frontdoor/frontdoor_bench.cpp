// The front-door benchmark; see frontdoor_bench.h.
#include "bench/frontdoor/frontdoor_bench.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "bench/frontdoor/instant_executor.h"
#include "bench/serve/http_transport.h"
#include "bench/serve/load_runner.h"
#include "bench/serve/report.h"
#include "bench/serve/workload.h"
#include "common/error.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "model/default_model.h"
#include "server/server_stack.h"
#include "tokenizer/tokenizer.h"

namespace tessera::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct PassResult {
  double tokens_per_s = 0;
  double duration_s = 0;
  int64_t tokens = 0;
  int32_t failed = 0;
  nlohmann::json itl_ms;
  nlohmann::json ttft_ms;
};

EngineConfig engine_config(const FrontdoorOptions& o) {
  EngineConfig ec;
  ec.block_size = 16;
  ec.max_model_len = o.input_len + o.output_len + 16;
  ec.max_num_seqs = std::max(o.clients, 1);
  ec.max_queue_len = std::max(o.requests, o.clients) + 16;
  ec.max_num_batched_tokens = std::max(8192, o.clients * 2);
  ec.num_kv_blocks = ec.max_num_seqs * ((ec.max_model_len + ec.block_size - 1) / ec.block_size) + 64;
  ec.enable_prefix_caching = false;
  return ec;
}

std::vector<TokenId> token_cycle(const Tokenizer& tok) {
  auto ids = tok.encode(" the quick brown fox jumps over the lazy dog, then naps.", false);
  TS_CHECK(!ids.empty(), kInternal, "the tokenizer produced no ids for the benchmark text");
  return ids;
}

GenerationRequest make_request(const WorkItem& item, int64_t i) {
  GenerationRequest r;
  r.request_id = fmt::format("direct-{}", i);
  r.prompt_token_ids.assign(item.prompt_ids.begin(), item.prompt_ids.end());
  r.sampling.temperature = 0;
  r.stopping.max_tokens = item.output_len;
  r.stopping.ignore_eos = true;
  return r;
}

// The limit: the same engine and executor, outputs consumed in-process with no HTTP.
PassResult run_direct(const FrontdoorOptions& o, std::shared_ptr<const Tokenizer> tok,
                      const std::vector<WorkItem>& work) {
  MetricsRegistry metrics;
  Engine engine(engine_config(o), std::make_unique<InstantExecutor>(token_cycle(*tok)), tok, metrics);
  engine.start();
  struct Active {
    std::shared_ptr<RequestStream> stream;
    Clock::time_point start, last;
    bool first = true;
  };
  std::vector<Active> active;
  std::vector<double> itl, ttft;
  PassResult r;
  size_t next = 0;
  const auto t0 = Clock::now();
  while (next < work.size() || !active.empty()) {
    while (next < work.size() && active.size() < static_cast<size_t>(o.clients)) {
      const auto now = Clock::now();
      active.push_back({engine.submit(make_request(work[next], static_cast<int64_t>(next))), now, now, true});
      ++next;
    }
    bool progressed = false;
    for (size_t i = 0; i < active.size();) {
      bool done = false;
      while (auto out = active[i].stream->try_pop()) {
        progressed = true;
        const auto now = Clock::now();
        for (const auto& c : out->choices) {
          if (c.token_ids.empty()) continue;
          r.tokens += static_cast<int64_t>(c.token_ids.size());
          const double gap = std::chrono::duration<double>(now - active[i].last).count();
          (active[i].first ? ttft : itl).push_back(gap);
          active[i].first = false;
          active[i].last = now;
        }
        if (out->error) ++r.failed;
        if (out->finished) done = true;
      }
      if (done) {
        active[i] = std::move(active.back());
        active.pop_back();
      } else {
        ++i;
      }
    }
    if (!progressed) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  r.duration_s = std::chrono::duration<double>(Clock::now() - t0).count();
  r.tokens_per_s = static_cast<double>(r.tokens) / r.duration_s;
  r.itl_ms = latency_summary_ms(itl);
  r.ttft_ms = latency_summary_ms(ttft);
  return r;
}

// Through the HTTP door: `clients` concurrent SSE streams from bench/serve's Beast load runner.
PassResult run_http(const FrontdoorOptions& o, std::shared_ptr<const Tokenizer> tok, const LoadOptions& load,
                    const std::vector<WorkItem>& warmup, const std::vector<WorkItem>& work) {
  MetricsRegistry metrics;
  Engine engine(engine_config(o), std::make_unique<InstantExecutor>(token_cycle(*tok)), tok, metrics);
  engine.start();
  server::ServerStackOptions so;
  so.limits.model_names = {"instant"};
  so.limits.max_model_len = engine.config().max_model_len;
  so.limits.vocab_size = static_cast<int32_t>(tok->vocab_size());
  so.http.port = 0;
  so.http.io_threads = o.http_threads;
  so.enable_grpc = false;
  server::ServerStack stack(std::move(so), engine, tok, nullptr, metrics);
  stack.start();
  LoadOptions lo = load;
  lo.target.port = std::to_string(stack.http_port());
  HttpTransport transport(lo);
  const PointResult pr =
      run_point(lo, transport, "instant", SweepPoint{false, static_cast<double>(o.clients)}, warmup, work);
  PassResult r;
  std::vector<double> itl, ttft;
  for (const auto& rec : pr.records) {
    if (!rec.ok) {
      ++r.failed;
      continue;
    }
    r.tokens += rec.output_tokens;
    ttft.push_back(rec.ttft_s);
    itl.insert(itl.end(), rec.itl_s.begin(), rec.itl_s.end());
  }
  r.duration_s = pr.duration_s;
  r.tokens_per_s = static_cast<double>(r.tokens) / pr.duration_s;
  r.itl_ms = latency_summary_ms(itl);
  r.ttft_ms = latency_summary_ms(ttft);
  stack.stop();
  return r;
}

}  // namespace

int run_frontdoor_bench(const FrontdoorOptions& o) {
  TS_CHECK(o.clients >= 1 && o.requests >= o.clients, kInvalidArgument,
           "--clients must be >= 1 and --requests >= --clients, got {} and {}", o.clients, o.requests);
  std::filesystem::path dir(o.tokenizer_dir);
  if (dir.empty()) dir = find_default_tokenizer_dir();
  std::shared_ptr<const Tokenizer> tok = Tokenizer::from_directory(dir);

  LoadOptions load;
  load.target.host = "127.0.0.1";
  load.lengths.input_len = o.input_len;
  load.lengths.output_len = o.output_len;
  load.shape.concurrency = {o.clients};
  load.shape.num_requests = o.requests;
  load.shape.warmup_requests = 0;
  load.prompt_as_ids = true;
  load.ignore_eos = true;
  load.temperature = 0;
  load.progress = false;
  const auto work = build_workload(load, o.requests, 1);

  fmt::print("front door: {} concurrent SSE clients, {} requests x {} tokens, instant executor, {} io threads, "
             "{} cores\n", o.clients, o.requests, o.output_len, o.http_threads, std::thread::hardware_concurrency());
  const PassResult direct = run_direct(o, tok, work);
  const PassResult http = run_http(o, tok, load, {}, work);

  auto row = [](const char* name, const PassResult& r) {
    fmt::print("{:<28} {:>12.0f} {:>10.2f} {:>10.2f} {:>10.2f} {:>8}\n", name, r.tokens_per_s,
               r.itl_ms["p50"].get<double>(), r.itl_ms["p99"].get<double>(), r.ttft_ms["p99"].get<double>(), r.failed);
  };
  fmt::print("{:<28} {:>12} {:>10} {:>10} {:>10} {:>8}\n", "pass", "tokens/s", "ITL p50ms", "ITL p99ms",
             "TTFT p99ms", "failed");
  row("limit: engine, no HTTP", direct);
  row("HTTP/SSE front door", http);
  const double added_p99 = http.itl_ms["p99"].get<double>() - direct.itl_ms["p99"].get<double>();
  fmt::print("front door sustains {:.0f} streamed tokens/s = {:.1f}% of the in-process limit; p99 added latency per "
             "token {:.2f} ms\n", http.tokens_per_s, 100.0 * http.tokens_per_s / direct.tokens_per_s, added_p99);
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"clients", o.clients}, {"requests", o.requests}, {"output_len", o.output_len},
                        {"limit_tokens_per_s", direct.tokens_per_s}, {"http_tokens_per_s", http.tokens_per_s},
                        {"limit_itl_ms", direct.itl_ms}, {"http_itl_ms", http.itl_ms},
                        {"http_ttft_ms", http.ttft_ms}, {"http_failed", http.failed},
                        {"p99_added_latency_per_token_ms", added_p99}};
    std::ofstream(o.json_out) << j.dump(2) << "\n";
  }
  return http.failed == 0 && direct.failed == 0 ? 0 : 1;
}

}  // namespace tessera::bench
