// Bounds-checked reading of wire messages (see wire.h).
#include "parallel/wire.h"

namespace tessera::parallel {

void ByteReader::need(size_t n) const {
  if (n > remaining()) fail(fmt::format("needs {} more bytes at offset {} but only {} remain", n, pos_, remaining()));
}

void ByteReader::fail(const std::string& why) const {
  TS_THROW(kDataLoss, "malformed {} message ({} bytes): {}", what_, data_.size(), why);
}

bool ByteReader::boolean() {
  const uint8_t v = u8();
  if (v > 1) fail(fmt::format("boolean byte is {} (must be 0 or 1)", v));
  return v == 1;
}

std::span<const uint8_t> ByteReader::raw(size_t n) {
  need(n);
  auto s = data_.subspan(pos_, n);
  pos_ += n;
  return s;
}

std::vector<uint8_t> ByteReader::bytes(size_t max_len) {
  const uint64_t n = u64();
  if (n > max_len) fail(fmt::format("byte string of {} bytes exceeds the limit {}", n, max_len));
  auto s = raw(static_cast<size_t>(n));
  return {s.begin(), s.end()};
}

std::string ByteReader::string(size_t max_len) {
  auto b = bytes(max_len);
  return {b.begin(), b.end()};
}

size_t ByteReader::count(size_t min_element_bytes, size_t max_count) {
  const uint64_t n = u64();
  if (n > max_count) fail(fmt::format("element count {} exceeds the limit {}", n, max_count));
  // n <= max_count (small), so the product cannot overflow for sane limits; check anyway.
  if (min_element_bytes != 0 && n > remaining() / min_element_bytes)
    fail(fmt::format("element count {} needs at least {} bytes each but only {} bytes remain", n, min_element_bytes,
                     remaining()));
  return static_cast<size_t>(n);
}

void ByteReader::expect_end() const {
  if (remaining() != 0) fail(fmt::format("{} trailing bytes after the end", remaining()));
}

}  // namespace tessera::parallel
