// Host all-reduce and StepPlan delivery benchmark over UCX (see allreduce_bench.h).
#include "bench/parallel/allreduce_bench.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "parallel/model_fingerprint.h"
#include "parallel/rank_group.h"
#include "parallel/step_plan_codec.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;
using parallel::RankGroup;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Loopback memcpy bandwidth (GB/s) over a buffer far larger than the caches: the limit.
double memcpy_gbps() {
  const size_t n = 256u << 20;
  std::vector<uint8_t> a(n, 1), b(n, 2);
  std::memcpy(b.data(), a.data(), n);  // fault pages in
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t = Clock::now();
    std::memcpy(b.data(), a.data(), n);
    best = std::max(best, n / seconds_since(t) / 1e9);
  }
  return best + 0 * b[n / 2];
}

// memcpy bandwidth (GB/s) for a buffer of `bytes` (cache-resident when small), best of a few runs.
double memcpy_gbps_at(size_t bytes) {
  std::vector<uint8_t> a(bytes, 1), b(bytes, 2);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    int iters = 0;
    const auto t = Clock::now();
    do {
      std::memcpy(b.data(), a.data(), bytes);
      a[iters % bytes] = b[(iters * 7) % bytes];  // keeps the copies observable
      ++iters;
    } while (seconds_since(t) < 0.01);
    best = std::max(best, static_cast<double>(bytes) * iters / seconds_since(t) / 1e9);
  }
  return best;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "?" : one;
}

// Runs fn repeatedly for at least `seconds` (rank 0 decides, others follow); returns seconds per call.
template <typename Fn>
double time_per_call(RankGroup& g, double seconds, Fn&& fn) {
  for (int i = 0; i < 3; ++i) fn();
  int iters = 1;
  for (;;) {
    g.comm().barrier();
    const auto t = Clock::now();
    for (int i = 0; i < iters; ++i) fn();
    float elapsed = static_cast<float>(seconds_since(t));
    g.comm().broadcast(&elapsed, 1, DType::kF32, 0);  // every rank takes rank 0's decision
    if (elapsed >= seconds || iters >= (1 << 20)) return elapsed / iters;
    iters *= elapsed > 0 ? std::max(2, std::min(16, static_cast<int>(seconds / elapsed) + 1)) : 16;
  }
}

std::string human(size_t b) {
  if (b >= (1u << 20)) return fmt::format("{}M", b >> 20);
  if (b >= 1024) return fmt::format("{}K", b >> 10);
  return fmt::format("{}", b);
}

StepPlan decode_plan(int seqs) {
  StepPlan p;
  p.step_id = 1000;
  for (int i = 0; i < seqs; ++i) {
    SequenceWork w;
    w.seq_id = 1 + i;
    w.appended_token_ids = {1000 + i};
    w.num_tokens = 1;
    if (i % 16 == 0) w.new_block_ids = {i};
    w.sample = true;
    p.scheduled.push_back(w);
  }
  return p;
}

StepPlan prefill_plan(int tokens) {
  StepPlan p;
  p.step_id = 1;
  NewSequence s;
  s.seq_id = 7;
  for (int i = 0; i < tokens; ++i) s.token_ids.push_back(i * 7 % 128000);
  s.num_prompt_tokens = tokens;
  for (int b = 0; b < (tokens + 15) / 16; ++b) s.block_ids.push_back(b);
  p.new_sequences.push_back(s);
  SequenceWork w;
  w.seq_id = 7;
  w.num_tokens = tokens;
  w.sample = true;
  p.scheduled.push_back(w);
  return p;
}

