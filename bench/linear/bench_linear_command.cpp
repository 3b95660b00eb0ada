// `tessera bench linear`: flags for the linear benchmark (one shape, or the llama-3.2-1b sweep).
// It must never parse another command's flags.
#include <memory>
#include <string>

#include "bench/linear/linear_bench.h"
#include "cli/commands.h"
#include "common/error.h"

namespace tessera::cli {
namespace {

struct Options {
  int64_t m = 0, k = 0, n = 0;
  std::string dtype = "bf16,f32";
  std::string isa = "auto";
  int threads = 0;
  double min_seconds = 0.3;
  double footprint_mib = 1024;
};

std::vector<DType> parse_dtypes(const std::string& list) {
  std::vector<DType> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string d = list.substr(pos, comma - pos);
    if (d == "bf16" || d == "bfloat16") out.push_back(DType::kBF16);
    else if (d == "f16" || d == "float16") out.push_back(DType::kF16);
    else if (d == "f32" || d == "float32") out.push_back(DType::kF32);
    else TS_THROW(kInvalidArgument, "--dtype: unknown dtype '{}' (bf16, f16 or f32)", d);
    pos = comma + 1;
  }
  return out;
}

cpu::LinearIsa parse_isa(const std::string& s) {
  if (s == "auto") return cpu::LinearIsa::kAuto;
  if (s == "scalar") return cpu::LinearIsa::kScalar;
  if (s == "avx2") return cpu::LinearIsa::kAvx2;
  if (s == "avx512") return cpu::LinearIsa::kAvx512;
  TS_THROW(kInvalidArgument, "--isa: unknown path '{}' (auto, scalar, avx2 or avx512)", s);
}

}  // namespace

void register_bench_linear_command(CLI::App& bench, CommandRunner& runner) {
  auto* cmd = bench.add_subcommand(
      "linear", "CPU dense projection y = x W^T: GB/s and GFLOP/s next to the read bandwidth and FMA peak");
  auto o = std::make_shared<Options>();
  cmd->add_option("--m", o->m, "Rows of x (tokens); with --k and --n: one shape instead of the llama-3.2-1b sweep");
  cmd->add_option("--k", o->k, "Input features");
  cmd->add_option("--n", o->n, "Output features (weight rows)");
  cmd->add_option("--dtype", o->dtype, "Weight dtypes, comma-separated: bf16, f16, f32")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0: one per core)")->capture_default_str();
  cmd->add_option("--isa", o->isa, "Kernel path: auto, scalar, avx2 or avx512")->capture_default_str();
  cmd->add_option("--min-time", o->min_seconds, "Seconds to time each shape")->capture_default_str();
  cmd->add_option("--footprint-mib", o->footprint_mib,
                  "MiB of weight copies rotated between calls so weights come from DRAM")
      ->capture_default_str();
  cmd->callback([&runner, o] {
    runner.run = [o] {
      bench::LinearBenchParams p;
      const bool one = o->m > 0 || o->k > 0 || o->n > 0;
      if (one) {
        TS_CHECK(o->m > 0 && o->k > 0 && o->n > 0, kInvalidArgument,
                 "bench linear: give all of --m --k --n as positive numbers (got m={} k={} n={})", o->m, o->k, o->n);
        p.shapes.push_back({"custom", o->m, o->k, o->n});
      } else {
        p.shapes = bench::llama_3_2_1b_shapes();
      }
      p.dtypes = parse_dtypes(o->dtype);
      p.isa = parse_isa(o->isa);
      p.threads = o->threads;
      TS_CHECK(o->min_seconds > 0 && o->min_seconds < 3600, kInvalidArgument, "--min-time: {} is out of range",
               o->min_seconds);
      TS_CHECK(o->footprint_mib >= 0 && o->footprint_mib <= 65536, kInvalidArgument,
               "--footprint-mib: {} is out of range", o->footprint_mib);
      p.min_seconds = o->min_seconds;
      p.weight_footprint = static_cast<size_t>(o->footprint_mib * 1024 * 1024);
      bench::run_linear_bench(p);
      return 0;
    };
  });
}

}  // namespace tessera::cli
