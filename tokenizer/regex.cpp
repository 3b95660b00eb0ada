// PCRE2 wrapper (see regex.h). Match data and the JIT stack are per thread, so matching allocates
// nothing in the steady state.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "common/error.h"
#include "tokenizer/unicode_class_patch.h"
#include "common/utf8.h"

namespace tessera::tok {

namespace {

struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadMatchState() {
    data = pcre2_match_data_create(4, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  const std::string patched = patch_unicode_classes(pattern);
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(patched.data()), patched.size(), PCRE2_UTF | PCRE2_UCP,
                             &err, &err_off, nullptr);
  TS_CHECK(code != nullptr, kUnimplemented, "tokenizer regex {:?} does not compile at offset {}: {}", pattern, err_off,
           pcre2_message(err));
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view subject, std::vector<Match>& out) const {
  auto& st = thread_state();
  auto* code = static_cast<pcre2_code*>(code_);
  auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t pos = 0;
  while (pos <= subject.size()) {
    int rc = jit_ ? pcre2_jit_match(code, subj, subject.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context)
                  : pcre2_match(code, subj, subject.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    TS_CHECK(rc >= 0, kInternal, "tokenizer regex {:?} failed at offset {}: {}", pattern_, pos, pcre2_message(rc));
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    size_t s = ov[0], e = ov[1];
    if (e == s) {
      // Empty match: record nothing, step over one character.
      if (s >= subject.size()) return;
      pos = s + utf8_char_len(static_cast<unsigned char>(subject[s]));
      continue;
    }
    out.push_back({s, e});
    pos = e;
  }
}

}  // namespace tessera::tok
