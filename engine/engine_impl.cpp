// EngineImpl: the loop (admit, cancel, schedule, execute, output) and the thread-safe front.
#include "engine/engine_impl.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/request_validation.h"

namespace tessera {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

SchedulerConfig scheduler_config(const EngineConfig& c) {
  SchedulerConfig s;
  s.block_size = c.block_size;
  s.num_kv_blocks = c.num_kv_blocks;
  s.max_num_seqs = c.max_num_seqs;
  s.max_num_batched_tokens = c.max_num_batched_tokens;
  s.max_model_len = c.max_model_len;
  s.enable_prefix_caching = c.enable_prefix_caching;
  s.eos_token_ids = c.eos_token_ids;
  return s;
}

}  // namespace

EngineImpl::EngineImpl(EngineConfig config, std::unique_ptr<StepExecutor> executor, TextDecoderFactory decoders,
                       int64_t tokenizer_vocab_size, MetricsRegistry& metrics)
    : config_(std::move(config)),
      executor_(std::move(executor)),
      decoders_(std::move(decoders)),
      vocab_size_(config_.vocab_size > 0 ? config_.vocab_size : tokenizer_vocab_size),
      metrics_(metrics),
      scheduler_(scheduler_config(config_)),
      seed_rng_(std::random_device{}()) {
  TS_CHECK(executor_ != nullptr, kInvalidArgument, "the engine needs a step executor");
  async_executor_ = executor_->executes_asynchronously();
  TS_CHECK(config_.max_queue_len >= 0, kInvalidArgument, "max_queue_len must be >= 0, got {}", config_.max_queue_len);
}

EngineImpl::~EngineImpl() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Never started (or the loop ended early): whatever is still queued ends here.
  const Error stopped(ErrorCode::kUnavailable, "the engine stopped before the request finished");
  fail_all(stopped);
}

void EngineImpl::start() {
  std::lock_guard<std::mutex> lock(mu_);
  TS_CHECK(!started_, kFailedPrecondition, "the engine was started already");
  started_ = true;
  loop_running_ = true;
  thread_ = std::thread([this] { loop(); });
}

std::shared_ptr<RequestStream> EngineImpl::submit(GenerationRequest request) {
  try {
    validate_request(request, config_, vocab_size_, static_cast<bool>(decoders_));
  } catch (const Error&) {
    metrics_.requests_rejected.inc();
    throw;
  }
  auto stream = std::make_shared<RequestStream>(request.request_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_ || stopping_ || draining_) {
      metrics_.requests_rejected.inc();
      TS_THROW(kUnavailable, "the engine is not admitting requests ({}); request '{}' refused",
               failed_ ? "failed: " + failure_ : (stopping_ ? "stopping" : "draining"), request.request_id);
    }
    const int64_t waiting = static_cast<int64_t>(inbox_.size()) + unstarted_;
    if (waiting >= config_.max_queue_len) {
      metrics_.requests_rejected.inc();
      TS_THROW(kResourceExhausted, "admission queue full: {} requests waiting, max_queue_len {}; request '{}' refused",
               waiting, config_.max_queue_len, request.request_id);
    }
    if (request.seed) request.sampling.seed = *request.seed;
    else if (request.sampling.seed == 0) request.sampling.seed = seed_rng_();
    inbox_.push_back(Pending{std::move(request), stream, Clock::now()});
    ++unfinished_;
  }
  cv_.notify_one();
  return stream;
}

void EngineImpl::begin_drain() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
}

bool EngineImpl::drained() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_ && unfinished_ == 0;
}

int64_t EngineImpl::num_unfinished_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unfinished_;
}

EngineHealth EngineImpl::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineHealth h;
  h.alive = loop_running_ && !failed_ && !stopping_;
  h.ready = h.alive && !draining_;
  if (failed_) h.reason = "engine failed: " + failure_;
  else if (!started_) h.reason = "engine not started";
  else if (stopping_) h.reason = "engine stopping";
  else if (draining_) h.reason = "draining";
  return h;
}

