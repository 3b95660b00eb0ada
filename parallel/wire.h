// Byte-level encoding for messages between ranks: little-endian fixed-width integers and floats,
// and length-prefixed arrays. The reader checks every length against the bytes left BEFORE it
// allocates, so hostile or truncated input throws tessera::Error(kDataLoss) and never over-reads,
// over-allocates or crashes. It must never encode pointers, padding or host-order structs.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace tessera::parallel {

class ByteWriter {
 public:
  void u8(uint8_t v) { bytes_.push_back(v); }
  void u16(uint16_t v) { put_le(v); }
  void u32(uint32_t v) { put_le(v); }
  void u64(uint64_t v) { put_le(v); }
  void i32(int32_t v) { put_le(static_cast<uint32_t>(v)); }
  void f32(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    put_le(u);
  }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void raw(std::span<const uint8_t> data) { bytes_.insert(bytes_.end(), data.begin(), data.end()); }
  void bytes(std::span<const uint8_t> data) {
    u64(data.size());
    raw(data);
  }
  void string(const std::string& s) { bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
  // An array: its element count, then each element written by fn(writer, element).
  template <typename T, typename Fn>
  void array(const std::vector<T>& v, Fn&& fn) {
    u64(v.size());
    for (const auto& e : v) fn(*this, e);
  }

  const std::vector<uint8_t>& data() const { return bytes_; }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  template <typename U>
  void put_le(U v) {
    static_assert(std::is_unsigned_v<U>);
    for (size_t i = 0; i < sizeof(U); ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> bytes_;
};

class ByteReader {
 public:
  // `what` names the message in errors ("StepPlan", "Hello", ...).
  ByteReader(std::span<const uint8_t> data, const char* what) : data_(data), what_(what) {}

  uint8_t u8() { return get_le<uint8_t>(); }
  uint16_t u16() { return get_le<uint16_t>(); }
  uint32_t u32() { return get_le<uint32_t>(); }
  uint64_t u64() { return get_le<uint64_t>(); }
  int32_t i32() { return static_cast<int32_t>(get_le<uint32_t>()); }
  float f32() {
    uint32_t u = get_le<uint32_t>();
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  bool boolean();
  std::span<const uint8_t> raw(size_t n);
  std::vector<uint8_t> bytes(size_t max_len);
  std::string string(size_t max_len);
  // Reads an element count and checks that count * min_element_bytes fits in what is left (every
  // element takes at least that many bytes), and that count <= max_count, before any allocation.
  size_t count(size_t min_element_bytes, size_t max_count);
  template <typename T, typename Fn>
  std::vector<T> array(size_t min_element_bytes, size_t max_count, Fn&& fn) {
    const size_t n = count(min_element_bytes, max_count);
    std::vector<T> v;
    v.reserve(n);
    for (size_t i = 0; i < n; ++i) v.push_back(fn(*this));
    return v;
  }

  size_t remaining() const { return data_.size() - pos_; }
  // Throws unless every byte was consumed (trailing garbage is an error, not ignored).
  void expect_end() const;
  [[noreturn]] void fail(const std::string& why) const;

 private:
  template <typename U>
  U get_le() {
    need(sizeof(U));
    U v = 0;
    for (size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(static_cast<U>(data_[pos_ + i]) << (8 * i));
    pos_ += sizeof(U);
    return v;
  }
  void need(size_t n) const;

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  const char* what_;
};

}  // namespace tessera::parallel
