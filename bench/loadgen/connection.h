#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/loadgen/options.h"
#include "bench/loadgen/stats.h"

struct event;
struct event_base;
struct bufferevent;

namespace bulwark::bench {

using Clock = std::chrono::steady_clock;

class ClientConnection;

/**
 * One scheduled request from issue to outcome. Owned by the generator until it is done and
 * every older request is done too; connections only point at unfinished ones.
 * Thread: the generator's loop.
 */
struct PendingRequest {
  uint64_t sequence = 0;
  size_t target = 0;
  size_t phase = 0;
  size_t request = 0;
  size_t second = 0;
  Clock::time_point intended{};
  Clock::time_point deadline{};
  bool done = false;
  bool queued = false;
  /** Resends after Outcome::unprocessed. */
  int retries = 0;
  /** Set while a connection carries it (until its outcome is delivered). */
  ClientConnection* connection = nullptr;
};

/**
 * A request template made ready for one target: the HTTP/1.1 bytes, or the HTTP/2 header list
 * and body (gRPC-framed for grpc).
 * Thread: immutable after construction.
 */
struct PreparedRequest {
  std::string http1_bytes;
  bool head = false;
  /**
   * GET, HEAD, OPTIONS, PUT, DELETE, TRACE, or any request carrying an Idempotency-Key: may be
   * resent after a keep-alive race.
   */
  bool idempotent = false;
  /** A header value holds kSequencePlaceholder: send withSequence(), never this one. */
  bool per_request = false;
  /** Made by withSequence() for one send: a connection keeps no pointer into it. */
  bool per_request_copy = false;
  /** Pseudo-headers first, names lower case, host folded into :authority. */
  HeaderList h2_headers;
  std::string h2_body;
  bool grpc = false;
};

PreparedRequest prepareRequest(const RequestTemplate& t, const TargetAddress& target,
                               LoadProtocol protocol);

/**
 * In a header value, replaced by the request's sequence number (unique within a run, the same on
 * the generator's own resends): one Idempotency-Key per logical request, as real clients send.
 */
inline constexpr std::string_view kSequencePlaceholder = "{sequence}";

/** `prepared` with kSequencePlaceholder in its header values replaced by `sequence`. */
PreparedRequest withSequence(const PreparedRequest& prepared, uint64_t sequence);

/** What a connection reports to the generator. Thread: the generator's loop. */
class ConnectionOwner {
public:
  virtual ~ConnectionOwner() = default;
  /** Every connect attempt ends here once (handshake done, or failed). */
  virtual void onConnectResult(bool ok) = 0;
  /** `request` ended with `outcome`; the connection has already let go of it. */
  virtual void onFinished(PendingRequest& request, const Outcome& outcome) = 0;
  /** The connection can take more requests (a response ended, or it closed). */
  virtual void onCapacity(size_t target) = 0;
};

/**
 * A client connection to one target that reconnects on demand. Outcomes are handed to the
 * owner after the I/O callback that produced them has unwound (or from a zero-delay event when
 * they happen inside send()), so the owner may call send() again from onFinished/onCapacity.
 * Thread: the generator's loop.
 */
class ClientConnection {
public:
  ClientConnection(event_base* base, const sockaddr_storage& address, socklen_t address_len,
                   ConnectionOwner& owner, size_t target);
  virtual ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  /** Opens the connection ahead of the first request (warm-up); no-op when already open. */
  virtual void connect() = 0;
  /** True when send() would carry one more request right now (possibly by connecting). */
  virtual bool hasCapacity() const = 0;
  /** Requests it carries. */
  virtual size_t inFlight() const = 0;
  /** TCP handshake done. */
  bool isOpen() const { return open_; }
  virtual void send(PendingRequest& request, const PreparedRequest& prepared) = 0;
  /** The owner gave up on `request` (timeout): drop it without reporting, free its slot. */
  virtual void cancel(PendingRequest& request) = 0;
  /** Closes without reporting anything (end of run). */
  virtual void shutdown() = 0;

protected:
  /** New non-blocking socket + bufferevent connecting to the target; nullptr on failure. */
  bufferevent* startConnect();
  /** Queues the outcome; `request.connection` stays set until deliver() hands it over. */
  void complete(PendingRequest& request, Outcome outcome);
  /** cancel(): drops a completion not yet delivered and detaches the request. */
  void forget(PendingRequest& request);
  /** Hands queued completions to the owner, then reports capacity. */
  void deliver();
  /** deliver() from a zero-delay event (used where the owner is on the stack). */
  void deliverSoon();

  event_base* base_;
  sockaddr_storage address_;
  socklen_t address_len_;
  ConnectionOwner& owner_;
  size_t target_;
  bool open_ = false;

private:
  static void onDeliverEvent(int fd, short what, void* arg);

  std::vector<std::pair<PendingRequest*, Outcome>> completions_;
  bool capacity_changed_ = false;
  event* deliver_ev_ = nullptr;
};

}  // namespace bulwark::bench
