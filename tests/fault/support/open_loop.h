#pragma once

// Open-loop HTTP/1.1 load for the fault runs: requests are due at fixed instants (start + i /
// rate) whatever earlier ones took, and latency is measured from the instant a request was
// due, so a stalled proxy shows up as latency instead of as a lower send rate (coordinated
// omission). Also the statistics and the "what | measured | bound" lines the runs print.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http1_client.h"
#include "tests/support/wait.h"

namespace bulwark::testing::fault {

/** One request of a run. Thread: value type. */
struct Sample {
  uint64_t index = 0;
  /** Which stream of the run sent it (OpenLoopOptions::stream). */
  int stream = 0;
  Clock::time_point intended{};
  Clock::time_point sent{};
  Clock::time_point done{};
  /** HTTP status, 0 when no response arrived (reset, refused, client timeout). */
  int status = 0;
  /** x-bulwark-degraded: true (a fallback answered). */
  bool degraded = false;
  /** x-bulwark-reason of a local reply, "" otherwise. */
  std::string reason;
  /** x-replica-id of the backend that answered, "" for local replies. */
  std::string replica;
  /** The request went out on a kept-alive connection (not one opened for it). */
  bool reused_connection = false;
  /** Why no response arrived (the client's error), "" otherwise. */
  std::string error;

  /** From due to answered: what a client with a fixed schedule experiences. */
  std::chrono::nanoseconds latency() const { return done - intended; }
  /** From written to answered: the proxy's (and backend's) own time (a connect comes before). */
  std::chrono::nanoseconds serviceTime() const { return done - sent; }
  /** A 2xx from the backend itself (not a fallback). */
  bool served() const { return status >= 200 && status < 300 && !degraded; }
  /**
   * No answer because the peer closed a kept-alive connection without announcing it (no
   * `Connection: close` on the previous response) before this request got a byte back.
   */
  bool closedUnannounced() const {
    return status == 0 && reused_connection && error.find("closed") != std::string::npos;
  }
};

/** One paced stream of requests. Thread: value type. */
struct OpenLoopOptions {
  uint16_t port = 0;
  /** Requests per second. */
  double rate = 100;
  std::chrono::milliseconds duration{1000};
  /** Sending threads, each with its own keep-alive connection; enough to cover rate × latency. */
  int threads = 8;
  /** Client-side limit per request; a request still unanswered then counts as status 0. */
  std::chrono::milliseconds timeout{2000};
  /** Builds request `index`. Called on the sending threads: must be thread-safe. */
  std::function<Http1Request(uint64_t index)> request;
  /** Label copied into every Sample (to tell tenants or routes apart in one run). */
  int stream = 0;
};

/**
 * Runs OpenLoopOptions streams in the background from start() until all their requests are
 * done (or stop()). Thread: the test thread calls start/wait/stop; sending threads are internal.
 */
class OpenLoop {
public:
  OpenLoop() = default;
  ~OpenLoop();
  OpenLoop(const OpenLoop&) = delete;
  OpenLoop& operator=(const OpenLoop&) = delete;

  /** Starts every stream now (they share one start instant). */
  void start(const std::vector<OpenLoopOptions>& streams);
  /** Asks the threads to stop sending new requests (requests in flight finish). */
  void stop() { stopping_.store(true); }
  /** Joins the threads; returns every sample, ordered by intended time. */
  std::vector<Sample> wait();
  /** Requests answered so far (any status). */
  uint64_t completed() const { return completed_.load(); }
  Clock::time_point startTime() const { return start_; }

private:
  void runThread(const OpenLoopOptions& options, int thread);

  std::vector<OpenLoopOptions> streams_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<Sample> samples_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> completed_{0};
  Clock::time_point start_{};
};

/** Runs one stream to completion. */
std::vector<Sample> runOpenLoop(const OpenLoopOptions& options);

/** Achieved send rate (requests / duration between first and last intended instant). */
double sendRate(const std::vector<Sample>& samples);

/** Latency percentiles in milliseconds (p in [0, 100]; nearest rank); 0 for no samples. */
double percentileMs(std::vector<double> values_ms, double p);
std::vector<double> latenciesMs(const std::vector<Sample>& samples);
std::vector<double> serviceTimesMs(const std::vector<Sample>& samples);

/** The samples for which `keep` holds. */
std::vector<Sample> select(const std::vector<Sample>& samples,
                           const std::function<bool(const Sample&)>& keep);

/** "status:count ..." (reason in brackets for local replies) for failure messages. */
std::string statusHistogram(const std::vector<Sample>& samples);

/**
 * Prints one result line of a run, "FAULT | what | measured | bound | ok/MISSED", to stdout, so
 * the ctest log holds the measurements whatever the outcome. Returns `ok` for EXPECT_TRUE.
 */
bool report(const std::string& what, const std::string& measured, const std::string& bound,
            bool ok);

/** fmt-free printf-style formatting for the lines above. */
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace bulwark::testing::fault
