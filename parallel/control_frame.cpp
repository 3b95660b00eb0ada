// Control-channel framing (see control_frame.h).
#include "parallel/control_frame.h"

#include <array>

#include "common/error.h"
#include "parallel/wire.h"

namespace tessera::parallel {

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::kServerHello: return "ServerHello";
    case FrameType::kHello: return "Hello";
    case FrameType::kWelcome: return "Welcome";
    case FrameType::kRefuse: return "Refuse";
    case FrameType::kHeartbeat: return "Heartbeat";
    case FrameType::kGoodbye: return "Goodbye";
    case FrameType::kAbort: return "Abort";
  }
  return "unknown";
}

void write_frame(const Fd& fd, FrameType type, const std::vector<uint8_t>& payload, Clock::time_point deadline) {
  TS_ASSERT(payload.size() <= kMaxControlFrame, "control frame of {} bytes", payload.size());
  ByteWriter w;
  w.u32(kFrameMagic);
  w.u16(kControlProtocolVersion);
  w.u16(static_cast<uint16_t>(type));
  w.u32(static_cast<uint32_t>(payload.size()));
  w.raw(payload);
  write_all(fd, w.data(), deadline);
}

Frame read_frame(const Fd& fd, Clock::time_point deadline, uint32_t max_payload) {
  std::array<uint8_t, 12> header{};
  read_exact(fd, header, deadline);
  ByteReader r(header, "control frame header");
  const uint32_t magic = r.u32();
  const uint16_t version = r.u16();
  const uint16_t type = r.u16();
  const uint32_t length = r.u32();
  TS_CHECK(magic == kFrameMagic, kDataLoss, "control frame magic {:#x} is not Tessera's {:#x} (not a Tessera rank?)",
           magic, kFrameMagic);
  TS_CHECK(version == kControlProtocolVersion, kDataLoss,
           "control protocol version {} from the peer, this build speaks {} (mixed Tessera versions?)", version,
           kControlProtocolVersion);
  TS_CHECK(type >= 1 && type <= static_cast<uint16_t>(FrameType::kAbort), kDataLoss, "unknown control frame type {}",
           type);
  TS_CHECK(length <= max_payload, kDataLoss, "control frame of type {} claims {} bytes, over the limit {}", type,
           length, max_payload);
  Frame f;
  f.type = static_cast<FrameType>(type);
  f.payload.resize(length);
  read_exact(fd, f.payload, deadline);
  return f;
}

}  // namespace tessera::parallel
