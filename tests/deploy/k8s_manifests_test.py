#!/usr/bin/python3
"""deploy/k8s rendered as `kubectl apply -k` would, then checked offline:

* every field of every object exists in the Kubernetes API schema, with the right JSON type.
  Schema: the model classes of Debian's python3-kubernetes (the generated Kubernetes Python
  client, API 1.22): each class lists its fields' JSON names (attribute_map) and types
  (openapi_types), generated from the Kubernetes OpenAPI document. Fields added after 1.22 that
  the manifests use are declared in NEWER_FIELDS with their Kubernetes version; an entry the
  schema already knows fails, so the list cannot go stale unnoticed. The PodMonitor (a Prometheus
  Operator CRD, not in any Debian package) is checked against PODMONITOR_FIELDS, written from
  the operator's API reference.
* Pod Security Standards "restricted" for every pod template (the checks of the
  `restricted` profile, v1.2x), with runAsNonRoot and seccompProfile required at pod level.
* the bulwark image named once (kustomize `images:`), a topology spread and an HPA for the
  edge, a NetworkPolicy keeping the admin port to Prometheus, a PodMonitor whose selector and
  port match the pods that carry the prometheus.io annotations.

Usage: k8s_manifests_test.py SOURCE_DIR
"""
import os
import shutil
import subprocess
import sys

import yaml
from kubernetes.client import models

K8S = "deploy/k8s"

