#pragma once

// Checks that need more than one field: unique names, references between sections, address
// syntax and collisions, and rules on what a route will really use after inheritance.
// Thread: the loading thread.

#include "proxy/config/spec.h"
#include "proxy/config/yaml_reader.h"

namespace bulwark::config {

/**
 * Unique names, references (route.upstream, listener.routes, admin.readiness.requireUpstreams),
 * addresses (syntax, listener/admin collisions), endpoints. Runs on the parsed file before
 * inheritance. Fields whose parsing already failed are left empty and skipped, so one mistake
 * is reported once.
 */
void validateNames(LoadContext& ctx, const ProxyConfigSpec& spec);

/**
 * Rules on the effective route policies (after applyInheritance): perTryTimeout within the
 * request timeout, and warnings for retries that cannot work or are unsafe.
 */
void validateEffective(LoadContext& ctx, const ProxyConfigSpec& spec);

}  // namespace bulwark::config
