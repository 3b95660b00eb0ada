// Brings a regex's \p{..} general-category escapes up to utf8proc's Unicode version when PCRE2's
// tables are older (Debian 12: PCRE2 10.42 = Unicode 14, utf8proc 2.8 = Unicode 15, the version of
// Hugging Face tokenizers' Oniguruma): each \p{X} also matches the code points that the newer
// version assigns to X and PCRE2 still calls unassigned. It must never change a pattern's meaning
// for any code point PCRE2 already classifies.
#pragma once

#include <string>

namespace tessera::tok {

// The pattern with every patchable \p{X} / \pX extended; unchanged when the versions agree.
// \P{X} and \p{^X} are left as they are.
std::string patch_unicode_classes(const std::string& pattern);

}  // namespace tessera::tok
