// Interim ThreadPool (kernels/cpu/thread_pool.h) for builds where the cpukernels implementation
// (thread_pool.cpp) is not present yet; CMake compiles this file only then. Plain and correct:
// persistent workers, one generation counter, the caller runs the first range.
// It must never be compiled together with thread_pool.cpp.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu {

class ThreadPoolImpl {
 public:
  explicit ThreadPoolImpl(int n) : num_threads_(n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~ThreadPoolImpl() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    const int64_t parts = std::min<int64_t>(n, num_threads_);
    if (parts == 1) {
      fn(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      parts_ = parts;
      pending_ = static_cast<int>(parts - 1);
      ++generation_;
    }
    cv_.notify_all();
    run_part(0);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
  }

  int num_threads() const { return num_threads_; }

 private:
  void run_part(int64_t p) {
    const int64_t begin = n_ * p / parts_, end = n_ * (p + 1) / parts_;
    if (begin < end) (*fn_)(begin, end);
  }
  void loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (index >= parts_) continue;
      }
      run_part(index);
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, parts_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

ThreadPool::ThreadPool(int num_threads)
    : impl_(std::make_unique<ThreadPoolImpl>(
          num_threads > 0 ? num_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency())))) {}
ThreadPool::~ThreadPool() = default;
int ThreadPool::num_threads() const { return impl_->num_threads(); }
void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) { impl_->parallel_for(n, fn); }

}  // namespace tessera::cpu
