#include "tests/support/admin_client.h"

#include <algorithm>

#include "tests/support/http1_client.h"

namespace bulwark::testing {

namespace {

// Each scrape/probe gets at most this long, so polling loops keep re-checking their deadline.
constexpr std::chrono::milliseconds kPerAttempt{1000};

AdminResponse oneShot(uint16_t port, const std::string& host, Http1Request request,
                      Deadline deadline) {
  AdminResponse out;
  Http1Client client(host, port);
  request.headers.emplace_back("Connection", "close");
  auto r = client.request(request, deadline);
  if (!r) {
    out.error = client.lastError();
    return out;
  }
  out.status = r->status;
  out.headers = std::move(r->headers);
  out.body = std::move(r->body);
  out.ok = r->complete;
  out.error = r->error;
  return out;
}

}  // namespace

AdminResponse adminGet(uint16_t port, const std::string& path, Deadline deadline,
                       const std::string& host) {
  return oneShot(port, host, http1Get(path), deadline);
}

AdminResponse adminPost(uint16_t port, const std::string& path, const std::string& body,
                        Deadline deadline, const std::string& host) {
  return oneShot(port, host, http1Request("POST", path, {}, body), deadline);
}

std::optional<PrometheusText> fetchMetrics(uint16_t port, const std::string& path,
                                           Deadline deadline, std::string* error) {
  const AdminResponse r = adminGet(port, path, deadline);
  if (!r.ok || r.status != 200) {
    if (error) {
      *error = r.ok ? "GET " + path + " answered " + std::to_string(r.status) : r.error;
    }
    return std::nullopt;
  }
  return PrometheusText::parse(r.body, error);
}

std::optional<double> metricValue(uint16_t port, const std::string& name, const Labels& labels,
                                  const std::string& path, Deadline deadline) {
  auto metrics = fetchMetrics(port, path, deadline);
  if (!metrics) {
    return std::nullopt;
  }
  return metrics->value(name, labels);
}

bool waitForAdminStatus(uint16_t port, const std::string& path, int status, Deadline deadline) {
  return waitFor(
      [&] {
        const AdminResponse r = adminGet(port, path, std::min(deadline, deadlineIn(kPerAttempt)));
        return r.ok && r.status == status;
      },
      deadline);
}

bool waitForMetric(uint16_t port, const std::string& name, const Labels& labels,
                   const std::function<bool(double)>& predicate, Deadline deadline,
                   const std::string& path) {
  return waitFor(
      [&] {
        auto metrics = fetchMetrics(port, path, std::min(deadline, deadlineIn(kPerAttempt)));
        return metrics && predicate(metrics->sum(name, labels));
      },
      deadline);
}

}  // namespace bulwark::testing
