#include "examples/common/testing/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/sanitizer_report.h"

namespace bulwark::examples::testing {
namespace {

int remainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

Result<int> parsePort(const Result<std::string>& text) {
  if (!text) {
    return text.status();
  }
  char* end = nullptr;
  long port = std::strtol(text->c_str(), &end, 10);
  if (end == text->c_str() || port <= 0 || port > 65535) {
    return Status::error("not a port: '" + *text + "'");
  }
  return static_cast<int>(port);
}

}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const std::string& path,
                                                          const std::vector<std::string>& args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return Status::error(std::string("pipe: ") + strerror(errno));
  }
  int err_fds[2];
  if (pipe2(err_fds, O_CLOEXEC) != 0) {
    close(fds[0]);
    close(fds[1]);
    return Status::error(std::string("pipe: ") + strerror(errno));
  }
  // Build argv before fork: after fork only async-signal-safe calls are allowed.
  std::vector<std::string> storage;
  storage.push_back(path);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) {
    argv.push_back(s.data());
  }
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    close(err_fds[0]);
    close(err_fds[1]);
    return Status::error(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);
    }
    dup2(fds[1], STDOUT_FILENO);
    dup2(err_fds[1], STDERR_FILENO);
    // The test runner may block signals in its threads; the server expects the defaults.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  close(err_fds[1]);
  std::unique_ptr<ChildProcess> child(new ChildProcess(pid, fds[0]));
  child->stderr_copier_ = std::thread([c = child.get(), fd = err_fds[0]] {
    char buf[4096];
    ssize_t got;
    while ((got = read(fd, buf, sizeof(buf))) > 0 || (got < 0 && errno == EINTR)) {
      if (got > 0) {
        c->stderr_.append(buf, static_cast<size_t>(got));
        (void)!write(STDERR_FILENO, buf, static_cast<size_t>(got));
      }
    }
    close(fd);
  });
  return child;
}

ChildProcess::~ChildProcess() {
  if (running()) {
    sendSignal(SIGKILL);
    waitExit(std::chrono::seconds(5));
  }
  if (stdout_fd_ >= 0) {
    close(stdout_fd_);
  }
  if (stderr_copier_.joinable()) {
    stderr_copier_.join();
  }
  std::istringstream lines(stderr_);
  std::string line;
  std::string report;
  int kept = 0;
  while (std::getline(lines, line)) {
    if (report.empty() && !bulwark::testing::isSanitizerReportLine(line)) {
      continue;
    }
    report += line + "\n";
    if (++kept == 60) {
      break;
    }
  }
  if (!report.empty()) {
    ADD_FAILURE() << "child pid " << pid_ << " printed a sanitizer report:\n" << report;
  }
}

bool ChildProcess::readMore(std::chrono::steady_clock::time_point deadline) {
  pollfd pfd{stdout_fd_, POLLIN, 0};
  int n = poll(&pfd, 1, remainingMs(deadline));
  if (n <= 0) {
    return false;
  }
  char buf[4096];
  ssize_t got = read(stdout_fd_, buf, sizeof(buf));
  if (got <= 0) {
    return false;
  }
  output_.append(buf, static_cast<size_t>(got));
  return true;
}

Result<std::string> ChildProcess::waitForLine(const std::string& prefix,
                                              std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    size_t start = 0;
    while (true) {
      size_t end = output_.find('\n', start);
      if (end == std::string::npos) {
        break;
      }
      if (output_.compare(start, prefix.size(), prefix) == 0) {
        return output_.substr(start + prefix.size(), end - start - prefix.size());
      }
      start = end + 1;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::error("timed out waiting for '" + prefix + "'; stdout so far: " + output_);
    }
    if (!readMore(deadline) && !running()) {
      return Status::error("child exited before printing '" + prefix + "'; stdout: " + output_);
    }
  }
}

Result<int> ChildProcess::waitForListeningPort(std::chrono::milliseconds timeout) {
  return parsePort(waitForLine("listening on 127.0.0.1:", timeout));
}

Result<int> ChildProcess::waitForControlPort(std::chrono::milliseconds timeout) {
  return parsePort(waitForLine("control port: ", timeout));
}

void ChildProcess::sendSignal(int signal) {
  if (!exit_status_) {
    kill(pid_, signal);
  }
}

std::optional<int> ChildProcess::waitExit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exit_status_) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      break;
    }
    if (r < 0 && errno != EINTR) {
      exit_status_ = -1;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    // waitpid has no timeout; poll it at a fine grain until the deadline.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return exit_status_;
}

bool ChildProcess::running() {
  if (exit_status_) {
    return false;
  }
  return !waitExit(std::chrono::milliseconds(0)).has_value();
}

Result<SpawnedServer> spawnServer(const std::string& path, const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout) {
  auto child = ChildProcess::spawn(path, args);
  if (!child) {
    return child.status();
  }
  SpawnedServer server;
  server.process = std::move(*child);
  auto port = server.process->waitForListeningPort(timeout);
  if (!port) {
    return port.status();
  }
  server.port = *port;
  if (server.process->output().find("control port: ") != std::string::npos) {
    auto control = server.process->waitForControlPort(std::chrono::milliseconds(0));
    if (!control) {
      return control.status();
    }
    server.control_port = *control;
  }
  return server;
}

}  // namespace bulwark::examples::testing
