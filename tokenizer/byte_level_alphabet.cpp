// GPT-2 bytes_to_unicode table (see byte_level_alphabet.h).
#include "tokenizer/byte_level_alphabet.h"

namespace tessera::tok {

ByteLevelAlphabet::ByteLevelAlphabet() {
  decode_.fill(-1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
    decode_[cp] = static_cast<int16_t>(b);
    if (cp < 0x80) {
      chars_[b][0] = static_cast<char>(cp);
      lens_[b] = 1;
    } else {
      chars_[b][0] = static_cast<char>(0xC0 | (cp >> 6));
      chars_[b][1] = static_cast<char>(0x80 | (cp & 0x3F));
      lens_[b] = 2;
    }
  }
}

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

void ByteLevelAlphabet::encode_append(std::string_view bytes, std::string& out) const {
  for (unsigned char b : bytes) out.append(chars_[b].data(), lens_[b]);
}

}  // namespace tessera::tok
