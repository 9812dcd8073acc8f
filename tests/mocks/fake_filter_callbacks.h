#pragma once

// Test doubles for filter unit tests: FilterCallbacks that record what a filter asked for, and a
// FactoryContext with its own metric registry and shared-state map. Timers and posts run on a
// real Dispatcher driven with tests/mocks/dispatcher_loop.h.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proxy/config/spec.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/filter.h"
#include "proxy/stats/stats.h"
#include "tests/mocks/dispatcher_loop.h"

namespace bulwark::mocks {

/** Records continueRequest() and local replies. Thread: test thread. */
class FakeFilterCallbacks : public http::FilterCallbacks {
public:
  explicit FakeFilterCallbacks(event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

  void continueRequest() override { ++continued; }
  void sendLocalReply(http::LocalReply reply) override {
    replies.push_back(std::move(reply));
    if (on_local_reply) {
      on_local_reply();
    }
  }
  event::Dispatcher& dispatcher() override { return dispatcher_; }
  const http::RequestHeaders& requestHeaders() const override { return headers; }
  const std::string& downstreamAddress() const override { return peer; }
  bool isGrpc() const override { return grpc; }

  /** The one local reply, or fails the test. */
  const http::LocalReply& reply() const {
    EXPECT_EQ(replies.size(), 1u);
    return replies.front();
  }
  std::optional<std::string> replyHeader(std::string_view name) const {
    if (replies.empty()) {
      return std::nullopt;
    }
    auto value = replies.back().headers.get(name);
    return value ? std::optional<std::string>(std::string(*value)) : std::nullopt;
  }

  http::RequestHeaders headers;
  std::string peer = "10.0.0.1:40000";
  bool grpc = false;
  int continued = 0;
  std::vector<http::LocalReply> replies;
  /** Runs inside sendLocalReply (as the connection manager completes the stream there). */
  std::function<void()> on_local_reply;

private:
  event::Dispatcher& dispatcher_;
};

/** FactoryContext over one route, a private registry and a shared-state map. Thread: test. */
class FakeFactoryContext : public http::FactoryContext {
public:
  explicit FakeFactoryContext(config::RouteSpec route)
      : stats_({0.1, 1}), route_(std::move(route)) {}

  stats::Stats& stats() override { return stats_; }
  const config::RouteSpec& route() const override { return route_; }
  ReloadableState& reloadableState() override { return state_; }
  void setRoute(config::RouteSpec route) { route_ = std::move(route); }
  size_t stateCount() const { return state_.size(); }
  /** The one state object of type T this context holds. */
  template <typename T>
  std::shared_ptr<T> onlyState() const {
    auto all = state_.all<T>();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? nullptr : all.front();
  }

private:
  stats::Stats stats_;
  config::RouteSpec route_;
  ReloadableState state_;
};

/** One request through one filter: its callbacks and the filter. Thread: test. */
struct FilterUnderTest {
  FilterUnderTest(event::Dispatcher& dispatcher, const http::FilterFactoryCb& make)
      : callbacks(std::make_unique<FakeFilterCallbacks>(dispatcher)), filter(make()) {
    filter->setCallbacks(*callbacks);
  }
  http::FilterStatus start() { return filter->onRequestHeaders(callbacks->headers, true); }
  /** Completes the stream as the connection manager does (status 200 from upstream). */
  void complete(uint32_t status = 200, bool local_reply = false,
                std::string detail = "via_upstream") {
    http::StreamInfo info;
    info.status = status;
    info.local_reply = local_reply;
    info.response_detail = std::move(detail);
    filter->onStreamComplete(info);
  }

  std::unique_ptr<FakeFilterCallbacks> callbacks;
  http::HttpFilterPtr filter;
};

/** Builds a route's filter factory callback, failing the test on a factory error. */
inline http::FilterFactoryCb createOrFail(http::FilterFactory& factory, http::FactoryContext& ctx) {
  auto cb = factory.create(ctx);
  EXPECT_TRUE(cb.isOk()) << cb.error();
  return cb.isOk() ? *cb : http::FilterFactoryCb();
}

}  // namespace bulwark::mocks
