#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <nghttp2/nghttp2.h>

#include "bench/loadgen/connection.h"

namespace bulwark::bench {

/**
 * h2c (prior knowledge) connection multiplexing up to max_streams requests (fewer when the
 * peer's SETTINGS_MAX_CONCURRENT_STREAMS is lower). grpc mode reads grpc-status from trailers or
 * a Trailers-Only HEADERS frame. After GOAWAY it takes no new streams and is replaced by a fresh
 * connection once its streams are done.
 * Thread: the generator's loop.
 */
class Http2Connection final : public ClientConnection {
public:
  Http2Connection(event_base* base, const sockaddr_storage& address, socklen_t address_len,
                  ConnectionOwner& owner, size_t target, size_t max_streams);
  ~Http2Connection() override;

  void connect() override;
  bool hasCapacity() const override;
  size_t inFlight() const override { return streams_.size(); }
  void send(PendingRequest& request, const PreparedRequest& prepared) override;
  void cancel(PendingRequest& request) override;
  void shutdown() override;

private:
  struct Stream {
    PendingRequest* request = nullptr;
    const std::string* body = nullptr;
    /** The body of a per-request PreparedRequest (a temporary): the stream keeps its own copy. */
    std::string owned_body;
    size_t body_offset = 0;
    bool grpc = false;
    int status = 0;
    bool degraded = false;
    bool end_stream = false;
    std::optional<int> grpc_status;
  };

  static void onRead(bufferevent* bev, void* arg);
  static void onEvent(bufferevent* bev, short what, void* arg);
  static int onHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data);
  static int onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data);
  static int onStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* user_data);
  static ssize_t readBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

  bool open();
  /** Feeds the socket's input to nghttp2 and flushes; false (torn down) on a fatal error. */
  bool receive();
  /** Moves nghttp2's pending frames into the socket; false after a fatal session error. */
  bool flush();
  /** Frees the session and socket; unfinished streams end with `kind` unless it is null. */
  void teardown(const char* kind);
  /** After I/O: close when the session is finished or drained, then deliver outcomes. */
  void settle();

  size_t max_streams_;
  bufferevent* bev_ = nullptr;
  nghttp2_session* session_ = nullptr;
  bool draining_ = false;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
};

}  // namespace bulwark::bench
