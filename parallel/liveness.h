// Liveness: a thread per rank that keeps the control channel alive after the rendezvous. It sends
// a heartbeat to each peer every `interval`, and marks GroupHealth failed when a peer's connection
// closes (a killed process: detected at once by the kernel), when a peer sends Abort or leaves
// without being asked, or when nothing arrived from it for `timeout` (a hung or unreachable node).
// Rank 0 watches every rank; the others watch rank 0 (rank 0 relays failures as Abort).
// It must never block longer than `interval` in one wait, and never throw out of its thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "parallel/group_health.h"
#include "parallel/tcp_socket.h"

namespace tessera::parallel {

struct LivenessConfig {
  std::chrono::milliseconds interval{500};
  std::chrono::milliseconds timeout{10000};
};

class Liveness {
 public:
  // control: as RendezvousResult::control (rank 0: one per rank, [0] empty; others: [0] = rank 0).
  Liveness(int rank, std::vector<Fd> control, std::shared_ptr<GroupHealth> health, LivenessConfig config);
  ~Liveness();  // stops the thread and closes the connections (without Goodbye if not said)
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;

  // Orderly shutdown: tell peers we leave on purpose, then stop watching (peers leaving after
  // this are not failures). Rank 0 waits up to `wait` for every rank's Goodbye first.
  void goodbye(std::chrono::milliseconds wait);
  // Tells every peer the group failed (best effort) and marks our own health failed.
  void abort(const std::string& reason);

 private:
  void run();
  void send_all(int type, const std::vector<uint8_t>& payload);
  void on_peer_lost(size_t peer, const std::string& why);

  int rank_;
  std::vector<Fd> control_;
  std::vector<Clock::time_point> last_seen_;
  std::vector<bool> peer_left_;
  std::shared_ptr<GroupHealth> health_;
  LivenessConfig config_;
  std::recursive_mutex write_mu_;  // guards writes to control_ and peer_left_
  std::atomic<bool> stop_{false};
  std::atomic<bool> leaving_{false};
  std::atomic<int> goodbyes_{0};
  std::thread thread_;
};

}  // namespace tessera::parallel
