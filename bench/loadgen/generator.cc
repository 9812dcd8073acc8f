#include "bench/loadgen/generator.h"

#include <netdb.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <latch>
#include <random>
#include <thread>

#include <event2/event.h>
#include <fmt/format.h>

#include "bench/loadgen/connection.h"
#include "bench/loadgen/http1_connection.h"
#include "bench/loadgen/http2_connection.h"

namespace bulwark::bench {
namespace {

struct Resolved {
  sockaddr_storage address{};
  socklen_t length = 0;
};

Result<Resolved> resolve(const TargetAddress& target) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string port = std::to_string(target.port);
  const int rv = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &result);
  if (rv != 0 || result == nullptr) {
    return Status::error(fmt::format("cannot resolve '{}': {}", target.host, gai_strerror(rv)));
  }
  Resolved r;
  std::memcpy(&r.address, result->ai_addr, result->ai_addrlen);
  r.length = result->ai_addrlen;
  ::freeaddrinfo(result);
  return r;
}

timeval toTimeval(Clock::duration d) {
  const auto us =
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

std::string phaseText(const PhaseSpec& p) {
  const double seconds = std::chrono::duration<double>(p.duration).count();
  return p.isRamp() ? fmt::format("{}:{}-{}:{}s", p.name, p.rps_from, p.rps_to, seconds)
                    : fmt::format("{}:{}:{}s", p.name, p.rps_from, seconds);
}

}  // namespace

nlohmann::json configJson(const LoadgenOptions& o) {
  nlohmann::json j;
  j["targets"] = nlohmann::json::array();
  for (const auto& t : o.targets) {
    j["targets"].push_back(t.text);
  }
  j["protocol"] = protocolName(o.protocol);
  j["connections"] = o.connections;
  j["max_streams"] = o.max_streams;
  j["timeout_ms"] = std::chrono::duration<double, std::milli>(o.timeout).count();
  j["max_queue"] = o.max_queue;
  j["seed"] = o.seed;
  j["threads"] = o.threads;
  j["phases"] = nlohmann::json::array();
  for (const auto& p : o.phases) {
    j["phases"].push_back(phaseText(p));
  }
  if (!o.requests_file.empty()) {
    j["requests_file"] = o.requests_file;
  }
  j["requests"] = nlohmann::json::array();
  for (const auto& r : o.requests) {
    nlohmann::json t = {{"name", r.name},
                        {"weight", r.weight},
                        {"method", r.method},
                        {"path", r.path},
                        {"body_bytes", r.body.size()}};
    if (!r.grpc_method.empty()) {
      t["grpc_method"] = r.grpc_method;
    }
    j["requests"].push_back(std::move(t));
  }
  return j;
}

/**
 * The run itself: schedule timer, connections per target, FIFO queues, the timeout sweep and
 * the statistics.
 * Thread: the thread calling run().
 */
class LoadGenerator::Engine final : public ConnectionOwner {
public:
  /** Counters every thread's engine adds to (progress line) and the early-stop flag. */
  struct SharedProgress {
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> ok{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<bool> stop{false};
  };
  /** This engine takes arrivals with sequence % count == index and its share of connections. */
  struct ThreadShare {
    size_t index = 0;
    size_t count = 1;
    SharedProgress* shared = nullptr;
  };

public:
  Engine(LoadgenOptions options, RunControl control, ThreadShare share)
      : options_(std::move(options)),
        control_(control),
        share_(share),
        schedule_(options_.phases),
        rng_(options_.seed + share.index) {}

  ~Engine() override {
    for (auto& t : targets_) {
      t.connections.clear();
    }
    for (event* e :
         {send_ev_, sweep_ev_, progress_ev_, poll_ev_, stop_ev_, sigint_ev_, sigterm_ev_}) {
      if (e != nullptr) {
        event_free(e);
      }
    }
    if (base_ != nullptr) {
      event_base_free(base_);
    }
  }

