// --tp-backend and --tp-ranks-per-device: which collectives run for CPU and CUDA ranks, which
// combinations are refused (each message names the flag and the value seen), and the device a
// local rank lands on when ranks share GPUs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "parallel/cli_options.h"
#include "parallel/tp_backend.h"

namespace tessera::parallel {
namespace {

ParallelOptions opts(std::string backend, int ranks_per_device = 1) {
  ParallelOptions o;
  o.tp = 2;
  o.backend = std::move(backend);
  o.ranks_per_device = ranks_per_device;
  return o;
}

// The message of the Error resolve_tp_backend throws (kInvalidArgument), or "" when it accepts.
std::string refusal(const ParallelOptions& o, const std::string& device) {
  try {
    resolve_tp_backend(o, device);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return "";
}

TEST(TpBackend, AutoIsNcclForCudaRanksAndUcxForCpuRanks) {
  EXPECT_EQ(resolve_tp_backend(opts("auto"), "cuda"), "nccl");
  EXPECT_EQ(resolve_tp_backend(opts("auto"), "cpu"), "ucx");
  EXPECT_EQ(resolve_tp_backend(opts("nccl"), "cuda"), "nccl");
  EXPECT_EQ(resolve_tp_backend(opts("ucx"), "cpu"), "ucx");
}

TEST(TpBackend, UcxRunsCudaRanksAndLetsThemShareADevice) {
  EXPECT_EQ(resolve_tp_backend(opts("ucx"), "cuda"), "ucx");
  EXPECT_EQ(resolve_tp_backend(opts("ucx", 2), "cuda"), "ucx");
  EXPECT_EQ(resolve_tp_backend(opts("ucx", 64), "cuda"), "ucx");
}

TEST(TpBackend, NcclOnCpuRanksIsRefusedNamingBoth) {
  const std::string m = refusal(opts("nccl"), "cpu");
  EXPECT_NE(m.find("--tp-backend nccl does not fit --device cpu"), std::string::npos) << m;
}

TEST(TpBackend, RanksPerDeviceWithNcclIsRefusedNamingWhy) {
  std::string m = refusal(opts("nccl", 2), "cuda");
  EXPECT_NE(m.find("--tp-ranks-per-device 2 needs --tp-backend ucx, got --tp-backend nccl"), std::string::npos) << m;
  EXPECT_NE(m.find("Duplicate GPU detected"), std::string::npos) << m;
  m = refusal(opts("auto", 4), "cuda");
  EXPECT_NE(m.find("--tp-ranks-per-device 4 needs --tp-backend ucx, got --tp-backend auto (nccl with --device cuda)"),
            std::string::npos)
      << m;
}

TEST(TpBackend, RanksPerDeviceOnCpuRanksIsRefused) {
  const std::string m = refusal(opts("ucx", 2), "cpu");
  EXPECT_NE(m.find("--tp-ranks-per-device 2 applies to CUDA ranks"), std::string::npos) << m;
  EXPECT_NE(m.find("--device cpu"), std::string::npos) << m;
}

TEST(TpBackend, RanksPerDeviceOutsideItsRangeIsRefusedWithTheValue) {
  for (int k : {0, -1, 65}) {
    const std::string m = refusal(opts("ucx", k), "cuda");
    EXPECT_NE(m.find("--tp-ranks-per-device must be in [1, 64], got " + std::to_string(k)), std::string::npos) << m;
  }
}

TEST(TpBackend, AnUnknownBackendOrDeviceIsRefused) {
  EXPECT_NE(refusal(opts("mpi"), "cuda").find("got 'mpi'"), std::string::npos);
  EXPECT_NE(refusal(opts("ucx"), "rocm").find("device 'rocm'"), std::string::npos);
}

TEST(TpBackend, LocalRanksMapToDeviceIndexDividedByRanksPerDevice) {
  std::vector<int> two, one;
  for (int i = 0; i < 6; ++i) {
    two.push_back(cuda_device_of(i, 2));
    one.push_back(cuda_device_of(i, 1));
  }
  EXPECT_EQ(two, (std::vector<int>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(one, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(cuda_device_of(7, 8), 0);
  EXPECT_THROW(cuda_device_of(-1, 2), Error);
  EXPECT_THROW(cuda_device_of(0, 0), Error);
}

TEST(TpBackend, TheFlagIsParsedAndItsRangeCheckedByTheCommandLine) {
  ParallelOptions o;
  CLI::App app;
  add_parallel_options(&app, o);
  app.parse("--tp-ranks-per-device 2 --tp-backend ucx", false);
  EXPECT_EQ(o.ranks_per_device, 2);
  EXPECT_EQ(o.backend, "ucx");
  ParallelOptions bad;
  CLI::App app2;
  add_parallel_options(&app2, bad);
  EXPECT_THROW(app2.parse("--tp-ranks-per-device 0", false), CLI::ParseError);
  EXPECT_EQ(bad.ranks_per_device, 1);
}

}  // namespace
}  // namespace tessera::parallel
