#pragma once

#include <string>

#include <llhttp.h>

#include "bench/loadgen/connection.h"

namespace bulwark::bench {

/**
 * HTTP/1.1 keep-alive connection with one request in flight (no pipelining, like a browser or
 * wrk). Responses are parsed by llhttp; "Connection: close" or a close-delimited body closes it
 * and the next request reconnects.
 * Thread: the generator's loop.
 */
class Http1Connection final : public ClientConnection {
public:
  using ClientConnection::ClientConnection;
  ~Http1Connection() override;

  void connect() override;
  bool hasCapacity() const override { return current_ == nullptr; }
  size_t inFlight() const override { return current_ == nullptr ? 0 : 1; }
  void send(PendingRequest& request, const PreparedRequest& prepared) override;
  void cancel(PendingRequest& request) override;
  void shutdown() override;

private:
  static void onRead(bufferevent* bev, void* arg);
  static void onEvent(bufferevent* bev, short what, void* arg);
  static int onMessageBegin(llhttp_t* parser);
  static int onHeaderField(llhttp_t* parser, const char* at, size_t length);
  static int onHeaderValue(llhttp_t* parser, const char* at, size_t length);
  static int onHeaderValueComplete(llhttp_t* parser);
  static int onHeadersComplete(llhttp_t* parser);
  static int onMessageComplete(llhttp_t* parser);

  bool open();
  void readAvailable();
  /** Frees the socket; the current request (if any) ends with `kind` unless kind is null. */
  void teardown(const char* kind);
  void resetParser();

  bufferevent* bev_ = nullptr;
  llhttp_t parser_{};
  llhttp_settings_t settings_{};
  PendingRequest* current_ = nullptr;
  bool current_head_ = false;
  bool current_idempotent_ = false;
  /** Answers completed on this socket, and bytes received for the current request. */
  uint64_t answers_on_socket_ = 0;
  size_t current_bytes_ = 0;
  // Response being parsed.
  std::string header_field_;
  std::string header_value_;
  bool in_value_ = false;
  bool degraded_ = false;
  bool informational_ = false;
  bool message_done_ = false;
  bool keep_alive_ = true;
  int status_ = 0;
};

}  // namespace bulwark::bench
