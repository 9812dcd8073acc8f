#include "proxy/server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/ascii.h"
#include "proxy/config/effective_json.h"
#include "proxy/config/parser.h"
#include "proxy/network/connection.h"
#include "proxy/server/reload_policy.h"

namespace bulwark::server {
namespace {

std::string socketAddress(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return "";
  }
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf));
    return fmt::format("{}:{}", buf, ntohs(v4->sin_port));
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
  return fmt::format("[{}]:{}", buf, ntohs(v6->sin6_port));
}

Result<int> bindSocket(const std::string& address) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!network::parseAddress(address, ss, len)) {
    return Status::error(fmt::format("invalid address \"{}\"", address));
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::error(fmt::format("socket(): {}", std::strerror(errno)));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return Status::error(fmt::format("cannot bind {}: {}", address, err));
  }
  if (::listen(fd, 4096) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return Status::error(fmt::format("cannot listen on {}: {}", address, err));
  }
  return fd;
}

/**
 * Whether another process already listens on `address`. Listener sockets carry SO_REUSEPORT so
 * workers (and a handover's second process) can share a port, which would also let a stray
 * second bulwark silently take half the connections: a probe bound without SO_REUSEPORT fails
 * with EADDRINUSE exactly when someone listens there. Port 0 is never served already.
 */
bool portAlreadyServed(const std::string& address) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!network::parseAddress(address, ss, len)) {
    return false;  // bindSocket reports the bad address
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  bool in_use = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return in_use;
}

bool isLoopbackPeer(evhttp_request* req) {
  evhttp_connection* conn = evhttp_request_get_connection(req);
  if (conn == nullptr) {
    return false;
  }
  char* host = nullptr;
  ev_uint16_t port = 0;
  evhttp_connection_get_peer(conn, &host, &port);
  if (host == nullptr) {
    return false;
  }
  std::string h(host);
  return h.rfind("127.", 0) == 0 || h == "::1" || h == "::ffff:127.0.0.1";
}

void reply(evhttp_request* req, int code, const std::string& body,
           const char* content_type = "text/plain") {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", content_type);
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, code == 200 ? "OK" : (code == 503 ? "Service Unavailable" : "Error"),
                    buf);
  evbuffer_free(buf);
}

}  // namespace

