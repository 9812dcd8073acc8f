// network::Connection on a socketpair whose other end is the test: output that does not fit the
// socket at once (partial writes), watermarks, closing with and without flushing, read
// disabling, and connects. Every wait runs the loop until an observable event.

#include "proxy/network/connection.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include "proxy/event/dispatcher.h"
#include "tests/mocks/dispatcher_loop.h"
#include "tests/mocks/socket_pair.h"

namespace bulwark::network {
namespace {

using namespace std::chrono_literals;

/** Records what a connection reports, in order. Thread: test. */
class Recorder : public ConnectionCallbacks {
public:
  void onData(evbuffer* input) override {
    const size_t length = evbuffer_get_length(input);
    std::string bytes(length > leave ? length - leave : 0, '\0');
    evbuffer_remove(input, bytes.data(), bytes.size());
    data += bytes;
    log.push_back("data:" + bytes);
  }
  void onEvent(ConnectionEvent event) override {
    events.push_back(event);
    log.push_back("event");
  }
  void onAboveWriteBufferHighWatermark() override { ++above; }
  void onBelowWriteBufferLowWatermark() override { ++below; }

  std::string data;
  std::vector<ConnectionEvent> events;
  std::vector<std::string> log;
  int above = 0;
  int below = 0;
  size_t leave = 0;  // bytes onData leaves in the buffer (an incomplete message)
};

/** Bytes that tell their own offset, so a lost or reordered piece shows. */
std::string pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  }
  return out;
}

/** A connection on a socketpair, its events recorded. Thread: test. */
class ConnectionTest : public ::testing::Test {
protected:
  ConnectionTest() { pair_.connection().setCallbacks(&recorder_); }

  Connection& connection() { return pair_.connection(); }
  bool waitFor(const std::function<bool()>& condition) {
    return mocks::runUntil(dispatcher_, condition);
  }

  event::Dispatcher dispatcher_;
  mocks::SocketPair pair_{dispatcher_};
  Recorder recorder_;
};

TEST_F(ConnectionTest, OutputLargerThanTheSocketArrivesWholeAndInOrder) {
  pair_.shrinkSocketBuffers(4096);
  const std::string sent = pattern(1 << 20);
  connection().write(sent);
  EXPECT_EQ(connection().outputLength(), sent.size()) << "writes go out from the loop, not inline";
  ASSERT_TRUE(waitFor([&] { return connection().outputLength() < sent.size(); }));
  EXPECT_GT(connection().outputLength(), 0u) << "the socket took 1 MiB at once: nothing partial";
  ASSERT_TRUE(waitFor([&] { return pair_.received().size() == sent.size(); }));
  EXPECT_TRUE(pair_.received() == sent) << "bytes lost or reordered across partial writes";
  EXPECT_EQ(connection().outputLength(), 0u);
  EXPECT_TRUE(recorder_.events.empty());
}

TEST_F(ConnectionTest, OutputInManyPiecesGoesOutInOneFlushWhenTheSocketTakesIt) {
  // 40 chains, more than one send takes at once: a socket with room gets all of them in the
  // first flush instead of a writable-event round trip per batch.
  const std::string whole = pattern(40 * 1000);
  evbuffer* pieces = evbuffer_new();
  for (size_t offset = 0; offset < whole.size(); offset += 1000) {
    evbuffer_add_reference(pieces, whole.data() + offset, 1000, nullptr, nullptr);
  }
  ASSERT_GT(evbuffer_peek(pieces, -1, nullptr, nullptr, 0), 16);
  connection().write(pieces);
  evbuffer_free(pieces);
  ASSERT_TRUE(waitFor([&] { return connection().outputLength() < whole.size(); }));
  EXPECT_EQ(connection().outputLength(), 0u);
  ASSERT_TRUE(waitFor([&] { return pair_.received().size() == whole.size(); }));
  EXPECT_TRUE(pair_.received() == whole);
}

TEST_F(ConnectionTest, WatermarksFireOnceEachWay) {
  pair_.shrinkSocketBuffers(4096);
  connection().setWatermarks(1024, 16 * 1024);
  connection().write(pattern(8 * 1024));
  EXPECT_EQ(recorder_.above, 0);
  connection().write(pattern(64 * 1024));
  EXPECT_EQ(recorder_.above, 1) << "crossing the high watermark is reported inside write()";
  connection().write(pattern(64 * 1024));
  EXPECT_EQ(recorder_.above, 1) << "reported again while still above";
  EXPECT_EQ(recorder_.below, 0);
  ASSERT_TRUE(waitFor([&] { return pair_.received().size() == (136u * 1024) && recorder_.below; }));
  EXPECT_EQ(recorder_.below, 1);
  EXPECT_EQ(recorder_.above, 1);

  connection().write(pattern(32 * 1024));
  EXPECT_EQ(recorder_.above, 2) << "the next crossing is reported again";
}

