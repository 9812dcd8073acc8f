// The connection manager (server::ConnectionManager and its ActiveStreams: protocol sniffing,
// codec choice, path normalisation, route matching, the filter chain, the router's local
// replies, keep-alive, pipelining, drain and close) fed a client's byte stream over a real
// socketpair, on a worker context whose config holds only routes answered without an upstream:
// direct responses from a filter, and a route whose upstream has no host (the router's 503).
// Nothing here opens a connection to anything, so a run is fast and depends only on its input.
// Checked besides sanitizers: a route only ever sees a normalised path (no dot segment, no
// empty segment, no backslash, no encoded slash where the listener rejects or decodes them,
// the prefix it matched on); HTTP/1 output starts with a status line and HTTP/2 output with a
// SETTINGS frame; and when the client has gone, the connection is closed and every stream of it
// finished.
// Input: CodecInput (codec_fuzz.h). Decision 1 picks the listener (its escapedSlashes action),
// decision 2 whether the connection drains at once; the rest cut the byte stream into writes.

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/reload_state.h"
#include "proxy/router/route.h"
#include "proxy/server/connection_manager.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/upstream.h"
#include "tests/fuzz/codec_fuzz.h"
#include "tests/fuzz/fuzz_check.h"

namespace bulwark::fuzz {
namespace {

constexpr std::string_view kListeners[] = {"keep", "reject", "redirect", "forward"};
constexpr http::EscapedSlashes kEscapedSlashes[] = {
    http::EscapedSlashes::KeepUnchanged, http::EscapedSlashes::RejectRequest,
    http::EscapedSlashes::UnescapeAndRedirect, http::EscapedSlashes::UnescapeAndForward};

bool containsNoCase(std::string_view text, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= text.size(); ++i) {
    bool same = true;
    for (size_t j = 0; j < needle.size() && same; ++j) {
      const char a = text[i + j];
      const char b = needle[j];
      same = a == b || (a >= 'A' && a <= 'Z' && a - 'A' + 'a' == b);
    }
    if (same) {
      return true;
    }
  }
  return false;
}

/**
 * What every route of these listeners may assume of the path it is given: the listener
 * normalises and merges slashes, so no "//", no "." or ".." segment, no backslash; where %2F
 * and %5C are rejected or decoded, none is left.
 */
void checkRoutedPath(std::string_view target, http::EscapedSlashes escaped,
                     std::string_view prefix) {
  const std::string_view path = target.substr(0, target.find('?'));
  FUZZ_CHECK(path.substr(0, prefix.size()) == prefix);
  FUZZ_CHECK(path.find("//") == std::string_view::npos);
  FUZZ_CHECK(path.find('\\') == std::string_view::npos);
  FUZZ_CHECK(path.find("/./") == std::string_view::npos);
  FUZZ_CHECK(path.find("/../") == std::string_view::npos);
  FUZZ_CHECK(path != "/." && path != "/..");
  FUZZ_CHECK(path.size() < 2 || path.substr(path.size() - 2) != "/.");
  FUZZ_CHECK(path.size() < 3 || path.substr(path.size() - 3) != "/..");
  if (escaped == http::EscapedSlashes::RejectRequest ||
      escaped == http::EscapedSlashes::UnescapeAndForward) {
    FUZZ_CHECK(!containsNoCase(path, "%2f") && !containsNoCase(path, "%5c"));
  }
}

/**
 * The direct response: reads the whole request body, then answers 200 with a short body. The
 * path it was routed with is checked first. Thread: the fuzzing thread, one per request.
 */
class DirectResponseFilter : public http::HttpFilter {
public:
  DirectResponseFilter(http::EscapedSlashes escaped, std::string_view prefix)
      : escaped_(escaped), prefix_(prefix) {}

