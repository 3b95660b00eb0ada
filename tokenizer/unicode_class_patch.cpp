// \p{..} patching for newer Unicode assignments (see unicode_class_patch.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/unicode_class_patch.h"

#include <fmt/format.h>
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>
#include <vector>

#include "common/utf8.h"

namespace tessera::tok {

namespace {

// utf8proc_category_t order: Cn Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So Zs Zl Zp Cc Cf Cs Co
constexpr std::array<const char*, 30> kCategoryNames = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
                                                        "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
                                                        "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};

// For each utf8proc category: the code points PCRE2 reports as unassigned (\p{Cn}).
struct NewerAssignments {
  std::array<std::vector<char32_t>, kCategoryNames.size()> by_category;
  bool needed = false;
};

const NewerAssignments& newer_assignments() {
  static const NewerAssignments table = [] {
    NewerAssignments t;
    char version[64] = {};
    pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, version);
    if (std::strcmp(version, utf8proc_unicode_version()) == 0) return t;
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* cn = pcre2_compile(reinterpret_cast<PCRE2_SPTR>("\\p{Cn}"), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_ANCHORED, &err, &off, nullptr);
    if (cn == nullptr) return t;
    pcre2_jit_compile(cn, PCRE2_JIT_COMPLETE);
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    std::string buf;
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
      if (cat == UTF8PROC_CATEGORY_CN || cat < 0 || static_cast<size_t>(cat) >= kCategoryNames.size()) continue;
      buf.clear();
      utf8_append(buf, cp);
      if (pcre2_match(cn, reinterpret_cast<PCRE2_SPTR>(buf.data()), buf.size(), 0, 0, md, nullptr) >= 0) {
        t.by_category[static_cast<size_t>(cat)].push_back(cp);
        t.needed = true;
      }
    }
    pcre2_match_data_free(md);
    pcre2_code_free(cn);
    return t;
  }();
  return table;
}

// Class items (\x{..}-\x{..} ...) for the newer code points of property `name`; empty when none.
std::string extra_items(std::string_view name) {
  const auto& t = newer_assignments();
  if (!t.needed) return {};
  std::vector<char32_t> cps;
  for (size_t c = 1; c < kCategoryNames.size(); ++c) {
    std::string_view cat = kCategoryNames[c];
    bool match = name == cat || (name.size() == 1 && name[0] == cat[0]) ||
                 ((name == "L&" || name == "LC") && (cat == "Lu" || cat == "Ll" || cat == "Lt"));
    if (match) cps.insert(cps.end(), t.by_category[c].begin(), t.by_category[c].end());
  }
  if (cps.empty()) return {};
  std::sort(cps.begin(), cps.end());
  std::string out;
  for (size_t i = 0; i < cps.size();) {
    size_t j = i;
    while (j + 1 < cps.size() && cps[j + 1] == cps[j] + 1) ++j;
    out += fmt::format("\\x{{{:x}}}", static_cast<uint32_t>(cps[i]));
    if (j > i) out += fmt::format("-\\x{{{:x}}}", static_cast<uint32_t>(cps[j]));
    i = j + 1;
  }
  return out;
}

}  // namespace

std::string patch_unicode_classes(const std::string& p) {
  if (p.find("\\p") == std::string::npos || !newer_assignments().needed) return p;
  std::string out;
  out.reserve(p.size());
  bool in_class = false;
  size_t literal_close = std::string::npos;  // a ']' right after '[' or '[^' is a literal
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      if (p[i + 1] == 'p' && i + 2 < p.size()) {
        std::string_view name;
        size_t end;
        if (p[i + 2] == '{') {
          size_t close = p.find('}', i + 3);
          if (close == std::string::npos) break;  // malformed: copy the rest, PCRE2 reports it
          name = std::string_view(p).substr(i + 3, close - i - 3);
          end = close + 1;
        } else {
          name = std::string_view(p).substr(i + 2, 1);
          end = i + 3;
        }
        std::string_view escape = std::string_view(p).substr(i, end - i);
        std::string extra = name.empty() || name[0] == '^' ? std::string() : extra_items(name);
        if (extra.empty())
          out.append(escape);
        else if (in_class)
          out.append(escape).append(extra);
        else
          out.append("[").append(escape).append(extra).append("]");
        i = end;
        continue;
      }
      out.append(p, i, 2);
      i += 2;
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
        size_t close = p.find(":]", i + 2);
        size_t end = close == std::string::npos ? p.size() : close + 2;
        out.append(p, i, end - i);
        i = end;
        continue;
      }
      if (c == ']' && i != literal_close) in_class = false;
    } else if (c == '[') {
      in_class = true;
      literal_close = i + 1 < p.size() && p[i + 1] == '^' ? i + 2 : i + 1;
    }
    out.push_back(c);
    ++i;
  }
  if (i < p.size()) out.append(p, i, std::string::npos);
  return out;
}

}  // namespace tessera::tok
