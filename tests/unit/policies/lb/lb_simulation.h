#pragma once

// A discrete-event load simulation for latency- and load-aware pickers: requests arrive at a
// fixed interval, each host answers after its own fixed latency, and the picker sees the live
// active-request counts and latency samples through onAttemptStart()/onAttemptEnd(). Time is
// simulated, so a 20-second run takes milliseconds.

#include <cstdint>
#include <functional>
#include <queue>
#include <tuple>
#include <vector>

#include "policies/lb/lb_host.h"
#include "policies/lb/load_balancer.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb::lbtest {

struct SimulationSpec {
  std::vector<Duration> latencies;  // per host
  Duration arrival_interval;
  uint32_t requests = 0;
  Duration decay = kDefaultEwmaDecay;
};

/** Runs the simulation from `start` and returns the number of picks per host. */
inline std::vector<uint32_t> simulateLoad(LbPicker& picker, TestHosts& hosts,
                                          const SimulationSpec& spec, MonotonicTime start) {
  using Completion = std::tuple<MonotonicTime, uint32_t, MonotonicTime>;  // done, host, started
  std::priority_queue<Completion, std::vector<Completion>, std::greater<>> in_flight;
  std::vector<uint32_t> picks(spec.latencies.size(), 0);
  MonotonicTime now = start;
  for (uint32_t r = 0; r < spec.requests; ++r, now += spec.arrival_interval) {
    while (!in_flight.empty() && std::get<0>(in_flight.top()) <= now) {
      const auto [done, host, started] = in_flight.top();
      in_flight.pop();
      onAttemptEnd(hosts.state(host), done - started, done, spec.decay);
    }
    LbContext ctx;
    ctx.now = now;
    const auto host = picker.pick(ctx);
    if (!host) {
      ADD_FAILURE() << "no host picked";
      break;
    }
    ++picks[*host];
    onAttemptStart(hosts.state(*host), now);
    in_flight.emplace(now + spec.latencies[*host], *host, now);
  }
  return picks;
}

}  // namespace bulwark::policies::lb::lbtest
