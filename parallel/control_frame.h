// Typed frames on the TCP control channel between ranks: a 12-byte header (magic "TSRA",
// protocol version, message type, payload length) then the payload. The length is checked against
// a per-call limit before anything is allocated. It must never carry objects in a textual or
// pickled form: payloads are built with wire.h.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/tcp_socket.h"

namespace tessera::parallel {

inline constexpr uint32_t kFrameMagic = 0x41525354;  // "TSRA" little-endian
inline constexpr uint16_t kControlProtocolVersion = 1;
inline constexpr uint32_t kMaxControlFrame = 16u << 20;

enum class FrameType : uint16_t {
  kServerHello = 1,  // rank 0 -> joiner: nonce
  kHello = 2,        // joiner -> rank 0: identity, fingerprint, transport address, MAC
  kWelcome = 3,      // rank 0 -> joiner: every rank's transport address, MAC
  kRefuse = 4,       // rank 0 -> joiner: why it was refused (text for the operator)
  kHeartbeat = 5,    // either way, while the job runs
  kGoodbye = 6,      // orderly shutdown: the sender is exiting cleanly
  kAbort = 7,        // the sender failed; payload: reason
};

const char* frame_type_name(FrameType t);

struct Frame {
  FrameType type = FrameType::kHeartbeat;
  std::vector<uint8_t> payload;
};

void write_frame(const Fd& fd, FrameType type, const std::vector<uint8_t>& payload, Clock::time_point deadline);
// Reads one frame; throws kDataLoss on a bad magic/version/type or a length over max_payload, and
// kUnavailable on EOF or when the deadline passes.
Frame read_frame(const Fd& fd, Clock::time_point deadline, uint32_t max_payload = kMaxControlFrame);

}  // namespace tessera::parallel
