"""Scenario harness: processes, fault knobs, proxies, the load generator and phase files.

Modules:
  procs     Supervisor / Proc: start children, wait for their `listening on` lines, stop them all
            (also on Ctrl-C, SIGTERM, or the harness dying: PR_SET_PDEATHSIG)
  admin     bulwark admin (/ready, /metrics, POST /reload) and the backends' fault port
  backends  N replicas of each example backend + redis-server as ranking's feature store
  bulwark   bulwark with examples/edge.yaml rewritten to the run's ports; reload and handover
  loadgen   bulwark-loadgen argv and JSON report
  scenario  the phase file (bench/scenarios/chaos.yaml) as objects
  runner    one pass of a scenario (through a proxy or straight to the replicas)
"""