int rank_main(const AllreduceBenchOptions& o, int rank, const std::string& addr, parallel::Fd listener,
              const parallel::LaunchSecret& secret) {
  parallel::RankGroupConfig c;
  c.rank = rank;
  c.world_size = o.ranks;
  c.rendezvous = addr;
  const auto fp = parallel::named_fingerprint("bench-allreduce", o.ranks);
  c.fingerprint = fp.digest;
  c.description = fp.description;
  c.rendezvous_timeout = std::chrono::milliseconds(30000);
  auto g = RankGroup::join(c, secret, std::move(listener));
  const double limit = rank == 0 ? memcpy_gbps() : 0;
  const int P = o.ranks;
  if (rank == 0 && !o.json) {
    fmt::print("host all-reduce over UCX, {} processes on this machine ({} cores, load average {}); limit: memcpy "
               "of the same size in the same run (256 MiB memcpy: {:.1f} GB/s)\n",
               P, sysconf(_SC_NPROCESSORS_ONLN), load_average(), limit);
    fmt::print("{:>8} {:>12} {:>12} {:>12} {:>12} {:>10}\n", "bytes", "latency us", "algbw GB/s", "busbw GB/s",
               "memcpy GB/s", "% memcpy");
  }
  for (size_t bytes : o.sizes_bytes) {
    std::vector<float> buf(std::max<size_t>(1, bytes / 4), 1.0f);
    const double t = time_per_call(*g, o.seconds_per_size,
                                   [&] { g->comm().all_reduce_sum(buf.data(), buf.size(), DType::kF32); });
    const double alg = buf.size() * 4 / t / 1e9, bus = alg * 2.0 * (P - 1) / P;
    if (rank != 0) continue;
    const double copy = memcpy_gbps_at(buf.size() * 4);
    if (o.json)
      fmt::print("{{\"bench\":\"allreduce\",\"ranks\":{},\"bytes\":{},\"latency_us\":{:.2f},\"algbw_gbps\":{:.3f},"
                 "\"busbw_gbps\":{:.3f},\"memcpy_gbps\":{:.2f}}}\n",
                 P, buf.size() * 4, t * 1e6, alg, bus, copy);
    else
      fmt::print("{:>8} {:>12.1f} {:>12.3f} {:>12.3f} {:>12.2f} {:>9.1f}%\n", human(buf.size() * 4), t * 1e6, alg,
                 bus, copy, 100.0 * bus / copy);
  }
  // StepPlan delivery: rank 0 sends, every rank decodes, then a 4-byte all-reduce acknowledges.
  float ack = 1.0f;
  const double ack_t = time_per_call(*g, o.seconds_per_size, [&] { g->comm().all_reduce_sum(&ack, 1, DType::kF32); });
  if (rank == 0 && !o.json)
    fmt::print("\nStepPlan delivery to all {} ranks (send + decode on every rank; 4-byte ack of {:.1f} us "
               "subtracted)\n{:>28} {:>10} {:>12} {:>12}\n",
               P, ack_t * 1e6, "plan", "bytes", "encode us", "deliver us");
  struct Case {
    const char* name;
    StepPlan plan;
  };
  for (const Case& k : {Case{"decode, 256 sequences", decode_plan(256)}, Case{"decode, 16 sequences", decode_plan(16)},
                        Case{"prefill, 1 x 8192 tokens", prefill_plan(8192)}}) {
    std::vector<uint8_t> bytes;
    const double enc = time_per_call(*g, 0.05, [&] { bytes = parallel::encode_step_plan(k.plan); });
    const double t = time_per_call(*g, o.seconds_per_size, [&] {
      if (rank == 0) {
        g->comm().send_message_to_all(parallel::encode_step_plan(k.plan));
      } else {
        auto msg = g->comm().receive_message(0, 1u << 30, std::chrono::milliseconds(30000));
        (void)parallel::decode_step_plan(msg);
      }
      g->comm().all_reduce_sum(&ack, 1, DType::kF32);
    });
    if (rank != 0) continue;
    if (o.json)
      fmt::print("{{\"bench\":\"stepplan\",\"ranks\":{},\"plan\":\"{}\",\"bytes\":{},\"encode_us\":{:.2f},"
                 "\"deliver_us\":{:.2f}}}\n",
                 P, k.name, bytes.size(), enc * 1e6, (t - ack_t) * 1e6);
    else
      fmt::print("{:>28} {:>10} {:>12.1f} {:>12.1f}\n", k.name, bytes.size(), enc * 1e6, (t - ack_t) * 1e6);
  }
  std::fflush(stdout);
  g->shutdown();
  return 0;
}

}  // namespace

std::vector<size_t> parse_sizes(const std::string& text) {
  std::vector<size_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t mult = 1;
    std::string num = item;
    if (!num.empty() && (num.back() == 'K' || num.back() == 'M' || num.back() == 'G')) {
      mult = num.back() == 'K' ? 1024 : num.back() == 'M' ? (1u << 20) : (1u << 30);
      num.pop_back();
    }
    TS_CHECK(!num.empty() && num.size() <= 6 && num.find_first_not_of("0123456789") == std::string::npos,
             kInvalidArgument, "--sizes takes sizes like 4,64K,16M; got '{}'", item);
    const size_t v = std::stoul(num) * mult;
    TS_CHECK(v >= 4 && v <= (1ull << 30), kInvalidArgument, "--sizes entry '{}' outside 4 B .. 1 GiB", item);
    out.push_back(v);
  }
  TS_CHECK(!out.empty(), kInvalidArgument, "--sizes is empty");
  return out;
}

int run_allreduce_bench(const AllreduceBenchOptions& in) {
  AllreduceBenchOptions o = in;
  TS_CHECK(o.ranks >= 2 && o.ranks <= 64, kInvalidArgument, "--ranks {} outside 2..64", o.ranks);
  if (o.sizes_bytes.empty())
    for (size_t b = 4; b <= (64u << 20); b *= 4) o.sizes_bytes.push_back(b);
  parallel::Fd listener = parallel::listen_tcp("127.0.0.1", 0);
  const std::string addr = "127.0.0.1:" + std::to_string(parallel::local_port(listener));
  const auto secret = parallel::LaunchSecret::generate();
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (int r = 0; r < o.ranks; ++r) {
    const pid_t pid = fork();
    TS_CHECK(pid >= 0, kInternal, "fork failed for bench rank {}", r);
    if (pid == 0) {
      int rc = 1;
      try {
        parallel::Fd mine = r == 0 ? std::move(listener) : parallel::Fd();
        if (r != 0) listener = parallel::Fd();
        rc = rank_main(o, r, addr, std::move(mine), secret);
      } catch (const std::exception& e) {
        fmt::print(stderr, "bench rank {}: {}\n", r, e.what());
      }
      std::fflush(nullptr);
      _exit(rc);
    }
    pids.push_back(pid);
  }
  listener = parallel::Fd();
  int worst = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    worst = std::max(worst, code);
  }
  return worst;
}

}  // namespace tessera::bench
