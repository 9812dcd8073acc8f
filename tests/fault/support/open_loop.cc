#include "tests/fault/support/open_loop.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <map>

namespace bulwark::testing::fault {

OpenLoop::~OpenLoop() {
  stop();
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
}

void OpenLoop::start(const std::vector<OpenLoopOptions>& streams) {
  streams_ = streams;
  // A little ahead, so every thread is waiting for its first instant when it comes.
  start_ = Clock::now() + std::chrono::milliseconds(20);
  for (const auto& options : streams_) {
    for (int t = 0; t < options.threads; ++t) {
      threads_.emplace_back([this, &options, t] { runThread(options, t); });
    }
  }
}

void OpenLoop::runThread(const OpenLoopOptions& options, int thread) {
  const double period_ns = 1e9 / options.rate;
  const auto total =
      static_cast<uint64_t>(std::llround(options.rate * options.duration.count() / 1000.0));
  std::vector<Sample> mine;
  mine.reserve(total / static_cast<uint64_t>(options.threads) + 1);
  Http1Client client(options.port);
  // Thread t sends requests t, t + threads, t + 2 * threads, ...: interleaved, so the streams'
  // instants stay evenly spaced even when one thread is held up by a slow answer.
  for (uint64_t i = static_cast<uint64_t>(thread); i < total && !stopping_.load();
       i += options.threads) {
    Sample s;
    s.index = i;
    s.stream = options.stream;
    s.intended =
        start_ + std::chrono::nanoseconds(static_cast<int64_t>(period_ns * static_cast<double>(i)));
    // Sleep most of the way, spin the last stretch: sleeping alone oversleeps by the timer
    // slack, spinning alone starves the proxy of the shared cores.
    auto now = Clock::now();
    if (s.intended - now > std::chrono::microseconds(200)) {
      std::this_thread::sleep_until(s.intended - std::chrono::microseconds(100));
    }
    while (Clock::now() < s.intended) {
      std::this_thread::yield();
    }
    s.reused_connection = client.isConnected();
    // A new connection is opened before the clock starts: serviceTime() is the answer's time.
    if (!s.reused_connection) {
      client.connect(Clock::now() + options.timeout);
    }
    s.sent = Clock::now();
    auto r = client.request(options.request(i), s.sent + options.timeout);
    s.done = Clock::now();
    if (r && r->complete) {
      s.status = r->status;
      s.degraded = r->header("x-bulwark-degraded").value_or("") == "true";
      s.reason = r->header("x-bulwark-reason").value_or("");
      s.replica = r->header("x-replica-id").value_or("");
      if (!r->keep_alive) {
        client.close();
      }
    } else {
      s.error = client.lastError();
      client.close();
    }
    completed_.fetch_add(1, std::memory_order_relaxed);
    mine.push_back(std::move(s));
  }
  std::lock_guard<std::mutex> lock(mu_);
  samples_.insert(samples_.end(), std::make_move_iterator(mine.begin()),
                  std::make_move_iterator(mine.end()));
}

std::vector<Sample> OpenLoop::wait() {
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  std::sort(samples_.begin(), samples_.end(),
            [](const Sample& a, const Sample& b) { return a.intended < b.intended; });
  return std::move(samples_);
}

std::vector<Sample> runOpenLoop(const OpenLoopOptions& options) {
  OpenLoop loop;
  loop.start({options});
  return loop.wait();
}

double sendRate(const std::vector<Sample>& samples) {
  if (samples.size() < 2) {
    return 0;
  }
  auto first = samples.front().sent;
  auto last = samples.front().sent;
  for (const auto& s : samples) {
    first = std::min(first, s.sent);
    last = std::max(last, s.sent);
  }
  double seconds = std::chrono::duration<double>(last - first).count();
  return seconds > 0 ? static_cast<double>(samples.size() - 1) / seconds : 0;
}

double percentileMs(std::vector<double> values_ms, double p) {
  if (values_ms.empty()) {
    return 0;
  }
  std::sort(values_ms.begin(), values_ms.end());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values_ms.size())));
  rank = std::clamp<size_t>(rank, 1, values_ms.size());
  return values_ms[rank - 1];
}

namespace {
double toMs(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
}  // namespace

std::vector<double> latenciesMs(const std::vector<Sample>& samples) {
  std::vector<double> out;
  out.reserve(samples.size());
  for (const auto& s : samples) {
    out.push_back(toMs(s.latency()));
  }
  return out;
}

std::vector<double> serviceTimesMs(const std::vector<Sample>& samples) {
  std::vector<double> out;
  out.reserve(samples.size());
  for (const auto& s : samples) {
    out.push_back(toMs(s.serviceTime()));
  }
  return out;
}

std::vector<Sample> select(const std::vector<Sample>& samples,
                           const std::function<bool(const Sample&)>& keep) {
  std::vector<Sample> out;
  for (const auto& s : samples) {
    if (keep(s)) {
      out.push_back(s);
    }
  }
  return out;
}

std::string statusHistogram(const std::vector<Sample>& samples) {
  std::map<std::string, uint64_t> counts;
  for (const auto& s : samples) {
    std::string key =
        s.closedUnannounced() ? std::string("0[closed-after-keepalive]") : std::to_string(s.status);
    if (!s.reason.empty()) {
      key += "[" + s.reason + "]";
    }
    if (s.degraded) {
      key += "[degraded]";
    }
    ++counts[key];
  }
  std::string out;
  for (const auto& [key, n] : counts) {
    out += key + ":" + std::to_string(n) + " ";
  }
  return out;
}

bool report(const std::string& what, const std::string& measured, const std::string& bound,
            bool ok) {
  std::printf("FAULT | %-58s | %-34s | %-22s | %s\n", what.c_str(), measured.c_str(), bound.c_str(),
              ok ? "ok" : "MISSED");
  std::fflush(stdout);
  return ok;
}

std::string format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

}  // namespace bulwark::testing::fault
