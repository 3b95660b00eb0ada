// Heartbeats and failure detection on the control channel (see liveness.h).
#include "parallel/liveness.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include "parallel/control_frame.h"
#include "parallel/wire.h"

namespace tessera::parallel {

Liveness::Liveness(int rank, std::vector<Fd> control, std::shared_ptr<GroupHealth> health, LivenessConfig config)
    : rank_(rank),
      control_(std::move(control)),
      last_seen_(control_.size(), Clock::now()),
      peer_left_(control_.size(), false),
      health_(std::move(health)),
      config_(config) {
  bool any = false;
  for (const auto& fd : control_) any = any || fd.valid();
  if (any) thread_ = std::thread([this] { run(); });
}

Liveness::~Liveness() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Liveness::send_all(int type, const std::vector<uint8_t>& payload) {
  std::lock_guard lock(write_mu_);
  const bool is_goodbye = type == static_cast<int>(FrameType::kGoodbye);
  for (size_t p = 0; p < control_.size(); ++p) {
    // A goodbye goes even to a peer that already said its own (it waits for ours).
    if (!control_[p].valid() || (peer_left_[p] && !is_goodbye)) continue;
    try {
      write_frame(control_[p], static_cast<FrameType>(type), payload, Clock::now() + config_.interval);
    } catch (const Error& e) {
      if (!leaving_.load()) on_peer_lost(p, fmt::format("cannot send to rank {}: {}", p, e.what()));
    }
  }
}

void Liveness::on_peer_lost(size_t peer, const std::string& why) {
  std::lock_guard lock(write_mu_);
  if (leaving_.load()) return;
  if (health_->fail(why)) {
    spdlog::error("rank {}: {}", rank_, why);
    // Rank 0 tells the surviving ranks so they stop instead of waiting on a dead peer.
    if (rank_ == 0) {
      ByteWriter w;
      w.string(why);
      std::vector<uint8_t> msg = w.take();
      for (size_t p = 0; p < control_.size(); ++p) {
        if (p == peer || !control_[p].valid()) continue;
        try {
          write_frame(control_[p], FrameType::kAbort, msg, Clock::now() + config_.interval);
        } catch (const Error&) {
        }
      }
    }
  }
}

void Liveness::goodbye(std::chrono::milliseconds wait) {
  int expected = 0;
  for (const auto& fd : control_) expected += fd.valid() ? 1 : 0;
  leaving_.store(true);  // from now on a peer closing its connection is expected, not a failure
  send_all(static_cast<int>(FrameType::kGoodbye), {});
  if (rank_ == 0) {
    const auto deadline = Clock::now() + wait;
    while (goodbyes_.load() < expected && Clock::now() < deadline && thread_.joinable())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  leaving_.store(true);
}

void Liveness::abort(const std::string& reason) {
  health_->fail(reason);
  ByteWriter w;
  w.string(reason);
  send_all(static_cast<int>(FrameType::kAbort), w.data());
}

void Liveness::run() {
  auto next_beat = Clock::now();
  while (!stop_.load()) {
    if (Clock::now() >= next_beat && !health_->failed()) {
      send_all(static_cast<int>(FrameType::kHeartbeat), {});
      next_beat = Clock::now() + config_.interval;
    }
    std::vector<pollfd> fds;
    std::vector<size_t> peers;
    std::unique_lock lock(write_mu_);
    for (size_t p = 0; p < control_.size(); ++p) {
      if (!control_[p].valid() || peer_left_[p]) continue;
      fds.push_back(pollfd{control_[p].get(), POLLIN, 0});
      peers.push_back(p);
    }
    lock.unlock();
    if (fds.empty()) return;
    const int wait_ms = static_cast<int>(std::min<int64_t>(
        100, std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - Clock::now())
                                      .count())));
    ::poll(fds.data(), fds.size(), wait_ms);
    const auto now = Clock::now();
    for (size_t i = 0; i < fds.size(); ++i) {
      const size_t p = peers[i];
      std::lock_guard peer_lock(write_mu_);
      if (fds[i].revents != 0) {
        try {
          Frame f = read_frame(control_[p], now + config_.interval, 64 * 1024);
          last_seen_[p] = Clock::now();
          if (f.type == FrameType::kGoodbye) {
            peer_left_[p] = true;
            goodbyes_.fetch_add(1);
            if (rank_ != 0) leaving_.store(true);  // rank 0 shut the group down in order
            continue;
          }
          if (f.type == FrameType::kAbort) {
            ByteReader r(f.payload, "Abort");
            on_peer_lost(p, fmt::format("rank {} aborted the group: {}", p, r.string(64 * 1024)));
          }
        } catch (const Error& e) {
          peer_left_[p] = true;
          if (leaving_.load()) {
            goodbyes_.fetch_add(1);  // closed while we shut down: as good as a goodbye
            continue;
          }
          on_peer_lost(p, fmt::format("rank {} is gone: {}", p, e.what()));
        }
      } else if (now - last_seen_[p] > config_.timeout) {
        peer_left_[p] = true;
        on_peer_lost(p, fmt::format("rank {} sent no heartbeat for {} ms", p, config_.timeout.count()));
      }
    }
  }
}

}  // namespace tessera::parallel
