#include "proxy/server/worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/server/active_stream.h"

namespace bulwark::server {
namespace {
std::string formatPeer(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (addr->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf));
    return fmt::format("{}:{}", buf, ntohs(v4->sin_port));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
  inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
  // fmt rather than string concatenation: GCC 12 -O3 reports a false -Wrestrict on the latter.
  return fmt::format("[{}]:{}", buf, ntohs(v6->sin6_port));
}
}  // namespace

Worker::Worker(uint32_t index, stats::Stats& stats,
               std::shared_ptr<std::atomic<uint64_t>> global_active_streams,
               OverloadSignalsSharedPtr overload, uint32_t max_connections)
    : index_(index), ctx_(dispatcher_, stats, index), max_connections_(max_connections) {
  ctx_.global_active_streams = std::move(global_active_streams);
  ctx_.overload = std::move(overload);
}

Worker::~Worker() { stop(); }

void Worker::start() {
  heartbeat_timer_ = dispatcher_.createTimer([this] {
    heartbeat_.store(std::chrono::steady_clock::now().time_since_epoch().count());
    heartbeat_timer_->enableTimer(std::chrono::seconds(1));
  });
  heartbeat_.store(std::chrono::steady_clock::now().time_since_epoch().count());
  heartbeat_timer_->enableTimer(std::chrono::seconds(1));
  thread_ = std::thread([this] { dispatcher_.run(); });
}

void Worker::addListener(const std::string& listener_name, int fd) {
  dispatcher_.post([this, listener_name, fd] {
    auto handle = std::make_unique<ListenerHandle>();
    handle->worker = this;
    handle->name = listener_name;
    // Backlog 0: the socket is already listening (bound on the main thread to fail early).
    handle->listener = evconnlistener_new(dispatcher_.base(), &Worker::onAccept, handle.get(),
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (handle->listener == nullptr) {
      spdlog::error("worker {}: cannot listen on fd {} for {}", index_, fd, listener_name);
      ::close(fd);
      return;
    }
    listeners_.push_back(std::move(handle));
  });
}

void Worker::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  auto* handle = static_cast<ListenerHandle*>(arg);
  Worker* self = handle->worker;
  if (self->max_connections_ > 0 && self->connections_.size() >= self->max_connections_) {
    // Over the per-worker cap: refuse cheaply rather than let one worker drown.
    self->ctx_.stats.protocolError(handle->name, "connection_limit").Increment();
    ::close(fd);
    return;
  }
  if (self->ctx_.overload &&
      self->ctx_.overload->isActive(policies::OverloadAction::StopAcceptingConnections)) {
    // Closed at once rather than left in the kernel's backlog: the client learns now and can
    // go to another replica, and an accepted-but-unserved socket holds no memory here.
    self->ctx_.overload->countTriggered(policies::OverloadAction::StopAcceptingConnections);
    ::close(fd);
    return;
  }
  auto connection = std::make_unique<network::Connection>(self->dispatcher_, fd, formatPeer(addr));
  auto manager = std::make_unique<ConnectionManager>(
      self->ctx_, std::move(connection), handle->name, [self](ConnectionManager& cm) {
        auto it = self->connections_.find(&cm);
        if (it == self->connections_.end()) {
          return;
        }
        auto owned = std::move(it->second);
        self->connections_.erase(it);
        self->connection_count_.store(self->connections_.size());
        self->dispatcher_.deferredDelete(std::move(owned));
      });
  if (self->ctx_.draining) {
    manager->shutdownNotice();
  }
  auto* raw = manager.get();
  self->connections_.emplace(raw, std::move(manager));
  self->connection_count_.store(self->connections_.size());
}

void Worker::setSnapshot(ConfigSnapshotConstSharedPtr snapshot) {
  dispatcher_.post([this, snapshot] { ctx_.onSnapshot(snapshot); });
}

void Worker::drain() {
  dispatcher_.post([this] {
    ctx_.draining = true;
    for (auto& handle : listeners_) {
      acceptQueued(*handle);
      evconnlistener_free(handle->listener);
      handle->listener = nullptr;
    }
    listeners_.clear();
    std::vector<ConnectionManager*> all;
    for (auto& [ptr, owned] : connections_) {
      all.push_back(ptr);
    }
    for (auto* cm : all) {
      if (connections_.count(cm)) {
        cm->shutdownNotice();
      }
    }
  });
}

void Worker::acceptQueued(ListenerHandle& handle) {
  // Connections the kernel has completed and queued on this socket are reset when it closes,
  // though their clients already sent requests (the old process of a --takeover handover, a
  // SIGTERM under load). Take them first: each is served one request, then closed.
  const evutil_socket_t fd = evconnlistener_get_fd(handle.listener);
  for (int taken = 0; taken < kMaxAcceptedAtDrain; ++taken) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    const int client =
        ::accept4(fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) {
      return;  // EAGAIN: the queue is empty (any other error: nothing more to take either)
    }
    onAccept(handle.listener, client, reinterpret_cast<sockaddr*>(&addr), static_cast<int>(len),
             &handle);
  }
}

void Worker::resetHighMemoryStreams(uint64_t bytes) {
  dispatcher_.post([this, bytes] {
    constexpr uint64_t kMinStreamBytes = 1 << 20;
    std::vector<ConnectionManager::StreamBytes> streams;
    for (auto& [ptr, owned] : connections_) {
      ptr->collectStreamBytes(streams);
    }
    std::vector<uint64_t> sizes;
    sizes.reserve(streams.size());
    for (const auto& s : streams) {
      sizes.push_back(s.bytes);
    }
    // Every stream chosen is still alive while this runs: a reset defers deletions to the end
    // of the loop turn.
    for (size_t i : policies::selectStreamsToReset(sizes, bytes, kMinStreamBytes)) {
      streams[i].stream->resetForOverload();
      ctx_.overload->countTriggered(policies::OverloadAction::ResetHighMemoryStreams);
    }
  });
}

void Worker::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (thread_.joinable()) {
    dispatcher_.post([this] {
      for (auto& handle : listeners_) {
        if (handle->listener) {
          evconnlistener_free(handle->listener);
        }
      }
      listeners_.clear();
      // Streams still open (drain timeout) reset their upstream attempts here; the pools'
      // connection objects are deferred-deleted and still point at their pools.
      connections_.clear();
      heartbeat_timer_.reset();
      event_base_loopexit(dispatcher_.base(), nullptr);
    });
    thread_.join();
    // Dispatcher::run() ran the deferred deletions before returning, so nothing refers to the
    // pools any more. The loop thread is gone: freeing its objects here races with nothing.
    ctx_.reap_timer.reset();
    ctx_.retired_upstreams.clear();
    ctx_.retired_unused_since.clear();
    ctx_.upstreams.clear();
  }
}

}  // namespace bulwark::server
