// EngineImpl: the engine's one loop thread (admit from the inbox, honour cancellations and
// deadlines, schedule, execute, turn sampled tokens into per-request outputs) and its thread-safe
// front (submit, drain, health). The loop never blocks on a consumer: streams are unbounded.
// While the executor runs step N (begin_execute .. end_execute), the loop decodes and streams the
// tokens of step N-1 that scheduling does not depend on; tokens that may end a sequence (stop
// strings, stop tokens, EOS, length) are handled before the next step is scheduled.
// It must never include gRPC, HTTP, CUDA or model headers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_metrics.h"
#include "engine/request_state.h"
#include "engine/text_decoder.h"
#include "scheduler/scheduler.h"

namespace tessera {

class EngineImpl {
 public:
  EngineImpl(EngineConfig config, std::unique_ptr<StepExecutor> executor, TextDecoderFactory decoders,
             int64_t tokenizer_vocab_size, MetricsRegistry& metrics);
  ~EngineImpl();

  void start();
  std::shared_ptr<RequestStream> submit(GenerationRequest request);
  void begin_drain();
  bool drained() const;
  EngineHealth health() const;
  const EngineConfig& config() const { return config_; }
  int64_t num_unfinished_requests() const;

 private:
  struct Pending {
    GenerationRequest request;
    std::shared_ptr<RequestStream> stream;
    std::chrono::steady_clock::time_point submitted_at;
  };

  void loop();
  bool wait_for_work();
  void admit_inbox();
  void admit(Pending p);
  void check_cancellations();
  bool run_step();  // false when there was nothing to execute
  void on_token(RequestState& r, ChoiceState& c, const SampledToken& st, const SeqUpdate& u,
                std::chrono::steady_clock::time_point at);
  void process_deferred();
  void on_prompt_logprobs(const PromptLogprobs& pl);
  void append_text(ChoiceState& c, const std::string& text);
  void finish_choice(RequestState& r, ChoiceState& c, FinishReason reason, std::optional<std::string> stop_reason);
  void end_request(RequestState& r, FinishReason reason, std::optional<Error> error);
  void flush_outputs();
  void push_output(RequestState& r, std::optional<Error> error = std::nullopt);
  void fail_all(const Error& error);
  void update_gauges();

  const EngineConfig config_;
  std::unique_ptr<StepExecutor> executor_;
  bool async_executor_ = false;  // executor_->executes_asynchronously()
  TextDecoderFactory decoders_;
  const int64_t vocab_size_;
  EngineMetrics metrics_;
  Scheduler scheduler_;  // loop thread only

  // Loop-thread state.
  std::unordered_map<uint64_t, std::unique_ptr<RequestState>> requests_;
  std::unordered_map<SeqId, std::pair<RequestState*, int32_t>> by_seq_;
  std::vector<RequestState*> touched_;  // requests with news this step
  // Tokens of the last step whose text nothing in scheduling depends on (no stop strings, not
  // finishing): decoded and streamed while the executor runs the next step.
  struct DeferredToken {
    RequestState* request;
    int32_t choice;
    SampledToken token;
    SeqUpdate update;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<DeferredToken> deferred_;
  // When the last step's result came back; reset while the loop idles. The time from it to the next
  // step's start is the host work the device waits for (metric tessera_step_host_gap_seconds).
  std::optional<std::chrono::steady_clock::time_point> last_step_end_;
  uint64_t next_request_key_ = 0;
  uint64_t preemptions_seen_ = 0;
  int64_t prefix_hits_seen_ = 0;
  int64_t prefix_queries_seen_ = 0;

  // Shared with submitters, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> inbox_;
  std::mt19937_64 seed_rng_;
  bool started_ = false;
  bool stopping_ = false;
  bool draining_ = false;
  bool failed_ = false;
  bool loop_running_ = false;
  std::string failure_;
  int64_t unstarted_ = 0;     // scheduler's requests not started, published by the loop
  int64_t unfinished_ = 0;    // submitted and not finished
  std::thread thread_;
};

}  // namespace tessera
