#pragma once

#include <memory>

#include "bench/loadgen/options.h"
#include "bench/loadgen/stats.h"
#include "common/result.h"

namespace bulwark::bench {

/** Knobs of a run that are not part of the CLI contract. Thread: value type. */
struct RunControl {
  /** SIGINT/SIGTERM end the run early (the report is still written, "interrupted": true). */
  bool handle_signals = false;
  /** Connections get this long to open before the schedule starts (they keep trying after). */
  std::chrono::milliseconds warmup_limit{1000};
};

/**
 * The open-loop generator: request i of the schedule is sent at start + its offset whatever
 * happened to the others, onto a free connection (or stream) of the next target in
 * round-robin, or queued until one frees up; its latency is measured from that intended time,
 * so queueing behind a stalled backend shows (no coordinated omission).
 *
 *   LoadgenOptions o;  o.targets = {*parseTarget("127.0.0.1:8080")};
 *   o.phases = {*parsePhase("steady:200:2s")};
 *   auto report = LoadGenerator(o).run();   // blocks ~2 s
 *   report->toJson()
 *
 * One libevent loop on the calling thread (a few thousand requests per second on one core), or
 * with options.threads = N, N loops each taking every N-th arrival and 1/N of the connections,
 * their reports merged at the end.
 * Thread: run() on one thread; the object is single-use.
 */
class LoadGenerator {
public:
  explicit LoadGenerator(LoadgenOptions options, RunControl control = {});
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  /**
   * Runs the schedule and waits for every answer (bounded by the timeout). Sets SIGPIPE to
   * ignored when it has the default action. Errors: a target that does not resolve, no
   * templates, --threads above --connections, a libevent failure.
   */
  Result<Report> run();

private:
  class Engine;
  LoadgenOptions options_;
  RunControl control_;
};

/** The contract's "config" object for these options. */
nlohmann::json configJson(const LoadgenOptions& options);

/** Exit code of a run ended early by SIGINT/SIGTERM (its report is still written). */
inline constexpr int kExitInterrupted = 130;

/** Full CLI entry point (main.cc): parse, run, write the report; returns the exit code. */
int runCommandLine(int argc, const char* const* argv);

}  // namespace bulwark::bench