  /** Event base, connections (warmed up). Thread: the engine's thread. */
  Status prepare();
  /** The schedule from `start` (shared by every thread's engine). */
  Report execute(Clock::time_point start, int64_t start_unix_ms);

  // ConnectionOwner
  void onConnectResult(bool ok) override {
    if (ok) {
      ++report_.connections_opened;
    } else {
      ++report_.connect_failures;
    }
    if (warming_ > 0 && --warming_ == 0) {
      event_base_loopbreak(base_);
    }
  }
  void onFinished(PendingRequest& request, const Outcome& outcome) override {
    if (outcome.unprocessed && request.retries < kMaxUnprocessedRetries && !stopped_ &&
        !request.done) {
      ++request.retries;
      ++report_.unprocessed_retries;
      dispatch(request);
      return;
    }
    finish(request, outcome);
  }
  void onCapacity(size_t target) override { pump(target); }

private:
  /** Resends of one request the peer did not process (GOAWAY races repeat on reconnects). */
  static constexpr int kMaxUnprocessedRetries = 2;

  struct Target {
    std::vector<std::unique_ptr<ClientConnection>> connections;
    std::deque<PendingRequest*> queue;
    std::vector<PreparedRequest> prepared;  // per template
  };

  Status setUp();
  void issue(const Arrival& arrival, Clock::time_point now);
  ClientConnection* pick(Target& target);
  void dispatch(PendingRequest& request);
  void assign(PendingRequest& request, ClientConnection& connection);
  void pump(size_t target);
  void finish(PendingRequest& request, const Outcome& outcome);
  void armSweep();
  void checkDone();

  void onSendTimer();
  void onSweep();
  void onProgress();
  void stop(bool interrupted);

  bool quiet() const { return options_.quiet || share_.index != 0; }

