#include "tests/integration/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>

#include <gtest/gtest.h>

#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kRedisServer[] = "/usr/bin/redis-server";
constexpr char kRedisCli[] = "/usr/bin/redis-cli";

/** A loopback port free at the time of the call (the kernel's pick, released at once). */
uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) {
    ::close(fd);
  }
  return port;
}

}  // namespace

std::unique_ptr<RedisServer> RedisServer::start() {
  std::string error;
  // Another process may take the port between freePort() and redis' bind: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::unique_ptr<RedisServer> server(new RedisServer(freePort()));
    if (server->port_ != 0 && server->spawn(&error)) {
      return server;
    }
  }
  ADD_FAILURE() << "cannot start redis-server: " << error;
  return nullptr;
}

RedisServer::~RedisServer() { kill(); }

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

bool RedisServer::spawn(std::string* error) {
  ProcessOptions options;
  options.path = kRedisServer;
  options.args = {"--port",       std::to_string(port_),
                  "--bind",       "127.0.0.1",
                  "--save",       "",
                  "--appendonly", "no",
                  "--daemonize",  "no",
                  "--loglevel",   "notice",
                  "--logfile",    ""};
  child_ = ChildProcess::spawn(options, error);
  if (child_ == nullptr) {
    return false;
  }
  if (!child_->waitForLine(R"(Ready to accept connections)", deadlineIn(10s))) {
    *error = child_->output();
    child_.reset();
    return false;
  }
  return true;
}

bool RedisServer::pause() { return child_ != nullptr && child_->signal(SIGSTOP); }

bool RedisServer::resume() { return child_ != nullptr && child_->signal(SIGCONT); }

void RedisServer::kill() {
  if (child_ != nullptr) {
    child_->signal(SIGCONT);
    child_->kill();
    child_->waitForExit(deadlineIn(10s));
    child_.reset();
  }
}

bool RedisServer::restart() {
  std::string error;
  if (!spawn(&error)) {
    ADD_FAILURE() << "cannot restart redis-server on " << port_ << ": " << error;
    return false;
  }
  return true;
}

std::string RedisServer::cli(const std::string& command) const {
  const std::string line =
      std::string(kRedisCli) + " -p " + std::to_string(port_) + " " + command + " 2>&1";
  std::string out;
  if (FILE* pipe = ::popen(line.c_str(), "r")) {
    std::array<char, 4096> buf{};
    size_t n = 0;
    while ((n = ::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
      out.append(buf.data(), n);
    }
    ::pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  return out;
}

}  // namespace bulwark::testing
