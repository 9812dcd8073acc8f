#include "proxy/upstream/conn_pool.h"

#include "common/assert.h"
#include "proxy/http/http1_client_codec.h"
#include "proxy/upstream/client_codec_factory.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::upstream {

/**
 * One upstream connection with its client codec. Thread: owning worker.
 */
class ConnPool::ActiveClient : public network::ConnectionCallbacks,
                               public http::ClientConnectionCallbacks {
public:
  ActiveClient(ConnPool& pool) : pool_(pool) {
    connection_ = network::Connection::connect(pool.dispatcher_, pool.host_->address,
                                               pool.settings_.connect_timeout);
    connection_->setCallbacks(this);
    if (const auto& tls = pool.upstream_.tlsContext()) {
      connection_->enableTls(tls, pool.upstream_.tlsServerName(), pool.host_->address);
    }
    pool.host_->connections_active.fetch_add(1, std::memory_order_relaxed);
    idle_timer_ = pool.dispatcher_.createTimer([this] {
      if (codec_ && codec_->activeStreams() == 0) {
        close();
      }
    });
  }
  ~ActiveClient() override {
    pool_.host_->connections_active.fetch_sub(1, std::memory_order_relaxed);
    pool_.upstream_.releaseConnection();
  }

  // network::ConnectionCallbacks
  void onData(evbuffer* input) override {
    if (!codec_) {
      return;
    }
    auto status = codec_->dispatch(input);
    if (!status.isOk()) {
      close();
    }
  }
  void onEvent(network::ConnectionEvent event) override {
    switch (event) {
      case network::ConnectionEvent::Connected:
        connected_ = true;
        codec_ = createClientCodec(pool_.settings_, *connection_, *this);
        pool_.onClientReady(*this);
        return;
      case network::ConnectionEvent::ConnectTimeout:
        closed(true, PoolFailureReason::ConnectTimeout);
        return;
      case network::ConnectionEvent::ConnectFailure:
        closed(true, PoolFailureReason::ConnectFailure);
        return;
      case network::ConnectionEvent::TlsFailure:
        if (connected_ && codec_) {
          codec_->onTlsFailure();  // refused after our side of the handshake finished
        }
        closed(!connected_, PoolFailureReason::TlsFailure);
        return;
      case network::ConnectionEvent::RemoteClose:
      case network::ConnectionEvent::LocalClose:
        closed(!connected_, PoolFailureReason::ConnectionClosed);
        return;
    }
  }
  void onAboveWriteBufferHighWatermark() override {
    if (codec_) {
      codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
    }
  }
  void onBelowWriteBufferLowWatermark() override {
    if (codec_) {
      codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
    }
  }

  // http::ClientConnectionCallbacks
  void onGoAway() override { go_away_ = true; }
  void onStreamClosed() override {
    ++streams_completed_;
    pool_.onStreamClosed(*this);
  }

  bool canTakeStream() const {
    if (!codec_ || go_away_ || closed_ || pool_.draining_) {
      return false;
    }
    if (pool_.settings_.max_requests_per_connection > 0 &&
        streams_started_ >= pool_.settings_.max_requests_per_connection) {
      return false;
    }
    return codec_->canCreateStream();
  }
  http::RequestEncoder& newStream(http::ResponseDecoder& decoder) {
    ++streams_started_;
    idle_timer_->disableTimer();
    return codec_->newStream(decoder);
  }
  bool idle() const { return codec_ && codec_->activeStreams() == 0; }
  bool reusable() const {
    return !go_away_ && !closed_ && !pool_.draining_ &&
           (pool_.settings_.max_requests_per_connection == 0 ||
            streams_started_ < pool_.settings_.max_requests_per_connection);
  }
  void armIdleTimer() { idle_timer_->enableTimer(pool_.settings_.idle_timeout); }
  void close() {
    if (closed_) {
      return;
    }
    connection_->close(network::Connection::CloseType::NoFlush);
  }
  bool connected() const { return connected_; }
  bool isClosed() const { return closed_; }
  std::weak_ptr<bool> aliveToken() const { return alive_; }

private:
  void closed(bool connect_failed, PoolFailureReason reason) {
    if (closed_) {
      return;
    }
    closed_ = true;
    idle_timer_->disableTimer();
    if (codec_) {
      codec_->onConnectionClosed(connect_failed);
    }
    pool_.onClientClosed(*this, connect_failed, reason);
  }

  ConnPool& pool_;
  network::ConnectionPtr connection_;
  http::ClientConnectionPtr codec_;
  event::TimerPtr idle_timer_;
  bool connected_ = false;
  bool go_away_ = false;
  bool closed_ = false;
  uint64_t streams_started_ = 0;
  uint64_t streams_completed_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for callbacks posted by the pool

  friend class ConnPool;
};