  LoadgenOptions options_;
  RunControl control_;
  ThreadShare share_;
  ArrivalSchedule schedule_;
  std::mt19937_64 rng_;
  std::discrete_distribution<size_t> pick_request_;
  event_base* base_ = nullptr;
  event* send_ev_ = nullptr;
  event* sweep_ev_ = nullptr;
  event* progress_ev_ = nullptr;
  event* poll_ev_ = nullptr;
  event* stop_ev_ = nullptr;
  event* sigint_ev_ = nullptr;
  event* sigterm_ev_ = nullptr;
  std::deque<Target> targets_;  // deque: Target is not nothrow-movable
  size_t warming_ = 0;
  std::deque<std::unique_ptr<PendingRequest>> inflight_;
  uint64_t unfinished_ = 0;
  bool scheduling_done_ = false;
  bool stopped_ = false;
  Clock::time_point start_{};
  Clock::time_point last_answer_{};
  Clock::duration max_lag_{0};
  Report report_;
  // Progress line: answers of the last wall second.
  LatencyHistogram progress_latency_;
  uint64_t progress_tick_ = 0;
};

Status LoadGenerator::Engine::setUp() {
  if (options_.targets.empty()) {
    return Status::error("no target");
  }
  if (options_.requests.empty()) {
    return Status::error("no request template");
  }
  std::vector<double> weights;
  for (const auto& r : options_.requests) {
    weights.push_back(r.weight);
  }
  pick_request_ = std::discrete_distribution<size_t>(weights.begin(), weights.end());

  event_config* config = event_config_new();
  // timerfd-backed timers: epoll's millisecond timeout would smear the arrival schedule.
  event_config_set_flag(config, EVENT_BASE_FLAG_PRECISE_TIMER);
  base_ = event_base_new_with_config(config);
  event_config_free(config);
  if (base_ == nullptr) {
    return Status::error("event_base_new failed");
  }
  send_ev_ = evtimer_new(
      base_, [](evutil_socket_t, short, void* arg) { static_cast<Engine*>(arg)->onSendTimer(); },
      this);
  sweep_ev_ = evtimer_new(
      base_, [](evutil_socket_t, short, void* arg) { static_cast<Engine*>(arg)->onSweep(); }, this);
  progress_ev_ = event_new(
      base_, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) { static_cast<Engine*>(arg)->onProgress(); }, this);
  poll_ev_ = event_new(
      base_, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) {
        auto& e = *static_cast<Engine*>(arg);
        if (e.share_.shared->stop.load() && !e.stopped_) {
          e.stop(true);
        }
      },
      this);
  stop_ev_ = evtimer_new(
      base_,
      [](evutil_socket_t, short, void* arg) {
        event_base_loopbreak(static_cast<Engine*>(arg)->base_);
      },
      this);
  if (control_.handle_signals && share_.index == 0) {
    auto on_signal = [](evutil_socket_t, short, void* arg) {
      static_cast<Engine*>(arg)->stop(true);
    };
    sigint_ev_ = evsignal_new(base_, SIGINT, on_signal, this);
    sigterm_ev_ = evsignal_new(base_, SIGTERM, on_signal, this);
    evsignal_add(sigint_ev_, nullptr);
    evsignal_add(sigterm_ev_, nullptr);
  }

  for (size_t i = 0; i < options_.targets.size(); ++i) {
    const auto& address = options_.targets[i];
    auto resolved = resolve(address);
    if (!resolved) {
      return resolved.status();
    }
    Target& target = targets_.emplace_back();
    for (const auto& r : options_.requests) {
      target.prepared.push_back(prepareRequest(r, address, options_.protocol));
    }
    const size_t connections = options_.connections / share_.count +
                               (share_.index < options_.connections % share_.count ? 1 : 0);
    for (size_t c = 0; c < connections; ++c) {
      if (options_.protocol == LoadProtocol::Http1) {
        target.connections.push_back(std::make_unique<Http1Connection>(base_, resolved->address,
                                                                       resolved->length, *this, i));
      } else {
        target.connections.push_back(std::make_unique<Http2Connection>(
            base_, resolved->address, resolved->length, *this, i, options_.max_streams));
      }
    }
  }
  report_.config = configJson(options_);
  report_.phases.resize(options_.phases.size());
  for (size_t p = 0; p < options_.phases.size(); ++p) {
    report_.phases[p].spec = options_.phases[p];
    report_.phases[p].start_s = std::chrono::duration<double>(schedule_.phaseStart(p)).count();
  }
  // By request whenever there is a mix (the CLI only makes one with --requests).
  if (!options_.requests_file.empty() || options_.requests.size() > 1) {
    for (const auto& r : options_.requests) {
      report_.by_request.emplace_back(r.name, Stats());
    }
  }
  const double total_s = std::chrono::duration<double>(schedule_.totalDuration()).count();
  report_.timeline.resize(static_cast<size_t>(std::ceil(total_s - 1e-9)));
  return Status::ok();
}

Status LoadGenerator::Engine::prepare() {
  if (auto s = setUp(); !s) {
    return s;
  }
  // Warm-up: open every connection first, so the first requests do not pay the handshakes.
  warming_ = 0;
  for (auto& t : targets_) {
    warming_ += t.connections.size();
  }
  for (auto& t : targets_) {
    for (auto& c : t.connections) {
      c->connect();
    }
  }
  if (warming_ > 0) {
    const timeval limit = toTimeval(control_.warmup_limit);
    event_add(stop_ev_, &limit);
    event_base_dispatch(base_);
    event_del(stop_ev_);
  }
  warming_ = 0;
  return Status::ok();
}

