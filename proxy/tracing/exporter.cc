#include "proxy/tracing/exporter.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "proxy/stats/stats.h"

namespace bulwark::tracing {
namespace {

using Clock = std::chrono::steady_clock;

nlohmann::json attributeValue(const Span::Value& value) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    return {{"stringValue", *s}};
  }
  if (const auto* i = std::get_if<int64_t>(&value)) {
    return {{"intValue", std::to_string(*i)}};  // OTLP/JSON: int64 as a decimal string
  }
  return {{"boolValue", std::get<bool>(value)}};
}

/** Waits for `events` on `fd` until `deadline`; false on timeout or error. */
bool waitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) {
      return (p.revents & (POLLERR | POLLNVAL)) == 0 || (p.revents & POLLIN) != 0;
    }
    if (n < 0 && errno != EINTR) {
      return false;
    }
  }
}

}  // namespace

std::string encodeOtlpJson(const std::vector<Span>& spans, const std::string& service_name) {
  nlohmann::json out_spans = nlohmann::json::array();
  for (const Span& s : spans) {
    nlohmann::json j = {{"traceId", toHex(s.trace_id)},
                        {"spanId", toHex(s.span_id)},
                        {"name", s.name},
                        {"kind", static_cast<int>(s.kind)},
                        {"startTimeUnixNano", std::to_string(s.start_unix_nanos)},
                        {"endTimeUnixNano", std::to_string(s.end_unix_nanos)}};
    if (s.parent) {
      j["parentSpanId"] = toHex(*s.parent);
    }
    nlohmann::json attributes = nlohmann::json::array();
    for (const auto& [key, value] : s.attributes) {
      attributes.push_back({{"key", key}, {"value", attributeValue(value)}});
    }
    j["attributes"] = std::move(attributes);
    j["status"] = {{"code", static_cast<int>(s.status)}};
    out_spans.push_back(std::move(j));
  }
  nlohmann::json doc = {
      {"resourceSpans",
       {{{"resource",
          {{"attributes",
            {{{"key", "service.name"}, {"value", {{"stringValue", service_name}}}}}}}},
         {"scopeSpans", {{{"scope", {{"name", "bulwark"}}}, {"spans", std::move(out_spans)}}}}}}}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::unique_ptr<SpanExporter>> SpanExporter::create(const ExporterOptions& options,
                                                           prometheus::Registry& registry) {
  // http://host:port/path; the loader checked the shape.
  constexpr std::string_view kScheme = "http://";
  std::string_view rest = options.endpoint;
  if (rest.substr(0, kScheme.size()) != kScheme) {
    return Status::error("tracing exporter endpoint must start with http://");
  }
  rest.remove_prefix(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string path =
      slash == std::string_view::npos ? "/v1/traces" : std::string(rest.substr(slash));
  const size_t colon = authority.rfind(':');
  std::string host(authority.substr(0, colon));
  uint16_t port = 4318;
  if (colon != std::string_view::npos) {
    port = static_cast<uint16_t>(std::stoi(std::string(authority.substr(colon + 1))));
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::unique_ptr<SpanExporter>(new SpanExporter(options, host, port, path, registry));
}

SpanExporter::SpanExporter(ExporterOptions options, std::string host, uint16_t port,
                           std::string path, prometheus::Registry& registry)
    : options_(std::move(options)),
      host_(std::move(host)),
      port_(port),
      path_(std::move(path)),
      exported_(prometheus::BuildCounter()
                    .Name("bulwark_tracing_spans_exported_total")
                    .Help("Spans the OTLP collector accepted")
                    .Register(registry)
                    .Add({})),
      dropped_queue_full_(prometheus::BuildCounter()
                              .Name("bulwark_tracing_spans_dropped_total")
                              .Help("Spans dropped: the export queue was full, or the "
                                    "collector failed or timed out")
                              .Register(registry)
                              .Add({{"reason", "queue_full"}})),
      dropped_export_failed_(prometheus::BuildCounter()
                                 .Name("bulwark_tracing_spans_dropped_total")
                                 .Help("Spans dropped: the export queue was full, or the "
                                       "collector failed or timed out")
                                 .Register(registry)
                                 .Add({{"reason", "export_failed"}})) {
  thread_ = std::thread([this] { run(); });
}

SpanExporter::~SpanExporter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void SpanExporter::submit(Span span) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      dropped_queue_full_.Increment();
      return;
    }
    queue_.push_back(std::move(span));
    if (queue_.size() < options_.max_batch) {
      return;
    }
  }
  wake_.notify_one();
}

void SpanExporter::run() {
  for (;;) {
    std::vector<Span> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, options_.interval,
                     [&] { return stop_ || queue_.size() >= options_.max_batch; });
      if (stop_) {
        return;  // what is queued goes with the process (a final export could hold shutdown)
      }
      const size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty()) {
      continue;
    }
    if (post(encodeOtlpJson(batch, "bulwark"))) {
      exported_.Increment(static_cast<double>(batch.size()));
    } else {
      dropped_export_failed_.Increment(static_cast<double>(batch.size()));
    }
  }
}

bool SpanExporter::post(const std::string& body) {
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return false;
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  bool ok = false;
  if (fd >= 0) {
    const int rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
    int error = 0;
    socklen_t len = sizeof(error);
    if ((rc == 0 || errno == EINPROGRESS) && waitFd(fd, POLLOUT, deadline) &&
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0) {
      const std::string request = fmt::format(
          "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
          "Content-Length: {}\r\nConnection: close\r\n\r\n",
          path_, host_, port_, body.size());
      std::string out = request + body;
      size_t sent = 0;
      while (sent < out.size() && waitFd(fd, POLLOUT, deadline)) {
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
          break;
        }
        sent += n > 0 ? static_cast<size_t>(n) : 0;
      }
      // The status line is enough: "HTTP/1.1 200".
      std::string head;
      char buf[512];
      while (sent == out.size() && head.find("\r\n") == std::string::npos &&
             waitFd(fd, POLLIN, deadline)) {
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          break;
        }
        head.append(buf, static_cast<size_t>(n));
      }
      ok = head.size() >= 12 && head.compare(0, 5, "HTTP/") == 0 && head[9] == '2';
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (!ok) {
    spdlog::debug("tracing: export to {} failed", options_.endpoint);
  }
  return ok;
}

}  // namespace bulwark::tracing