  http::FilterStatus onRequestHeaders(http::RequestHeaders& headers, bool end_stream) override {
    if (headers.method != "CONNECT") {
      checkRoutedPath(headers.path, escaped_, prefix_);
    }
    if (!end_stream) {
      return http::FilterStatus::StopIterationAndBuffer;
    }
    answer(0);
    return http::FilterStatus::StopIteration;
  }
  http::FilterStatus onRequestData(evbuffer* buffered, bool end_stream) override {
    if (!end_stream) {
      return http::FilterStatus::StopIterationAndBuffer;
    }
    answer(evbuffer_get_length(buffered));
    return http::FilterStatus::StopIteration;
  }

private:
  void answer(size_t body_bytes) {
    http::LocalReply reply(http::LocalReplyKind::RateLimited);  // names it in metrics only
    reply.verbatim = true;
    reply.status = 200;
    reply.body = "read " + std::to_string(body_bytes) + "\n";
    callbacks_->sendLocalReply(std::move(reply));
  }

  http::EscapedSlashes escaped_;
  std::string_view prefix_;
};

/**
 * The worker a connection runs on: the process's dispatcher, stats, and a config snapshot of
 * four listeners (one per escapedSlashes action, protocol auto, tight limits), each with the
 * routes /public (direct), /none (an upstream without hosts) and / (direct). Built once.
 * Thread: the fuzzing thread.
 */
class Worker {
public:
  Worker() {
    auto snapshot = std::make_shared<server::ConfigSnapshot>();
    config::UpstreamSpec upstream_spec;
    upstream_spec.name = "nowhere";
    auto upstream = std::make_shared<upstream::Upstream>(
        upstream_spec, upstream::buildStaticHostSet(upstream_spec));
    snapshot->upstreams["nowhere"] = upstream;
    for (size_t i = 0; i < std::size(kListeners); ++i) {
      router::ListenerConfig listener;
      listener.spec.name = std::string(kListeners[i]);
      listener.spec.protocol = config::ListenerProtocol::Auto;
      listener.spec.limits.max_request_headers_bytes = 4096;
      listener.spec.limits.max_headers_count = 32;
      listener.spec.limits.max_request_body_bytes = 64UL * 1024;
      listener.spec.limits.max_concurrent_streams = 16;
      listener.path.escaped_slashes = kEscapedSlashes[i];
      addRoute(listener, upstream, "public", "/public", true);
      addRoute(listener, upstream, "none", "/none", false);
      addRoute(listener, upstream, "root", "/", true);
      snapshot->listeners.emplace(listener.spec.name, std::move(listener));
    }
    ctx_.snapshot = snapshot;
  }

  server::WorkerContext& context() { return ctx_; }

private:
  void addRoute(router::ListenerConfig& listener, const upstream::UpstreamSharedPtr& upstream,
                const std::string& name, std::string_view prefix, bool direct) {
    config::RouteSpec spec;
    spec.name = name;
    spec.upstream = "nowhere";
    spec.match.path = {config::PathMatchSpec::Kind::Prefix, std::string(prefix)};
    auto route = router::Route::create(spec, state_);
    FUZZ_CHECK(route.isOk());
    router::RouteEntry entry;
    entry.route = *route;
    entry.upstream = upstream;
    entry.stats = stats_.routeStats(listener.spec.name, name, "nowhere");
    if (direct) {
      const http::EscapedSlashes escaped = listener.path.escaped_slashes;
      entry.filters.push_back(
          [escaped, prefix] { return std::make_unique<DirectResponseFilter>(escaped, prefix); });
    }
    listener.routes.push_back(std::move(entry));
  }

  stats::Stats stats_{{0.1, 1}};
  server::WorkerContext ctx_{dispatcher(), stats_, 0};
  ReloadableState state_;
};

/**
 * The client's end of the socketpair, non-blocking: what does not fit in the socket waits in
 * `pending_` (the manager may have stopped reading), and what the manager wrote is collected.
 * Thread: the fuzzing thread.
 */
class Client {
public:
  Client() {
    int fds[2];
    // Both ends non-blocking, as an accepted socket is.
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    server_fd_ = fds[0];
    fd_ = fds[1];
  }
  ~Client() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /** The manager's socket, handed over once. */
  int takeServerFd() { return server_fd_; }