Report LoadGenerator::Engine::execute(Clock::time_point start, int64_t start_unix_ms) {
  report_.start_unix_ms = start_unix_ms;
  start_ = start;
  last_answer_ = start_;
  const timeval second{1, 0};
  event_add(progress_ev_, &second);
  if (share_.count > 1) {
    const timeval poll{0, 20'000};
    event_add(poll_ev_, &poll);
  }
  onSendTimer();
  if (!stopped_ && !(scheduling_done_ && unfinished_ == 0)) {
    event_base_dispatch(base_);
  }
  event_del(progress_ev_);
  event_del(poll_ev_);
  event_del(send_ev_);
  event_del(sweep_ev_);
  for (auto& t : targets_) {
    for (auto& c : t.connections) {
      c->shutdown();
    }
  }
  const auto end = report_.interrupted ? Clock::now() : last_answer_;
  report_.elapsed_s = std::chrono::duration<double>(end - start_).count();
  if (report_.interrupted) {
    report_.duration_s = std::min(report_.elapsed_s,
                                  std::chrono::duration<double>(schedule_.totalDuration()).count());
    // Seconds never reached would read as a collapse to zero in plots.
    report_.timeline.resize(
        std::min(report_.timeline.size(), static_cast<size_t>(std::ceil(report_.duration_s))));
  } else {
    report_.duration_s = std::chrono::duration<double>(schedule_.totalDuration()).count();
  }
  report_.max_send_lag_ms = std::chrono::duration<double, std::milli>(max_lag_).count();
  if (!quiet()) {
    onProgress();
  }
  return std::move(report_);
}

void LoadGenerator::Engine::onSendTimer() {
  if (stopped_) {
    return;
  }
  const auto now = Clock::now();
  for (auto a = schedule_.peek(); a; a = schedule_.peek()) {
    if (a->sequence % share_.count != share_.index) {
      schedule_.advance();  // another thread's request
      continue;
    }
    const auto due = start_ + std::chrono::duration_cast<Clock::duration>(a->at);
    if (due > now) {
      const timeval delay = toTimeval(due - now);
      event_add(send_ev_, &delay);
      return;
    }
    issue(*a, now);
    schedule_.advance();
    if (stopped_) {
      return;
    }
  }
  scheduling_done_ = true;
  checkDone();
}

void LoadGenerator::Engine::issue(const Arrival& arrival, Clock::time_point now) {
  auto owned = std::make_unique<PendingRequest>();
  PendingRequest& r = *owned;
  r.sequence = arrival.sequence;
  // By sequence, so the round-robin is the same whatever the number of threads.
  r.target = static_cast<size_t>(arrival.sequence % targets_.size());
  r.phase = arrival.phase;
  r.request = options_.requests.size() == 1 ? 0 : pick_request_(rng_);
  r.second =
      static_cast<size_t>(std::chrono::duration_cast<std::chrono::seconds>(arrival.at).count());
  r.intended = start_ + std::chrono::duration_cast<Clock::duration>(arrival.at);
  r.deadline = r.intended + std::chrono::duration_cast<Clock::duration>(options_.timeout);
  max_lag_ = std::max(max_lag_, now - r.intended);
  if (r.second >= report_.timeline.size()) {
    report_.timeline.resize(r.second + 1);
  }
  report_.total.onSent();
  share_.shared->sent.fetch_add(1, std::memory_order_relaxed);
  report_.phases[r.phase].stats.onSent();
  report_.timeline[r.second].onSent();
  if (!report_.by_request.empty()) {
    report_.by_request[r.request].second.onSent();
  }
  inflight_.push_back(std::move(owned));
  ++unfinished_;
  armSweep();
  dispatch(r);
}

ClientConnection* LoadGenerator::Engine::pick(Target& target) {
  // Least loaded; among equals an open connection before one that must (re)connect.
  ClientConnection* best = nullptr;
  size_t best_score = 0;
  for (auto& c : target.connections) {
    if (!c->hasCapacity()) {
      continue;
    }
    const size_t score = c->inFlight() * 2 + (c->isOpen() ? 0 : 1);
    if (best == nullptr || score < best_score) {
      best = c.get();
      best_score = score;
      if (score == 0) {
        break;
      }
    }
  }
  return best;
}

void LoadGenerator::Engine::assign(PendingRequest& request, ClientConnection& connection) {
  request.connection = &connection;
  const PreparedRequest& prepared = targets_[request.target].prepared[request.request];
  if (prepared.per_request) {
    connection.send(request, withSequence(prepared, request.sequence));
    return;
  }
  connection.send(request, prepared);
}

void LoadGenerator::Engine::dispatch(PendingRequest& request) {
  Target& target = targets_[request.target];
  if (target.queue.empty()) {
    if (ClientConnection* c = pick(target)) {
      assign(request, *c);
      return;
    }
  }
  if (target.queue.size() >= std::max<size_t>(1, options_.max_queue / share_.count)) {
    finish(request, failedOutcome(error_kind::kOverflow));
    return;
  }
  request.queued = true;
  target.queue.push_back(&request);
}

void LoadGenerator::Engine::pump(size_t index) {
  Target& target = targets_[index];
  while (!target.queue.empty() && !stopped_) {
    ClientConnection* c = pick(target);
    if (c == nullptr) {
      return;
    }
    PendingRequest* request = target.queue.front();
    target.queue.pop_front();
    request->queued = false;
    assign(*request, *c);
  }
}

void LoadGenerator::Engine::finish(PendingRequest& request, const Outcome& outcome) {
  if (request.done) {
    return;
  }
  request.done = true;
  --unfinished_;
  const auto now = Clock::now();
  last_answer_ = std::max(last_answer_, now);
  const auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(now - request.intended);
  report_.total.onOutcome(outcome, latency);
  (outcome.ok ? share_.shared->ok : share_.shared->errors).fetch_add(1, std::memory_order_relaxed);
  report_.phases[request.phase].stats.onOutcome(outcome, latency);
  report_.timeline[request.second].onOutcome(outcome, latency);
  if (!report_.by_request.empty()) {
    report_.by_request[request.request].second.onOutcome(outcome, latency);
  }
  if (outcome.answered) {
    progress_latency_.record(latency);
  }
  checkDone();
}

void LoadGenerator::Engine::armSweep() {
  if (evtimer_pending(sweep_ev_, nullptr) != 0) {
    return;
  }
  while (!inflight_.empty() && inflight_.front()->done) {
    inflight_.pop_front();
  }
  if (inflight_.empty()) {
    return;
  }
  const timeval delay = toTimeval(inflight_.front()->deadline - Clock::now());
  event_add(sweep_ev_, &delay);
}

void LoadGenerator::Engine::onSweep() {
  // Deadlines grow with the issue order, so expired requests are always at the front.
  const auto now = Clock::now();
  std::vector<size_t> touched;
  while (!inflight_.empty()) {
    PendingRequest& r = *inflight_.front();
    if (!r.done) {
      if (r.deadline > now) {
        break;
      }
      if (r.queued) {
        auto& queue = targets_[r.target].queue;
        queue.erase(std::find(queue.begin(), queue.end(), &r));
        r.queued = false;
      } else if (r.connection != nullptr) {
        r.connection->cancel(r);
      }
      touched.push_back(r.target);
      finish(r, failedOutcome(error_kind::kTimeout));
    }
    inflight_.pop_front();
  }
  for (size_t t : touched) {
    pump(t);
  }
  armSweep();
}

void LoadGenerator::Engine::onProgress() {
  if (quiet()) {
    return;
  }
  ++progress_tick_;
  // Counts of every thread; p99 of this thread's share (a sample of the whole with --threads).
  const auto& s = *share_.shared;
  std::cerr << fmt::format("t={}s sent={} ok={} err={} p99={}ms\n", progress_tick_, s.sent.load(),
                           s.ok.load(), s.errors.load(),
                           roundMs(progress_latency_.percentileUs(99)));
  progress_latency_.reset();
}

void LoadGenerator::Engine::checkDone() {
  if (scheduling_done_ && unfinished_ == 0 && !stopped_) {
    stopped_ = true;
    event_base_loopbreak(base_);
  }
}

void LoadGenerator::Engine::stop(bool interrupted) {
  report_.interrupted = interrupted;
  if (interrupted) {
    share_.shared->stop.store(true);
  }
  stopped_ = true;
  event_base_loopbreak(base_);
}

LoadGenerator::LoadGenerator(LoadgenOptions options, RunControl control)
    : options_(std::move(options)), control_(control) {}

LoadGenerator::~LoadGenerator() = default;

Result<Report> LoadGenerator::run() {
  using SharedProgress = Engine::SharedProgress;
  using ThreadShare = Engine::ThreadShare;
  SharedProgress shared;
  // libevent writes with writev(): a peer that closed must not kill the process with SIGPIPE.
  // Only replaces the default action, so an embedding program's own handler stays.
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
  const size_t threads = std::max<size_t>(1, options_.threads);
  if (threads > options_.connections) {
    return Status::error(fmt::format("--threads {} needs at least as many --connections", threads));
  }
  std::vector<std::unique_ptr<Engine>> engines;
  for (size_t i = 0; i < threads; ++i) {
    engines.push_back(
        std::make_unique<Engine>(options_, control_, ThreadShare{i, threads, &shared}));
  }
  auto now_unix_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  if (threads == 1) {
    if (auto s = engines[0]->prepare(); !s) {
      return s;
    }
    return engines[0]->execute(Clock::now(), now_unix_ms());
  }
  // Every engine warms up on its own thread, then all start from one shared instant.
  std::vector<Status> prepared(threads);
  std::vector<Report> reports(threads);
  std::latch ready(static_cast<std::ptrdiff_t>(threads));
  std::promise<std::pair<Clock::time_point, int64_t>> go;
  std::shared_future<std::pair<Clock::time_point, int64_t>> start = go.get_future().share();
  std::vector<std::thread> workers;
  for (size_t i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      prepared[i] = engines[i]->prepare();
      ready.count_down();
      const auto [at, unix_ms] = start.get();
      if (prepared[i]) {
        reports[i] = engines[i]->execute(at, unix_ms);
      }
    });
  }
  ready.wait();
  for (const auto& s : prepared) {
    if (!s) {
      shared.stop.store(true);
    }
  }
  go.set_value({Clock::now(), now_unix_ms()});
  for (auto& w : workers) {
    w.join();
  }
  for (const auto& s : prepared) {
    if (!s) {
      return s;
    }
  }
  Report merged = std::move(reports[0]);
  for (size_t i = 1; i < threads; ++i) {
    merged.merge(reports[i]);
  }
  return merged;
}

