// Rendezvous: how the ranks of one TP job find each other. Rank 0 listens at HOST:PORT; every
// other rank connects, proves it holds the launch secret (HMAC over rank 0's nonce), and sends its
// rank, the job's world size, its model fingerprint and its transport (UCX worker) address. Rank 0
// refuses a rank whose fingerprint, world size or rank number does not fit, with a message naming
// both sides, then answers everyone with all transport addresses (MACed over the joiner's nonce,
// so a joiner knows it reached the real rank 0). The TCP connections stay open afterwards as the
// control channel (heartbeats, orderly goodbye, abort). Every wait is bounded by the timeout.
// It must never accept an unauthenticated peer or trust a length before checking it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "parallel/launch_secret.h"
#include "parallel/tcp_socket.h"

namespace tessera::parallel {

struct RendezvousConfig {
  std::string address;                       // HOST:PORT of rank 0
  int rank = 0;
  int world_size = 1;
  Digest fingerprint{};                      // model_fingerprint(): must match rank 0's
  std::string description;                   // human-readable summary of what the fingerprint covers
  std::vector<uint8_t> transport_address;    // this rank's UCX worker address
  std::chrono::milliseconds timeout{300000}; // whole rendezvous (ranks on other nodes start late)
  std::chrono::milliseconds handshake_timeout{10000};  // one connection's handshake
};

struct RendezvousResult {
  std::vector<std::vector<uint8_t>> transport_addresses;  // indexed by rank
  // Rank 0: control[r] is the connection to rank r (control[0] is empty). Others: control[0] is
  // the connection to rank 0.
  std::vector<Fd> control;
};

// Runs the rendezvous. Rank 0 uses `listener` when it is valid (already bound, e.g. port 0 in
// tests), else listens on config.address. Throws kFailedPrecondition when a rank is refused (on
// both sides, naming the mismatch), kUnauthenticated on a joiner whose rank 0 fails the MAC,
// kDeadlineExceeded / kUnavailable when ranks do not arrive in time.
RendezvousResult rendezvous(const RendezvousConfig& config, const LaunchSecret& secret, Fd listener = Fd());

std::string digest_hex(const Digest& d, size_t bytes = 32);

}  // namespace tessera::parallel