TEST_F(ConnectionTest, FlushWriteCloseSendsEverythingThenCloses) {
  pair_.shrinkSocketBuffers(4096);
  const std::string sent = pattern(256 * 1024);
  connection().write(sent);
  connection().close(Connection::CloseType::FlushWrite);
  EXPECT_TRUE(connection().closing());
  EXPECT_FALSE(connection().closed());
  EXPECT_TRUE(recorder_.events.empty()) << "closed before the output was flushed";
  connection().write(std::string_view("more"));  // still accepted while flushing
  ASSERT_TRUE(waitFor([&] { return pair_.peerSawClose(); }));
  EXPECT_TRUE(pair_.received() == sent + "more");
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::LocalClose});
  EXPECT_TRUE(connection().closed());
}

TEST_F(ConnectionTest, NoFlushCloseDropsPendingOutputAndClosesNow) {
  pair_.shrinkSocketBuffers(4096);
  connection().write(pattern(256 * 1024));
  ASSERT_TRUE(waitFor([&] { return connection().outputLength() < 256u * 1024; }));
  connection().close(Connection::CloseType::NoFlush);
  EXPECT_TRUE(connection().closed());
  EXPECT_EQ(connection().outputLength(), 0u);
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::LocalClose});
  ASSERT_TRUE(waitFor([&] { return pair_.peerSawClose(); }));
  EXPECT_LT(pair_.received().size(), 256u * 1024);
  connection().write(std::string_view("dropped"));
  EXPECT_EQ(connection().outputLength(), 0u) << "a closed connection buffered output";
}

TEST_F(ConnectionTest, ClosingTwiceWhileFlushingReportsOneClose) {
  pair_.shrinkSocketBuffers(4096);
  connection().write(pattern(64 * 1024));
  connection().close(Connection::CloseType::FlushWrite);
  connection().close(Connection::CloseType::FlushWrite);
  connection().close(Connection::CloseType::NoFlush);
  ASSERT_TRUE(waitFor([&] { return pair_.peerSawClose(); }));
  mocks::runReady(dispatcher_);
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::LocalClose});
}

TEST_F(ConnectionTest, PeerCloseDeliversBufferedBytesBeforeTheClose) {
  pair_.peerWrite("last words");
  pair_.peerShutdownWrite();
  ASSERT_TRUE(waitFor([&] { return !recorder_.events.empty(); }));
  EXPECT_EQ(recorder_.data, "last words");
  EXPECT_EQ(recorder_.log.back(), "event");
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionTest, ReadDisableHoldsBytesUntilReadingResumes) {
  // A second pair is the barrier: its byte is written after this one's, so once it was read the
  // loop has seen this socket readable too.
  mocks::SocketPair barrier(dispatcher_);
  Recorder barrier_recorder;
  barrier.connection().setCallbacks(&barrier_recorder);

  connection().readDisable(true);
  connection().readDisable(true);
  pair_.peerWrite("held");
  barrier.peerWrite("x");
  ASSERT_TRUE(waitFor([&] { return barrier_recorder.data == "x"; }));
  EXPECT_EQ(recorder_.data, "") << "bytes delivered while reading was disabled";

  connection().readDisable(false);
  EXPECT_FALSE(connection().readEnabled()) << "disables nest: one enable is not enough";
  barrier.peerWrite("y");
  ASSERT_TRUE(waitFor([&] { return barrier_recorder.data == "xy"; }));
  EXPECT_EQ(recorder_.data, "");

  connection().readDisable(false);
  EXPECT_TRUE(connection().readEnabled());
  ASSERT_TRUE(waitFor([&] { return recorder_.data == "held"; }));
}

