// PlanSeal: authenticates the plan channel (rank 0 -> every rank over UCX). Each message carries its
// kind, a sequence number and HMAC-SHA256 with the launch secret over both and the body; a rank
// opens only a message whose MAC verifies and whose number is the next it expects, so a peer on the
// fabric that never learnt the secret can neither inject, alter, reorder nor replay a plan.
// Layout: [kind u8][sequence u64 little-endian][body][mac 32 bytes].
// It must never hand out a body before its MAC and sequence number have been checked.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "parallel/launch_secret.h"

namespace tessera::parallel {

class PlanSeal {
 public:
  explicit PlanSeal(const LaunchSecret& secret) : secret_(secret) {}

  // Rank 0: the message for `kind` and `body`, numbered after the previous one sealed.
  std::vector<uint8_t> seal(uint8_t kind, std::span<const uint8_t> body);

  struct Opened {
    uint8_t kind = 0;
    std::span<const uint8_t> body;  // a view into the message passed to open()
  };
  // Other ranks: checks size, MAC and sequence number; throws kUnauthenticated naming which failed.
  Opened open(std::span<const uint8_t> message);

  static constexpr size_t kOverhead = 1 + 8 + 32;

 private:
  Digest mac_of(std::span<const uint8_t> header_and_body) const;

  LaunchSecret secret_;
  uint64_t next_sealed_ = 1;
  uint64_t next_opened_ = 1;
};

}  // namespace tessera::parallel