int runCommandLine(int argc, const char* const* argv) {
  CommandLine cli = parseCommandLine(argc, argv);
  if (!cli.options) {
    (cli.exit_code == 0 ? std::cout : std::cerr) << cli.message;
    if (!cli.message.empty() && cli.message.back() != '\n') {
      (cli.exit_code == 0 ? std::cout : std::cerr) << '\n';
    }
    return cli.exit_code;
  }
  const LoadgenOptions options = *cli.options;
  RunControl control;
  control.handle_signals = true;
  auto report = LoadGenerator(options, control).run();
  if (!report) {
    std::cerr << "bulwark-loadgen: " << report.error() << '\n';
    return 1;
  }
  const std::string json = report->toJson().dump(2) + "\n";
  if (options.json_out == "-") {
    std::cout << json;
  } else if (!options.json_out.empty()) {
    std::ofstream out(options.json_out);
    out << json;
    if (!out) {
      std::cerr << "bulwark-loadgen: cannot write " << options.json_out << '\n';
      return 1;
    }
  }
  if (report->connections_opened == 0 && report->total.sent() > 0) {
    std::cerr << "bulwark-loadgen: no connection could be opened to any target\n";
    return 1;
  }
  return report->interrupted ? kExitInterrupted : 0;
}

}  // namespace bulwark::bench