void EngineImpl::loop() {
  for (;;) {
    if (!wait_for_work()) break;
    try {
      admit_inbox();
      check_cancellations();
      const bool progressed = scheduler_.has_work() && run_step();
      update_gauges();
      // Work that cannot be scheduled yet (never expected; the KV holds one max_model_len sequence)
      // must not spin the loop at full speed.
      if (!progressed && scheduler_.has_work()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } catch (const Error& e) {
      fail_all(e);
      break;
    } catch (const std::exception& e) {
      fail_all(Error(ErrorCode::kInternal, std::string("engine step failed: ") + e.what()));
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  loop_running_ = false;
}

// Blocks while there is nothing to do; false when the engine stops.
bool EngineImpl::wait_for_work() {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [this] { return stopping_ || !inbox_.empty() || scheduler_.has_work(); };
  if (!ready()) {
    last_step_end_.reset();  // idle: the next step's start is not a host gap
    cv_.wait(lock, ready);
  }
  return !stopping_;
}

void EngineImpl::admit_inbox() {
  std::deque<Pending> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(inbox_);
    unstarted_ += static_cast<int64_t>(batch.size());  // they are in the scheduler's queue now
  }
  for (auto& p : batch) admit(std::move(p));
}

void EngineImpl::admit(Pending p) {
  auto r = std::make_unique<RequestState>();
  r->request = std::move(p.request);
  r->stream = std::move(p.stream);
  r->submitted_at = p.submitted_at;
  const GenerationRequest& req = r->request;
  r->usage.prompt_tokens = static_cast<int32_t>(req.prompt_token_ids.size());
  std::vector<SeqId> ids =
      scheduler_.add_request(req.prompt_token_ids, req.sampling, req.stopping, req.n, req.priority);
  r->choices.resize(ids.size());
  r->num_unfinished = static_cast<int32_t>(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ChoiceState& c = r->choices[i];
    c.seq_id = ids[i];
    c.delta.index = static_cast<int32_t>(i);
    if (decoders_) c.decoder = decoders_(req.prompt_token_ids, req.skip_special_tokens);
    if (!req.stopping.stop.empty()) c.matcher.emplace(req.stopping.stop, req.stopping.include_stop_str_in_output);
    by_seq_[ids[i]] = {r.get(), static_cast<int32_t>(i)};
  }
  metrics_.prompt_tokens.inc(static_cast<double>(req.prompt_token_ids.size()));
  requests_.emplace(next_request_key_++, std::move(r));
}

void EngineImpl::check_cancellations() {
  const auto now = Clock::now();
  const bool any = std::any_of(requests_.begin(), requests_.end(), [&](const auto& kv) {
    const RequestState& r = *kv.second;
    return r.stream->cancelled() || (r.request.deadline && now >= *r.request.deadline);
  });
  if (!any) return;
  process_deferred();  // a request's own tokens go out before its end
  for (auto& [key, r] : requests_) {
    if (r->stream->cancelled()) end_request(*r, FinishReason::kCancelled, std::nullopt);
    else if (r->request.deadline && now >= *r->request.deadline) end_request(*r, FinishReason::kDeadline, std::nullopt);
  }
  flush_outputs();
}

bool EngineImpl::run_step() {
  StepPlan plan = scheduler_.schedule();
  if (plan.scheduled.empty() && plan.freed.empty()) {
    process_deferred();
    last_step_end_.reset();
    return false;
  }
  if (!plan.scheduled.empty()) {
    metrics_.step_batch_size.observe(static_cast<double>(plan.scheduled.size()));
    metrics_.step_tokens.observe(static_cast<double>(plan.num_tokens()));
  }
  StepResult result;
  const auto begun = Clock::now();
  if (last_step_end_) metrics_.step_host_gap_seconds.observe(seconds_between(*last_step_end_, begun));
  try {
    executor_->begin_execute(plan);
    process_deferred();  // host work of the previous step while the device runs this one
    result = executor_->end_execute();
  } catch (...) {
    metrics_.step_failures.inc();
    throw;
  }
  const auto now = Clock::now();
  metrics_.step_seconds.observe(seconds_between(begun, now));
  last_step_end_ = now;
  std::vector<SeqUpdate> updates = scheduler_.update(result);
  for (const PromptLogprobs& pl : result.prompt_logprobs) on_prompt_logprobs(pl);
  for (const SeqUpdate& u : updates) {
    auto it = by_seq_.find(u.seq_id);
    TS_ASSERT(it != by_seq_.end(), "sampled sequence {} has no request", u.seq_id);
    auto [r, index] = it->second;
    ChoiceState& c = r->choices[static_cast<size_t>(index)];
    const SampledToken& st = result.sampled[u.sampled_index];
    // A token whose text could end the choice (stop strings) or that ends it is handled now, so the
    // next schedule knows; the others wait for the next step's device time.
    if (!async_executor_ || c.matcher || u.finish != SeqFinish::kNone) {
      on_token(*r, c, st, u, now);
    } else {
      deferred_.push_back(DeferredToken{r, index, st, u, now});
    }
  }
  flush_outputs();
  return true;
}

// Decodes and streams the deferred tokens (in step order, so a choice's text stays in order).
void EngineImpl::process_deferred() {
  if (deferred_.empty()) return;
  for (DeferredToken& d : deferred_) {
    on_token(*d.request, d.request->choices[static_cast<size_t>(d.choice)], d.token, d.update, d.at);
  }
  deferred_.clear();
  flush_outputs();
}

void EngineImpl::on_prompt_logprobs(const PromptLogprobs& pl) {
  auto it = by_seq_.find(pl.seq_id);
  if (it == by_seq_.end()) return;  // the request ended meanwhile
  RequestState& r = *it->second.first;
  if (r.prompt_logprobs_sent || r.request.sampling.prompt_logprobs < 0) return;
  if (!r.prompt_logprobs) {
    r.prompt_logprobs.emplace();
    r.prompt_logprobs->seq_id = pl.seq_id;
    r.prompt_logprobs->first_position = 1;
  }
  // After a preemption the prompt is computed again: positions already held are skipped.
  for (size_t i = 0; i < pl.chosen.size(); ++i) {
    const int32_t pos = pl.first_position + static_cast<int32_t>(i);
    if (pos != r.next_prompt_position) continue;
    r.prompt_logprobs->chosen.push_back(pl.chosen[i]);
    if (i < pl.top.size()) r.prompt_logprobs->top.push_back(pl.top[i]);
    ++r.next_prompt_position;
  }
}

void EngineImpl::append_text(ChoiceState& c, const std::string& text) {
  if (text.empty()) return;
  c.delta.text += c.matcher ? c.matcher->push(text) : text;
  c.has_news = true;
}

void EngineImpl::on_token(RequestState& r, ChoiceState& c, const SampledToken& st, const SeqUpdate& u,
                          Clock::time_point now) {
  if (c.finished) return;
  if (!r.first_token_seen) {
    r.first_token_seen = true;
    metrics_.time_to_first_token.observe(seconds_between(r.submitted_at, now));
    r.usage.cached_prompt_tokens = u.num_cached_prompt_tokens;
  } else if (c.last_token_at != Clock::time_point{}) {
    metrics_.inter_token_latency.observe(seconds_between(c.last_token_at, now));
  }
  c.last_token_at = now;
  c.delta.token_ids.push_back(st.token);
  if (r.request.sampling.logprobs >= 0) c.delta.logprobs.push_back(st);
  c.has_news = true;
  if (!r.has_news) touched_.push_back(&r);
  r.has_news = true;
  ++r.usage.completion_tokens;
  metrics_.generation_tokens.inc();
  // Stop tokens and EOS end the choice without being shown as text.
  const bool stop_token = u.finish == SeqFinish::kStopToken || u.finish == SeqFinish::kEos;
  if (c.decoder && !stop_token) append_text(c, c.decoder->push(st.token));
  if (c.matcher && c.matcher->matched()) {
    scheduler_.finish_sequence(c.seq_id);  // false when the scheduler ended it with this token too
    finish_choice(r, c, FinishReason::kStop, *c.matcher->matched());
    return;
  }
  switch (u.finish) {
    case SeqFinish::kNone:
      return;
    case SeqFinish::kStopToken:
      finish_choice(r, c, FinishReason::kStop, std::to_string(st.token));
      return;
    case SeqFinish::kEos:
      finish_choice(r, c, FinishReason::kStop, std::nullopt);
      return;
    case SeqFinish::kLength:
      finish_choice(r, c, FinishReason::kLength, std::nullopt);
      return;
  }
}

void EngineImpl::finish_choice(RequestState& r, ChoiceState& c, FinishReason reason,
                               std::optional<std::string> stop_reason) {
  if (c.finished) return;
  if (c.decoder && !(c.matcher && c.matcher->matched())) {
    append_text(c, c.decoder->finish());
    if (c.matcher && c.matcher->matched() && reason != FinishReason::kCancelled) {
      reason = FinishReason::kStop;
      stop_reason = *c.matcher->matched();
    }
  }
  if (c.matcher) {
    const std::string tail = c.matcher->flush();
    if (!tail.empty()) c.delta.text += tail;
  }
  c.finished = true;
  c.has_news = true;
  c.delta.finish_reason = reason;
  c.delta.stop_reason = std::move(stop_reason);
  by_seq_.erase(c.seq_id);
  --r.num_unfinished;
  if (!r.has_news) touched_.push_back(&r);
  r.has_news = true;
}

void EngineImpl::end_request(RequestState& r, FinishReason reason, std::optional<Error> error) {
  for (ChoiceState& c : r.choices) {
    if (c.finished) continue;
    scheduler_.finish_sequence(c.seq_id);
    finish_choice(r, c, reason, std::nullopt);
  }
  if (error) push_output(r, std::move(error));
}

void EngineImpl::push_output(RequestState& r, std::optional<Error> error) {
  RequestOutput out;
  for (ChoiceState& c : r.choices) {
    if (!c.has_news) continue;
    out.choices.push_back(std::move(c.delta));
    c.delta = ChoiceDelta{};
    c.delta.index = out.choices.back().index;
    c.has_news = false;
  }
  const bool prompt_done = r.prompt_logprobs &&
                           r.next_prompt_position >= static_cast<int32_t>(r.request.prompt_token_ids.size());
  if (!r.prompt_logprobs_sent && (prompt_done || (r.num_unfinished == 0 && r.prompt_logprobs))) {
    out.prompt_logprobs = std::move(r.prompt_logprobs);
    r.prompt_logprobs.reset();
    r.prompt_logprobs_sent = true;
  }
  out.finished = r.num_unfinished == 0;
  out.usage = r.usage;
  out.error = std::move(error);
  r.has_news = false;
  if (out.finished) metrics_.e2e_latency.observe(seconds_between(r.submitted_at, Clock::now()));
  r.stream->push(std::move(out));
}

// One output per request with news; finished requests leave the engine.
void EngineImpl::flush_outputs() {
  for (RequestState* r : touched_) {
    if (r->has_news) push_output(*r);
  }
  touched_.clear();
  int64_t done = 0;
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (it->second->num_unfinished == 0) {
      it = requests_.erase(it);
      ++done;
    } else {
      ++it;
    }
  }
  if (done > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    unfinished_ -= done;
  }
}

// Ends every request in flight and in the inbox with `error` (an executor failure or a stop).
void EngineImpl::fail_all(const Error& error) {
  std::deque<Pending> inbox;
  bool is_failure = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    is_failure = !stopping_;  // a stop ends requests too, but is not a failure
    if (is_failure) {
      failed_ = true;
      failure_ = fmt::format("{}: {}", error_code_name(error.code()), error.what());
    }
    inbox.swap(inbox_);
  }
  if (is_failure) spdlog::error("engine failed; ending {} requests: {}", requests_.size() + inbox.size(), error.what());
  for (auto& [key, r] : requests_) {
    for (ChoiceState& c : r->choices) {
      if (c.finished) continue;
      c.finished = true;
      c.has_news = true;
      c.delta.finish_reason = FinishReason::kAborted;
      --r->num_unfinished;
    }
    push_output(*r, error);
  }
  const int64_t ended = static_cast<int64_t>(requests_.size() + inbox.size());
  requests_.clear();
  by_seq_.clear();
  touched_.clear();
  deferred_.clear();
  for (Pending& p : inbox) {
    RequestOutput out;
    for (int32_t i = 0; i < p.request.n; ++i) {
      ChoiceDelta d;
      d.index = i;
      d.finish_reason = FinishReason::kAborted;
      out.choices.push_back(std::move(d));
    }
    out.finished = true;
    out.usage.prompt_tokens = static_cast<int32_t>(p.request.prompt_token_ids.size());
    out.error = error;
    p.stream->push(std::move(out));
  }
  std::lock_guard<std::mutex> lock(mu_);
  unfinished_ -= ended;
}

