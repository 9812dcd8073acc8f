#pragma once

// defaults -> routes inheritance: a route that does not set a
// block gets a copy of the `defaults` block; a route's own block REPLACES the inherited one
// (Linkerd semantics: no field-by-field merge). Thread: any (pure function).

#include "proxy/config/spec.h"

namespace bulwark::config {

/**
 * Resolves what every route and listener will use:
 *  - each absent route block is copied from `defaults`;
 *  - routes without `timeouts` or `retries` anywhere get the documented defaults
 *    (request timeout 15s, one attempt) so the effective config shows them;
 *  - a listener with no `routes` gets every route, in file order.
 */
void applyInheritance(ProxyConfigSpec& spec);

}  // namespace bulwark::config
