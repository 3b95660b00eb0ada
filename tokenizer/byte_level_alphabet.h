// The GPT-2 byte-level alphabet: every byte maps to one printable Unicode character, so byte-level
// BPE vocabularies are plain strings. Tables are built once and are immutable.
// It must never map two bytes to the same character.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::tok {

class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();
  // UTF-8 encoding of the character standing for byte b.
  std::string_view encode(uint8_t b) const { return {chars_[b].data(), lens_[b]}; }
  // Appends the byte-level form of raw bytes.
  void encode_append(std::string_view bytes, std::string& out) const;
  // Byte for a code point of the alphabet, or -1 when cp is not in it.
  int decode(char32_t cp) const { return cp < decode_.size() ? decode_[cp] : -1; }

 private:
  ByteLevelAlphabet();
  std::array<std::array<char, 2>, 256> chars_{};
  std::array<uint8_t, 256> lens_{};
  std::array<int16_t, 324> decode_{};
};

}  // namespace tessera::tok