# (model class, JSON field) -> (Kubernetes version that added it, its schema)
NEWER_FIELDS = {
    ("V1Container", "restartPolicy"): ("1.28 (native sidecars)", "str"),
    ("V1PodDisruptionBudgetSpec", "unhealthyPodEvictionPolicy"): ("1.26", "str"),
    ("V1Handler", "sleep"): ("1.29 (LifecycleHandler.sleep)", {"seconds": "int"}),
}
# autoscaling/v2 went GA in 1.23 with the fields of v2beta2, which the 1.22 client has.
API_VERSION_MODELS = {("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler"}

LABEL_SELECTOR = {"matchLabels": "dict(str, str)", "matchExpressions": "list[object]"}
PODMONITOR_FIELDS = {
    "apiVersion": "str", "kind": "str", "metadata": "V1ObjectMeta",
    "spec": {
        "jobLabel": "str", "podTargetLabels": "list[str]", "sampleLimit": "int",
        "selector": LABEL_SELECTOR,
        "namespaceSelector": {"any": "bool", "matchNames": "list[str]"},
        "podMetricsEndpoints": [{
            "port": "str", "targetPort": "object", "path": "str", "scheme": "str",
            "params": "object", "interval": "str", "scrapeTimeout": "str", "honorLabels": "bool",
            "honorTimestamps": "bool", "relabelings": "list[object]",
            "metricRelabelings": "list[object]", "tlsConfig": "object", "basicAuth": "object",
            "bearerTokenSecret": "object", "followRedirects": "bool", "enableHttp2": "bool",
            "filterRunning": "bool", "proxyUrl": "str",
        }],
    },
}

failures = []


def fail(path, message):
    failures.append(f"{path}: {message}")


def check_primitive(path, value, type_name):
    expected = {"str": str, "int": int, "bool": bool, "float": (int, float)}.get(type_name)
    if type_name in ("object", "datetime"):
        return
    if expected is None:
        fail(path, f"unhandled schema type {type_name}")
    elif not isinstance(value, expected) or (type_name == "int" and isinstance(value, bool)):
        fail(path, f"expected {type_name}, got {type(value).__name__} {value!r}")


def check_typed(path, value, type_spec):
    """type_spec: a python-client type string, a dict (inline schema) or [dict] (list of it)."""
    if isinstance(type_spec, dict):
        if not isinstance(value, dict):
            return fail(path, f"expected an object, got {value!r}")
        for key, item in value.items():
            if key not in type_spec:
                fail(f"{path}.{key}", "unknown field")
            else:
                check_typed(f"{path}.{key}", item, type_spec[key])
        return
    if isinstance(type_spec, list):
        if not isinstance(value, list):
            return fail(path, f"expected a list, got {value!r}")
        for i, item in enumerate(value):
            check_typed(f"{path}[{i}]", item, type_spec[0])
        return
    if type_spec.startswith("list["):
        if not isinstance(value, list):
            return fail(path, f"expected a list, got {value!r}")
        for i, item in enumerate(value):
            check_typed(f"{path}[{i}]", item, type_spec[5:-1])
        return
    if type_spec.startswith("dict("):
        if not isinstance(value, dict):
            return fail(path, f"expected a map, got {value!r}")
        inner = type_spec[5:-1].split(", ", 1)[1]
        for key, item in value.items():
            check_typed(f"{path}[{key}]", item, inner)
        return
    cls = getattr(models, type_spec, None)
    if cls is None:
        return check_primitive(path, value, type_spec)
    check_model(path, value, cls)


def check_model(path, obj, cls):
    if not isinstance(obj, dict):
        return fail(path, f"expected a {cls.__name__} object, got {obj!r}")
    by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    for key, value in obj.items():
        if key in by_json:
            check_typed(f"{path}.{key}", value, cls.openapi_types[by_json[key]])
        elif (cls.__name__, key) in NEWER_FIELDS:
            check_typed(f"{path}.{key}", value, NEWER_FIELDS[(cls.__name__, key)][1])
        else:
            fail(f"{path}.{key}", f"unknown field (not in {cls.__name__})")


def model_for(api_version, kind):
    if (api_version, kind) in API_VERSION_MODELS:
        return getattr(models, API_VERSION_MODELS[(api_version, kind)])
    version = api_version.split("/")[-1]
    return getattr(models, version[0].upper() + version[1:] + kind, None)


def check_newer_fields_are_newer():
    for (cls_name, field), (since, _) in NEWER_FIELDS.items():
        if field in getattr(models, cls_name).attribute_map.values():
            fail("NEWER_FIELDS", f"{cls_name}.{field} (declared as new in {since}) is in the schema")


def containers_of(pod_spec):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod_spec.get(key) or []:
            yield key, c


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def check_restricted(where, pod_spec):
    """Pod Security Standards, restricted profile (baseline checks included)."""
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(host):
            fail(where, f"{host} is not allowed")
    for v in pod_spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            fail(where, f"volume {v['name']}: type {kinds - RESTRICTED_VOLUMES} not allowed")
    pod_sc = pod_spec.get("securityContext") or {}
    if pod_sc.get("runAsNonRoot") is not True:
        fail(where, "pod securityContext.runAsNonRoot must be true")
    if (pod_sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        fail(where, "pod securityContext.seccompProfile.type must be RuntimeDefault")
    if pod_sc.get("runAsUser") == 0:
        fail(where, "pod runAsUser 0")
    if pod_sc.get("sysctls"):
        fail(where, "sysctls are not allowed")
    for key, c in containers_of(pod_spec):
        cwhere = f"{where} {key} {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            fail(cwhere, "privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(cwhere, "allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            fail(cwhere, "capabilities.drop must include ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            fail(cwhere, f"capabilities.add {caps['add']} beyond NET_BIND_SERVICE")
        if sc.get("runAsNonRoot") is False or sc.get("runAsUser") == 0:
            fail(cwhere, "runs as root")
        profile = (sc.get("seccompProfile") or {}).get("type")
        if profile not in (None, "RuntimeDefault", "Localhost"):
            fail(cwhere, f"seccompProfile {profile}")
        if sc.get("procMount", "Default") != "Default":
            fail(cwhere, "procMount")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            fail(cwhere, "hostProcess")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                fail(cwhere, f"hostPort {p['hostPort']}")


def kustomize(directory):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("FAIL: kubectl not found (scripts/install-deps.sh installs kubernetes-client)")
        sys.exit(1)
    r = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        print(f"FAIL: kubectl kustomize {directory}:\n{r.stderr}")
        sys.exit(1)
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def main():
    source = sys.argv[1]
    objects = kustomize(os.path.join(source, K8S))
    operator_objects = kustomize(os.path.join(source, K8S, "prometheus-operator"))
    check_newer_fields_are_newer()

    for obj in objects + operator_objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("kind") == "PodMonitor":
            check_typed(where, obj, PODMONITOR_FIELDS)
            continue
        cls = model_for(obj.get("apiVersion", ""), obj.get("kind", ""))
        if cls is None:
            fail(where, f"no schema for {obj.get('apiVersion')} {obj.get('kind')}")
            continue
        check_model(where, obj, cls)

    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    deployments = by_kind.get("Deployment", {})
    for name, d in deployments.items():
        check_restricted(f"Deployment/{name}", d["spec"]["template"]["spec"])

    # One image name, from kustomization.yaml's images: entry.
    kustomization = yaml.safe_load(open(os.path.join(source, K8S, "kustomization.yaml")))
    entry = [i for i in kustomization.get("images", []) if i["name"] == "bulwark"]
    if len(entry) != 1:
        fail("kustomization.yaml", "needs exactly one images: entry named bulwark")
    else:
        expected = f"{entry[0]['newName']}:{entry[0]['newTag']}"
        bulwark_images = [c["image"] for d in deployments.values()
                          for _, c in containers_of(d["spec"]["template"]["spec"])
                          if c["name"] == "bulwark"]
        if not bulwark_images or set(bulwark_images) != {expected}:
            fail("images", f"bulwark containers use {bulwark_images}, expected {expected}")
    for name in os.listdir(os.path.join(source, K8S)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            for line in open(os.path.join(source, K8S, name)):
                if line.strip().startswith("image:") and ":" in line.split("image:")[1].split("#")[0]:
                    fail(name, f"names an image with a registry or tag: {line.strip()}")

    edge = deployments.get("bulwark-edge")
    if not edge:
        fail("Deployment/bulwark-edge", "missing")
    else:
        tsc = edge["spec"]["template"]["spec"].get("topologySpreadConstraints") or []
        if not tsc:
            fail("Deployment/bulwark-edge", "no topologySpreadConstraints")
        if "replicas" in edge["spec"]:
            fail("Deployment/bulwark-edge", "sets replicas although an HPA owns the count")
        hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()
                if h["spec"]["scaleTargetRef"]["name"] == "bulwark-edge"]
        if not hpas:
            fail("bulwark-edge", "no HorizontalPodAutoscaler targets it")

    # NetworkPolicy: the admin port (9901) only from explicit peers, for every bulwark pod.
    policies = by_kind.get("NetworkPolicy", {}).values()
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        if labels.get("bulwark.dev/proxy") != "true":
            continue  # not a bulwark pod (the Redis stand-in): no admin port
        selecting = [p for p in policies
                     if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
                     and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
        if not selecting:
            fail(f"Deployment/{name}", "no NetworkPolicy selects its pods")
        for p in selecting:
            admin_rules = 0
            for rule in p["spec"].get("ingress") or []:
                ports = rule.get("ports")
                covers_admin = ports is None or any(pp.get("port") in (9901, "bulwark-admin")
                                                    for pp in ports)
                if covers_admin:
                    admin_rules += 1
                    if not rule.get("from"):
                        fail(f"NetworkPolicy/{p['metadata']['name']}",
                             "a rule admits the admin port from everywhere")
            if admin_rules == 0:
                fail(f"NetworkPolicy/{p['metadata']['name']}", "no rule admits Prometheus")

    # PodMonitor next to the annotations: same pods, same port, same path.
    monitors = [o for o in operator_objects if o["kind"] == "PodMonitor"]
    if not monitors:
        fail("prometheus-operator", "no PodMonitor")
    for m in monitors:
        selector = m["spec"]["selector"]["matchLabels"]
        for name, d in deployments.items():
            tmpl = d["spec"]["template"]
            annotations = tmpl["metadata"].get("annotations") or {}
            if annotations.get("prometheus.io/scrape") != "true":
                continue
            if not selector.items() <= tmpl["metadata"]["labels"].items():
                fail(f"PodMonitor/{m['metadata']['name']}", f"does not select {name}'s pods")
            ports = {p.get("name"): p["containerPort"]
                     for _, c in containers_of(tmpl["spec"]) for p in c.get("ports") or []}
            for ep in m["spec"]["podMetricsEndpoints"]:
                if str(ports.get(ep["port"])) != annotations.get("prometheus.io/port"):
                    fail(f"PodMonitor/{m['metadata']['name']}",
                         f"port {ep['port']} is not {name}'s prometheus.io/port")
                if ep.get("path", "/metrics") != annotations.get("prometheus.io/path"):
                    fail(f"PodMonitor/{m['metadata']['name']}", f"path differs from {name}'s")

    for f in failures:
        print("FAIL:", f)
    print(f"k8s_manifests: {len(objects) + len(operator_objects)} objects, "
          f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
