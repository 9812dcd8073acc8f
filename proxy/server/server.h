#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <event2/http.h>

#include "common/result.h"
#include "proxy/config/spec.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/filter.h"
#include "proxy/server/config_snapshot.h"
#include "proxy/server/file_watcher.h"
#include "proxy/server/overload_manager.h"
#include "proxy/server/systemd_notify.h"
#include "proxy/server/worker.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/upstream_manager.h"

namespace bulwark::server {

struct ServerOptions {
  std::string config_path;
  std::optional<int> concurrency;            // --concurrency overrides runtime.concurrency
  std::optional<std::string> admin_address;  // --admin-address overrides admin.address
  // --takeover: join listener ports another process already serves (SO_REUSEPORT handover)
  // instead of refusing to start.
  bool takeover = false;
};

/**
 * The process: main event loop (admin, signals, drain, reload), the workers, and the live
 * upstreams reconciled across reloads. Thread: main.
 */
class Server {
public:
  /** filters: the registered filter factories (filters/builtin.cc); may be null (no filters). */
  Server(ServerOptions options, config::ProxyConfigSpec initial,
         const http::FilterRegistry* filters = nullptr);
  ~Server();

  /** Binds every listener and the admin port, starts workers. Nothing is bound on error. */
  Status start();
  /** Runs the main loop until drained; returns the process exit code. */
  int run();

  /** Validates the file and swaps the config; keeps the old one on any error. */
  Status reload();
  bool ready() const;
  std::string readinessReport(bool& ok) const;

private:
  Result<ConfigSnapshotConstSharedPtr> buildSnapshot(const config::ProxyConfigSpec& spec);
  Status bindListeners(const ConfigSnapshot& snapshot);
  Status startAdmin(const std::string& address);
  void startDrain();
  void checkDrainDone();
  void stopAll();
  static void onSignal(evutil_socket_t sig, short, void* arg);
  static void onAdminRequest(evhttp_request* req, void* arg);
  void handleAdmin(evhttp_request* req);
  /** GET /explain/route: which route a described request matches and its effective policies. */
  void explainRouteRequest(evhttp_request* req, const evhttp_uri* uri);
  std::string upstreamsJson() const;
  /** The snapshot's access log: the running one when its options are unchanged, else opened. */
  Result<http::AccessLogSharedPtr> accessLogFor(const config::AccessLogSpec& spec) const;
  /** Every certificate the spec's tls blocks name, read now (for /certs and the expiry gauge). */
  static std::vector<config::CertificateInfo> certificatesOf(const config::ProxyConfigSpec& spec);
  /** Certificate, key and CA files of the spec's tls blocks, sorted, without duplicates. */
  static std::vector<std::string> tlsFilesOf(const config::ProxyConfigSpec& spec);
  /** (Re)starts the watch of the running config's TLS files: a change reloads. */
  Status applyTlsWatch();
  /** The listener's TLS server context (certificates loaded now: a reload picks up new files). */
  Result<network::TlsContextSharedPtr> tlsContextFor(const config::ListenerSpec& listener);
  /** Timer body: writes buffered access log lines, then re-arms at the log's flushInterval. */
  void flushAccessLogs();
  /** SIGUSR1 and POST /logs/reopen: the logrotate contract. */
  Status reopenAccessLogs();
  /** Writes the command-line overrides and the resolved watchConfig into a loaded spec. */
  void applyCommandLine(config::ProxyConfigSpec& spec) const;
  /** Starts or stops following the config file as runtime.watchConfig says. */
  Status applyWatchConfig();

  ServerOptions options_;
  const http::FilterRegistry* filters_;
  // Retry budgets and filter state that survive reloads (see buildSnapshot).
  ReloadableState reloadable_state_;
  config::ProxyConfigSpec spec_;
  event::Dispatcher dispatcher_;
  std::unique_ptr<stats::Stats> stats_;
  // Health checks, outlier sweeps and DNS on this loop; after stats_ (it exports to its registry).
  std::unique_ptr<upstream::UpstreamManager> upstream_manager_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // runtime.overload; its timer lives on dispatcher_, its signals are read by the workers.
  std::unique_ptr<OverloadManager> overload_;
  ConfigSnapshotConstSharedPtr snapshot_;
  std::map<std::string, upstream::UpstreamSharedPtr> upstreams_;
  std::shared_ptr<std::atomic<uint64_t>> global_active_streams_;
  std::shared_ptr<redis::RedisMetrics> redis_metrics_;  // created with the first `redis` block
  // The span exporter of the current config, kept while its options are unchanged. One a reload
  // replaced stays here until exit: its thread is joined on the main thread, never on a worker
  // that happens to release the last snapshot holding it.
  std::shared_ptr<tracing::SpanExporter> span_exporter_;
  std::vector<std::shared_ptr<tracing::SpanExporter>> retired_span_exporters_;
  std::map<std::string, std::string> bound_listeners_;  // name -> actual address
  evhttp* admin_ = nullptr;
  std::string admin_bound_;
  std::vector<::event*> signal_events_;
  event::TimerPtr drain_timer_;
  event::TimerPtr drain_deadline_timer_;
  event::TimerPtr drain_poll_timer_;
  event::TimerPtr access_log_flush_timer_;
  std::unique_ptr<FileWatcher> config_watcher_;
  // A watcher turned off by a reload it triggered itself: stopped, freed with the next change.
  std::unique_ptr<FileWatcher> retired_config_watcher_;
  std::unique_ptr<FileWatcher> tls_watcher_;
  std::unique_ptr<FileWatcher> retired_tls_watcher_;
  std::vector<std::string> tls_watched_files_;
  // Access logs a reload replaced, flushed until the last request that started on them ends.
  std::vector<std::weak_ptr<http::AccessLog>> retired_access_logs_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> listeners_bound_{false};
  bool stopped_ = false;
  uint64_t generation_ = 0;
  // After dispatcher_: its watchdog timer lives on that loop and must go first.
  SystemdNotifier notifier_ = SystemdNotifier::fromEnvironment();
};

/** Number of workers for "auto": the cgroup CPU quota, else online CPUs; at least 1. */
int defaultConcurrency();

}  // namespace bulwark::server
