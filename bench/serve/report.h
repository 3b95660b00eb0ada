// Report: turns measured records into the per-point summary (JSON), the closing table and the PNG
// charts. Never sends a request.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "bench/serve/load_options.h"
#include "bench/serve/load_runner.h"

namespace tessera::bench {

// Mean and p50/p90/p99/max of `values` in milliseconds (inputs in seconds); linear interpolation
// between closest ranks (numpy's default). Empty input gives zeros and n = 0.
nlohmann::json latency_summary_ms(std::vector<double> values_s);

// One record per sweep point: counts, errors by kind, throughput, goodput and latency percentiles.
nlohmann::json summarize_point(const PointResult& result, const Slo& slo);

// The closing table, one row per point.
std::string summary_table(const std::vector<nlohmann::json>& points);

// Writes latency.png and throughput.png (against offered load) with gnuplot; throws
// tessera::Error(kUnavailable) when gnuplot is missing or fails.
void write_charts(const std::string& dir, const std::vector<nlohmann::json>& points);

}  // namespace tessera::bench
