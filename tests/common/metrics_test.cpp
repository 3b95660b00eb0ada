// The metrics registry renders valid Prometheus text with cumulative histogram buckets.
#include "common/metrics.h"

#include "common/error.h"

#include <gtest/gtest.h>

namespace tessera {

TEST(Metrics, RendersCountersGaugesAndCumulativeHistograms) {
  MetricsRegistry reg;
  reg.counter("tessera_requests_total", "Requests by status", {{"status", "200"}}).inc(3);
  reg.gauge("tessera_queue_length", "Waiting requests").set(5);
  auto& h = reg.histogram("tessera_ttft_seconds", "Time to first token", {0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5.0);
  const std::string text = reg.render_prometheus();
  EXPECT_NE(text.find("# TYPE tessera_requests_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("tessera_requests_total{status=\"200\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("tessera_queue_length 5"), std::string::npos) << text;
  EXPECT_NE(text.find("tessera_ttft_seconds_bucket{le=\"0.1\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("tessera_ttft_seconds_bucket{le=\"1\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("tessera_ttft_seconds_bucket{le=\"+Inf\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("tessera_ttft_seconds_count 3"), std::string::npos) << text;
}

TEST(Metrics, SameNameSameLabelsIsTheSameMetric) {
  MetricsRegistry reg;
  reg.counter("c", "help").inc();
  reg.counter("c", "help").inc();
  EXPECT_EQ(reg.counter("c", "help").value(), 2.0);
  EXPECT_THROW((void)reg.gauge("c", "help"), Error);
}

}  // namespace tessera
