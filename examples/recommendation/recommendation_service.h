#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "examples/common/http_server.h"
#include "examples/recommendation/backpressure.h"
#include "examples/recommendation/recommender.h"

struct event_base;

namespace bulwark::examples::recommendation {

struct RecommendationServiceOptions {
  /** Requests computing at once (RECSYS_BACKPRESSURE_MAX_INFLIGHT). */
  size_t max_inflight = 64;
  /** Requests waiting for a slot (RECSYS_BACKPRESSURE_MAX_QUEUE); beyond: 503. */
  size_t max_queue = 128;
  /** Threads that score catalogs. */
  int workers = 2;
  /** Per-tenant requests per second (token bucket); 0 = no limit. */
  double tenant_rps = 0;
  /** Bucket size; 0 = max(1, tenant_rps). */
  double tenant_burst = 0;
  /**
   * Time a request waits, holding its slot, before scoring: the seed's per-request signal and
   * config lookups (Postgres, caches). A timer, not a sleep.
   */
  int fetch_latency_ms = 0;
  /** Retry-After (seconds) on 503 when the queue is full. */
  int retry_after_s = 1;
};

/**
 * The recommendation API (after recsys-service, seed 003):
 *   POST /v1/recommend {"surface","user_id","k","tenant"?}  -> {"items":[{"item_id","score"}...]}
 *   POST /v1/similar   {"surface","item_id","k","tenant"?}
 *   GET  /healthz
 * The tenant comes from X-Tenant-Id (401 without; 403 when the body names another tenant or the
 * tenant is unknown). Admission: per-tenant rate limit (429 + Retry-After), then backpressure
 * (in flight / queue, 503 + Retry-After). Scoring runs on a worker pool; answers go back to the
 * loop thread.
 * Thread: loop thread, except setServing() (any) and the internal workers.
 */
class RecommendationService {
public:
  RecommendationService(event_base* base, const Recommender& recommender,
                        RecommendationServiceOptions options);
  ~RecommendationService();
  RecommendationService(const RecommendationService&) = delete;
  RecommendationService& operator=(const RecommendationService&) = delete;

  void handle(const std::shared_ptr<HttpExchange>& exchange);
  void setServing(bool serving) { serving_.store(serving); }

private:
  struct Job {
    std::shared_ptr<HttpExchange> exchange;
    bool similar = false;
    std::string tenant;
    std::string surface;
    std::string id;  // user_id or item_id
    size_t k = 0;
    HttpResponse response;  // filled by a worker
    RecommendationService* service = nullptr;
    struct event* timer = nullptr;
  };

  void admit(std::unique_ptr<Job> job);
  void start(std::unique_ptr<Job> job);
  void submit(Job* job);
  void compute(Job& job) const;  // worker thread
  static void onFetched(int fd, short what, void* arg);
  static void onComputed(int fd, short what, void* arg);
  void complete(std::unique_ptr<Job> job);
  void workerLoop();

  event_base* base_;
  const Recommender& recommender_;
  RecommendationServiceOptions options_;
  std::atomic<bool> serving_{true};
  Backpressure<std::unique_ptr<Job>> backpressure_;
  TenantRateLimiter limiter_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> work_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace bulwark::examples::recommendation
