#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <dirent.h>
#include <gtest/gtest.h>
#include <spawn.h>

#include "tests/support/sanitizer_report.h"

extern char** environ;

namespace bulwark::testing {

std::unique_ptr<ChildProcess> ChildProcess::spawn(const ProcessOptions& options,
                                                  std::string* error) {
  auto fail = [&](const std::string& what) {
    if (error) {
      *error = what;
    }
    return nullptr;
  };
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return fail(std::string("pipe2: ") + std::strerror(errno));
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return fail(std::string("pipe2: ") + std::strerror(errno));
  }

  // argv/envp are built before spawning: nothing but exec happens in the child.
  std::vector<std::string> argv_store{options.path};
  argv_store.insert(argv_store.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_store) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  std::map<std::string, std::string> env_map;
  if (options.inherit_env) {
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv(*e);
      const auto eq = kv.find('=');
      if (eq != std::string::npos) {
        env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    }
  }
  for (const auto& [k, v] : options.env) {
    env_map[k] = v;
  }
  std::vector<std::string> env_store;
  for (const auto& [k, v] : env_map) {
    env_store.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (auto& e : env_store) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_dir.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigset_t none;
  sigfillset(&all);
  sigemptyset(&none);
  // The test process may ignore SIGPIPE or block signals in threads; children start clean.
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  pid_t pid = -1;
  const int rc = posix_spawn(&pid, options.path.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return fail("posix_spawn " + options.path + ": " + std::strerror(rc));
  }
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->pid_ = pid;
  child->reader_ =
      std::thread([c = child.get(), o = out_pipe[0], e = err_pipe[0]] { c->readerLoop(o, e); });
  return child;
}

ChildProcess::~ChildProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  if (reader_.joinable()) {
    reader_.join();
  }
  // A sanitized child's report fails the test that ran it. Its stderr is shown only when the
  // test fails for another reason, and most tests SIGKILL their children at the end, so a
  // use-after-free on a worker thread or a data race would otherwise pass unnoticed.
  for (size_t i = 0; i < lines_.size(); ++i) {
    if (!lines_[i].from_stderr || !isSanitizerReportLine(lines_[i].text)) {
      continue;
    }
    std::string report;
    for (size_t j = i; j < lines_.size() && j < i + 60; ++j) {
      report += lines_[j].text + "\n";
    }
    ADD_FAILURE() << "child pid " << pid_ << " printed a sanitizer report:\n" << report;
    break;
  }
}

void ChildProcess::readerLoop(int out_fd, int err_fd) {
  std::string partial[2];
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_count = 2;
  char buf[4096];
  auto flushLine = [&](int i, std::string text) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(OutputLine{i == 1, std::move(text)});
    }
    notifyWaiters();
  };
  while (open_count > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        partial[i].append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = partial[i].find('\n')) != std::string::npos) {
          flushLine(i, partial[i].substr(0, nl));
          partial[i].erase(0, nl + 1);
        }
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (!partial[i].empty()) {
          flushLine(i, std::move(partial[i]));
        }
        partial[i].clear();
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    output_closed_ = true;
  }
  notifyWaiters();
}

std::optional<std::vector<std::string>> ChildProcess::waitForLine(const std::regex& pattern,
                                                                  Deadline deadline) {
  std::optional<std::vector<std::string>> found;
  size_t scanned = 0;
  waitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu_);
        for (; scanned < lines_.size(); ++scanned) {
          std::smatch m;
          if (std::regex_search(lines_[scanned].text, m, pattern)) {
            std::vector<std::string> groups;
            for (const auto& g : m) {
              groups.push_back(g.str());
            }
            found = std::move(groups);
            return true;
          }
        }
        return output_closed_;
      },
      deadline);
  return found;
}

std::optional<std::vector<std::string>> ChildProcess::waitForLine(const std::string& pattern,
                                                                  Deadline deadline) {
  return waitForLine(std::regex(pattern), deadline);
}

std::optional<uint16_t> ChildProcess::waitForListeningPort(Deadline deadline,
                                                           const std::string& pattern) {
  auto groups = waitForLine(pattern, deadline);
  if (!groups || groups->size() < 2) {
    return std::nullopt;
  }
  const int port = std::atoi((*groups)[1].c_str());
  if (port <= 0 || port > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

std::vector<OutputLine> ChildProcess::lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

std::string ChildProcess::output() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& l : lines_) {
    out += (l.from_stderr ? "[stderr] " : "") + l.text + "\n";
  }
  return out;
}

bool ChildProcess::reap(bool block) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exit_) {
      return true;
    }
  }
  int status = 0;
  const pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r != pid_) {
    return false;
  }
  ExitStatus e;
  if (WIFEXITED(status)) {
    e.exited = true;
    e.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signaled = true;
    e.signal = WTERMSIG(status);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    exit_ = e;
  }
  notifyWaiters();
  return true;
}

bool ChildProcess::running() { return !reap(false); }

bool ChildProcess::signal(int sig) {
  if (!running()) {
    return false;
  }
  return ::kill(pid_, sig) == 0;
}

std::optional<ExitStatus> ChildProcess::waitForExit(Deadline deadline) {
  // waitpid has no timeout; poll it with waitFor's short condition-variable waits.
  if (!waitFor([&] { return reap(false); }, deadline)) {
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(mu_);
  return exit_;
}

namespace {

std::optional<uint64_t> readStatusKb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream fields(line.substr(key.size() + 1));
      uint64_t kb = 0;
      if (fields >> kb) {
        return kb * 1024;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> readRssBytes(pid_t pid) { return readStatusKb(pid, "VmRSS"); }
std::optional<uint64_t> readPeakRssBytes(pid_t pid) { return readStatusKb(pid, "VmHWM"); }

std::optional<std::chrono::microseconds> readCpuTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may contain spaces and ')': parse after the last ')'.
  const auto close = content.rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream fields(content.substr(close + 2));
  std::string field;
  uint64_t utime = 0;
  uint64_t stime = 0;
  // After ')' come fields 3..; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) {
      utime = std::stoull(field);
    }
    if (i == 15) {
      stime = std::stoull(field);
    }
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  if (ticks <= 0) {
    return std::nullopt;
  }
  return std::chrono::microseconds((utime + stime) * 1000000 / static_cast<uint64_t>(ticks));
}

std::optional<size_t> countOpenFds(pid_t pid) {
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) {
    return std::nullopt;
  }
  size_t n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  closedir(dir);
  return n;
}

}  // namespace bulwark::testing
