// A tiny child process for the process-helper self-tests. Behaviour is chosen by argv[1]:
//   listen        bind 127.0.0.1:0, print "listening on 127.0.0.1:PORT", wait for a signal;
//                 SIGTERM -> print "draining" and exit 0; SIGHUP -> print "reloaded", keep going.
//   exit N        print "exiting N" and exit with status N.
//   env NAME      print "NAME=<value of $NAME>" and exit 0.
//   stderr TEXT   print TEXT on stderr and exit 0.
// It is a separate binary on purpose: the helper must spawn a real executable.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {
volatile sig_atomic_t g_last_signal = 0;
void onSignal(int sig) { g_last_signal = sig; }
}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "exit") == 0) {
    std::printf("exiting %s\n", argv[2]);
    std::fflush(stdout);
    return std::atoi(argv[2]);
  }
  if (argc >= 3 && std::strcmp(argv[1], "env") == 0) {
    const char* v = std::getenv(argv[2]);
    std::printf("%s=%s\n", argv[2], v != nullptr ? v : "<unset>");
    std::fflush(stdout);
    return 0;
  }
  if (argc >= 3 && std::strcmp(argv[1], "stderr") == 0) {
    std::fprintf(stderr, "%s\n", argv[2]);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "listen") == 0) {
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    // Keep the signals blocked except inside sigsuspend(): a signal arriving between the check
    // and the wait would otherwise be lost (the pause() race).
    sigset_t blocked;
    sigset_t waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGHUP);
    sigprocmask(SIG_BLOCK, &blocked, &waiting);
    sigdelset(&waiting, SIGTERM);
    sigdelset(&waiting, SIGHUP);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 || listen(fd, 16) != 0) {
      std::perror("bind");
      return 2;
    }
    socklen_t len = sizeof(sin);
    getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    std::fprintf(stderr, "starting up\n");
    std::printf("listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
    std::fflush(stdout);
    while (true) {
      sigsuspend(&waiting);  // returns after a handler ran
      if (g_last_signal == SIGHUP) {
        g_last_signal = 0;
        std::printf("reloaded\n");
        std::fflush(stdout);
      } else if (g_last_signal == SIGTERM) {
        std::printf("draining\n");
        std::fflush(stdout);
        close(fd);
        return 0;
      }
    }
  }
  std::fprintf(stderr, "usage: child_helper listen | exit N | env NAME\n");
  return 64;
}
