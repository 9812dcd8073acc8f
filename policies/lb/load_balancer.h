#pragma once

// The load-balancer seam, split as gRPC splits it: a LoadBalancer is built
// once per host-set snapshot on the main thread (it holds the expensive immutable parts: ring,
// Maglev table, cumulative weights) and hands out one LbPicker per worker (the cheap mutable
// parts: round-robin cursor, RNG). Workers call only LbPicker::pick().
//
// Eligibility, shared by every algorithm:
//  * A host is available when healthy and not ejected (LbHostState::available()).
//  * Panic mode: when the available hosts are fewer than LbConfig::panic_threshold_percent of all
//    hosts, or when none is available at all, the picker balances over ALL hosts, as Envoy does.
//    Sending to a host believed bad beats failing every request locally when the health signal
//    itself may be wrong (e.g. a health-check path broken while the service works).
//  * Retries: with LbContext::ignore_previous, hosts in LbContext::attempted are skipped while at
//    least one other eligible host remains; otherwise they are used again (a retry to the same
//    host beats no retry).

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policies/lb/lb_host.h"
#include "policies/random.h"
#include "policies/time.h"

namespace bulwark::policies::lb {

/** Per-request input of a pick. Thread: value type (borrowed views; valid for the call). */
struct LbContext {
  /** RING_HASH / MAGLEV key (see hashKey()); without one they pick a random slot. */
  std::optional<uint64_t> hash_key;
  /**
   * Indices (into the picker's snapshot) of hosts used by earlier attempts of this request. A
   * router whose snapshot changed between attempts must translate them or pass none.
   */
  std::span<const uint32_t> attempted;
  /** Route retryIgnorePreviousHosts: avoid `attempted` while another eligible host exists. */
  bool ignore_previous = true;
  /** The caller's current time; PEAK_EWMA decays latency estimates to it. */
  MonotonicTime now{};
};

/** Algorithm parameters (upstream `loadBalancer` block). Thread: value type. */
struct LbConfig {
  /** LEAST_REQUEST, PEAK_EWMA: candidates drawn per pick (Envoy choice_count), 1..100. */
  uint32_t choice_count = 2;
  /** RING_HASH: Envoy's minimum_ring_size / maximum_ring_size. */
  uint64_t min_ring_size = 1024;
  uint64_t max_ring_size = 8UL * 1024 * 1024;
  /** MAGLEV: table size; must be prime and at least the number of hosts (Envoy: 65537). */
  uint64_t maglev_table_size = 65537;
  /** PEAK_EWMA: decay time constant (Linkerd `decay`, Envoy contrib `decay_time`). */
  Duration ewma_decay = kDefaultEwmaDecay;
  /** PEAK_EWMA: assumed latency of a host without samples (Linkerd `default_rtt`). */
  Duration ewma_default_rtt = std::chrono::milliseconds(10);
  /**
   * Panic when available hosts < this percentage of all hosts (Envoy healthy_panic_threshold).
   * 0 = panic only when no host at all is available.
   */
  uint32_t panic_threshold_percent = 0;
};

/**
 * Data-plane half: picks a host for one attempt. Never blocks; allocation-free after the first
 * few picks (scratch buffers are reused).
 * Thread: the worker that owns it. Lifetime: keeps its snapshot alive.
 */
class LbPicker {
public:
  virtual ~LbPicker() = default;

  /**
   * @param ctx hash key, hosts already tried, and the current time.
   * @return an index into the snapshot, or nullopt only when the snapshot is empty.
   */
  virtual std::optional<uint32_t> pick(const LbContext& ctx) = 0;
};
using LbPickerPtr = std::unique_ptr<LbPicker>;

/**
 * A balancer for one host-set snapshot: immutable, shared by all workers.
 * Thread: any (const).
 */
class LoadBalancer {
public:
  virtual ~LoadBalancer() = default;

  /**
   * Creates this worker's picker. Called once per worker per snapshot.
   * @param random the worker's RNG; must outlive the picker and is used only on that worker.
   */
  virtual LbPickerPtr createPicker(Random& random) const = 0;

  /** @return the snapshot the pickers index into. */
  virtual const LbHostSet& hosts() const = 0;
};
using LoadBalancerConstSharedPtr = std::shared_ptr<const LoadBalancer>;

/**
 * The LoadBalancer of a policy whose pickers all read one immutable structure built per
 * snapshot (a ring, a Maglev table, the host set with its weights): `Shared` has a `hosts`
 * member, and `Picker` is constructed from (shared_ptr<const Shared>, Random&).
 * Thread: any (const).
 */
template <typename Picker, typename Shared>
class SharedStateLoadBalancer : public LoadBalancer {
public:
  explicit SharedStateLoadBalancer(std::shared_ptr<const Shared> shared)
      : shared_(std::move(shared)) {}

  LbPickerPtr createPicker(Random& random) const override {
    return std::make_unique<Picker>(shared_, random);
  }
  const LbHostSet& hosts() const override { return *shared_->hosts; }

private:
  std::shared_ptr<const Shared> shared_;
};

/**
 * Control-plane half: validates configuration and builds a LoadBalancer per snapshot.
 * Thread: main (config load, host-set updates). Stateless.
 */
class LbFactory {
public:
  virtual ~LbFactory() = default;

  /** @return the YAML name, e.g. "ROUND_ROBIN". */
  virtual std::string_view name() const = 0;

  /** @return an error naming the offending field when `config` is invalid for this algorithm. */
  virtual Status validate(const LbConfig& config) const;

  /**
   * Builds the balancer for one snapshot after validating `config` (validate()) and `hosts`
   * (validateHostSet() plus the algorithm's own checks, e.g. unique names for consistent
   * hashing). An empty snapshot is valid: its pickers return nullopt.
   * @param hosts the snapshot; null is an error.
   */
  Result<LoadBalancerConstSharedPtr> create(LbHostSetConstSharedPtr hosts,
                                            const LbConfig& config) const;

protected:
  /** Algorithm-specific host checks on top of validateHostSet(). */
  virtual Status validateHosts(const LbHostSet& hosts, const LbConfig& config) const;

  /** Builds the balancer; `hosts` and `config` are already validated. */
  virtual LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                           const LbConfig& config) const = 0;
};
using LbFactoryPtr = std::unique_ptr<LbFactory>;

/**
 * Factories by name. Filled once by registerBuiltinLoadBalancers() (no static initialisers).
 * Thread: main while registering; any once filled (read-only).
 */
class LbRegistry {
public:
  /** @return an error when a factory with the same name is already registered. */
  Status add(LbFactoryPtr factory);

  /** @return the factory or nullptr. */
  const LbFactory* find(std::string_view name) const;

  /** @return registered names in registration order (for error messages and `bulwark check`). */
  std::vector<std::string_view> names() const;

private:
  std::vector<LbFactoryPtr> factories_;
};

/**
 * Checks the parts of a snapshot every algorithm needs: non-null state and weight >= 1.
 * Thread: any (pure).
 */
Status validateHostSet(const LbHostSet& hosts);

/**
 * Consistent hashing places hosts by name, so two hosts with one name would collide.
 * Thread: any (pure).
 * @param algorithm used in the error message.
 */
Status requireUniqueNames(const LbHostSet& hosts, std::string_view algorithm);

}  // namespace bulwark::policies::lb