  void write(std::string_view bytes) {
    pending_.append(bytes);
    flush();
  }
  /** Sends what the socket takes now; true when something moved. */
  bool flush() {
    bool moved = false;
    while (!pending_.empty() && fd_ >= 0) {
      const ssize_t n = ::send(fd_, pending_.data(), pending_.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        break;
      }
      pending_.erase(0, static_cast<size_t>(n));
      moved = true;
    }
    return moved;
  }
  /** Reads what is waiting; true when something arrived (or end of stream was seen). */
  bool read() {
    bool moved = false;
    char buf[16384];
    while (fd_ >= 0) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        received_.append(buf, static_cast<size_t>(n));
        moved = true;
        continue;
      }
      if (n == 0 && !eof_) {
        eof_ = true;
        moved = true;
      }
      break;
    }
    return moved;
  }
  void shutdownWrite() {
    pending_.clear();  // a client that leaves does not finish its writes
    ::shutdown(fd_, SHUT_WR);
  }
  void close() {
    ::close(fd_);
    fd_ = -1;
  }
  const std::string& received() const { return received_; }

private:
  int server_fd_ = -1;
  int fd_ = -1;
  std::string pending_;
  std::string received_;
  bool eof_ = false;
};

/**
 * Turns the loop and moves the client's bytes until nothing changes any more (bounded), so
 * every reaction to what was sent so far has happened.
 */
void settle(Client& client) {
  for (int turn = 0; turn < 64; ++turn) {
    runLoop();
    const bool sent = client.flush();
    const bool got = client.read();
    if (!sent && !got) {
      runLoop();
      if (!client.flush() && !client.read()) {
        return;
      }
    }
  }
}

}  // namespace
}  // namespace bulwark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulwark;
  static auto* worker = new fuzz::Worker();
  server::WorkerContext& ctx = worker->context();
  fuzz::CodecInput in(data, size);
  const uint8_t listener = in.next() % std::size(fuzz::kListeners);
  const bool drain = (in.next() & 1) != 0;

  fuzz::Client client;
  std::unique_ptr<server::ConnectionManager> manager;
  bool closed = false;
  auto connection = std::make_unique<network::Connection>(fuzz::dispatcher(), client.takeServerFd(),
                                                          "127.0.0.1:1");
  manager = std::make_unique<server::ConnectionManager>(
      ctx, std::move(connection), std::string(fuzz::kListeners[listener]),
      [&](server::ConnectionManager&) {
        closed = true;
        fuzz::dispatcher().deferredDelete(std::move(manager));
      });
  if (drain) {
    manager->shutdownNotice();
  }
  while (in.streamLeft() > 0 && !closed) {
    client.write(in.take(in.nextChunk()));
    fuzz::settle(client);
  }
  // The client has said all it will: it half-closes, reads what comes, then leaves.
  client.shutdownWrite();
  fuzz::settle(client);
  const std::string& out = client.received();
  if (!out.empty()) {
    const bool http1 = out.compare(0, 9, "HTTP/1.1 ") == 0;
    // An HTTP/2 connection opens with the server's SETTINGS (frame type 4, on stream 0).
    const bool http2 = out.size() >= 9 && out[3] == 4 && out.compare(5, 4, "\0\0\0\0", 4) == 0;
    FUZZ_CHECK(http1 || http2);
  }
  client.close();
  for (int i = 0; i < 64 && !closed; ++i) {
    fuzz::runLoop();
  }
  FUZZ_CHECK(closed);  // a connection whose client left must not linger
  fuzz::runLoop();     // the manager and its streams are deleted on the loop
  FUZZ_CHECK(manager == nullptr);
  FUZZ_CHECK(ctx.active_streams == 0);
  return 0;
}
