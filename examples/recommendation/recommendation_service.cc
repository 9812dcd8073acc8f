#include "examples/recommendation/recommendation_service.h"

#include <event2/event.h>
#include <nlohmann/json.hpp>

namespace bulwark::examples::recommendation {
namespace {

constexpr size_t kDefaultK = 20;

HttpResponse json(int status, const nlohmann::json& body, HeaderList headers = {}) {
  return HttpResponse{status, body.dump() + "\n", std::move(headers)};
}

HttpResponse error(int status, const std::string& message, HeaderList headers = {}) {
  return json(status, {{"error", message}}, std::move(headers));
}

}  // namespace

RecommendationService::RecommendationService(event_base* base, const Recommender& recommender,
                                             RecommendationServiceOptions options)
    : base_(base),
      recommender_(recommender),
      options_(options),
      backpressure_(options.max_inflight, options.max_queue),
      limiter_(options.tenant_rps, options.tenant_burst) {
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { workerLoop(); });
  }
}

RecommendationService::~RecommendationService() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& worker : workers_) {
    worker.join();
  }
  for (Job* job : work_) {
    delete job;
  }
}

void RecommendationService::handle(const std::shared_ptr<HttpExchange>& exchange) {
  const std::string& path = exchange->path();
  const auto method = exchange->method();
  if (path == "/healthz") {
    const bool serving = serving_.load();
    return exchange->reply(json(serving ? 200 : 503, {{"status", serving ? "ok" : "not serving"},
                                                      {"inflight", backpressure_.inflight()},
                                                      {"queued", backpressure_.queued()}}));
  }
  const bool similar = path == "/v1/similar";
  if (path != "/v1/recommend" && !similar) {
    return exchange->reply(error(404, "no route for " + path));
  }
  if (method != "POST") {
    return exchange->reply(error(405, "use POST", {{"Allow", "POST"}}));
  }

  auto tenant = exchange->header("X-Tenant-Id");
  if (!tenant || tenant->empty()) {
    return exchange->reply(
        error(401, "X-Tenant-Id is required", {{"WWW-Authenticate", "X-Tenant-Id"}}));
  }
  auto body = nlohmann::json::parse(exchange->body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return exchange->reply(error(400, "body must be a JSON object"));
  }
  auto job = std::make_unique<Job>();
  job->exchange = exchange;
  job->similar = similar;
  job->tenant = *tenant;
  job->service = this;
  if (auto it = body.find("tenant"); it != body.end()) {
    if (!it->is_string() || it->get<std::string>() != *tenant) {
      return exchange->reply(error(403, "body tenant does not match X-Tenant-Id"));
    }
  }
  if (!recommender_.hasTenant(*tenant)) {
    return exchange->reply(error(403, "unknown tenant"));
  }
  const char* id_field = similar ? "item_id" : "user_id";
  auto surface = body.find("surface");
  auto id = body.find(id_field);
  if (surface == body.end() || !surface->is_string() || surface->get<std::string>().empty()) {
    return exchange->reply(error(400, "surface must be a non-empty string"));
  }
  if (id == body.end() || !id->is_string() || id->get<std::string>().empty()) {
    return exchange->reply(error(400, std::string(id_field) + " must be a non-empty string"));
  }
  job->surface = surface->get<std::string>();
  job->id = id->get<std::string>();
  job->k = kDefaultK;
  if (auto k = body.find("k"); k != body.end()) {
    if (!k->is_number_unsigned() || k->get<uint64_t>() == 0 ||
        k->get<uint64_t>() > Recommender::kMaxK) {
      return exchange->reply(error(400, "k must be an integer in 1..200"));
    }
    job->k = k->get<size_t>();
  }
  if (similar && !recommender_.hasItem(job->tenant, job->id)) {
    return exchange->reply(error(404, "unknown item " + job->id));
  }
  if (auto wait = limiter_.tryAcquire(job->tenant, TenantRateLimiter::Clock::now())) {
    return exchange->reply(error(429, "tenant rate limit exceeded",
                                 {{"Retry-After", std::to_string(retryAfterSeconds(*wait))}}));
  }
  admit(std::move(job));
}

void RecommendationService::admit(std::unique_ptr<Job> job) {
  switch (backpressure_.offer(job)) {
    case Backpressure<std::unique_ptr<Job>>::Decision::Run: return start(std::move(job));
    case Backpressure<std::unique_ptr<Job>>::Decision::Queued: return;
    case Backpressure<std::unique_ptr<Job>>::Decision::Reject:
      return job->exchange->reply(error(503, "overloaded: in-flight and queue limits reached",
                                        {{"Retry-After", std::to_string(options_.retry_after_s)}}));
  }
}

void RecommendationService::start(std::unique_ptr<Job> job) {
  Job* raw = job.release();  // owned by the timer or the work queue until complete()
  if (options_.fetch_latency_ms > 0) {
    raw->timer = evtimer_new(base_, &RecommendationService::onFetched, raw);
    timeval tv{options_.fetch_latency_ms / 1000, (options_.fetch_latency_ms % 1000) * 1000};
    evtimer_add(raw->timer, &tv);
    return;
  }
  submit(raw);
}

void RecommendationService::onFetched(int, short, void* arg) {
  auto* job = static_cast<Job*>(arg);
  event_free(job->timer);
  job->timer = nullptr;
  job->service->submit(job);
}

void RecommendationService::submit(Job* job) {
  {
    std::lock_guard lock(mu_);
    work_.push_back(job);
  }
  cv_.notify_one();
}

void RecommendationService::workerLoop() {
  while (true) {
    Job* job = nullptr;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !work_.empty(); });
      if (stopping_) {
        return;
      }
      job = work_.front();
      work_.pop_front();
    }
    compute(*job);
    // Back to the loop thread (the base was made thread-safe with evthread_use_pthreads).
    event_base_once(base_, -1, EV_TIMEOUT, &RecommendationService::onComputed, job, nullptr);
  }
}

void RecommendationService::compute(Job& job) const {
  auto items = job.similar ? recommender_.similar(job.tenant, job.surface, job.id, job.k)
                           : recommender_.recommend(job.tenant, job.surface, job.id, job.k);
  if (!items) {
    job.response = error(400, items.error());
    return;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& item : *items) {
    list.push_back({{"item_id", item.item_id}, {"score", item.score}});
  }
  job.response = json(200, {{"tenant", job.tenant},
                            {"surface", job.surface},
                            {job.similar ? "item_id" : "user_id", job.id},
                            {"k", job.k},
                            {"model", "two-tower-dot-v1"},
                            {"items", list}});
}

void RecommendationService::onComputed(int, short, void* arg) {
  std::unique_ptr<Job> job(static_cast<Job*>(arg));
  job->service->complete(std::move(job));
}

void RecommendationService::complete(std::unique_ptr<Job> job) {
  job->exchange->reply(std::move(job->response));
  // Hand the slot to the next queued request whose client is still waiting.
  while (auto next = backpressure_.finish()) {
    if ((*next)->exchange->open()) {
      return start(std::move(*next));
    }
  }
}

}  // namespace bulwark::examples::recommendation
