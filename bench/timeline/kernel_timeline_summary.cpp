// Exposed-time attribution of kernel timelines (see kernel_timeline_summary.h).
#include "bench/timeline/kernel_timeline_summary.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <tuple>

#include "common/error.h"

namespace tessera::bench {
namespace {

using Key = std::tuple<std::string, std::array<int32_t, 3>, int32_t>;

struct Totals {
  double launches = 0, duration_ns = 0, exposed_ns = 0, idle_ns = 0;
  int32_t first_position = 1 << 30;
};

// The spans that start inside the window, in start order (ties: the one ending first).
std::vector<const KernelSpan*> in_window(std::span<const KernelSpan> spans, const TimeWindow& w) {
  std::vector<const KernelSpan*> out;
  for (const KernelSpan& s : spans)
    if (s.start_ns >= w.begin_ns && s.start_ns <= w.end_ns) out.push_back(&s);
  std::sort(out.begin(), out.end(), [](const KernelSpan* a, const KernelSpan* b) {
    return a->start_ns != b->start_ns ? a->start_ns < b->start_ns : a->end_ns < b->end_ns;
  });
  return out;
}

// Walks one window's kernels in start order, calling f(kernel, index, exposed_ns, idle_before_ns).
template <typename F>
void charge_window(const std::vector<const KernelSpan*>& ks, F&& f) {
  if (ks.empty()) return;
  uint64_t frontier = ks.front()->start_ns;
  for (size_t i = 0; i < ks.size(); ++i) {
    const KernelSpan& k = *ks[i];
    const uint64_t idle = k.start_ns > frontier ? k.start_ns - frontier : 0;
    const uint64_t from = std::max(k.start_ns, frontier);
    const uint64_t exposed = k.end_ns > from ? k.end_ns - from : 0;
    frontier = std::max(frontier, k.end_ns);
    f(k, i, exposed, idle);
  }
}

}  // namespace

TimelineSummary summarize_timeline(std::span<const KernelSpan> spans, std::span<const TimeWindow> windows) {
  for (const KernelSpan& s : spans)
    TS_CHECK(s.end_ns >= s.start_ns, kInvalidArgument, "kernel {} ends at {} ns, before its start at {} ns", s.name,
             s.end_ns, s.start_ns);
  for (const TimeWindow& w : windows)
    TS_CHECK(w.end_ns >= w.begin_ns, kInvalidArgument, "window ends at {} ns, before its begin at {} ns", w.end_ns,
             w.begin_ns);
  TimelineSummary sum;
  std::map<Key, Totals> totals;
  double span_ns = 0, idle_ns = 0, launches = 0;
  for (const TimeWindow& w : windows) {
    const auto ks = in_window(spans, w);
    if (ks.empty()) continue;
    const bool first = sum.windows == 0;
    ++sum.windows;
    uint64_t last_end = 0;
    charge_window(ks, [&](const KernelSpan& k, size_t i, uint64_t exposed, uint64_t idle) {
      Totals& t = totals[Key{k.name, k.grid, k.block}];
      t.launches += 1;
      t.duration_ns += static_cast<double>(k.end_ns - k.start_ns);
      t.exposed_ns += static_cast<double>(exposed);
      t.idle_ns += static_cast<double>(idle);
      if (first) t.first_position = std::min(t.first_position, static_cast<int32_t>(i));
      idle_ns += static_cast<double>(idle);
      last_end = std::max(last_end, k.end_ns);
    });
    span_ns += static_cast<double>(last_end - ks.front()->start_ns);
    launches += static_cast<double>(ks.size());
  }
  if (sum.windows == 0) return sum;
  const double n = sum.windows;
  sum.span_us = span_ns / n / 1e3;
  sum.idle_us = idle_ns / n / 1e3;
  sum.launches = launches / n;
  for (const auto& [key, t] : totals) {
    KernelCharge c;
    std::tie(c.name, c.grid, c.block) = key;
    c.launches_per_window = t.launches / n;
    c.duration_us = t.duration_ns / t.launches / 1e3;
    c.exposed_us = t.exposed_ns / n / 1e3;
    c.idle_before_us = t.idle_ns / n / 1e3;
    c.first_position = t.first_position;
    sum.kernels.push_back(std::move(c));
  }
  std::sort(sum.kernels.begin(), sum.kernels.end(), [](const KernelCharge& a, const KernelCharge& b) {
    return a.exposed_us + a.idle_before_us > b.exposed_us + b.idle_before_us;
  });
  return sum;
}

nlohmann::json to_json(const TimelineSummary& s, size_t max_kernels) {
  nlohmann::json ks = nlohmann::json::array();
  for (size_t i = 0; i < s.kernels.size() && i < max_kernels; ++i) {
    const KernelCharge& k = s.kernels[i];
    ks.push_back({{"kernel", k.name},
                  {"grid", {k.grid[0], k.grid[1], k.grid[2]}},
                  {"block", k.block},
                  {"launches_per_step", k.launches_per_window},
                  {"duration_us", k.duration_us},
                  {"exposed_us_per_step", k.exposed_us},
                  {"idle_before_us_per_step", k.idle_before_us},
                  {"first_position", k.first_position}});
  }
  return {{"steps", s.windows},
          {"span_us", s.span_us},
          {"idle_us", s.idle_us},
          {"launches_per_step", s.launches},
          {"kernels_listed", ks.size()},
          {"kernels_total", s.kernels.size()},
          {"by_exposed_time", ks}};
}

std::string window_sequence_tsv(std::span<const KernelSpan> spans, const TimeWindow& window) {
  std::ostringstream out;
  out << "start_us\tduration_us\texposed_us\tidle_before_us\tgrid\tblock\tkernel\n";
  const auto ks = in_window(spans, window);
  if (ks.empty()) return out.str();
  const uint64_t t0 = ks.front()->start_ns;
  charge_window(ks, [&](const KernelSpan& k, size_t, uint64_t exposed, uint64_t idle) {
    out << (k.start_ns - t0) / 1e3 << '\t' << (k.end_ns - k.start_ns) / 1e3 << '\t' << exposed / 1e3 << '\t'
        << idle / 1e3 << '\t' << k.grid[0] << 'x' << k.grid[1] << 'x' << k.grid[2] << '\t' << k.block << '\t'
        << k.name << '\n';
  });
  return out.str();
}

std::string short_kernel_name(const std::string& demangled) {
  std::string s = demangled;
  const std::string anon = "(anonymous namespace)::";
  for (size_t p; (p = s.find(anon)) != std::string::npos;) s.erase(p, anon.size());
  // Cut at the parameter list: the first '(' outside template arguments.
  int depth = 0;
  size_t name_begin = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '<') ++depth;
    else if (c == '>') depth = std::max(0, depth - 1);
    else if (depth == 0 && c == '(') {
      s.resize(i);
      break;
    } else if (depth == 0 && c == ' ') name_begin = i + 1;  // a return type before the name
    else if (depth == 0 && c == ':' && i + 1 < s.size() && s[i + 1] == ':') name_begin = i + 2;
  }
  s = s.substr(std::min(name_begin, s.size()));
  if (s.size() > 120) s.resize(120);
  return s;
}

}  // namespace tessera::bench
