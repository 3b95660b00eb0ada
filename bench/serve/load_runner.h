// LoadRunner: sends one sweep point's requests (fixed concurrency or Poisson arrivals) through a
// Transport, scheduling on one io_context thread, and collects a RequestRecord per request. Warm-up requests are sent first and
// not recorded. Every request ends in a record: none is dropped, errors are records too.
#pragma once

#include <vector>

#include "bench/serve/load_options.h"
#include "bench/serve/request_record.h"
#include "bench/serve/transport.h"
#include "bench/serve/workload.h"

namespace tessera::bench {

struct SweepPoint {
  bool is_rate = false;  // Poisson arrivals at `value` req/s; else `value` concurrent streams
  double value = 1;
};

struct PointResult {
  SweepPoint point;
  std::vector<RequestRecord> records;  // measured requests only, in send order
  double duration_s = 0;               // first send to last completion
};

PointResult run_point(const LoadOptions& options, Transport& transport, const std::string& model,
                      const SweepPoint& point, const std::vector<WorkItem>& warmup,
                      const std::vector<WorkItem>& measured);

}  // namespace tessera::bench
