#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tests/support/wait.h"

namespace bulwark::testing {

/**
 * Small blocking-with-deadline helpers over non-blocking sockets, shared by the test clients.
 * Every wait is a poll() bounded by the deadline; nothing sleeps.
 * Thread: any (they only touch the given fd).
 */

/**
 * Connects a TCP socket (non-blocking, close-on-exec, TCP_NODELAY) to host:port. `host` is a
 * numeric IPv4 or IPv6 address. `rcvbuf` > 0 sets SO_RCVBUF before connecting (slow-reader
 * and zero-window tests). A non-empty `source_host` (numeric, same family) is bound as the local
 * address first, so a test can connect from 127.0.0.2 or another local address (source-IP
 * hashing, loopback-only endpoints). Returns the fd, or -1 with *error set.
 */
int connectTcp(const std::string& host, uint16_t port, Deadline deadline, std::string* error,
               int rcvbuf = 0, const std::string& source_host = "");

/** poll() for `events` until the deadline. Returns revents, or 0 on timeout. */
short pollFd(int fd, short events, Deadline deadline);

/** Writes all of `data`. False on error, peer close or deadline (*error says which). */
bool sendAll(int fd, std::string_view data, Deadline deadline, std::string* error);

/** Result of one bounded read. */
struct RecvResult {
  /** Bytes read (> 0), 0 on orderly close, -1 on error (reset), -2 on deadline. */
  long n = 0;
  int err = 0;
};

/** Reads once into buf, waiting up to the deadline for data. */
RecvResult recvSome(int fd, char* buf, size_t len, Deadline deadline);

/** Sets SO_LINGER 0 and closes: the peer sees a TCP RST. */
void closeAbortive(int fd);

}  // namespace bulwark::testing
