#include "policies/lb/register_builtin_lb.h"

#include <utility>

#include "common/assert.h"
#include "policies/lb/least_request.h"
#include "policies/lb/maglev.h"
#include "policies/lb/peak_ewma.h"
#include "policies/lb/random_lb.h"
#include "policies/lb/ring_hash.h"
#include "policies/lb/round_robin.h"

namespace bulwark::policies::lb {
namespace {

void addOrDie(LbRegistry& registry, LbFactoryPtr factory) {
  const Status status = registry.add(std::move(factory));
  // Only registering the built-ins twice into one registry can fail: a programming error.
  BULWARK_RELEASE_ASSERT(status.isOk(), status.message().c_str());
}

}  // namespace

void registerBuiltinLoadBalancers(LbRegistry& registry) {
  addOrDie(registry, makeRoundRobinFactory());
  addOrDie(registry, makeLeastRequestFactory());
  addOrDie(registry, makeRandomFactory());
  addOrDie(registry, makeRingHashFactory());
  addOrDie(registry, makeMaglevFactory());
  addOrDie(registry, makePeakEwmaFactory());
}

}  // namespace bulwark::policies::lb
