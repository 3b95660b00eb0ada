// EngineMetrics: names, help texts and buckets of the engine's metrics.
#include "engine/engine_metrics.h"

#include <vector>

namespace tessera {

namespace {

std::vector<double> count_buckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
}

// Host work between steps and short steps: 10 us to 1 s.
std::vector<double> step_time_buckets() {
  return {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
}

}  // namespace

EngineMetrics::EngineMetrics(MetricsRegistry& r)
    : queue_length(r.gauge("tessera_queue_length", "Requests waiting to start")),
      running_sequences(r.gauge("tessera_running_sequences", "Sequences running (holding KV blocks)")),
      preemptions(r.counter("tessera_preemptions_total", "Sequences preempted by recompute")),
      kv_usage(r.gauge("tessera_kv_cache_usage_ratio", "Fraction of KV blocks in use")),
      prefix_hit_rate(r.gauge("tessera_prefix_cache_hit_rate", "Prefix-cache hit tokens over queried tokens")),
      prefix_hits(r.counter("tessera_prefix_cache_hits_total", "Prompt tokens found in the prefix cache")),
      prefix_queries(r.counter("tessera_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache")),
      step_batch_size(r.histogram("tessera_step_batch_size", "Sequences per step", count_buckets())),
      step_tokens(r.histogram("tessera_step_tokens", "Tokens per step", count_buckets())),
      step_seconds(r.histogram("tessera_step_seconds", "Seconds from a step's start to its result",
                               step_time_buckets())),
      step_host_gap_seconds(r.histogram("tessera_step_host_gap_seconds",
                                        "Seconds from a step's result to the next step's start while work waited",
                                        step_time_buckets())),
      time_to_first_token(r.histogram("tessera_time_to_first_token_seconds", "Seconds from submit to the first token",
                                      MetricsRegistry::latency_buckets())),
      inter_token_latency(r.histogram("tessera_inter_token_latency_seconds", "Seconds between tokens of one choice",
                                      MetricsRegistry::latency_buckets())),
      e2e_latency(r.histogram("tessera_e2e_request_latency_seconds", "Seconds from submit to the final output",
                              MetricsRegistry::latency_buckets())),
      prompt_tokens(r.counter("tessera_prompt_tokens_total", "Prompt tokens of admitted requests")),
      generation_tokens(r.counter("tessera_generation_tokens_total", "Tokens generated")),
      requests_rejected(r.counter("tessera_requests_rejected_total", "Requests refused by submit")),
      step_failures(r.counter("tessera_step_failures_total", "Steps whose executor failed")) {}

}  // namespace tessera
