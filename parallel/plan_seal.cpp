// Sealing and opening plan-channel messages (see plan_seal.h).
#include "parallel/plan_seal.h"

#include <algorithm>
#include <string_view>

#include "common/error.h"

namespace tessera::parallel {
namespace {

constexpr std::string_view kLabel = "tessera-plan-v1";

}  // namespace

Digest PlanSeal::mac_of(std::span<const uint8_t> header_and_body) const {
  std::vector<uint8_t> m(kLabel.begin(), kLabel.end());
  m.insert(m.end(), header_and_body.begin(), header_and_body.end());
  return secret_.mac(m);
}

std::vector<uint8_t> PlanSeal::seal(uint8_t kind, std::span<const uint8_t> body) {
  std::vector<uint8_t> out;
  out.reserve(body.size() + kOverhead);
  out.push_back(kind);
  const uint64_t seq = next_sealed_++;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(seq >> (8 * i)));
  out.insert(out.end(), body.begin(), body.end());
  const Digest mac = mac_of(out);
  out.insert(out.end(), mac.begin(), mac.end());
  return out;
}

PlanSeal::Opened PlanSeal::open(std::span<const uint8_t> message) {
  TS_CHECK(message.size() >= kOverhead, kUnauthenticated, "plan message of {} bytes is shorter than its {}-byte seal",
           message.size(), kOverhead);
  const size_t signed_len = message.size() - sizeof(Digest);
  Digest got{};
  std::copy(message.begin() + static_cast<std::ptrdiff_t>(signed_len), message.end(), got.begin());
  TS_CHECK(digest_equal(got, mac_of(message.first(signed_len))), kUnauthenticated,
           "plan message of {} bytes fails authentication (not sealed with this job's launch secret, or altered)",
           message.size());
  uint64_t seq = 0;
  for (int i = 0; i < 8; ++i) seq |= static_cast<uint64_t>(message[1 + i]) << (8 * i);
  TS_CHECK(seq == next_opened_, kUnauthenticated, "plan message number {} arrived where {} was expected (replayed or reordered)",
           seq, next_opened_);
  ++next_opened_;
  return Opened{message[0], message.subspan(9, signed_len - 9)};
}

}  // namespace tessera::parallel
