#include "proxy/stats/stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include <dirent.h>
#include <prometheus/text_serializer.h>

#include "common/version.h"
#include "proxy/stats/allocator.h"

namespace bulwark::stats {
namespace {

/** /proc/self/stat split into its fields (1-based in proc(5), so field N is [N-1]). */
std::vector<std::string> procSelfStatFields() {
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  auto close_paren = content.rfind(')');
  if (close_paren == std::string::npos) {
    return {};
  }
  std::vector<std::string> fields = {"pid", "comm"};
  std::istringstream rest(content.substr(close_paren + 1));
  for (std::string field; rest >> field;) {
    fields.push_back(field);
  }
  return fields;
}

/** Boot time plus the process's start in ticks (field 22), as the standard collectors report. */
double processStartTimeSeconds() {
  auto fields = procSelfStatFields();
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  double boot_time = -1;
  while (std::getline(proc_stat, line)) {
    if (line.rfind("btime ", 0) == 0) {
      boot_time = std::stod(line.substr(6));
    }
  }
  if (fields.size() < 22 || boot_time < 0) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
  }
  return boot_time + std::stod(fields[21]) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

prometheus::Counter& RouteStats::grpcStatus(const std::string& status_name) {
  std::lock_guard<std::mutex> lock(grpc_mutex);
  for (auto& [name, counter] : grpc_counters) {
    if (name == status_name) {
      return *counter;
    }
  }
  auto& c = grpc_family->Add({{"listener", listener},
                              {"route", route},
                              {"upstream", upstream},
                              {"code_class", "2xx"},
                              {"grpc_status", status_name}});
  grpc_counters.emplace_back(status_name, &c);
  return c;
}

prometheus::Counter& RouteStats::retry(const std::string& reason) {
  return owner->retries_->Add({{"route", route}, {"upstream", upstream}, {"reason", reason}});
}
void RouteStats::retryLimitExceeded() {
  owner->retry_limit_exceeded_->Add({{"route", route}, {"upstream", upstream}}).Increment();
}
void RouteStats::retryBudgetExhausted() {
  owner->retry_budget_exhausted_->Add({{"route", route}, {"upstream", upstream}}).Increment();
}
void RouteStats::pushbackHonored() {
  owner->pushback_honored_->Add({{"route", route}, {"upstream", upstream}}).Increment();
}
void RouteStats::hedge(const std::string& result) {
  owner->hedges_->Add({{"route", route}, {"upstream", upstream}, {"result", result}}).Increment();
}
void RouteStats::deadlineExceeded() {
  owner->deadline_exceeded_->Add({{"route", route}, {"upstream", upstream}}).Increment();
}
void RouteStats::streamIdleTimeout(bool response_started) {
  owner->stream_idle_timeouts_
      ->Add({{"route", route},
             {"upstream", upstream},
             {"action", response_started ? "reset" : "504"}})
      .Increment();
}

prometheus::Gauge& Stats::certificateExpiry(const std::string& file) {
  return certificate_expiry_->Add({{"name", file}});
}

void RouteStats::upgrade(const std::string& protocol, bool switched) {
  owner->upgrades_
      ->Add({{"route", route},
             {"upstream", upstream},
             {"upgrade", protocol},
             {"result", switched ? "switched" : "refused_by_upstream"}})
      .Increment();
}
prometheus::Gauge& RouteStats::tunnelsActive() {
  return owner->tunnels_active_->Add({{"route", route}, {"upstream", upstream}});
}

TlsHandshakeMetrics::TlsHandshakeMetrics(prometheus::Registry& registry)
    : handshakes_(prometheus::BuildCounter()
                      .Name("bulwark_tls_handshakes_total")
                      .Help("TLS handshakes by listener or upstream and result (ok or the reason)")
                      .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("bulwark_tls_handshake_duration_seconds")
                    .Help("Time from the first TLS byte to a finished handshake")
                    .Register(registry)),
      resumed_(prometheus::BuildCounter()
                   .Name("bulwark_tls_sessions_resumed_total")
                   .Help("TLS handshakes that resumed an earlier session")
                   .Register(registry)) {}

void TlsHandshakeMetrics::record(std::string_view side, const std::string& name,
                                 std::string_view result,
                                 std::chrono::steady_clock::duration duration, bool resumed) {
  const std::string label(side);
  handshakes_.Add({{label, name}, {"result", std::string(result)}}).Increment();
  if (result != "ok") {
    return;
  }
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  duration_.Add({{label, name}}, kBuckets).Observe(std::chrono::duration<double>(duration).count());
  if (resumed) {
    resumed_.Add({{label, name}}).Increment();
  }
}

Stats::Stats(std::vector<double> latency_buckets)
    : registry_(std::make_shared<prometheus::Registry>()),
      buckets_(std::move(latency_buckets)),
      duration_("bulwark_request_duration_seconds", "Downstream request duration",
                defaultHistogramShards()),
      attempt_duration_("bulwark_upstream_attempt_duration_seconds",
                        "Per-attempt upstream duration", defaultHistogramShards()),
      attempts_per_request_("bulwark_upstream_attempts_per_request", "Attempts made per request",
                            defaultHistogramShards()) {
  using namespace prometheus;
  requests_ = &BuildCounter()
                   .Name("bulwark_requests_total")
                   .Help("Downstream requests by route and outcome")
                   .Register(*registry_);
  active_ =
      &BuildGauge().Name("bulwark_requests_active").Help("Requests in flight").Register(*registry_);
  attempts_ = &BuildCounter()
                   .Name("bulwark_upstream_attempts_total")
                   .Help("Upstream attempts")
                   .Register(*registry_);
  local_replies_ = &BuildCounter()
                        .Name("bulwark_local_replies_total")
                        .Help("Responses generated by bulwark, by reason")
                        .Register(*registry_);
  protocol_errors_ = &BuildCounter()
                          .Name("bulwark_downstream_protocol_errors_total")
                          .Help("Malformed or hostile downstream input rejected")
                          .Register(*registry_);
  fallbacks_ = &BuildCounter()
                    .Name("bulwark_fallback_responses_total")
                    .Help("Degraded fallback responses served, by trigger")
                    .Register(*registry_);
  retries_ = &BuildCounter()
                  .Name("bulwark_retries_total")
                  .Help("Retries started, by reason")
                  .Register(*registry_);
  retry_limit_exceeded_ = &BuildCounter()
                               .Name("bulwark_retry_limit_exceeded_total")
                               .Help("Retriable failures with no attempts left")
                               .Register(*registry_);
  retry_budget_exhausted_ = &BuildCounter()
                                 .Name("bulwark_retry_budget_exhausted_total")
                                 .Help("Retries refused by the retry budget")
                                 .Register(*registry_);
  pushback_honored_ = &BuildCounter()
                           .Name("bulwark_retry_pushback_honored_total")
                           .Help("Retries delayed by Retry-After or grpc-retry-pushback-ms")
                           .Register(*registry_);
  hedges_ = &BuildCounter()
                 .Name("bulwark_hedges_total")
                 .Help("Hedged attempts started and won")
                 .Register(*registry_);
  deadline_exceeded_ = &BuildCounter()
                            .Name("bulwark_deadline_exceeded_total")
                            .Help("Requests that ran out of time")
                            .Register(*registry_);
  stream_idle_timeouts_ = &BuildCounter()
                               .Name("bulwark_stream_idle_timeouts_total")
                               .Help("Streams ended by timeouts.idle (no bytes either way)")
                               .Register(*registry_);
  certificate_expiry_ = &BuildGauge()
                             .Name("bulwark_tls_certificate_expiry_timestamp_seconds")
                             .Help("Not-after time of each loaded certificate file")
                             .Register(*registry_);
  certificate_reload_failures_ =
      &BuildCounter()
           .Name("bulwark_tls_certificate_reload_failures_total")
           .Help("Certificate or key file changes refused (the running certificates stay)")
           .Register(*registry_)
           .Add({});
  access_log_dropped_bytes_ = &BuildCounter()
                                   .Name("bulwark_access_log_dropped_bytes_total")
                                   .Help("Access log bytes a failed write dropped (disk full)")
                                   .Register(*registry_)
                                   .Add({});
  upgrades_ = &BuildCounter()
                   .Name("bulwark_upgrades_total")
                   .Help("HTTP/1.1 Upgrade requests forwarded, by the upstream's answer")
                   .Register(*registry_);
  tunnels_active_ = &BuildGauge()
                         .Name("bulwark_tunnels_active")
                         .Help("Upgraded connections relaying bytes both ways")
                         .Register(*registry_);
  cx_active_ = &BuildGauge()
                    .Name("bulwark_downstream_connections_active")
                    .Help("Open downstream connections")
                    .Register(*registry_);
  cx_total_ = &BuildCounter()
                   .Name("bulwark_downstream_connections_total")
                   .Help("Accepted downstream connections")
                   .Register(*registry_);
  reloads_ = &BuildCounter()
                  .Name("bulwark_config_reloads_total")
                  .Help("Config reloads by result")
                  .Register(*registry_);
  auto& failures = BuildCounter()
                       .Name("bulwark_config_reload_failures_total")
                       .Help("Config reloads rejected")
                       .Register(*registry_);
  reload_failures_ = &failures.Add({});
  auto& last_ok = BuildGauge()
                      .Name("bulwark_config_last_reload_successful")
                      .Help("1 if the last reload applied")
                      .Register(*registry_);
  last_reload_ok_ = &last_ok.Add({});
  last_reload_ok_->Set(1);
  auto& last_ts = BuildGauge()
                      .Name("bulwark_config_last_reload_success_timestamp_seconds")
                      .Help("Time of the last applied config")
                      .Register(*registry_);
  last_reload_ts_ = &last_ts.Add({});
  server_state_ = &BuildGauge()
                       .Name("bulwark_server_state")
                       .Help("1 for the current server state")
                       .Register(*registry_);
  upstream_cx_active_ = &BuildGauge()
                             .Name("bulwark_upstream_connections_active")
                             .Help("Open upstream connections")
                             .Register(*registry_);
  upstream_endpoints_ = &BuildGauge()
                             .Name("bulwark_upstream_endpoints")
                             .Help("Endpoints per upstream")
                             .Register(*registry_);
  auto& build = BuildGauge().Name("bulwark_build_info").Help("Build metadata").Register(*registry_);
  build
      .Add({{"version", kVersion},
            {"compiler", __VERSION__},
            {"allocator", std::string(allocatorName())}})
      .Set(1);
  rss_ = &BuildGauge()
              .Name("process_resident_memory_bytes")
              .Help("Resident memory size in bytes.")
              .Register(*registry_)
              .Add({});
  virtual_memory_ = &BuildGauge()
                         .Name("process_virtual_memory_bytes")
                         .Help("Virtual memory size in bytes.")
                         .Register(*registry_)
                         .Add({});
  virtual_memory_max_ = &BuildGauge()
                             .Name("process_virtual_memory_max_bytes")
                             .Help("Maximum amount of virtual memory available in bytes.")
                             .Register(*registry_)
                             .Add({});
  cpu_ = &BuildCounter()
              .Name("process_cpu_seconds_total")
              .Help("Total user and system CPU time spent in seconds.")
              .Register(*registry_)
              .Add({});
  fds_ = &BuildGauge()
              .Name("process_open_fds")
              .Help("Number of open file descriptors.")
              .Register(*registry_)
              .Add({});
  max_fds_ = &BuildGauge()
                  .Name("process_max_fds")
                  .Help("Maximum number of open file descriptors.")
                  .Register(*registry_)
                  .Add({});
  start_time_ = &BuildGauge()
                     .Name("process_start_time_seconds")
                     .Help("Start time of the process since unix epoch in seconds.")
                     .Register(*registry_)
                     .Add({});
  start_time_->Set(processStartTimeSeconds());
  setServerState("initializing");
}

std::shared_ptr<RouteStats> Stats::routeStats(const std::string& listener, const std::string& route,
                                              const std::string& upstream) {
  auto rs = std::make_shared<RouteStats>();
  rs->listener = listener;
  rs->route = route;
  rs->upstream = upstream;
  rs->grpc_family = requests_;
  for (size_t i = 0; i < 6; ++i) {
    rs->requests[i] = &requests_->Add({{"listener", listener},
                                       {"route", route},
                                       {"upstream", upstream},
                                       {"code_class", codeClassName(i)},
                                       {"grpc_status", ""}});
    rs->duration[i] = &duration_.add(
        {{"route", route}, {"upstream", upstream}, {"code_class", codeClassName(i)}}, buckets_);
  }
  rs->active = &active_->Add({{"listener", listener}, {"route", route}});
  rs->owner = this;
  rs->attempts_initial =
      &attempts_->Add({{"route", route}, {"upstream", upstream}, {"kind", "initial"}});
  rs->attempts_retry =
      &attempts_->Add({{"route", route}, {"upstream", upstream}, {"kind", "retry"}});
  rs->attempts_hedge =
      &attempts_->Add({{"route", route}, {"upstream", upstream}, {"kind", "hedge"}});
  rs->attempts_per_request =
      &attempts_per_request_.add({{"route", route}, {"upstream", upstream}}, {1, 2, 3, 4, 5, 8});
  rs->attempt_duration =
      &attempt_duration_.add({{"route", route}, {"upstream", upstream}}, buckets_);
  return rs;
}

prometheus::Counter& Stats::localReply(const std::string& route, const std::string& reason) {
  return local_replies_->Add({{"route", route}, {"reason", reason}});
}

prometheus::Counter& Stats::protocolError(const std::string& listener, const std::string& reason) {
  return protocol_errors_->Add({{"listener", listener}, {"reason", reason}});
}

prometheus::Counter& Stats::fallback(const std::string& route, const std::string& trigger) {
  return fallbacks_->Add({{"route", route}, {"trigger", trigger}});
}

prometheus::Gauge& Stats::downstreamConnectionsActive(const std::string& listener) {
  return cx_active_->Add({{"listener", listener}});
}

prometheus::Counter& Stats::downstreamConnectionsTotal(const std::string& listener) {
  return cx_total_->Add({{"listener", listener}});
}

prometheus::Counter& Stats::configReload(const std::string& result) {
  return reloads_->Add({{"result", result}});
}

void Stats::setServerState(const std::string& state) {
  for (const char* s : {"initializing", "live", "draining"}) {
    server_state_->Add({{"state", s}}).Set(state == s ? 1 : 0);
  }
}

prometheus::Gauge& Stats::upstreamGauge(const std::string& family, const std::string& upstream) {
  if (family == "connections_active") {
    return upstream_cx_active_->Add({{"upstream", upstream}});
  }
  return upstream_endpoints_->Add({{"upstream", upstream}, {"health", "healthy"}});
}

void Stats::refreshProcessGauges() {
  const auto page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0;
  long pages_resident = 0;
  if (statm >> pages_total >> pages_resident) {
    virtual_memory_->Set(static_cast<double>(pages_total) * page_size);
    rss_->Set(static_cast<double>(pages_resident) * page_size);
  }
  if (auto fields = procSelfStatFields(); fields.size() >= 15) {
    // Fields 14 and 15 (1-based, see proc(5)) are utime and stime in clock ticks.
    double cpu_seconds =
        (std::stod(fields[13]) + std::stod(fields[14])) / static_cast<double>(sysconf(_SC_CLK_TCK));
    // A counter only moves forward: add what was used since the last scrape.
    if (cpu_seconds > cpu_->Value()) {
      cpu_->Increment(cpu_seconds - cpu_->Value());
    }
  }
  int entries = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) {
      ++entries;
    }
    closedir(dir);
    fds_->Set(entries - 3);  // ".", ".." and the descriptor of the listing itself
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    max_fds_->Set(limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(limit.rlim_cur));
  }
  if (getrlimit(RLIMIT_AS, &limit) == 0) {
    // Unlimited is reported as the largest value, as the standard collectors do.
    virtual_memory_max_->Set(static_cast<double>(limit.rlim_cur));
  }
}

std::string Stats::serialize() {
  refreshProcessGauges();
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (const ShardedHistogramFamily* family :
       {&duration_, &attempt_duration_, &attempts_per_request_}) {
    families.push_back(family->collect());
  }
  serializer.Serialize(out, families);
  return out.str();
}

}  // namespace bulwark::stats
