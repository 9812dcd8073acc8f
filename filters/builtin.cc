#include "filters/builtin.h"

namespace bulwark::filters {

void registerBuiltinFilters(http::FilterRegistry& registry) {
  // Chain order. Filters are added here as they land (issue #6: rate_limit, load_shed,
  // bulkhead; fallback answers are produced by the connection manager's local-reply path).
  (void)registry;
}

}  // namespace bulwark::filters