void EngineImpl::update_gauges() {
  const BlockManager& bm = scheduler_.block_manager();
  {
    std::lock_guard<std::mutex> lock(mu_);
    unstarted_ = scheduler_.num_unstarted_requests();
    metrics_.queue_length.set(static_cast<double>(unstarted_ + static_cast<int64_t>(inbox_.size())));
  }
  metrics_.running_sequences.set(static_cast<double>(scheduler_.num_running()));
  metrics_.kv_usage.set(bm.usage());
  const uint64_t pre = scheduler_.num_preemptions();
  if (pre > preemptions_seen_) metrics_.preemptions.inc(static_cast<double>(pre - preemptions_seen_));
  preemptions_seen_ = pre;
  const int64_t hits = bm.prefix_hit_tokens();
  const int64_t queries = bm.prefix_queried_tokens();
  if (hits > prefix_hits_seen_) metrics_.prefix_hits.inc(static_cast<double>(hits - prefix_hits_seen_));
  if (queries > prefix_queries_seen_) metrics_.prefix_queries.inc(static_cast<double>(queries - prefix_queries_seen_));
  prefix_hits_seen_ = hits;
  prefix_queries_seen_ = queries;
  metrics_.prefix_hit_rate.set(queries > 0 ? static_cast<double>(hits) / static_cast<double>(queries) : 0.0);
}

}  // namespace tessera