ConnPool::ConnPool(event::Dispatcher& dispatcher, HostSharedPtr host, Upstream& upstream,
                   ConnPoolSettings settings)
    : dispatcher_(dispatcher), host_(std::move(host)), upstream_(upstream), settings_(settings) {}

ConnPool::~ConnPool() {
  pending_.clear();
  for (auto& client : clients_) {
    client->connection_->setCallbacks(nullptr);
  }
  clients_.clear();
}

ConnPool::PendingRequest::~PendingRequest() { pool.upstream_.releasePending(); }

void ConnPool::PendingRequest::cancel() {
  pool.pending_.remove_if(
      [this](const std::unique_ptr<PendingRequest>& p) { return p.get() == this; });
}

ConnPool::ActiveClient* ConnPool::findReadyClient() {
  for (auto& client : clients_) {
    if (client->canTakeStream()) {
      return client.get();
    }
  }
  return nullptr;
}

bool ConnPool::tryCreateClient() {
  if (draining_) {
    return false;
  }
  if (!upstream_.tryAcquireConnection()) {
    return false;
  }
  ++connecting_;
  clients_.push_back(std::make_unique<ActiveClient>(*this));
  return true;
}

void ConnPool::attach(ActiveClient& client, http::ResponseDecoder& decoder,
                      ConnPoolCallbacks& callbacks) {
  auto& encoder = client.newStream(decoder);
  callbacks.onPoolReady(encoder, *host_);
}

Cancellable* ConnPool::newStream(http::ResponseDecoder& decoder, ConnPoolCallbacks& callbacks) {
  BULWARK_ASSERT(dispatcher_.isThisThread());
  if (auto* client = findReadyClient()) {
    attach(*client, decoder, callbacks);
    return nullptr;
  }
  // maxPendingRequests counts queued requests of all workers' pools (exact CAS).
  if (!upstream_.tryAcquirePending()) {
    callbacks.onPoolFailure(PoolFailureReason::Overflow, "upstream pending requests overflow");
    return nullptr;
  }
  // HTTP/2: one connection in progress serves many pending streams; HTTP/1: one per request.
  size_t wanted = settings_.protocol == PoolProtocol::Http2 ? 1 : pending_.size() + 1;
  if (connecting_ < wanted && !tryCreateClient() && connecting_ == 0 && clients_.empty()) {
    upstream_.releasePending();
    callbacks.onPoolFailure(PoolFailureReason::Overflow, "upstream max connections reached");
    return nullptr;
  }
  pending_.push_back(std::make_unique<PendingRequest>(*this, decoder, callbacks));
  return pending_.back().get();
}

void ConnPool::onClientReady(ActiveClient& client) {
  if (connecting_ > 0) {
    --connecting_;
  }
  servePending();
  settleIdle(client);
}

void ConnPool::servePending() {
  while (!pending_.empty()) {
    auto* client = findReadyClient();
    if (client == nullptr) {
      break;
    }
    auto request = std::move(pending_.front());
    pending_.pop_front();
    attach(*client, request->decoder, request->callbacks);
  }
}

