#pragma once

#include "proxy/http/filter.h"

namespace bulwark::filters {

/**
 * The one list of built-in filters, in chain order: rate_limit -> idempotency -> load_shed ->
 * bulkhead (a replayed or refused duplicate costs no concurrency slot). No static initializers: a
 * filter exists only if it is listed here. Thread: main (start-up).
 */
void registerBuiltinFilters(http::FilterRegistry& registry);

}  // namespace bulwark::filters
