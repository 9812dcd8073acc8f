#pragma once

// OTLP/HTTP (JSON encoding) export of bulwark's spans: workers hand finished spans to a bounded
// queue and never wait; a thread of the exporter's own batches them and POSTs them to the
// collector. A slow or absent collector costs dropped spans (counted), never request latency.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "common/result.h"
#include "proxy/tracing/span.h"

namespace bulwark::tracing {

/** Where and how to export (observability.tracing.exporter.otlp). Thread: value type. */
struct ExporterOptions {
  std::string endpoint;  // http://host:port/path
  std::chrono::milliseconds timeout{2000};
  size_t max_batch = 512;
  std::chrono::milliseconds interval{1000};
  size_t max_queue = 8192;
};

/** @return the OTLP/JSON `ExportTraceServiceRequest` body for `spans`. Thread: any. */
std::string encodeOtlpJson(const std::vector<Span>& spans, const std::string& service_name);

/**
 * Thread: submit() from any thread (one short lock); the export runs on the exporter's thread.
 * Destruction stops the thread after at most one export timeout.
 */
class SpanExporter {
public:
  static Result<std::unique_ptr<SpanExporter>> create(const ExporterOptions& options,
                                                      prometheus::Registry& registry);
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  /** Queues a finished span; drops it (counted) when the queue is full. Never blocks on I/O. */
  void submit(Span span);

  const ExporterOptions& options() const { return options_; }

private:
  SpanExporter(ExporterOptions options, std::string host, uint16_t port, std::string path,
               prometheus::Registry& registry);
  void run();
  /** One POST of `body`; true on a 2xx within the timeout. */
  bool post(const std::string& body);

  const ExporterOptions options_;
  const std::string host_;
  const uint16_t port_;
  const std::string path_;
  prometheus::Counter& exported_;
  prometheus::Counter& dropped_queue_full_;
  prometheus::Counter& dropped_export_failed_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Span> queue_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::thread thread_;
};

}  // namespace bulwark::tracing
