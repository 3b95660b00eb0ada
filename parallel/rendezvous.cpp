// Rendezvous over TCP with HMAC authentication (see rendezvous.h).
#include "parallel/rendezvous.h"

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/error.h"
#include "parallel/control_frame.h"
#include "parallel/wire.h"

namespace tessera::parallel {
namespace {

constexpr uint32_t kHelloVersion = 1;
constexpr size_t kMaxTransportAddress = 64 * 1024;
constexpr size_t kMaxDescription = 4096;
constexpr int kMaxWorld = 1 << 16;

std::vector<uint8_t> concat(std::string_view label, std::span<const uint8_t> a, std::span<const uint8_t> b) {
  std::vector<uint8_t> m(label.begin(), label.end());
  m.insert(m.end(), a.begin(), a.end());
  m.insert(m.end(), b.begin(), b.end());
  return m;
}

Digest read_digest(ByteReader& r) {
  Digest d{};
  auto s = r.raw(d.size());
  std::copy(s.begin(), s.end(), d.begin());
  return d;
}

struct Hello {
  int rank = 0;
  int world_size = 0;
  Nonce nonce{};
  Digest fingerprint{};
  std::string description;
  std::vector<uint8_t> transport_address;
};

std::vector<uint8_t> encode_hello(const RendezvousConfig& c, const Nonce& nonce) {
  ByteWriter w;
  w.u32(kHelloVersion);
  w.i32(c.rank);
  w.i32(c.world_size);
  w.raw(nonce);
  w.raw(c.fingerprint);
  w.string(c.description);
  w.bytes(c.transport_address);
  return w.take();
}

// Verifies the MAC at the end of payload over label || nonce || body; returns the body.
std::span<const uint8_t> verified_body(std::span<const uint8_t> payload, std::string_view label, const Nonce& nonce,
                                       const LaunchSecret& secret, const char* what) {
  TS_CHECK(payload.size() >= sizeof(Digest), kUnauthenticated, "{} of {} bytes carries no MAC", what, payload.size());
  auto body = payload.first(payload.size() - sizeof(Digest));
  Digest got{};
  std::copy(payload.end() - sizeof(Digest), payload.end(), got.begin());
  TS_CHECK(digest_equal(got, secret.mac(concat(label, nonce, body))), kUnauthenticated,
           "{} failed authentication: the peer does not hold this job's launch secret", what);
  return body;
}

std::vector<uint8_t> with_mac(std::vector<uint8_t> body, std::string_view label, const Nonce& nonce,
                              const LaunchSecret& secret) {
  const Digest d = secret.mac(concat(label, nonce, body));
  body.insert(body.end(), d.begin(), d.end());
  return body;
}

Hello decode_hello(std::span<const uint8_t> body) {
  ByteReader r(body, "Hello");
  const uint32_t v = r.u32();
  if (v != kHelloVersion) r.fail(fmt::format("hello version {} (this build speaks {})", v, kHelloVersion));
  Hello h;
  h.rank = r.i32();
  h.world_size = r.i32();
  auto n = r.raw(h.nonce.size());
  std::copy(n.begin(), n.end(), h.nonce.begin());
  h.fingerprint = read_digest(r);
  h.description = r.string(kMaxDescription);
  h.transport_address = r.bytes(kMaxTransportAddress);
  r.expect_end();
  return h;
}

void refuse(const Fd& fd, const std::string& reason) {
  ByteWriter w;
  w.string(reason);
  try {
    write_frame(fd, FrameType::kRefuse, w.data(), Clock::now() + std::chrono::seconds(2));
  } catch (const Error&) {
    // The refused rank may already be gone; the leader reports the reason itself.
  }
}

RendezvousResult run_leader(const RendezvousConfig& c, const LaunchSecret& secret, Fd listener) {
  if (!listener.valid()) listener = listen_tcp(parse_host_port(c.address).host, parse_host_port(c.address).port);
  const auto deadline = Clock::now() + c.timeout;
  RendezvousResult res;
  res.transport_addresses.resize(c.world_size);
  res.control.resize(c.world_size);
  res.transport_addresses[0] = c.transport_address;
  std::vector<Nonce> nonces(c.world_size);
  int joined = 1;
  while (joined < c.world_size) {
    std::string peer;
    Fd fd = accept_tcp(listener, deadline, &peer);
    const auto hs_deadline = std::min(deadline, Clock::now() + c.handshake_timeout);
    Nonce server_nonce{};
    random_bytes(server_nonce);
    Hello h;
    try {
      write_frame(fd, FrameType::kServerHello, {server_nonce.begin(), server_nonce.end()}, hs_deadline);
      Frame f = read_frame(fd, hs_deadline, 2 * kMaxTransportAddress);
      TS_CHECK(f.type == FrameType::kHello, kDataLoss, "expected Hello, got {}", frame_type_name(f.type));
      h = decode_hello(verified_body(f.payload, "tessera-hello", server_nonce, secret, "Hello"));
    } catch (const Error& e) {
      // A stray or unauthenticated connection: drop it and keep waiting for real ranks.
      spdlog::warn("rendezvous: dropped a connection from {}: {}", peer, e.what());
      continue;
    }
    std::string why;
    if (h.world_size != c.world_size)
      why = fmt::format("rank {} from {} was started for {} ranks but rank 0 runs {} (check --tp/--nnodes)", h.rank,
                        peer, h.world_size, c.world_size);
    else if (h.rank <= 0 || h.rank >= c.world_size)
      why = fmt::format("a rank from {} claims rank {}, outside 1..{}", peer, h.rank, c.world_size - 1);
    else if (res.control[h.rank].valid())
      why = fmt::format("rank {} joined twice (second from {}): check --node-rank / launcher ranks", h.rank, peer);
    else if (!digest_equal(h.fingerprint, c.fingerprint))
      why = fmt::format(
          "rank {} ({}) does not run the same model as rank 0: its fingerprint {} [{}] differs from rank 0's {} [{}]; "
          "every rank must load the same config.json and weights with the same --tp",
          h.rank, peer, digest_hex(h.fingerprint, 8), h.description, digest_hex(c.fingerprint, 8), c.description);
    if (!why.empty()) {
      refuse(fd, why);
      TS_THROW(kFailedPrecondition, "rendezvous refused a rank: {}", why);
    }
    spdlog::info("rendezvous: rank {} of {} joined from {}", h.rank, c.world_size, peer);
    nonces[h.rank] = h.nonce;
    res.transport_addresses[h.rank] = std::move(h.transport_address);
    res.control[h.rank] = std::move(fd);
    ++joined;
  }
  ByteWriter w;
  w.array(res.transport_addresses, [](ByteWriter& w2, const std::vector<uint8_t>& a) { w2.bytes(a); });
  for (int r = 1; r < c.world_size; ++r)
    write_frame(res.control[r], FrameType::kWelcome, with_mac(w.data(), "tessera-welcome", nonces[r], secret),
                Clock::now() + c.handshake_timeout);
  return res;
}

RendezvousResult run_joiner(const RendezvousConfig& c, const LaunchSecret& secret) {
  const auto deadline = Clock::now() + c.timeout;
  Fd fd = connect_tcp(parse_host_port(c.address), deadline);
  Frame sh = read_frame(fd, std::min(deadline, Clock::now() + c.handshake_timeout), 64);
  TS_CHECK(sh.type == FrameType::kServerHello && sh.payload.size() == sizeof(Nonce), kDataLoss,
           "rendezvous at {} answered {} ({} bytes), not a Tessera rank 0", c.address, frame_type_name(sh.type),
           sh.payload.size());
  Nonce server_nonce{};
  std::copy(sh.payload.begin(), sh.payload.end(), server_nonce.begin());
  Nonce my_nonce{};
  random_bytes(my_nonce);
  write_frame(fd, FrameType::kHello, with_mac(encode_hello(c, my_nonce), "tessera-hello", server_nonce, secret),
              std::min(deadline, Clock::now() + c.handshake_timeout));
  // Rank 0 answers once every rank has joined: wait for the whole rendezvous deadline. It drops a
  // rank whose Hello fails authentication without a word, so a closed connection here most often
  // means another launch secret.
  Frame f;
  try {
    f = read_frame(fd, deadline, kMaxControlFrame);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnavailable) throw;
    TS_THROW(kUnavailable,
             "rank 0 at {} closed the connection before welcoming rank {}: it did not accept this rank's "
             "credentials (is the launch secret the same on every node? --tp-secret-file / TESSERA_TP_SECRET) "
             "or it stopped ({})",
             c.address, c.rank, e.what());
  }
  if (f.type == FrameType::kRefuse) {
    ByteReader r(f.payload, "Refuse");
    TS_THROW(kFailedPrecondition, "rank 0 refused rank {}: {}", c.rank, r.string(kMaxControlFrame));
  }
  TS_CHECK(f.type == FrameType::kWelcome, kDataLoss, "expected Welcome from rank 0, got {}", frame_type_name(f.type));
  ByteReader r(verified_body(f.payload, "tessera-welcome", my_nonce, secret, "Welcome"), "Welcome");
  RendezvousResult res;
  res.transport_addresses =
      r.array<std::vector<uint8_t>>(8, kMaxWorld, [](ByteReader& r2) { return r2.bytes(kMaxTransportAddress); });
  r.expect_end();
  TS_CHECK(static_cast<int>(res.transport_addresses.size()) == c.world_size, kDataLoss,
           "Welcome lists {} ranks, expected {}", res.transport_addresses.size(), c.world_size);
  res.control.push_back(std::move(fd));
  return res;
}

}  // namespace

std::string digest_hex(const Digest& d, size_t bytes) {
  std::string s;
  for (size_t i = 0; i < bytes && i < d.size(); ++i) s += fmt::format("{:02x}", d[i]);
  return s;
}

RendezvousResult rendezvous(const RendezvousConfig& c, const LaunchSecret& secret, Fd listener) {
  TS_CHECK(c.world_size >= 1 && c.world_size <= kMaxWorld, kInvalidArgument, "world size {} outside 1..{}",
           c.world_size, kMaxWorld);
  TS_CHECK(c.rank >= 0 && c.rank < c.world_size, kInvalidArgument, "rank {} outside 0..{}", c.rank, c.world_size - 1);
  if (c.world_size == 1) {
    RendezvousResult res;
    res.transport_addresses.push_back(c.transport_address);
    res.control.resize(1);
    return res;
  }
  return c.rank == 0 ? run_leader(c, secret, std::move(listener)) : run_joiner(c, secret);
}

}  // namespace tessera::parallel