void ConnPool::settleIdle(ActiveClient& client) {
  // Only the connection whose stream just ended can have become idle: an idle one starts its
  // idle timer, a spent one (no reuse left) closes. O(1), not a walk over every connection.
  if (client.idle() && !client.isClosed()) {
    if (!client.reusable()) {
      client.close();
    } else {
      client.armIdleTimer();
    }
  }
}

void ConnPool::closeClients(const std::vector<ActiveClient*>& to_close) {
  for (auto* client : to_close) {
    bool still_here = false;
    for (auto& c : clients_) {
      still_here = still_here || c.get() == client;
    }
    if (still_here) {
      client->close();
    }
  }
}

void ConnPool::onStreamClosed(ActiveClient& client) {
  // Defer: the codec is still inside its own callback stack.
  stream_closed_.emplace_back(client.aliveToken(), &client);
  if (settle_posted_) {
    return;
  }
  settle_posted_ = true;
  dispatcher_.post([this, alive = std::weak_ptr<bool>(alive_token_)] {
    if (alive.expired()) {
      return;
    }
    settle_posted_ = false;
    auto closed = std::move(stream_closed_);
    stream_closed_.clear();
    servePending();
    for (auto& [client_alive, raw] : closed) {
      if (!client_alive.expired()) {
        settleIdle(*raw);
      }
    }
  });
}

void ConnPool::onClientClosed(ActiveClient& client, bool connect_failed, PoolFailureReason reason) {
  if (!client.connected() && connecting_ > 0) {
    --connecting_;
  }
  if (connect_failed) {
    host_->connect_failures_total.fetch_add(1, std::memory_order_relaxed);
    upstream_.connect_failures_total.fetch_add(1, std::memory_order_relaxed);
    if (upstream_.stats()) {
      upstream_.stats()->connectFailure();
    }
    // A failed connect fails the oldest waiting request (HTTP/1: one connection was made for it).
    size_t to_fail = settings_.protocol == PoolProtocol::Http2
                         ? pending_.size()
                         : std::min<size_t>(1, pending_.size());
    if (connecting_ > 0 && settings_.protocol == PoolProtocol::Http2) {
      to_fail = 0;
    }
    for (size_t i = 0; i < to_fail && !pending_.empty(); ++i) {
      auto request = std::move(pending_.front());
      pending_.pop_front();
      request->callbacks.onPoolFailure(
          reason, reason == PoolFailureReason::ConnectTimeout ? "upstream connect timeout"
                  : reason == PoolFailureReason::TlsFailure   ? "upstream TLS handshake failed"
                                                              : "upstream connect failure");
    }
  }
  for (auto it = clients_.begin(); it != clients_.end(); ++it) {
    if (it->get() == &client) {
      auto owned = std::move(*it);
      clients_.erase(it);
      owned->connection_->setCallbacks(nullptr);
      // The connection object may be on the stack (we are inside its callback): defer both.
      struct Holder : event::DeferredDeletable {
        std::unique_ptr<ActiveClient> client;
      };
      auto holder = std::make_unique<Holder>();
      holder->client = std::move(owned);
      dispatcher_.deferredDelete(std::move(holder));
      break;
    }
  }
  // Pending requests that still wait need a new connection.
  if (!pending_.empty()) {
    size_t wanted = settings_.protocol == PoolProtocol::Http2 ? 1 : pending_.size();
    while (connecting_ < wanted && tryCreateClient()) {
    }
    if (connecting_ == 0 && findReadyClient() == nullptr) {
      while (!pending_.empty()) {
        auto request = std::move(pending_.front());
        pending_.pop_front();
        request->callbacks.onPoolFailure(PoolFailureReason::Overflow,
                                         "upstream max connections reached");
      }
    }
  }
}

void ConnPool::drainConnections() {
  draining_ = true;
  std::vector<ActiveClient*> to_close;
  for (auto& client : clients_) {
    if (client->idle()) {
      to_close.push_back(client.get());
    }
  }
  closeClients(to_close);
}

}  // namespace bulwark::upstream