TEST_F(ConnectionTest, BuffersAreHeldOnlyWhileBytesAreInFlight) {
  EXPECT_FALSE(connection().holdsBuffers()) << "a new connection holds no buffer";
  pair_.peerWrite("request");
  ASSERT_TRUE(waitFor([&] { return recorder_.data == "request"; }));
  EXPECT_FALSE(connection().holdsBuffers()) << "consumed input keeps its buffer";

  recorder_.leave = 3;  // an incomplete message stays buffered for the next read
  pair_.peerWrite("partial");
  ASSERT_TRUE(waitFor([&] { return recorder_.data == "requestpart"; }));
  EXPECT_TRUE(connection().holdsBuffers());
  EXPECT_EQ(connection().inputLength(), 3U);
  recorder_.leave = 0;
  pair_.peerWrite("!");
  ASSERT_TRUE(waitFor([&] { return recorder_.data == "requestpartial!"; }));
  EXPECT_FALSE(connection().holdsBuffers());

  pair_.shrinkSocketBuffers(4096);
  const std::string sent = pattern(256 * 1024);
  connection().write(sent);
  EXPECT_TRUE(connection().holdsBuffers()) << "pending output is buffered";
  ASSERT_TRUE(waitFor([&] { return pair_.received().size() == sent.size(); }));
  ASSERT_TRUE(waitFor([&] { return connection().outputLength() == 0; }));
  EXPECT_FALSE(connection().holdsBuffers()) << "flushed output keeps its buffer";
  EXPECT_TRUE(pair_.received() == sent);
}

TEST_F(ConnectionTest, OutputWrittenInReservedRoomGoesOutUpToTheCommittedLength) {
  connection().write(std::string_view("before|"));
  char* room = connection().reserveOutput(64);
  std::memcpy(room, "in place|unused room", 20);
  connection().commitOutput(room, 9);
  connection().write(std::string_view("after"));
  EXPECT_EQ(connection().outputLength(), 21U);
  ASSERT_TRUE(waitFor([&] { return pair_.received().size() >= 21; }));
  EXPECT_EQ(pair_.received(), "before|in place|after");

  connection().close(Connection::CloseType::NoFlush);
  room = connection().reserveOutput(16);
  connection().commitOutput(room, 16);
  EXPECT_EQ(connection().outputLength(), 0U) << "bytes committed after the close were kept";
  EXPECT_FALSE(connection().holdsBuffers());
}

/** A listening loopback socket the test accepts from by hand. Thread: test. */
class Listener {
public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() {
    closeListener();
    if (accepted_ >= 0) {
      ::close(accepted_);
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /** Accepts one pending connection if there is one; then reads what it sent so far. */
  const std::string& received() {
    if (accepted_ < 0) {
      accepted_ = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    char buf[4096];
    ssize_t n = 0;
    while (accepted_ >= 0 && (n = ::recv(accepted_, buf, sizeof(buf), 0)) > 0) {
      received_.append(buf, static_cast<size_t>(n));
    }
    return received_;
  }
  void closeListener() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

private:
  int fd_ = -1;
  int accepted_ = -1;
  uint16_t port_ = 0;
  std::string received_;
};

/** Outgoing connects to a Listener; the dispatcher runs them. Thread: test. */
class ConnectTest : public ::testing::Test {
protected:
  event::Dispatcher dispatcher_;
  Recorder recorder_;
};

TEST_F(ConnectTest, OutputWrittenWhileConnectingGoesOutOnceConnected) {
  Listener listener;
  auto connection = Connection::connect(dispatcher_, listener.address(), 1000ms);
  connection->setCallbacks(&recorder_);
  connection->write(std::string_view("early"));
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return listener.received() == "early"; }));
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::Connected});
}

TEST_F(ConnectTest, RefusedConnectIsAConnectFailure) {
  Listener listener;
  const std::string address = listener.address();
  listener.closeListener();
  auto connection = Connection::connect(dispatcher_, address, 1000ms);
  connection->setCallbacks(&recorder_);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return !recorder_.events.empty(); }));
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::ConnectFailure});
  EXPECT_TRUE(connection->closed());
}

TEST_F(ConnectTest, UnusableAddressFailsLaterNotInline) {
  auto connection = Connection::connect(dispatcher_, "not-an-address", 1000ms);
  connection->setCallbacks(&recorder_);
  EXPECT_TRUE(recorder_.events.empty()) << "the failure was reported before callbacks were set";
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return !recorder_.events.empty(); }));
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::ConnectFailure});
}

TEST(AddressTest, ParsesIpv4Ipv6AndLocalhostOnly) {
  sockaddr_storage ss;
  socklen_t len = 0;
  EXPECT_TRUE(parseAddress("127.0.0.1:80", ss, len));
  EXPECT_EQ(ss.ss_family, AF_INET);
  EXPECT_TRUE(parseAddress("[::1]:8080", ss, len));
  EXPECT_EQ(ss.ss_family, AF_INET6);
  EXPECT_TRUE(parseAddress("localhost:1", ss, len));
  EXPECT_FALSE(parseAddress("example.com:80", ss, len));
  EXPECT_FALSE(parseAddress("127.0.0.1:65536", ss, len));
  EXPECT_FALSE(parseAddress("127.0.0.1", ss, len));
  EXPECT_FALSE(parseAddress("[::1]80", ss, len));
}

}  // namespace
}  // namespace bulwark::network
