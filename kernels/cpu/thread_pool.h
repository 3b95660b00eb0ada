// ThreadPool: a fixed set of worker threads that CPU kernels split loops over. Created once by the
// CPU runner (or a benchmark) and passed to kernels by reference; kernels never create threads.
// CONTRACT shared by the CPU runner and the CPU kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace tessera::cpu {

class ThreadPoolImpl;

class ThreadPool {
 public:
  // num_threads <= 0 means one per online CPU core.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const;
  // Runs fn(begin, end) over [0, n) split into at most num_threads contiguous ranges, on the
  // calling thread plus the workers; returns when all are done. fn must not throw.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  std::unique_ptr<ThreadPoolImpl> impl_;
};

}  // namespace tessera::cpu
