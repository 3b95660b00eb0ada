// The exposed-time attribution of kernel timelines (bench/timeline): exposed plus idle time adds up
// to each step's span, a kernel hidden under another's tail is charged nothing, and kernels outside
// every window are left out.
#include <gtest/gtest.h>

#include <sstream>

#include "bench/timeline/kernel_timeline_summary.h"
#include "common/error.h"

namespace tessera::bench {
namespace {

KernelSpan k(const char* name, uint64_t start, uint64_t end, int32_t grid_x = 1) {
  KernelSpan s;
  s.name = name;
  s.start_ns = start;
  s.end_ns = end;
  s.grid = {grid_x, 1, 1};
  s.block = 256;
  return s;
}

const KernelCharge& find(const TimelineSummary& s, const std::string& name, int32_t grid_x = 1) {
  for (const KernelCharge& c : s.kernels)
    if (c.name == name && c.grid[0] == grid_x) return c;
  throw std::runtime_error("no kernel " + name);
}

TEST(KernelTimelineSummary, ChargesGapsAsIdleAndSerialKernelsTheirWholeDuration) {
  const std::vector<KernelSpan> spans{k("a", 1000, 11000), k("b", 16000, 21000)};
  const TimelineSummary s = summarize_timeline(spans, std::vector<TimeWindow>{{0, 30000}});
  ASSERT_EQ(s.windows, 1);
  EXPECT_DOUBLE_EQ(s.span_us, 20.0);
  EXPECT_DOUBLE_EQ(s.idle_us, 5.0);
  EXPECT_DOUBLE_EQ(find(s, "a").exposed_us, 10.0);
  EXPECT_DOUBLE_EQ(find(s, "b").exposed_us, 5.0);
  EXPECT_DOUBLE_EQ(find(s, "b").idle_before_us, 5.0);
  EXPECT_EQ(s.kernels.front().name, "a");  // most exposed first
}

TEST(KernelTimelineSummary, OverlappingKernelsAreChargedOnlyWhatTheyAddToTheSpan) {
  // b starts under a's tail (as a PDL launch does); c runs entirely under a; d ends last.
  const std::vector<KernelSpan> spans{k("a", 0, 10000), k("b", 2000, 12000), k("c", 3000, 5000), k("d", 11000, 13000)};
  const TimelineSummary s = summarize_timeline(spans, std::vector<TimeWindow>{{0, 20000}});
  EXPECT_DOUBLE_EQ(find(s, "a").exposed_us, 10.0);
  EXPECT_DOUBLE_EQ(find(s, "b").exposed_us, 2.0);
  EXPECT_DOUBLE_EQ(find(s, "c").exposed_us, 0.0);
  EXPECT_DOUBLE_EQ(find(s, "d").exposed_us, 1.0);
  EXPECT_DOUBLE_EQ(s.idle_us, 0.0);
  double total = 0;
  for (const KernelCharge& c : s.kernels) total += c.exposed_us + c.idle_before_us;
  EXPECT_DOUBLE_EQ(total, s.span_us);
  EXPECT_DOUBLE_EQ(find(s, "c").duration_us, 2.0);
}

TEST(KernelTimelineSummary, AveragesOverWindowsAndLeavesOutKernelsOutsideThem) {
  const std::vector<KernelSpan> spans{
      k("warmup", 0, 50000),                                          // before the first window
      k("g", 100000, 104000, 8), k("g", 104000, 106000, 8), k("h", 106000, 107000),  // step 1
      k("g", 200000, 202000, 8), k("h", 203000, 205000),              // step 2
  };
  const TimelineSummary s =
      summarize_timeline(spans, std::vector<TimeWindow>{{90000, 150000}, {190000, 250000}, {300000, 400000}});
  EXPECT_EQ(s.windows, 2);  // the third window holds no kernel
  EXPECT_DOUBLE_EQ(s.span_us, (7.0 + 5.0) / 2);
  EXPECT_DOUBLE_EQ(s.launches, 2.5);
  const KernelCharge& g = find(s, "g", 8);
  EXPECT_DOUBLE_EQ(g.launches_per_window, 1.5);
  EXPECT_DOUBLE_EQ(g.exposed_us, (6.0 + 2.0) / 2);
  EXPECT_DOUBLE_EQ(g.duration_us, (4.0 + 2.0 + 2.0) / 3);
  EXPECT_DOUBLE_EQ(find(s, "h").idle_before_us, 0.5);
  EXPECT_EQ(g.first_position, 0);
  EXPECT_EQ(find(s, "h").first_position, 2);
  EXPECT_THROW(find(s, "warmup"), std::runtime_error);
}

TEST(KernelTimelineSummary, RefusesASpanThatEndsBeforeItStarts) {
  const std::vector<KernelSpan> spans{k("bad", 5000, 4000)};
  try {
    summarize_timeline(spans, std::vector<TimeWindow>{{0, 10000}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("bad"), std::string::npos);
  }
  EXPECT_THROW(summarize_timeline({}, std::vector<TimeWindow>{{10, 5}}), Error);
}

TEST(KernelTimelineSummary, SequenceListsOneWindowInStartOrder) {
  const std::vector<KernelSpan> spans{k("second", 3000, 4000), k("first", 1000, 3500), k("other_step", 90000, 91000)};
  const std::string tsv = window_sequence_tsv(spans, TimeWindow{0, 10000});
  std::istringstream in(tsv);
  std::string header, l1, l2, l3;
  std::getline(in, header);
  std::getline(in, l1);
  std::getline(in, l2);
  EXPECT_FALSE(std::getline(in, l3));
  EXPECT_EQ(header.rfind("start_us\t", 0), 0u);
  EXPECT_NE(l1.find("\tfirst"), std::string::npos);
  EXPECT_EQ(l1.rfind("0\t2.5\t2.5\t0\t", 0), 0u);
  EXPECT_EQ(l2.rfind("2\t1\t0.5\t0\t1x1x1\t256\tsecond", 0), 0u);
}

TEST(KernelTimelineSummary, ShortNamesDropNamespacesReturnTypeAndParameters) {
  EXPECT_EQ(short_kernel_name("void tessera::cuda::(anonymous namespace)::gemv_splitk_kernel<1, false, 8, 1, false>("
                              "__nv_bfloat16 const*, __nv_bfloat16 const*, void*, int, int, int)"),
            "gemv_splitk_kernel<1, false, 8, 1, false>");
  EXPECT_EQ(short_kernel_name("void tessera::cuda::decode_merge::merge_splits_kernel<128>(tessera::cuda::AttentionArgs)"),
            "merge_splits_kernel<128>");
  EXPECT_EQ(short_kernel_name("plain_c_kernel"), "plain_c_kernel");
  EXPECT_EQ(short_kernel_name("ns::k<ns::T<2>, (anonymous namespace)::U>(int)"), "k<ns::T<2>, U>");
  EXPECT_EQ(short_kernel_name(std::string(300, 'x')).size(), 120u);
}

}  // namespace
}  // namespace tessera::bench
