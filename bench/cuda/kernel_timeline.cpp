// KernelTimeline: CUPTI's activity API, loaded at run time (see kernel_timeline.h).
#include "bench/cuda/kernel_timeline.h"

#include <cupti.h>
#include <cxxabi.h>
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "common/error.h"

namespace tessera::bench {

struct KernelTimeline::Api {
  void* lib = nullptr;
  CUptiResult (*activity_enable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*activity_disable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*register_callbacks)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc) = nullptr;
  CUptiResult (*flush_all)(uint32_t) = nullptr;
  CUptiResult (*next_record)(uint8_t*, size_t, CUpti_Activity**) = nullptr;
  CUptiResult (*num_dropped)(CUcontext, uint32_t, size_t*) = nullptr;
  CUptiResult (*timestamp)(uint64_t*) = nullptr;
  CUptiResult (*result_string)(CUptiResult, const char**) = nullptr;
};

namespace {

constexpr size_t kBufferBytes = 8u << 20;

// CUPTI's buffer callbacks carry no user pointer, so the one recording timeline is reached through
// this (hence one timeline per process).
struct Sink {
  std::mutex mu;
  KernelTimeline::Api* api = nullptr;
  std::vector<KernelSpan> spans;
  uint64_t dropped = 0;
};

Sink& sink() {
  static Sink s;
  return s;
}

std::string demangle(const char* mangled) {
  if (mangled == nullptr) return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && d != nullptr ? std::string(d) : std::string(mangled);
  std::free(d);
  return short_kernel_name(out);
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream_id, uint8_t* buffer, size_t, size_t valid) {
  Sink& s = sink();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.api != nullptr && buffer != nullptr) {
    CUpti_Activity* rec = nullptr;
    while (s.api->next_record(buffer, valid, &rec) == CUPTI_SUCCESS) {
      if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
      KernelSpan span;
      span.name = demangle(k->name);
      span.start_ns = k->start;
      span.end_ns = k->end;
      span.grid = {k->gridX, k->gridY, k->gridZ};
      span.block = k->blockX * k->blockY * k->blockZ;
      s.spans.push_back(std::move(span));
    }
    size_t dropped = 0;
    if (s.api->num_dropped(ctx, stream_id, &dropped) == CUPTI_SUCCESS) s.dropped += dropped;
  }
  std::free(buffer);
}

template <typename Fn>
void resolve(void* lib, const char* name, Fn*& fn, const std::string& path) {
  fn = reinterpret_cast<Fn*>(dlsym(lib, name));
  TS_CHECK(fn != nullptr, kUnavailable, "{} has no {}: {}", path, name, dlerror());
}

void check(const KernelTimeline::Api& api, CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = "unknown";
  api.result_string(r, &msg);
  TS_THROW(kUnavailable, "CUPTI {} failed: {} ({})", what, msg, static_cast<int>(r));
}

}  // namespace

KernelTimeline::KernelTimeline(std::unique_ptr<Api> api) : api_(std::move(api)) {}

std::unique_ptr<KernelTimeline> KernelTimeline::start(const std::string& library) {
  auto api = std::make_unique<Api>();
  std::string path, errors;
  for (const std::string& candidate : {library, std::string("libcupti.so.13"), std::string("libcupti.so")}) {
    if (candidate.empty()) continue;
    api->lib = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (api->lib != nullptr) {
      path = candidate;
      break;
    }
    errors += std::string(errors.empty() ? "" : "; ") + dlerror();
  }
  TS_CHECK(api->lib != nullptr, kUnavailable, "kernel timeline: cannot load CUPTI: {}", errors);
  resolve(api->lib, "cuptiActivityEnable", api->activity_enable, path);
  resolve(api->lib, "cuptiActivityDisable", api->activity_disable, path);
  resolve(api->lib, "cuptiActivityRegisterCallbacks", api->register_callbacks, path);
  resolve(api->lib, "cuptiActivityFlushAll", api->flush_all, path);
  resolve(api->lib, "cuptiActivityGetNextRecord", api->next_record, path);
  resolve(api->lib, "cuptiActivityGetNumDroppedRecords", api->num_dropped, path);
  resolve(api->lib, "cuptiGetTimestamp", api->timestamp, path);
  resolve(api->lib, "cuptiGetResultString", api->result_string, path);
  Sink& s = sink();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    TS_CHECK(s.api == nullptr, kFailedPrecondition, "kernel timeline: one is already recording in this process");
    s.api = api.get();
    s.spans.clear();
    s.dropped = 0;
  }
  try {
    check(*api, api->register_callbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
    check(*api, api->activity_enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)");
  } catch (...) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.api = nullptr;
    throw;
  }
  return std::unique_ptr<KernelTimeline>(new KernelTimeline(std::move(api)));
}

KernelTimeline::~KernelTimeline() {
  api_->activity_disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  api_->flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  Sink& s = sink();
  std::lock_guard<std::mutex> lock(s.mu);
  s.api = nullptr;
  s.spans.clear();
  // libcupti stays loaded: CUPTI may still hold threads and hooks in the driver.
}

uint64_t KernelTimeline::now_ns() const {
  uint64_t t = 0;
  check(*api_, api_->timestamp(&t), "cuptiGetTimestamp");
  return t;
}

std::vector<KernelSpan> KernelTimeline::take() {
  check(*api_, api_->flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  Sink& s = sink();
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<KernelSpan> out;
  out.swap(s.spans);
  return out;
}

uint64_t KernelTimeline::dropped() const {
  Sink& s = sink();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.dropped;
}

}  // namespace tessera::bench
