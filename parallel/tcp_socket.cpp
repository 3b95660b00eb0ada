// TCP helpers with bounded waits (see tcp_socket.h).
#include "parallel/tcp_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/error.h"

namespace tessera::parallel {
namespace {

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 1000000 ? 1000000 : static_cast<int>(left);
}

// Polls fd for `events` until the deadline; true when ready.
bool poll_until(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) TS_THROW(kUnavailable, "poll failed on socket {}: {}", fd, std::strerror(errno));
  }
}

struct AddrList {
  addrinfo* head = nullptr;
  ~AddrList() {
    if (head) freeaddrinfo(head);
  }
};

void resolve(const std::string& host, uint16_t port, bool passive, AddrList& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &out.head);
  TS_CHECK(rc == 0, kUnavailable, "cannot resolve rendezvous host '{}': {}", host, gai_strerror(rc));
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

HostPort parse_host_port(const std::string& text) {
  HostPort hp;
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    TS_CHECK(close != std::string::npos && close + 1 < text.size() && text[close + 1] == ':', kInvalidArgument,
             "rendezvous address '{}' is not [IPV6]:PORT", text);
    hp.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    TS_CHECK(colon != std::string::npos && colon > 0, kInvalidArgument, "rendezvous address '{}' is not HOST:PORT",
             text);
    hp.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  TS_CHECK(!port_text.empty() && port_text.size() <= 5 &&
               port_text.find_first_not_of("0123456789") == std::string::npos,
           kInvalidArgument, "rendezvous port '{}' in '{}' is not a number", port_text, text);
  const int port = std::stoi(port_text);
  TS_CHECK(port > 0 && port <= 65535, kInvalidArgument, "rendezvous port {} in '{}' is outside 1..65535", port, text);
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

Fd listen_tcp(const std::string& host, uint16_t port) {
  AddrList addrs;
  resolve(host, port, true, addrs);
  std::string last_error = "no address";
  for (addrinfo* a = addrs.head; a; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) continue;
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd.get(), 128) == 0) return fd;
    last_error = std::strerror(errno);
  }
  TS_THROW(kUnavailable, "cannot listen for ranks on {}:{}: {}", host, port, last_error);
}

uint16_t local_port(const Fd& fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  TS_CHECK(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0, kInternal, "getsockname: {}",
           std::strerror(errno));
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

Fd connect_tcp(const HostPort& addr, Clock::time_point deadline) {
  std::string last_error = "timed out";
  do {
    AddrList addrs;
    resolve(addr.host, addr.port, false, addrs);
    for (addrinfo* a = addrs.head; a; a = a->ai_next) {
      Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
      if (!fd.valid()) continue;
      if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) {
        set_nodelay(fd.get());
        return fd;
      }
      last_error = std::strerror(errno);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < deadline);
  TS_THROW(kUnavailable, "cannot reach the rendezvous at {}:{} before the deadline: {}", addr.host, addr.port,
           last_error);
}

Fd accept_tcp(const Fd& listener, Clock::time_point deadline, std::string* peer_name) {
  for (;;) {
    if (!poll_until(listener.get(), POLLIN, deadline))
      TS_THROW(kDeadlineExceeded, "no rank connected to the rendezvous before the deadline");
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    Fd fd(::accept4(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      TS_THROW(kUnavailable, "accept on the rendezvous failed: {}", std::strerror(errno));
    }
    set_nodelay(fd.get());
    if (peer_name) {
      char host[NI_MAXHOST] = {0}, serv[NI_MAXSERV] = {0};
      getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host), serv, sizeof(serv),
                  NI_NUMERICHOST | NI_NUMERICSERV);
      *peer_name = std::string(host) + ":" + serv;
    }
    return fd;
  }
}

void write_all(const Fd& fd, std::span<const uint8_t> data, Clock::time_point deadline) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!poll_until(fd.get(), POLLOUT, deadline))
        TS_THROW(kUnavailable, "peer did not accept {} bytes before the deadline", data.size() - done);
      continue;
    }
    TS_THROW(kUnavailable, "sending to a peer rank failed: {}", n < 0 ? std::strerror(errno) : "closed");
  }
}

void read_exact(const Fd& fd, std::span<uint8_t> out, Clock::time_point deadline) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::recv(fd.get(), out.data() + done, out.size() - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) TS_THROW(kUnavailable, "the peer rank closed the connection ({} of {} bytes read)", done, out.size());
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (!poll_until(fd.get(), POLLIN, deadline))
        TS_THROW(kUnavailable, "the peer rank sent nothing before the deadline ({} of {} bytes read)", done,
                 out.size());
      continue;
    }
    TS_THROW(kUnavailable, "receiving from a peer rank failed: {}", std::strerror(errno));
  }
}

bool wait_readable(const Fd& fd, Clock::time_point deadline) { return poll_until(fd.get(), POLLIN, deadline); }

}  // namespace tessera::parallel