int defaultConcurrency() {
  // cgroup v2 CPU quota first (a sidecar's limit), then the CPUs we may run on.
  std::ifstream cpu_max("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long period = 0;
  if (cpu_max >> quota >> period && quota != "max" && period > 0) {
    long q = std::stol(quota);
    int n = static_cast<int>(std::ceil(static_cast<double>(q) / static_cast<double>(period)));
    if (n >= 1) {
      return n;
    }
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

namespace {

/** FactoryContext for one route while a snapshot is built. Thread: main. */
class RouteFactoryContext : public http::FactoryContext {
public:
  RouteFactoryContext(stats::Stats& stats, const config::RouteSpec& route, ReloadableState& state)
      : stats_(stats), route_(route), state_(state) {}
  stats::Stats& stats() override { return stats_; }
  const config::RouteSpec& route() const override { return route_; }
  ReloadableState& reloadableState() override { return state_; }

private:
  stats::Stats& stats_;
  const config::RouteSpec& route_;
  ReloadableState& state_;
};

}  // namespace

Server::Server(ServerOptions options, config::ProxyConfigSpec initial,
               const http::FilterRegistry* filters)
    : options_(std::move(options)),
      filters_(filters),
      spec_(std::move(initial)),
      global_active_streams_(std::make_shared<std::atomic<uint64_t>>(0)) {
  applyCommandLine(spec_);
  stats_ = std::make_unique<stats::Stats>(spec_.observability.latency_buckets);
  upstream_manager_ = std::make_unique<upstream::UpstreamManager>(dispatcher_, stats_->registry());
  overload_ = std::make_unique<OverloadManager>(dispatcher_, stats_->registry(),
                                                [this](uint64_t bytes_per_worker) {
                                                  for (auto& w : workers_) {
                                                    w->resetHighMemoryStreams(bytes_per_worker);
                                                  }
                                                });
}

void Server::applyCommandLine(config::ProxyConfigSpec& spec) const {
  // Command-line overrides are what is in force, so /config shows them; so is the watch
  // decision taken for an unset runtime.watchConfig.
  if (options_.admin_address) {
    spec.admin.address = *options_.admin_address;
  }
  if (options_.concurrency) {
    spec.runtime.concurrency = *options_.concurrency;
  }
  spec.runtime.watch_config =
      spec.runtime.watch_config.value_or(inConfigMapVolume(options_.config_path));
}

Server::~Server() {
  stopAll();
  for (auto* ev : signal_events_) {
    event_free(ev);
  }
  if (admin_) {
    evhttp_free(admin_);
  }
}

Result<ConfigSnapshotConstSharedPtr> Server::buildSnapshot(const config::ProxyConfigSpec& spec) {
  auto snapshot = std::make_shared<ConfigSnapshot>();
  snapshot->spec = spec;
  snapshot->generation = ++generation_;
  auto access_log = accessLogFor(spec.observability.access_log);
  if (!access_log) {
    return Status::error("observability.accessLog.path: " + access_log.error());
  }
  snapshot->access_log = *access_log;
  const config::ObservabilitySpec& obs = spec.observability;
  if (!obs.otlp_endpoint.empty()) {
    tracing::ExporterOptions options;
    options.endpoint = obs.otlp_endpoint;
    options.timeout = obs.otlp_timeout;
    options.max_batch = obs.otlp_batch_max_spans;
    options.interval = obs.otlp_batch_interval;
    options.max_queue = obs.otlp_max_queue;
    const auto& current = span_exporter_ ? span_exporter_->options() : tracing::ExporterOptions{};
    if (!span_exporter_ || current.endpoint != options.endpoint ||
        current.timeout != options.timeout || current.max_batch != options.max_batch ||
        current.interval != options.interval || current.max_queue != options.max_queue) {
      auto made = tracing::SpanExporter::create(options, stats_->registry());
      if (!made) {
        return Status::error("observability.tracing.exporter: " + made.error());
      }
      if (span_exporter_) {
        retired_span_exporters_.push_back(std::move(span_exporter_));
      }
      span_exporter_ = std::shared_ptr<tracing::SpanExporter>(std::move(*made));
    }
    auto has = [&](const char* format) {
      return std::find(obs.trace_propagation.begin(), obs.trace_propagation.end(), format) !=
             obs.trace_propagation.end();
    };
    snapshot->tracer = std::make_shared<const tracing::Tracer>(
        obs.trace_sampling_ratio, obs.trace_sampling_parent_based, has("w3c"), has("b3"),
        span_exporter_);
  }
  for (const std::string& cidr : spec.observability.explain_allow_from) {
    if (auto parsed = Cidr::parse(cidr)) {  // the loader refused anything else
      snapshot->explain_allow_from.push_back(*parsed);
    }
  }
  if (spec.redis) {
    if (!redis_metrics_) {
      redis_metrics_ = std::make_shared<redis::RedisMetrics>(stats_->registry());
    }
    snapshot->redis_metrics = redis_metrics_;
  }
  reloadable_state_.beginBuild();
  // Unchanged upstreams keep their live state (connections, counters, health) across a reload.
  for (auto& [name, u] : upstream_manager_->prepare(spec.upstreams)) {
    if (!u->tlsError().empty()) {
      return Status::error(fmt::format("upstreams {}: tls: {}", name, u->tlsError()));
    }
    snapshot->upstreams[name] = u;
  }
  std::map<std::string, const config::RouteSpec*> routes_by_name;
  for (const auto& r : spec.routes) {
    routes_by_name[r.name] = &r;
  }
  for (const auto& ls : spec.listeners) {
    router::ListenerConfig lc;
    lc.spec = ls;
    lc.path.normalize = ls.http.normalize_path;
    lc.path.merge_slashes = ls.http.merge_slashes;
    const std::string& escaped = ls.http.escaped_slashes;
    lc.path.escaped_slashes =
        escaped == "REJECT_REQUEST"          ? http::EscapedSlashes::RejectRequest
        : escaped == "UNESCAPE_AND_REDIRECT" ? http::EscapedSlashes::UnescapeAndRedirect
        : escaped == "UNESCAPE_AND_FORWARD"  ? http::EscapedSlashes::UnescapeAndForward
                                             : http::EscapedSlashes::KeepUnchanged;
    if (ls.tls) {
      auto tls = tlsContextFor(ls);
      if (!tls) {
        return Status::error(fmt::format("listeners {}: tls: {}", ls.name, tls.error()));
      }
      lc.tls = *tls;
    }
    std::vector<std::string> names = ls.routes;
    if (names.empty()) {
      for (const auto& r : spec.routes) {
        names.push_back(r.name);
      }
    }
    for (const auto& name : names) {
      auto it = routes_by_name.find(name);
      if (it == routes_by_name.end()) {
        return Status::error(fmt::format("listener {}: unknown route {}", ls.name, name));
      }
      const auto& rs = *it->second;
      router::RouteEntry entry;
      auto compiled = router::Route::create(rs, reloadable_state_);
      if (!compiled) {
        return compiled.status();
      }
      entry.route = *compiled;
      entry.upstream = snapshot->upstreams.at(rs.upstream);
      entry.stats = stats_->routeStats(ls.name, rs.name, rs.upstream);
      if (filters_ != nullptr) {
        RouteFactoryContext ctx(*stats_, rs, reloadable_state_);
        for (const auto& factory : filters_->factories()) {
          if (!factory->enabledFor(rs)) {
            continue;
          }
          auto cb = factory->create(ctx);
          if (!cb) {
            return Status::error(
                fmt::format("routes {}: {}: {}", rs.name, factory->name(), cb.error()));
          }
          entry.filters.push_back(std::move(*cb));
        }
      }
      lc.routes.push_back(std::move(entry));
    }
    snapshot->listeners[ls.name] = std::move(lc);
  }
  snapshot->certificates = certificatesOf(spec);
  for (const auto& cert : snapshot->certificates) {
    stats_->certificateExpiry(cert.file).Set(static_cast<double>(cert.not_after));
  }
  // Built: state the previous config held and this one did not ask for goes (a failed build
  // returns before this and keeps everything).
  reloadable_state_.endBuild();
  return ConfigSnapshotConstSharedPtr(snapshot);
}

std::vector<config::CertificateInfo> Server::certificatesOf(const config::ProxyConfigSpec& spec) {
  std::vector<config::CertificateInfo> out;
  auto add = [&out](const std::string& file, std::string used_by) {
    if (file.empty()) {
      return;
    }
    if (auto info = config::describeCertificate(file)) {
      info->used_by = std::move(used_by);
      out.push_back(std::move(*info));
    }
  };
  for (const auto& ls : spec.listeners) {
    if (ls.tls) {
      for (const auto& cert : ls.tls->certificates) {
        add(cert.certificate_chain, "listener " + ls.name);
      }
      add(ls.tls->ca_certificates, "listener " + ls.name + " (client CA)");
    }
  }
  for (const auto& us : spec.upstreams) {
    if (us.tls) {
      add(us.tls->client_certificate, "upstream " + us.name + " (client)");
      add(us.tls->ca_certificates, "upstream " + us.name + " (CA)");
    }
  }
  return out;
}

std::vector<std::string> Server::tlsFilesOf(const config::ProxyConfigSpec& spec) {
  std::vector<std::string> files;
  for (const auto& ls : spec.listeners) {
    if (ls.tls) {
      for (const auto& cert : ls.tls->certificates) {
        files.push_back(cert.certificate_chain);
        files.push_back(cert.private_key);
      }
      files.push_back(ls.tls->ca_certificates);
    }
  }
  for (const auto& us : spec.upstreams) {
    if (us.tls) {
      files.insert(files.end(),
                   {us.tls->ca_certificates, us.tls->client_certificate, us.tls->private_key});
    }
  }
  std::erase(files, std::string());
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

Status Server::applyTlsWatch() {
  std::vector<std::string> files = tlsFilesOf(spec_);
  if (files == tls_watched_files_ && (tls_watcher_ || files.empty())) {
    return Status::ok();
  }
  // The watcher may be the caller (its change triggered this reload): retire, never destroy.
  if (tls_watcher_) {
    tls_watcher_->stop();
    retired_tls_watcher_ = std::move(tls_watcher_);
  }
  tls_watched_files_ = files;
  if (files.empty()) {
    return Status::ok();
  }
  auto watcher = FileWatcher::create(dispatcher_, "tls files", files, [this] {
    // New files mean new contexts: a reload builds them (and checks them first); connections
    // already open keep the certificate they were made with.
    auto status = reload();
    if (status) {
      spdlog::info("certificates reloaded");
    } else {
      stats_->certificateReloadFailures().Increment();
      spdlog::error("certificate change rejected, keeping the running certificates: {}",
                    status.message());
    }
  });
  if (!watcher) {
    return watcher.status();
  }
  tls_watcher_ = std::move(*watcher);
  return Status::ok();
}

Result<network::TlsContextSharedPtr> Server::tlsContextFor(const config::ListenerSpec& listener) {
  // ALPN offered when the listener's tls block names none: what its protocol speaks.
  std::vector<std::string> alpn;
  switch (listener.protocol) {
    case config::ListenerProtocol::Auto: alpn = {"h2", "http/1.1"}; break;
    case config::ListenerProtocol::Http1: alpn = {"http/1.1"}; break;
    case config::ListenerProtocol::H2c: alpn = {"h2"}; break;
  }
  stats::Stats* stats = stats_.get();
  auto context = network::TlsContext::server(
      *listener.tls, alpn,
      [stats, name = listener.name](std::string_view result,
                                    std::chrono::steady_clock::duration duration, bool resumed) {
        stats->tls().record("listener", name, result, duration, resumed);
      });
  if (!context) {
    return context.status();
  }
  return network::TlsContextSharedPtr(*context);
}

Result<http::AccessLogSharedPtr> Server::accessLogFor(const config::AccessLogSpec& spec) const {
  http::AccessLog::Options options{.path = spec.path,
                                   .text = spec.format == "text",
                                   .sample = spec.sample,
                                   .flush_interval = spec.flush_interval};
  // Unchanged options keep the open file: a reload neither reopens nor reorders the log.
  if (snapshot_ && snapshot_->access_log && snapshot_->access_log->options() == options) {
    return snapshot_->access_log;
  }
  auto log = http::AccessLog::open(options);
  if (log && *log) {
    (*log)->setDroppedBytesCounter(&stats_->accessLogDroppedBytes());
  }
  return log;
}

void Server::flushAccessLogs() {
  std::chrono::milliseconds interval{1000};
  if (snapshot_ && snapshot_->access_log) {
    snapshot_->access_log->flush();
    interval = snapshot_->access_log->options().flush_interval;
  }
  // Logs a reload replaced still take the lines of requests that started before it.
  std::erase_if(retired_access_logs_, [](const std::weak_ptr<http::AccessLog>& weak) {
    auto log = weak.lock();
    if (log) {
      log->flush();
    }
    return !log;
  });
  access_log_flush_timer_->enableTimer(interval);
}

Status Server::applyWatchConfig() {
  const bool want = spec_.runtime.watch_config.value_or(false) && !options_.config_path.empty();
  if (!want) {
    if (config_watcher_) {
      config_watcher_->stop();
      retired_config_watcher_ = std::move(config_watcher_);
    }
    return Status::ok();
  }
  retired_config_watcher_.reset();
  if (config_watcher_) {
    return Status::ok();
  }
  auto watcher =
      FileWatcher::create(dispatcher_, "runtime.watchConfig", {options_.config_path}, [this] {
        auto status = reload();
        if (!status) {
          spdlog::error("reload rejected, keeping the running config: {}", status.message());
        }
      });
  if (!watcher) {
    return watcher.status();
  }
  config_watcher_ = std::move(*watcher);
  return Status::ok();
}

Status Server::reopenAccessLogs() {
  if (!snapshot_ || !snapshot_->access_log) {
    return Status::ok();
  }
  auto status = snapshot_->access_log->reopen();
  if (status) {
    spdlog::info("access log {} reopened", snapshot_->access_log->options().path);
  } else {
    spdlog::error("access log reopen failed, still writing to the old file: {}", status.message());
  }
  return status;
}

Status Server::bindListeners(const ConfigSnapshot& snapshot) {
  // Bind every socket before starting anything, so a bad address fails the start cleanly.
  std::vector<std::pair<std::string, std::vector<int>>> fds;
  auto close_all = [&] {
    for (auto& [name, list] : fds) {
      for (int fd : list) {
        ::close(fd);
      }
    }
  };
  for (const auto& ls : snapshot.spec.listeners) {
    std::vector<int> list;
    auto first = bindSocket(ls.address);
    if (!first) {
      close_all();
      return Status::error(fmt::format("listener {}: {}", ls.name, first.error()));
    }
    list.push_back(*first);
    std::string actual = socketAddress(*first);
    // Port 0: the other workers must join the port the kernel picked for the first socket.
    for (size_t i = 1; i < workers_.size(); ++i) {
      auto more = bindSocket(actual);
      if (!more) {
        for (int fd : list) {
          ::close(fd);
        }
        close_all();
        return Status::error(fmt::format("listener {}: {}", ls.name, more.error()));
      }
      list.push_back(*more);
    }
    bound_listeners_[ls.name] = actual;
    fds.emplace_back(ls.name, std::move(list));
  }
  for (auto& [name, list] : fds) {
    for (size_t i = 0; i < list.size(); ++i) {
      workers_[i]->addListener(name, list[i]);
    }
    std::cout << fmt::format("listener {} listening on {}", name, bound_listeners_[name])
              << std::endl;
  }
  return Status::ok();
}

Status Server::startAdmin(const std::string& address) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!network::parseAddress(address, ss, len)) {
    return Status::error(fmt::format("admin: invalid address \"{}\"", address));
  }
  admin_ = evhttp_new(dispatcher_.base());
  evhttp_set_gencb(admin_, &Server::onAdminRequest, this);
  evhttp_set_allowed_methods(admin_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
  auto host_end = address.rfind(':');
  std::string host = address.substr(0, host_end);
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  int port = std::stoi(address.substr(host_end + 1));
  evhttp_bound_socket* bound =
      evhttp_bind_socket_with_handle(admin_, host.c_str(), static_cast<uint16_t>(port));
  if (bound == nullptr) {
    return Status::error(fmt::format("admin: cannot bind {}", address));
  }
  admin_bound_ = socketAddress(evhttp_bound_socket_get_fd(bound));
  std::cout << fmt::format("admin listening on {}", admin_bound_) << std::endl;
  return Status::ok();
}

Status Server::start() {
  // Handlers first: once a port is announced, a supervisor may signal at once, and a SIGTERM
  // or SIGHUP must then drain or reload (delivered when run() starts), not kill the process.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    ::event* ev = evsignal_new(dispatcher_.base(), sig, &Server::onSignal, this);
    event_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  int concurrency = spec_.runtime.concurrency;
  if (concurrency <= 0) {
    concurrency = defaultConcurrency();
  }
  auto snapshot = buildSnapshot(spec_);
  if (!snapshot) {
    return snapshot.status();
  }
  if (auto status = applyWatchConfig(); !status) {
    return status;
  }
  if (auto status = applyTlsWatch(); !status) {
    return status;
  }
  if (!options_.takeover) {
    for (const auto& ls : spec_.listeners) {
      if (portAlreadyServed(ls.address)) {
        return Status::error(fmt::format(
            "listener {}: {} is already served by another process; to hand over from a "
            "running bulwark, start this one with --takeover, wait for /ready, then stop the "
            "old one",
            ls.name, ls.address));
      }
    }
  }
  for (int i = 0; i < concurrency; ++i) {
    workers_.push_back(std::make_unique<Worker>(static_cast<uint32_t>(i), *stats_,
                                                global_active_streams_, overload_->signals(),
                                                spec_.runtime.max_connections_per_worker));
  }
  if (auto status = startAdmin(spec_.admin.address); !status) {
    return status;
  }
  if (auto status = bindListeners(**snapshot); !status) {
    return status;
  }
  snapshot_ = *snapshot;
  for (const auto& [name, u] : snapshot_->upstreams) {
    upstreams_[name] = u;
  }
  upstream_manager_->activate(snapshot_->upstreams);
  for (auto& w : workers_) {
    w->setSnapshot(snapshot_);
    w->start();
  }
  listeners_bound_ = true;
  overload_->configure(spec_.runtime.overload, static_cast<uint32_t>(workers_.size()));
  access_log_flush_timer_ = dispatcher_.createTimer([this] { flushAccessLogs(); });
  flushAccessLogs();
  stats_->setServerState("live");
  stats_->lastReloadTimestamp().Set(static_cast<double>(std::time(nullptr)));
  spdlog::info("bulwark started: {} workers, {} listeners, {} routes", workers_.size(),
               spec_.listeners.size(), spec_.routes.size());
  notifier_.ready(fmt::format("serving with {} workers", workers_.size()));
  // The watchdog pings while every worker loop turns, the same test as /live.
  notifier_.startWatchdog(dispatcher_, [this] {
    auto now = std::chrono::steady_clock::now();
    return std::all_of(workers_.begin(), workers_.end(), [now](const auto& w) {
      return now - w->lastHeartbeat() <= std::chrono::seconds(10);
    });
  });
  return Status::ok();
}

int Server::run() {
  dispatcher_.run();
  stopAll();
  return 0;
}

void Server::onSignal(evutil_socket_t sig, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  if (sig == SIGUSR1) {
    (void)self->reopenAccessLogs();
    return;
  }
  if (sig == SIGHUP) {
    auto status = self->reload();
    if (!status) {
      spdlog::error("reload rejected, keeping the running config: {}", status.message());
    }
    return;
  }
  self->startDrain();
}

void Server::startDrain() {
  if (draining_.exchange(true)) {
    return;
  }
  stats_->setServerState("draining");
  notifier_.stopping();
  spdlog::info("drain started: /ready now fails; waiting drain.minDuration {}ms",
               spec_.runtime.drain.min_duration.count());
  drain_timer_ = dispatcher_.createTimer([this] {
    for (auto& w : workers_) {
      w->drain();
    }
    drain_poll_timer_ = dispatcher_.createTimer([this] { checkDrainDone(); });
    drain_poll_timer_->enableTimer(std::chrono::milliseconds(20));
  });
  drain_timer_->enableTimer(spec_.runtime.drain.min_duration);
  drain_deadline_timer_ = dispatcher_.createTimer([this] {
    spdlog::warn("drain timeout reached with {} requests in flight",
                 global_active_streams_->load());
    event_base_loopexit(dispatcher_.base(), nullptr);
  });
  drain_deadline_timer_->enableTimer(spec_.runtime.drain.min_duration +
                                     spec_.runtime.drain.timeout);
}

void Server::checkDrainDone() {
  uint64_t connections = 0;
  for (auto& w : workers_) {
    connections += w->connectionCount();
  }
  // exitOnZeroActive (Istio's EXIT_ON_ZERO_ACTIVE_CONNECTIONS): done once no request is active
  // and every downstream connection is closed. A finished stream is not enough: its last
  // response bytes may still wait in the connection's output buffer for a slow reader, and
  // closing (FlushWrite) is what delivers them. Without it the drain lasts drain.timeout.
  if (spec_.runtime.drain.exit_on_zero_active && global_active_streams_->load() == 0 &&
      connections == 0) {
    spdlog::info("drain complete");
    event_base_loopexit(dispatcher_.base(), nullptr);
    return;
  }
  drain_poll_timer_->enableTimer(std::chrono::milliseconds(20));
}

void Server::stopAll() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  for (auto& w : workers_) {
    w->stop();
  }
  workers_.clear();
}

Status Server::reload() {
  notifier_.reloading();
  // READY=1 again whichever way the reload ends: a rejected file keeps the old config serving.
  struct ReadyAgain {
    SystemdNotifier& notifier;
    ~ReadyAgain() { notifier.ready("serving"); }
  } ready_again{notifier_};
  auto loaded = config::loadConfigFile(options_.config_path);
  std::string errors;
  for (const auto& d : loaded.diagnostics) {
    if (!d.warning) {
      errors += d.format() + "\n";
    }
  }
  auto fail = [&](const std::string& why) {
    stats_->configReload("failure").Increment();
    stats_->configReloadFailures().Increment();
    stats_->lastReloadSuccessful().Set(0);
    return Status::error(why);
  };
  if (!loaded.config || !errors.empty()) {
    return fail(errors.empty() ? "config unreadable" : errors);
  }
  config::ProxyConfigSpec next = *loaded.config;
  applyCommandLine(next);
  // Sockets, threads and histogram layouts are made once: such a change is refused by name
  // rather than shown in /config and not applied.
  if (auto change = restartOnlyChange(config::toJson(spec_), config::toJson(next))) {
    return fail(fmt::format("{}: takes effect only on restart", *change));
  }
  auto snapshot = buildSnapshot(next);
  if (!snapshot) {
    return fail(snapshot.error());
  }
  spec_ = next;
  if (snapshot_->access_log && snapshot_->access_log != (*snapshot)->access_log) {
    retired_access_logs_.push_back(snapshot_->access_log);
  }
  snapshot_ = *snapshot;
  upstreams_.clear();
  for (const auto& [name, u] : snapshot_->upstreams) {
    upstreams_[name] = u;
  }
  upstream_manager_->activate(snapshot_->upstreams);
  for (auto& w : workers_) {
    w->setSnapshot(snapshot_);
  }
  overload_->configure(spec_.runtime.overload, static_cast<uint32_t>(workers_.size()));
  stats_->configReload("success").Increment();
  stats_->lastReloadSuccessful().Set(1);
  stats_->lastReloadTimestamp().Set(static_cast<double>(std::time(nullptr)));
  spdlog::info("config reloaded (generation {})", snapshot_->generation);
  if (auto status = applyWatchConfig(); !status) {
    spdlog::error("{}", status.message());
  }
  if (auto status = applyTlsWatch(); !status) {
    spdlog::error("{}", status.message());
  }
  return Status::ok();
}

bool Server::ready() const {
  bool ok = false;
  readinessReport(ok);
  return ok;
}

std::string Server::readinessReport(bool& ok) const {
  bool config_ok = snapshot_ != nullptr;
  bool listeners_ok = listeners_bound_.load();
  bool not_draining = !draining_.load();
  ok = config_ok && listeners_ok && not_draining;
  std::string out;
  out += fmt::format("[{}] config applied\n", config_ok ? "+" : "-");
  out += fmt::format("[{}] listeners bound\n", listeners_ok ? "+" : "-");
  out += fmt::format("[{}] not draining\n", not_draining ? "+" : "-");
  for (const auto& name : spec_.admin.require_upstreams) {
    auto it = upstreams_.find(name);
    bool has_hosts = it != upstreams_.end() && it->second->healthyHostCount() > 0;
    out += fmt::format("[{}] upstream {} has a healthy host\n", has_hosts ? "+" : "-", name);
    ok = ok && has_hosts;
  }
  if (spec_.redis && redis_metrics_) {
    // Informational: the blocks using Redis have failure modes, so its loss is not a reason to
    // take this instance out of its load balancer.
    const int connected = redis_metrics_->connected();
    const int clients = redis_metrics_->clients();
    out += fmt::format("[{}] redis {} connected on {} of {} workers (not required)\n",
                       connected > 0 && connected >= clients ? "+" : "-", spec_.redis->address,
                       connected, clients);
  }
  out += ok ? "ready\n" : "not ready\n";
  return out;
}

void Server::explainRouteRequest(evhttp_request* req, const evhttp_uri* uri) {
  // A request described by the query (path, method, header=name:value...), matched as the
  // listeners would match it; nothing is sent anywhere.
  const char* query = evhttp_uri_get_query(uri);
  evkeyvalq params{};
  evhttp_parse_query_str(query != nullptr ? query : "", &params);
  http::RequestHeaders request;
  request.method = "GET";
  request.path = "/";
  std::string only_listener;
  for (evkeyval* kv = params.tqh_first; kv != nullptr; kv = kv->next.tqe_next) {
    const std::string key = kv->key;
    const std::string value = kv->value;
    if (key == "path") {
      request.path = value;
    } else if (key == "method") {
      request.method = value;
    } else if (key == "authority" || key == "host") {
      request.authority = value;
    } else if (key == "listener") {
      only_listener = value;
    } else if (key == "header") {
      const size_t colon = value.find(':');
      if (colon != std::string::npos) {
        std::string name = value.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), asciiLower);
        size_t start = colon + 1;
        while (start < value.size() && value[start] == ' ') {
          ++start;
        }
        request.headers.add(name, value.substr(start));
      }
    }
  }
  evhttp_clear_headers(&params);
  nlohmann::json matches = nlohmann::json::array();
  for (const auto& [name, listener] : snapshot_->listeners) {
    if (!only_listener.empty() && name != only_listener) {
      continue;
    }
    const router::RouteEntry* entry = listener.match(request);
    if (entry == nullptr) {
      matches.push_back({{"listener", name}, {"route", nullptr}});
      continue;
    }
    nlohmann::json m = config::explainRoute(snapshot_->spec, entry->route->name())
                           .value_or(nlohmann::json::object());
    m["listener"] = name;
    matches.push_back(std::move(m));
  }
  nlohmann::json doc = {
      {"request", {{"method", request.method}, {"path", request.path}, {"grpc", request.isGrpc()}}},
      {"matches", std::move(matches)}};
  reply(req, 200, config::dumpJson(doc) + "\n", "application/json");
}

