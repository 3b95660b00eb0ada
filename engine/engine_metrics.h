// EngineMetrics: the engine's metrics, registered once in the server's MetricsRegistry and held by
// reference. It must never be updated from anywhere but the engine loop (and submit's counters).
#pragma once

#include "common/metrics.h"

namespace tessera {

struct EngineMetrics {
  explicit EngineMetrics(MetricsRegistry& r);

  Gauge& queue_length;          // requests waiting to start (admission inbox + scheduler queue)
  Gauge& running_sequences;     // sequences holding KV and running
  Counter& preemptions;         // sequences preempted by recompute
  Gauge& kv_usage;              // referenced KV blocks / all blocks
  Gauge& prefix_hit_rate;       // prefix-cache hit tokens / queried tokens, since start
  Counter& prefix_hits;         // prompt tokens found in the prefix cache
  Counter& prefix_queries;      // prompt tokens looked up in the prefix cache
  Histogram& step_batch_size;   // sequences per step
  Histogram& step_tokens;       // tokens per step
  Histogram& step_seconds;      // executor time per step: begin_execute to end_execute's result
  Histogram& step_host_gap_seconds;  // a step's result to the next step's start, while work waited:
                                     // host time the device idles for between back-to-back steps
  Histogram& time_to_first_token;  // seconds from submit to the first token
  Histogram& inter_token_latency;  // seconds between tokens of one choice
  Histogram& e2e_latency;          // seconds from submit to the final output
  Counter& prompt_tokens;       // prompt tokens of admitted requests
  Counter& generation_tokens;   // tokens generated
  Counter& requests_rejected;   // submit() refusals
  Counter& step_failures;       // executor failures (the engine stops after one)
};

}  // namespace tessera
