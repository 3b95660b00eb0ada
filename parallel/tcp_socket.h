// Minimal TCP for the rendezvous and the control channel between ranks: listen, connect with
// retries, and exact reads/writes bounded by a deadline. Every wait is bounded: nothing here can
// block forever. EOF or a reset throws tessera::Error(kUnavailable) naming the peer.
// It must never interpret the bytes it moves (framing lives in control_frame.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace tessera::parallel {

using Clock = std::chrono::steady_clock;

// An owned file descriptor; closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// Parses "HOST:PORT" or "[V6]:PORT"; throws kInvalidArgument naming the value.
HostPort parse_host_port(const std::string& text);

// Listens on host:port (port 0 picks a free one); throws kUnavailable naming the address.
Fd listen_tcp(const std::string& host, uint16_t port);
uint16_t local_port(const Fd& fd);
// Connects, retrying until the deadline (the listener may start later).
Fd connect_tcp(const HostPort& addr, Clock::time_point deadline);
// Accepts one connection; throws kDeadlineExceeded at the deadline.
Fd accept_tcp(const Fd& listener, Clock::time_point deadline, std::string* peer_name);

void write_all(const Fd& fd, std::span<const uint8_t> data, Clock::time_point deadline);
void read_exact(const Fd& fd, std::span<uint8_t> out, Clock::time_point deadline);
// Waits until fd is readable (or has hung up) or the deadline passes; true when readable.
bool wait_readable(const Fd& fd, Clock::time_point deadline);

}  // namespace tessera::parallel
