// ThreadPool implementation: workers wait on a generation counter (a short spin, then a condition
// variable), the caller runs range 0 itself and waits for the others. It must never run a range twice,
// never lose one, and never deadlock when parallel_for is called from inside a range (that call runs
// serially on the calling thread).
#include "kernels/cpu/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tessera::cpu {
namespace {

// True on a thread while it runs a range of some pool's parallel_for.
thread_local bool t_inside_range = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// How long a waiting thread spins before it blocks; a decode step issues hundreds of short loops.
constexpr auto kSpin = std::chrono::microseconds(200);

int default_thread_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace

class ThreadPoolImpl {
 public:
  explicit ThreadPoolImpl(int num_threads) : num_threads_(num_threads) {
    workers_.reserve(static_cast<size_t>(num_threads - 1));
    for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }

  ~ThreadPoolImpl() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int num_threads() const { return num_threads_; }

  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (num_threads_ == 1 || n == 1 || t_inside_range) {
      run_range(fn, 0, n);
      return;
    }
    // One job at a time per pool: concurrent callers from different threads take turns.
    std::lock_guard<std::mutex> caller_lock(caller_mu_);
    const int chunks = static_cast<int>(std::min<int64_t>(n, num_threads_));
    job_fn_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    // Every worker acknowledges every job (even one with no range for it), so none can lag a job behind.
    pending_.store(num_threads_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    run_range(fn, 0, range_end(0, n, chunks));
    const auto start = std::chrono::steady_clock::now();
    while (pending_.load(std::memory_order_acquire) != 0) {
      if (std::chrono::steady_clock::now() - start < kSpin) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
    job_fn_ = nullptr;
  }

 private:
  static int64_t range_end(int chunk, int64_t n, int chunks) { return n * (chunk + 1) / chunks; }

  static void run_range(const std::function<void(int64_t, int64_t)>& fn, int64_t begin, int64_t end) {
    const bool was_inside = t_inside_range;
    t_inside_range = true;
    fn(begin, end);
    t_inside_range = was_inside;
  }

  // Waits until the generation moves past `seen`; returns the new one.
  uint64_t wait_for_job(uint64_t seen) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const uint64_t g = generation_.load(std::memory_order_acquire);
      if (g != seen) return g;
      if (std::chrono::steady_clock::now() - start >= kSpin) break;
      cpu_relax();
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    return generation_.load(std::memory_order_acquire);
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      seen = wait_for_job(seen);
      if (stop_flag()) return;
      const int chunks = job_chunks_;
      if (index < chunks) {
        const int64_t n = job_n_;
        run_range(*job_fn_, range_end(index - 1, n, chunks), range_end(index, n, chunks));
      }
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  bool stop_flag() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex caller_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
  // The current job; written by the caller before the generation bump (release), read after (acquire).
  const std::function<void(int64_t, int64_t)>* job_fn_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
};

ThreadPool::ThreadPool(int num_threads)
    : impl_(std::make_unique<ThreadPoolImpl>(num_threads <= 0 ? default_thread_count() : num_threads)) {}

ThreadPool::~ThreadPool() = default;

int ThreadPool::num_threads() const { return impl_->num_threads(); }

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn) {
  impl_->parallel_for(n, fn);
}

}  // namespace tessera::cpu
