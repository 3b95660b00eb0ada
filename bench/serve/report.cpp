// Summary statistics, the closing table and gnuplot charts.
#include "bench/serve/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/error.h"

namespace tessera::bench {
namespace {

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

bool meets_slo(const RequestRecord& r, const Slo& slo) {
  if (!r.ok) return false;
  if (slo.ttft_ms && r.ttft_s * 1e3 > *slo.ttft_ms) return false;
  if (slo.e2e_ms && r.e2e_s * 1e3 > *slo.e2e_ms) return false;
  if (slo.tpot_ms && r.output_tokens > 1 && (r.e2e_s - r.ttft_s) / (r.output_tokens - 1) * 1e3 > *slo.tpot_ms)
    return false;
  return true;
}

}  // namespace

nlohmann::json latency_summary_ms(std::vector<double> values_s) {
  std::sort(values_s.begin(), values_s.end());
  double sum = 0;
  for (double v : values_s) sum += v;
  const double n = static_cast<double>(values_s.size());
  return {{"n", values_s.size()},
          {"mean", values_s.empty() ? 0.0 : sum / n * 1e3},
          {"p50", percentile(values_s, 0.50) * 1e3},
          {"p90", percentile(values_s, 0.90) * 1e3},
          {"p99", percentile(values_s, 0.99) * 1e3},
          {"max", values_s.empty() ? 0.0 : values_s.back() * 1e3}};
}

nlohmann::json summarize_point(const PointResult& result, const Slo& slo) {
  std::vector<double> ttft, itl, tpot, e2e;
  std::map<std::string, int> errors;
  int64_t in_tokens = 0, out_tokens = 0;
  size_t ok = 0, good = 0;
  for (const auto& r : result.records) {
    if (!r.ok) {
      ++errors[r.error_kind];
      continue;
    }
    ++ok;
    if (meets_slo(r, slo)) ++good;
    in_tokens += r.prompt_tokens;
    out_tokens += r.output_tokens;
    ttft.push_back(r.ttft_s);
    e2e.push_back(r.e2e_s);
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
    if (r.output_tokens > 1) tpot.push_back((r.e2e_s - r.ttft_s) / (r.output_tokens - 1));
  }
  const double d = result.duration_s > 0 ? result.duration_s : 1e-9;
  nlohmann::json first_errors = nlohmann::json::array();
  for (const auto& r : result.records) {
    if (!r.ok && first_errors.size() < 5) first_errors.push_back({{"kind", r.error_kind}, {"message", r.error_message}});
  }
  return {{"mode", result.point.is_rate ? "request_rate" : "concurrency"},
          {"offered", result.point.value},
          {"num_requests", result.records.size()},
          {"completed", ok},
          {"failed", result.records.size() - ok},
          {"errors", errors},
          {"error_examples", first_errors},
          {"duration_s", result.duration_s},
          {"request_throughput", ok / d},
          {"input_tokens_per_s", in_tokens / d},
          {"output_tokens_per_s", out_tokens / d},
          {"total_input_tokens", in_tokens},
          {"total_output_tokens", out_tokens},
          {"goodput_requests_per_s", good / d},
          {"slo", {{"ttft_ms", slo.ttft_ms ? nlohmann::json(*slo.ttft_ms) : nlohmann::json()},
                   {"tpot_ms", slo.tpot_ms ? nlohmann::json(*slo.tpot_ms) : nlohmann::json()},
                   {"e2e_ms", slo.e2e_ms ? nlohmann::json(*slo.e2e_ms) : nlohmann::json()}}},
          {"ttft_ms", latency_summary_ms(ttft)},
          {"itl_ms", latency_summary_ms(itl)},
          {"tpot_ms", latency_summary_ms(tpot)},
          {"e2e_ms", latency_summary_ms(e2e)}};
}

std::string summary_table(const std::vector<nlohmann::json>& points) {
  std::string out = fmt::format("{:>12} {:>6} {:>6} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "offered",
                                "ok", "fail", "req/s", "out tok/s", "good/s", "TTFT p50", "TTFT p99", "TPOT p50",
                                "ITL p99", "E2E p99");
  for (const auto& p : points) {
    const std::string offered =
        fmt::format("{}{}", p["offered"].get<double>(), p["mode"] == "request_rate" ? " rps" : " conc");
    out += fmt::format("{:>12} {:>6} {:>6} {:>9.2f} {:>10.1f} {:>9.2f} {:>9.1f} {:>9.1f} {:>9.2f} {:>9.2f} {:>9.1f}\n",
                       offered, p["completed"].get<size_t>(), p["failed"].get<size_t>(),
                       p["request_throughput"].get<double>(), p["output_tokens_per_s"].get<double>(),
                       p["goodput_requests_per_s"].get<double>(), p["ttft_ms"]["p50"].get<double>(),
                       p["ttft_ms"]["p99"].get<double>(), p["tpot_ms"]["p50"].get<double>(),
                       p["itl_ms"]["p99"].get<double>(), p["e2e_ms"]["p99"].get<double>());
  }
  out += "(latencies in ms)\n";
  return out;
}

void write_charts(const std::string& dir, const std::vector<nlohmann::json>& points) {
  namespace fs = std::filesystem;
  const fs::path data = fs::path(dir) / "chart-data.tsv";
  {
    std::ofstream f(data);
    f << "# offered ttft_p50 ttft_p99 tpot_p50 tpot_p99 itl_p50 itl_p99 e2e_p50 e2e_p99 out_tok_s req_s\n";
    for (const auto& p : points) {
      f << p["offered"].get<double>() << '\t' << p["ttft_ms"]["p50"].get<double>() << '\t'
        << p["ttft_ms"]["p99"].get<double>() << '\t' << p["tpot_ms"]["p50"].get<double>() << '\t'
        << p["tpot_ms"]["p99"].get<double>() << '\t' << p["itl_ms"]["p50"].get<double>() << '\t'
        << p["itl_ms"]["p99"].get<double>() << '\t' << p["e2e_ms"]["p50"].get<double>() << '\t'
        << p["e2e_ms"]["p99"].get<double>() << '\t' << p["output_tokens_per_s"].get<double>() << '\t'
        << p["request_throughput"].get<double>() << '\n';
    }
  }
  const std::string xlabel =
      !points.empty() && points[0]["mode"] == "request_rate" ? "offered load (requests/s)" : "concurrent streams";
  // A log scale drops zeros, and gnuplot refuses a plot with nothing left (e.g. every request
  // failed): use it only when every plotted latency is positive.
  bool all_positive = true;
  for (const auto& p : points) {
    for (const char* m : {"ttft_ms", "tpot_ms", "itl_ms"}) {
      all_positive = all_positive && p[m]["p50"].get<double>() > 0 && p[m]["p99"].get<double>() > 0;
    }
  }
  const std::string script = fmt::format(
      "set terminal pngcairo size 1000,640 noenhanced\n"
      "set grid\nset key left top\nset xlabel '{0}'\n"
      "set output '{1}/latency.png'\nset title 'Latency percentiles against offered load'\n"
      "set ylabel 'milliseconds'\n{3}"
      "plot '{2}' using 1:2 with linespoints title 'TTFT p50', '' using 1:3 with linespoints title 'TTFT p99', "
      "'' using 1:4 with linespoints title 'TPOT p50', '' using 1:5 with linespoints title 'TPOT p99', "
      "'' using 1:7 with linespoints title 'ITL p99'\n"
      "unset logscale y\n"
      "set output '{1}/throughput.png'\nset title 'Throughput against offered load'\n"
      "set ylabel 'output tokens/s'\nset y2label 'requests/s'\nset y2tics\n"
      "plot '{2}' using 1:10 with linespoints title 'output tokens/s' axes x1y1, "
      "'' using 1:11 with linespoints title 'requests/s' axes x1y2\n",
      xlabel, dir, data.string(), all_positive ? "set logscale y\n" : "");
  FILE* gp = popen("gnuplot 2>&1", "w");
  TS_CHECK(gp != nullptr, kUnavailable, "cannot start gnuplot (install gnuplot-nox)");
  std::fputs(script.c_str(), gp);
  const int rc = pclose(gp);
  TS_CHECK(rc == 0, kUnavailable, "gnuplot failed with status {} drawing charts in {}", rc, dir);
}

}  // namespace tessera::bench
