#pragma once

#include "proxy/http/filter.h"

namespace bulwark::filters {

/**
 * The one list of built-in filters, in chain order (load shedding first, as architecture §11.4).
 * No static initializers: a filter exists only if it is listed here.
 */
void registerBuiltinFilters(http::FilterRegistry& registry);

}  // namespace bulwark::filters
