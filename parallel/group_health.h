// GroupHealth: the one flag every part of a rank checks to learn that the TP group is broken
// (a peer died, hung, aborted or left). The first failure's reason is kept; later ones are ignored.
// Thread-safe. It must never be reset: a broken group is torn down and restarted, never repaired.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "common/error.h"

namespace tessera::parallel {

class GroupHealth {
 public:
  // Records the failure (first reason wins). Returns true when this call was the first.
  bool fail(const std::string& reason) {
    std::lock_guard lock(mu_);
    if (failed_.load(std::memory_order_relaxed)) return false;
    reason_ = reason;
    failed_.store(true, std::memory_order_release);
    return true;
  }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string reason() const {
    std::lock_guard lock(mu_);
    return reason_;
  }
  // Throws Error(kUnavailable) with the reason when the group failed.
  void check() const {
    if (failed()) TS_THROW(kUnavailable, "tensor-parallel group lost: {}", reason());
  }

 private:
  mutable std::mutex mu_;
  std::atomic<bool> failed_{false};
  std::string reason_;
};

}  // namespace tessera::parallel
