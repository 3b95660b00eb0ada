// One sweep point: a warm-up wave, then the measured requests under the chosen load shape, with a
// live progress line on stderr.
#include "bench/serve/load_runner.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <deque>

namespace tessera::bench {
namespace {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

// Drives one batch of work items on an io_context; records come back in item order.
class Wave {
 public:
  Wave(const LoadOptions& o, Transport& transport, const std::string& model, const std::vector<WorkItem>& items,
       const SweepPoint& point, bool show_progress)
      : o_(o), transport_(transport), model_(model), items_(items), point_(point), show_progress_(show_progress),
        records_(items.size()), progress_timer_(io_), work_(net::make_work_guard(io_)) {}

  std::vector<RequestRecord> run(double* duration_s) {
    start_ = Clock::now();
    if (items_.empty()) return {};
    // Transports with their own threads (gRPC) post completions here: keep run() alive until the last.
    if (point_.is_rate) {
      arrivals_ = poisson_arrivals(static_cast<int32_t>(items_.size()), point_.value, o_.seed + 17);
      schedule_next_arrival();
    } else {
      const size_t initial = std::min<size_t>(items_.size(), static_cast<size_t>(std::max(1.0, point_.value)));
      for (size_t i = 0; i < initial; ++i) launch(next_++);
    }
    if (show_progress_) tick_progress();
    io_.run();
    *duration_s = std::chrono::duration<double>(last_done_ - first_send_).count();
    if (show_progress_) {
      print_progress();
      std::fputc('\n', stderr);
    }
    return std::move(records_);
  }

 private:
  size_t cap() const {
    if (!point_.is_rate) return static_cast<size_t>(std::max(1.0, point_.value));
    return o_.shape.max_concurrency > 0 ? static_cast<size_t>(o_.shape.max_concurrency) : SIZE_MAX;
  }

  void schedule_next_arrival() {
    if (next_arrival_ >= items_.size()) return;
    const auto at = start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arrivals_[next_arrival_]));
    auto timer = std::make_shared<net::steady_timer>(io_, at);
    timer->async_wait([this, timer](const boost::system::error_code&) {
      ready_.push_back(next_arrival_++);
      drain_ready();
      schedule_next_arrival();
    });
  }

  void drain_ready() {
    while (!ready_.empty() && in_flight_ < cap()) {
      launch(ready_.front());
      ready_.pop_front();
    }
  }

  void launch(size_t i) {
    const WorkItem& w = items_[i];
    RequestRecord rec;
    rec.input_len = w.input_len;
    rec.requested_output_len = w.output_len;
    const auto now = Clock::now();
    if (sent_ == 0) first_send_ = now;
    rec.start_s = std::chrono::duration<double>(now - start_).count();
    ++sent_;
    ++in_flight_;
    transport_.start(io_, model_, w, std::move(rec), [this, i](RequestRecord r) {
      --in_flight_;
      ++done_;
      if (!r.ok) ++errors_;
      if (r.ok) tokens_ += r.output_tokens;
      last_done_ = Clock::now();
      records_[i] = std::move(r);
      if (point_.is_rate) {
        drain_ready();
      } else if (next_ < items_.size()) {
        launch(next_++);
      }
      if (done_ == items_.size()) {
        progress_timer_.cancel();
        work_.reset();
      }
    });
  }

  void print_progress() {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    std::fprintf(stderr, "\r[%s %g] %zu/%zu done, %zu in flight, %zu errors, %.1f output tok/s   ",
                 point_.is_rate ? "rate" : "concurrency", point_.value, done_, items_.size(), in_flight_, errors_,
                 elapsed > 0 ? tokens_ / elapsed : 0.0);
  }

  void tick_progress() {
    print_progress();
    if (done_ == items_.size()) return;
    progress_timer_.expires_after(std::chrono::milliseconds(500));
    progress_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) tick_progress();
    });
  }

  const LoadOptions& o_;
  Transport& transport_;
  const std::string& model_;
  const std::vector<WorkItem>& items_;
  SweepPoint point_;
  bool show_progress_;
  net::io_context io_;
  std::vector<RequestRecord> records_;
  net::steady_timer progress_timer_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<double> arrivals_;
  std::deque<size_t> ready_;
  size_t next_ = 0, next_arrival_ = 0, sent_ = 0, done_ = 0, in_flight_ = 0, errors_ = 0;
  int64_t tokens_ = 0;
  Clock::time_point start_, first_send_, last_done_;
};

}  // namespace

PointResult run_point(const LoadOptions& options, Transport& transport, const std::string& model,
                      const SweepPoint& point, const std::vector<WorkItem>& warmup,
                      const std::vector<WorkItem>& measured) {
  if (!warmup.empty()) {
    SweepPoint warm{false, static_cast<double>(std::min<size_t>(warmup.size(), 8))};
    double ignored = 0;
    Wave(options, transport, model, warmup, warm, false).run(&ignored);
  }
  PointResult result;
  result.point = point;
  result.records = Wave(options, transport, model, measured, point, options.progress).run(&result.duration_s);
  return result;
}

}  // namespace tessera::bench
