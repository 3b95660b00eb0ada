// `tessera bench serve`: load-test any OpenAI-compatible server the way users do, writing
// results.json (one record per sweep point), latency.png and throughput.png, and a closing table.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "bench/serve/http_transport.h"
#include "bench/serve/load_options.h"
#include "bench/serve/load_runner.h"
#include "bench/serve/report.h"
#include "bench/serve/workload.h"
#include "bench/serve_grpc/grpc_transport.h"
#include "cli/commands.h"
#include "common/error.h"

namespace tessera::cli {
namespace {

struct BenchServeFlags {
  std::string url = "http://127.0.0.1:8000";
  std::string grpc;  // HOST:PORT, same as --url grpc://HOST:PORT
  std::string api = "completions";
  std::string prompt_format = "ids";
  std::string concurrency;
  std::string request_rate;
  double slo_ttft = -1, slo_tpot = -1, slo_e2e = -1;
  bool no_progress = false;
  bench::LoadOptions options;
};

template <typename T>
std::vector<T> parse_list(const std::string& text, const char* flag) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "inf") {
      out.push_back(static_cast<T>(0));
      continue;
    }
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TS_CHECK(used == item.size() && !item.empty() && v >= 0, kInvalidArgument,
             "{} takes a comma-separated list of non-negative numbers, got '{}'", flag, text);
    out.push_back(static_cast<T>(v));
  }
  return out;
}

int run_bench_serve(BenchServeFlags& f) {
  auto& o = f.options;
  if (!f.grpc.empty()) {
    TS_CHECK(f.grpc.find("://") == std::string::npos, kInvalidArgument, "--grpc takes HOST:PORT, got '{}'", f.grpc);
    f.url = "grpc://" + f.grpc;
  }
  o.target = [&] {
    auto t = bench::parse_target_url(f.url);
    t.model = o.target.model;
    t.api_key = o.target.api_key;
    return t;
  }();
  if (o.target.api_key.empty()) {
    if (const char* k = std::getenv("TESSERA_API_KEY")) o.target.api_key = k;
    else if (const char* k2 = std::getenv("OPENAI_API_KEY")) o.target.api_key = k2;
  }
  TS_CHECK(f.api == "completions" || f.api == "chat", kInvalidArgument, "--api must be completions or chat, got '{}'",
           f.api);
  o.target.api = f.api == "chat" ? bench::ApiKind::kChat : bench::ApiKind::kCompletions;
  TS_CHECK(f.prompt_format == "ids" || f.prompt_format == "text", kInvalidArgument,
           "--prompt-format must be ids or text, got '{}'", f.prompt_format);
  o.prompt_as_ids = f.prompt_format == "ids";
  TS_CHECK(f.concurrency.empty() != f.request_rate.empty(), kInvalidArgument,
           "give exactly one of --concurrency and --request-rate");
  if (!f.concurrency.empty()) o.shape.concurrency = parse_list<int32_t>(f.concurrency, "--concurrency");
  if (!f.request_rate.empty()) o.shape.request_rates = parse_list<double>(f.request_rate, "--request-rate");
  for (int32_t c : o.shape.concurrency) TS_CHECK(c >= 1, kInvalidArgument, "--concurrency values must be >= 1, got {}", c);
  TS_CHECK(o.shape.num_requests >= 1, kInvalidArgument, "--num-requests must be >= 1, got {}", o.shape.num_requests);
  TS_CHECK(o.lengths.input_len >= 1 && o.lengths.output_len >= 1, kInvalidArgument,
           "--input-len and --output-len must be >= 1, got {} and {}", o.lengths.input_len, o.lengths.output_len);
  if (f.slo_ttft >= 0) o.slo.ttft_ms = f.slo_ttft;
  if (f.slo_tpot >= 0) o.slo.tpot_ms = f.slo_tpot;
  if (f.slo_e2e >= 0) o.slo.e2e_ms = f.slo_e2e;
  o.progress = !f.no_progress;
  std::filesystem::create_directories(o.output_dir);

  std::unique_ptr<bench::Transport> transport;
  if (o.target.protocol == bench::Protocol::kGrpc) {
    transport = std::make_unique<bench::GrpcTransport>(o);
  } else {
    transport = std::make_unique<bench::HttpTransport>(o);
  }
  const std::string model = transport->resolve_model();
  std::vector<bench::SweepPoint> points;
  for (int32_t c : o.shape.concurrency) points.push_back({false, static_cast<double>(c)});
  for (double r : o.shape.request_rates) points.push_back({true, r});

  std::vector<nlohmann::json> summaries;
  for (size_t i = 0; i < points.size(); ++i) {
    const uint64_t seed = o.seed + i * 1000003ull;
    const auto warmup = bench::build_workload(o, o.shape.warmup_requests, seed ^ 0xabcdefull);
    const auto measured = bench::build_workload(o, o.shape.num_requests, seed);
    const auto result = bench::run_point(o, *transport, model, points[i], warmup, measured);
    auto summary = bench::summarize_point(result, o.slo);
    summary["model"] = model;
    summary["url"] = f.url;
    summary["api"] = f.api;
    summary["protocol"] = o.target.protocol == bench::Protocol::kGrpc ? "grpc" : "http";
    summary["input_len"] = o.lengths.input_len;
    summary["output_len"] = o.lengths.output_len;
    summary["seed"] = o.seed;
    summaries.push_back(std::move(summary));
  }
  const auto results_path = std::filesystem::path(o.output_dir) / "results.json";
  std::ofstream(results_path) << nlohmann::json(summaries).dump(2) << '\n';
  // The table and the JSON come first, so a missing plotting tool never loses a measured run.
  fmt::print("{}", bench::summary_table(summaries));
  std::fflush(stdout);
  bench::write_charts(o.output_dir, summaries);
  fmt::print("results: {}, charts: {}/latency.png {}/throughput.png\n", results_path.string(), o.output_dir,
             o.output_dir);
  return 0;
}

}  // namespace

