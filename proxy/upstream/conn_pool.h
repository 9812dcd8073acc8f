#pragma once

#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/host.h"
#include "proxy/upstream/stream_pool.h"

namespace bulwark::upstream {

class Upstream;

enum class PoolProtocol { Http1, Http2 };

struct ConnPoolSettings {
  PoolProtocol protocol = PoolProtocol::Http1;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds idle_timeout{60000};
  uint32_t max_requests_per_connection = 0;
  uint32_t max_concurrent_streams = 100;
  // maxPendingRequests is upstream-wide (Upstream::tryAcquirePending), not per pool.
};

/**
 * Connections from one worker to one host: HTTP/1.1 keep-alive reuse (one stream per
 * connection) or HTTP/2 multiplexing (many streams per connection, new connections only when
 * every connection is at its stream limit). The upstream-wide connection cap is an exact
 * atomic counter on Upstream, so pools on all workers together never exceed it.
 * Thread: owning worker.
 */
class ConnPool : public StreamPool {
public:
  ConnPool(event::Dispatcher& dispatcher, HostSharedPtr host, Upstream& upstream,
           ConnPoolSettings settings);
  ~ConnPool() override;

  // StreamPool
  Cancellable* newStream(http::ResponseDecoder& decoder, ConnPoolCallbacks& callbacks) override;

  /** Graceful: no new streams on existing connections; close them once idle. */
  void drainConnections();
  size_t connectionCount() const { return clients_.size(); }
  size_t pendingCount() const { return pending_.size(); }
  const Host& host() const { return *host_; }

private:
  class ActiveClient;
  /** Holds one upstream-wide pending slot (acquired before construction) until destroyed. */
  struct PendingRequest : public Cancellable {
    PendingRequest(ConnPool& p, http::ResponseDecoder& d, ConnPoolCallbacks& c)
        : pool(p), decoder(d), callbacks(c) {}
    ~PendingRequest() override;
    void cancel() override;
    ConnPool& pool;
    http::ResponseDecoder& decoder;
    ConnPoolCallbacks& callbacks;
  };

  ActiveClient* findReadyClient();
  bool tryCreateClient();
  void onClientReady(ActiveClient& client);
  void onClientClosed(ActiveClient& client, bool connect_failed, PoolFailureReason reason);
  void onStreamClosed(ActiveClient& client);
  void servePending();
  void settleIdle(ActiveClient& client);
  void closeClients(const std::vector<ActiveClient*>& to_close);
  void attach(ActiveClient& client, http::ResponseDecoder& decoder, ConnPoolCallbacks& callbacks);

  event::Dispatcher& dispatcher_;
  HostSharedPtr host_;
  Upstream& upstream_;
  ConnPoolSettings settings_;
  std::list<std::unique_ptr<ActiveClient>> clients_;
  std::list<std::unique_ptr<PendingRequest>> pending_;
  size_t connecting_ = 0;
  bool draining_ = false;
  // Connections whose stream ended since the last settle pass, which runs once per loop turn
  // however many streams ended in it (one post, not one per stream).
  std::vector<std::pair<std::weak_ptr<bool>, ActiveClient*>> stream_closed_;
  bool settle_posted_ = false;
  // Posted callbacks check this so they never touch a destroyed pool.
  std::shared_ptr<bool> alive_token_ = std::make_shared<bool>(true);
};
using ConnPoolPtr = std::unique_ptr<ConnPool>;

}  // namespace bulwark::upstream
