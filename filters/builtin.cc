#include "filters/builtin.h"

#include "filters/bulkhead/bulkhead_filter.h"
#include "filters/idempotency/idempotency_filter.h"
#include "filters/load_shed/load_shed_filter.h"
#include "filters/rate_limit/rate_limit_filter.h"

namespace bulwark::filters {

void registerBuiltinFilters(http::FilterRegistry& registry) {
  // Chain order. A rate-limited request is refused before it can take a load-shedding or
  // bulkhead slot. Idempotency-Key dedupe comes next: replays, 409 and 422 are cheap answers that
  // never reach the upstream, so they are neither shed nor queued, and the body it buffers for
  // the fingerprint is read before a bulkhead slot is held. Load shedding (the adaptive,
  // cheapest rejection) runs before the bulkhead so that an overloaded route sheds instead of
  // filling its queue. Fallback answers are
  // produced by the connection manager's local-reply path, not by a filter.
  registry.add(rate_limit::makeFactory());
  registry.add(idempotency::makeFactory());
  registry.add(load_shed::makeFactory());
  registry.add(bulkhead::makeFactory());
}

}  // namespace bulwark::filters
