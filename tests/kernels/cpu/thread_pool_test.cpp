// ThreadPool: every index of [0, n) is covered exactly once, by at most num_threads contiguous ranges,
// for any n (0, fewer than the threads, many), across many reuses, and nested calls do not deadlock.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu {
namespace {

struct Ranges {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> seen;
};

void expect_exact_cover(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  Ranges ranges;
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    {
      std::lock_guard<std::mutex> lock(ranges.mu);
      ranges.seen.emplace_back(b, e);
    }
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << n;
  EXPECT_LE(static_cast<int64_t>(ranges.seen.size()), pool.num_threads()) << "n=" << n;
  for (const auto& [b, e] : ranges.seen) EXPECT_LT(b, e) << "empty range for n=" << n;
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  ThreadPool pool(4);
  for (int64_t n : {1, 2, 3, 4, 5, 7, 64, 1000, 4097}) expect_exact_cover(pool, n);
}

TEST(ThreadPool, FewerItemsThanThreads) {
  ThreadPool pool(8);
  expect_exact_cover(pool, 3);
  expect_exact_cover(pool, 1);
}

TEST(ThreadPool, ZeroItemsNeverCallsFn) {
  ThreadPool pool(3);
  int calls = 0;
  pool.parallel_for(0, [&](int64_t, int64_t) { ++calls; });
  pool.parallel_for(-5, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, ReusedAcrossManyCalls) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int call = 0; call < 2000; ++call) {
    const int64_t n = 1 + call % 17;
    pool.parallel_for(n, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  }
  int64_t expected = 0;
  for (int call = 0; call < 2000; ++call) expected += 1 + call % 17;
  EXPECT_EQ(total.load(), expected);
}

TEST(ThreadPool, CallingThreadRunsARange) {
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> ran_on_caller{false};
  std::set<std::thread::id> ids;
  std::mutex mu;
  pool.parallel_for(2, [&](int64_t, int64_t) {
    if (std::this_thread::get_id() == caller) ran_on_caller = true;
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_TRUE(ran_on_caller.load());
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ThreadPool, SingleThreadPoolRunsInline) {
  ThreadPool pool(1);
  EXPECT_EQ(pool.num_threads(), 1);
  const auto caller = std::this_thread::get_id();
  pool.parallel_for(10, [&](int64_t b, int64_t e) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
  });
}

TEST(ThreadPool, DefaultUsesOnlineCores) {
  ThreadPool pool;
  EXPECT_EQ(pool.num_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(ThreadPool, NestedCallRunsSeriallyWithoutDeadlock) {
  ThreadPool pool(3);
  std::atomic<int64_t> inner_total{0};
  pool.parallel_for(6, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(5, [&](int64_t ib, int64_t ie) { inner_total.fetch_add(ie - ib); });
    }
  });
  EXPECT_EQ(inner_total.load(), 30);
}

TEST(ThreadPool, ConcurrentCallersTakeTurns) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  auto caller = [&] {
    for (int i = 0; i < 300; ++i) pool.parallel_for(7, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  };
  std::thread t1(caller);
  std::thread t2(caller);
  t1.join();
  t2.join();
  EXPECT_EQ(total.load(), 2 * 300 * 7);
}

}  // namespace
}  // namespace tessera::cpu
