#pragma once

// Downstream and worker sides of router tests: callbacks that record what the router sent to the
// client, and a RouterContext whose per-worker upstreams are FakeWorkerUpstreams.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/http/headers.h"
#include "proxy/http/local_reply.h"
#include "proxy/router/router.h"
#include "proxy/router/router_context.h"
#include "tests/mocks/fake_stream_pool.h"

namespace bulwark::mocks {

/** Records the response (or local reply) a Router produced for its client. Thread: test. */
class FakeRouterCallbacks : public router::RouterCallbacks {
public:
  void encodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) override;
  void encodeData(evbuffer* data, bool end_stream) override;
  void encodeTrailers(http::HeaderMap&& trailers) override;
  void sendLocalReply(http::LocalReply reply) override;
  bool fallbackReplaces(config::FallbackTrigger trigger) const override {
    return fallback_triggers.contains(trigger);
  }
  void readDisableDownstream(bool disable) override { read_disable_calls.push_back(disable); }
  bool downstreamResponseStarted() const override { return response_headers != nullptr; }

  /** The client got its whole answer: a complete response or a local reply. */
  bool done() const { return response_complete || !local_replies.empty(); }
  /** The one local reply, or fails the test. */
  const http::LocalReply& localReply() const;
  /** The status the client saw: the response's, else the local reply's; 0 when none yet. */
  uint32_t status() const;

  /** Triggers the route's fallback answers (fallbackReplaces). */
  std::set<config::FallbackTrigger> fallback_triggers;

  http::ResponseHeadersPtr response_headers;
  std::string response_body;
  std::optional<http::HeaderMap> response_trailers;
  bool response_complete = false;
  std::vector<http::LocalReply> local_replies;
  std::vector<bool> read_disable_calls;
};

/**
 * A worker for routers under test: a real dispatcher (timers), a seeded generator, and one
 * FakeWorkerUpstream per upstream, made on first use from the upstream's host set.
 * Thread: test.
 */
class FakeRouterContext : public router::RouterContext {
public:
  explicit FakeRouterContext(event::Dispatcher& dispatcher, uint64_t seed = 1)
      : RouterContext(dispatcher, seed) {}

  FakeWorkerUpstream& upstreamFor(const upstream::UpstreamSharedPtr& upstream) override;

private:
  std::map<const upstream::Upstream*, std::unique_ptr<FakeWorkerUpstream>> upstreams_;
};

}  // namespace bulwark::mocks