void register_bench_serve_command(CLI::App& bench, CommandRunner& runner) {
  auto f = std::make_shared<BenchServeFlags>();
  auto* cmd = bench.add_subcommand("serve", "Load-test an OpenAI-compatible server (streaming) and chart the results");
  auto& o = f->options;
  cmd->add_option("--url", f->url,
                  "Server base URL, e.g. http://127.0.0.1:8000 (OpenAI HTTP) or grpc://127.0.0.1:50051 (Tessera gRPC)")
      ->capture_default_str();
  cmd->add_option("--grpc", f->grpc, "Drive Tessera's gRPC API (tessera.v1.Inference) at HOST:PORT instead of --url");
  cmd->add_option("--api", f->api, "completions or chat (gRPC: the Generate or Chat rpc)")->capture_default_str();
  cmd->add_option("--model", o.target.model, "Model name to send (default: the first of GET /v1/models)");
  cmd->add_option("--api-key", o.target.api_key, "Bearer key (default: env TESSERA_API_KEY or OPENAI_API_KEY)");
  cmd->add_option("--concurrency", f->concurrency, "Fixed concurrency levels, comma-separated (e.g. 1,2,4,8)");
  cmd->add_option("--request-rate", f->request_rate,
                  "Poisson arrival rates in requests/s, comma-separated (inf: all at once)");
  cmd->add_option("--max-concurrency", o.shape.max_concurrency, "Cap on in-flight requests in rate mode (0: none)")
      ->capture_default_str();
  cmd->add_option("--num-requests", o.shape.num_requests, "Measured requests per sweep point")->capture_default_str();
  cmd->add_option("--warmup-requests", o.shape.warmup_requests, "Requests sent first and not counted")
      ->capture_default_str();
  cmd->add_option("--input-len", o.lengths.input_len, "Prompt length (tokens with --prompt-format ids, else words)")
      ->capture_default_str();
  cmd->add_option("--output-len", o.lengths.output_len, "max_tokens of each request")->capture_default_str();
  cmd->add_option("--range-ratio", o.lengths.range_ratio, "Lengths uniform in [len*(1-r), len*(1+r)] (0: fixed)")
      ->capture_default_str();
  cmd->add_option("--dataset", o.lengths.dataset_path, "JSONL file, one {\"prompt\": str, \"output_len\": int?} a line");
  cmd->add_option("--prompt-format", f->prompt_format, "ids (exact token counts) or text")->capture_default_str();
  cmd->add_option("--token-id-low", o.id_low, "Lowest token id in synthetic prompts")->capture_default_str();
  cmd->add_option("--token-id-high", o.id_high, "One past the highest token id in synthetic prompts")
      ->capture_default_str();
  cmd->add_flag("--ignore-eos", o.ignore_eos, "Send ignore_eos so output lengths are exact (where the server allows)");
  cmd->add_option("--temperature", o.temperature, "Sampling temperature sent")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed for prompts, lengths and arrivals")->capture_default_str();
  cmd->add_option("--slo-ttft-ms", f->slo_ttft, "Goodput SLO on time to first token (ms)");
  cmd->add_option("--slo-tpot-ms", f->slo_tpot, "Goodput SLO on time per output token (ms)");
  cmd->add_option("--slo-e2e-ms", f->slo_e2e, "Goodput SLO on end-to-end latency (ms)");
  cmd->add_option("--timeout", o.request_timeout_s, "Per-request timeout in seconds")->capture_default_str();
  cmd->add_option("--output-dir", o.output_dir, "Where results.json and the PNG charts go")->required();
  cmd->add_flag("--no-progress", f->no_progress, "No live progress line");
  cmd->callback([&runner, f] { runner.run = [f] { return run_bench_serve(*f); }; });
}

}  // namespace tessera::cli
