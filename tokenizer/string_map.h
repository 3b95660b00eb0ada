// Hash maps keyed by std::string that accept std::string_view lookups without allocating, and a
// flat open-addressing map from a 64-bit key (a BPE merge pair) to a value. Plain containers.
// They must never allocate on lookup.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tessera::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// Open addressing with linear probing; keys must not be kEmpty (all ones).
template <typename V>
class FlatU64Map {
 public:
  static constexpr uint64_t kEmpty = ~0ULL;
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    keys_.assign(cap, kEmpty);
    values_.assign(cap, V{});
    size_ = 0;
  }
  // Inserts or overwrites.
  void put(uint64_t key, const V& value) {
    if ((size_ + 1) * 2 > keys_.size()) grow();
    size_t i = slot(key);
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      ++size_;
    }
    values_[i] = value;
  }
  const V* find(uint64_t key) const {
    if (keys_.empty()) return nullptr;
    size_t i = slot(key);
    return keys_[i] == key ? &values_[i] : nullptr;
  }
  size_t size() const { return size_; }

 private:
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  size_t slot(uint64_t key) const {
    size_t mask = keys_.size() - 1;
    size_t i = mix(key) & mask;
    while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask;
    return i;
  }
  void grow() {
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<V> old_values = std::move(values_);
    reserve(old_keys.empty() ? 16 : old_keys.size());
    for (size_t i = 0; i < old_keys.size(); ++i)
      if (old_keys[i] != kEmpty) put(old_keys[i], old_values[i]);
  }
  std::vector<uint64_t> keys_;
  std::vector<V> values_;
  size_t size_ = 0;
};

}  // namespace tessera::tok
