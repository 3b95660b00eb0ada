// StopStringMatcher: finds stop strings in a choice's streamed text, across token boundaries. Text
// that could still turn out to be the start of a stop string is held back (at most the longest stop
// string less one byte, widened to whole UTF-8 characters). It must never emit text that a later
// match would have cut.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

class StopStringMatcher {
 public:
  // Stop strings must be non-empty (checked by the engine's request validation).
  StopStringMatcher(std::vector<std::string> stops, bool include_stop_in_output);

  // Adds newly decoded text; returns the text that is final now. After a match, returns the text
  // up to the stop string (plus the stop string itself when included) and matched() is set; later
  // calls return nothing.
  std::string push(std::string_view text);
  // At the end of the choice: everything still held back (nothing after a match).
  std::string flush();
  const std::optional<std::string>& matched() const { return matched_; }
  bool active() const { return !stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  bool include_;
  size_t max_len_ = 0;
  std::string held_;
  std::optional<std::string> matched_;
};

}  // namespace tessera
