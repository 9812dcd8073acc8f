#pragma once

// A real network::Connection whose peer is the test: one end of a socketpair is the connection's
// socket, the other stays with the test, which reads what the code under test wrote and writes
// what it should read. Codecs and connection managers run on it unchanged.

#include <cstddef>
#include <string>
#include <string_view>

#include "proxy/event/dispatcher.h"
#include "proxy/network/connection.h"

namespace bulwark::mocks {

/**
 * A connected pair: connection() for the code under test, the peer end for the test.
 * Thread: the dispatcher's (the test's).
 */
class SocketPair {
public:
  explicit SocketPair(event::Dispatcher& dispatcher);
  ~SocketPair();
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;

  /** The connection, while this object still owns it. */
  network::Connection& connection() { return *connection_; }
  /** Hands the connection to its owner under test (a ConnectionManager); the peer stays here. */
  network::ConnectionPtr releaseConnection() { return std::move(connection_); }

  /**
   * Bytes arrive on the connection exactly as a socket read delivers them: appended to its input
   * buffer, then its callbacks' onData() runs, now.
   */
  void feed(std::string_view bytes);
  /** Writes from the peer end; the connection reads them on a later loop turn. */
  void peerWrite(std::string_view bytes);
  /** Half-closes (SHUT_WR) the peer end: the connection reads EOF after what was written. */
  void peerShutdownWrite();
  /** Closes the peer end altogether. */
  void closePeer();

  /**
   * Everything the peer has received so far (reads what is waiting on the socket first, never
   * blocking). Runs no events: pair with runUntil to let the connection flush.
   */
  const std::string& received();
  /** Forgets what was received so far (the next exchange starts empty). */
  void clearReceived();
  /** The peer read end-of-stream: the connection's socket is closed. */
  bool peerSawClose();
  /** Shrinks both socket buffers so large writes are partial (SO_SNDBUF / SO_RCVBUF). */
  void shrinkSocketBuffers(int bytes);

private:
  int connection_fd_ = -1;
  int peer_fd_ = -1;
  network::ConnectionPtr connection_;
  std::string received_;
  bool peer_saw_close_ = false;
};

}  // namespace bulwark::mocks
