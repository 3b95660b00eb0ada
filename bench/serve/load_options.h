// LoadOptions: what one `tessera bench serve` run sends (target, load shape, lengths, SLOs).
// Plain data filled by the CLI; the load runner and the report read it. Never holds connections.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tessera::bench {

enum class ApiKind { kCompletions, kChat };
enum class Protocol { kHttp, kGrpc };  // OpenAI-compatible HTTP (SSE), or tessera.v1.Inference over gRPC

struct Target {
  Protocol protocol = Protocol::kHttp;
  std::string host = "127.0.0.1";
  std::string port = "8000";
  std::string base_path;  // path prefix before /v1/..., e.g. "" or "/proxy"
  ApiKind api = ApiKind::kCompletions;
  std::string model;      // empty: ask GET /v1/models and take the first
  std::string api_key;    // sent as "Authorization: Bearer ..." when set
};

// Parses http://host[:port][/prefix] or grpc://host:port; throws tessera::Error(kInvalidArgument)
// naming the URL.
Target parse_target_url(const std::string& url);

struct LengthSpec {
  int32_t input_len = 128;         // prompt tokens (ids mode) or words (text mode)
  int32_t output_len = 128;        // max_tokens
  double range_ratio = 0.0;        // lengths uniform in [len*(1-r), len*(1+r)]; 0 = fixed
  std::string dataset_path;        // JSONL {"prompt": str, "output_len": int?}; overrides lengths
};

struct LoadShape {
  // Exactly one of the sweeps is non-empty: fixed concurrency levels, or Poisson arrival rates
  // (requests/s; 0 or inf means "all at once"). max_concurrency caps in-flight requests in rate mode.
  std::vector<int32_t> concurrency;
  std::vector<double> request_rates;
  int32_t max_concurrency = 0;     // 0 = no cap
  int32_t num_requests = 100;      // measured requests per sweep point
  int32_t warmup_requests = 2;     // sent before each point, not counted
};

struct Slo {
  std::optional<double> ttft_ms;   // goodput counts requests meeting every SLO given
  std::optional<double> tpot_ms;
  std::optional<double> e2e_ms;
};

struct LoadOptions {
  Target target;
  LengthSpec lengths;
  LoadShape shape;
  Slo slo;
  bool prompt_as_ids = true;       // completions: send token ids (exact lengths); else text
  int32_t id_low = 1000;           // token ids drawn uniformly from [id_low, id_high)
  int32_t id_high = 20000;
  bool ignore_eos = false;         // send "ignore_eos": true (a vLLM/Tessera extension)
  double temperature = 0.0;
  uint64_t seed = 0;
  double request_timeout_s = 600;
  std::string output_dir;
  bool progress = true;            // live progress line on stderr
};

}  // namespace tessera::bench