std::string Server::upstreamsJson() const { return config::dumpJson(upstream_manager_->toJson()); }

void Server::onAdminRequest(evhttp_request* req, void* arg) {
  static_cast<Server*>(arg)->handleAdmin(req);
}

void Server::handleAdmin(evhttp_request* req) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  std::string path = evhttp_uri_get_path(uri) ? evhttp_uri_get_path(uri) : "/";
  auto method = evhttp_request_get_command(req);
  if (method == EVHTTP_REQ_POST) {
    // Mutating endpoints answer only on loopback, whatever the admin bind address.
    if (!isLoopbackPeer(req)) {
      reply(req, 403, "mutating admin endpoints are loopback-only\n");
      return;
    }
    if (path == "/drain" || path == "/quitquitquit") {
      reply(req, 200, "draining\n");
      startDrain();
      return;
    }
    if (path == "/reload") {
      auto status = reload();
      if (status) {
        reply(req, 200, "reloaded\n");
      } else {
        spdlog::error("reload rejected, keeping the running config: {}", status.message());
        reply(req, 400, "reload rejected, keeping the running config:\n" + status.message() + "\n");
      }
      return;
    }
    if (path == "/logging") {
      // Envoy's /logging?level=: the process-wide level, at once, until the next change.
      const char* query = evhttp_uri_get_query(uri);
      evkeyvalq params{};
      evhttp_parse_query_str(query != nullptr ? query : "", &params);
      const char* level = evhttp_find_header(&params, "level");
      const std::string wanted = level != nullptr ? level : "";
      evhttp_clear_headers(&params);
      const auto parsed = spdlog::level::from_str(wanted);
      // from_str answers "off" for anything it does not know; only a real "off" means off.
      if (wanted.empty() || (parsed == spdlog::level::off && wanted != "off")) {
        reply(req, 400, "expected ?level= one of trace, debug, info, warn, error, critical, off\n");
        return;
      }
      spdlog::set_level(parsed);
      const auto name = spdlog::level::to_string_view(parsed);
      const std::string canonical(name.data(), name.size());
      spdlog::warn("log level set to {} through the admin endpoint", canonical);
      reply(req, 200, "level: " + canonical + "\n");
      return;
    }
    if (path == "/logs/reopen") {
      auto status = reopenAccessLogs();
      reply(req, status ? 200 : 500,
            status ? "reopened\n"
                   : "reopen failed, still writing to the old file: " + status.message() + "\n");
      return;
    }
    reply(req, 404, "unknown admin endpoint\n");
    return;
  }
  if (path == "/live" || path == "/livez" || path == "/healthz") {
    // A stalled worker loop is the one failure a restart fixes.
    auto now = std::chrono::steady_clock::now();
    for (auto& w : workers_) {
      if (now - w->lastHeartbeat() > std::chrono::seconds(10)) {
        reply(req, 503, "worker event loop stalled\n");
        return;
      }
    }
    reply(req, 200, "live\n");
    return;
  }
  if (path == "/ready" || path == "/readyz") {
    bool ok = false;
    std::string body = readinessReport(ok);
    reply(req, ok ? 200 : 503, body);
    return;
  }
  if (path == spec_.observability.metrics_path || path == "/metrics" ||
      path == "/stats/prometheus") {
    for (const auto& [name, u] : upstreams_) {
      stats_->upstreamGauge("connections_active", name)
          .Set(static_cast<double>(u->activeConnections()));
    }
    upstream_manager_->refreshGauges();
    reply(req, 200, stats_->serialize(), "text/plain; version=0.0.4");
    return;
  }
  if (path == "/config" || path == "/config_dump") {
    reply(req, 200, config::dumpJson(config::toJson(spec_)), "application/json");
    return;
  }
  if (path == "/upstreams" || path == "/clusters") {
    reply(req, 200, upstreamsJson(), "application/json");
    return;
  }
  if (path == "/explain/route") {
    explainRouteRequest(req, uri);
    return;
  }
  if (path == "/logging") {
    const auto name = spdlog::level::to_string_view(spdlog::get_level());
    reply(req, 200, fmt::format("level: {}\n", std::string_view(name.data(), name.size())));
    return;
  }
  if (path == "/certs" || path == "/certificates") {
    nlohmann::json certs = nlohmann::json::array();
    for (const auto& c : snapshot_->certificates) {
      certs.push_back({{"file", c.file},
                       {"usedBy", c.used_by},
                       {"subject", c.subject},
                       {"subjectAltNames", c.sans},
                       {"serial", c.serial},
                       {"notAfter", c.not_after}});
    }
    reply(req, 200, certs.dump(2) + "\n", "application/json");
    return;
  }
  reply(req, 404, "unknown admin endpoint\n");
}

}  // namespace bulwark::server
