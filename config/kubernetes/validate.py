#!/usr/bin/env python3
"""Validates the rendered Kustomize base offline; .ci/run runs it as

    kubectl kustomize config/kubernetes/base | python config/kubernetes/validate.py -
    kubectl kustomize config/kubernetes/redis | python config/kubernetes/validate.py - --store

1. Every object against the Kubernetes OpenAPI schemas that the
   kubernetes-validate package ships (strict: an unknown or misspelt field
   fails), for the oldest and the newest Kubernetes version we support. A
   kind with no schema fails too, never a warning.
2. The ServiceMonitor (a CRD, not in those schemas) against
   schemas/servicemonitor-monitoring-v1.json.
3. What no schema can see, but the deployment depends on: the grace period
   covers mcpgate's drain, keys are mounted as a directory (never subPath),
   the config ConfigMaps carry kustomize's content hash, probes and ports
   agree with mcpgate.toml, and the oauth2-proxy rules that keep sign-in
   safe.
4. With --store (the redis overlay): the shared store's objects, that
   mcpgate's store URL names its Service, and that only mcpgate reaches it.

Ends with "N passed, M failed"; exits 1 on any failure.
"""

import json
import pathlib
import re
import sys
import tomllib

import jsonschema
import kubernetes_validate
import yaml

HERE = pathlib.Path(__file__).resolve().parent
# Oldest supported: the oauth2-proxy sidecar's preStop `sleep` action needs 1.30.
VERSIONS = ["1.30", kubernetes_validate.latest_version()]
EXPECTED_KINDS = {
    "ConfigMap": 2,
    "Deployment": 1,
    "Service": 1,
    "Ingress": 1,
    "PodDisruptionBudget": 1,
    "NetworkPolicy": 1,
    "HorizontalPodAutoscaler": 1,
    "ServiceMonitor": 1,
}
# The redis overlay adds one of each.
STORE_KINDS = ["Deployment", "Service", "NetworkPolicy"]
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
}

passed = 0
failed = 0


def check(name, ok, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}{': ' + why if why else ''}")


def seconds(text):
    """A mcpgate duration ("500ms", "5s", "1m", "1h", "30d") in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    n, unit = int(m[1]), m[2]
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def schemas(objs):
    for obj in objs:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        crd = CRD_SCHEMAS.get((obj.get("apiVersion"), obj.get("kind")))
        if crd:
            schema = json.loads((HERE / "schemas" / crd).read_text())
            errors = sorted(
                jsonschema.Draft202012Validator(schema).iter_errors(obj),
                key=lambda e: list(e.path),
            )
            check(
                f"{name} against schemas/{crd}",
                not errors,
                "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors),
            )
            continue
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
                check(f"{name} against Kubernetes {version} (strict)", True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(map(str, e.path))
                check(f"{name} against Kubernetes {version} (strict)", False, f"{path}: {e.message}")
            except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
                check(
                    f"{name} against Kubernetes {version}",
                    False,
                    f"{e.message} (a CRD? add its schema to schemas/ and CRD_SCHEMAS)",
                )


def deployment_rules(objs, store):
    by_kind = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    expected = dict(EXPECTED_KINDS)
    if store:
        for kind in STORE_KINDS:
            expected[kind] += 1
    for kind, count in expected.items():
        got = len(by_kind.get(kind, []))
        check(f"the rendering has {count} {kind}", got == count, f"found {got}")

    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    deploy = named(by_kind["Deployment"], "mcpgate")
    pod = deploy["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    gen = {}
    for vol in volumes.values():
        ref = vol.get("configMap", {}).get("name")
        if ref is not None:
            base = re.sub(r"-[a-z0-9]{10}$", "", ref)
            gen[base] = ref
            check(
                f"volume {vol['name']} names a generated ConfigMap with a content hash ({ref})",
                ref in configmaps and ref != base,
                "a config change would not roll the pods: use configMapGenerator, keep the name hash",
            )

    toml_cm = configmaps.get(gen.get("mcpgate", ""), {}).get("data", {})
    cfg = tomllib.loads(toml_cm.get("mcpgate.toml", ""))
    server = cfg.get("server", {})
    drain = seconds(server.get("drain_delay", "5s"))
    grace = seconds(server.get("shutdown_grace", "30s"))
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    check(
        f"terminationGracePeriodSeconds {tgps} > server.drain_delay + server.shutdown_grace ({drain:g} + {grace:g} s)",
        tgps > drain + grace,
    )
    check(
        "mcpgate listens on loopback only (oauth2-proxy is the way in)",
        str(cfg.get("listen", "")).startswith("127.0.0.1:"),
        f"listen = {cfg.get('listen')!r}",
    )

    mcpgate = containers.get("mcpgate", {})
    metrics_port = str(server.get("metrics_listen", "")).rpartition(":")[2]
    ports = {p.get("name"): p["containerPort"] for p in mcpgate.get("ports", [])}
    check(
        f"server.metrics_listen port ({metrics_port or 'unset'}) is the container's metrics port",
        metrics_port and ports.get("metrics") == int(metrics_port),
        f"container ports {ports}",
    )
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got = mcpgate.get(probe, {}).get("httpGet", {})
        check(
            f"mcpgate {probe} is GET {path} on the metrics port",
            got.get("path") == path and got.get("port") in ("metrics", ports.get("metrics")),
            f"got {got}",
        )

    keys_dir = cfg.get("keys", {}).get("dir")
    key_mounts = [
        (c["name"], m)
        for c in pod["containers"]
        for m in c.get("volumeMounts", [])
        if "secret" in volumes.get(m["name"], {})
        and volumes[m["name"]]["secret"]["secretName"] == "mcpgate-keys"
    ]
    check(
        f"the mcpgate-keys Secret is mounted at keys.dir ({keys_dir}) in mcpgate",
        any(c == "mcpgate" and m["mountPath"] == keys_dir for c, m in key_mounts),
        f"mounts {key_mounts}",
    )
    check(
        "no key mount uses subPath (subPath mounts never see a Secret update)",
        all("subPath" not in m and "subPathExpr" not in m for _, m in key_mounts),
    )
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        check(
            f"container {c['name']}: non-root, read-only root filesystem, requests and limits",
            sc.get("readOnlyRootFilesystem") is True
            and (sc.get("runAsNonRoot") or pod.get("securityContext", {}).get("runAsNonRoot")) is True
            and sc.get("allowPrivilegeEscalation") is False
            and c.get("resources", {}).get("requests", {}).get("cpu")
            and c.get("resources", {}).get("limits", {}).get("memory"),
        )

    proxy_cm = configmaps.get(gen.get("mcpgate-oauth2-proxy", ""), {}).get("data", {})
    proxy_text = proxy_cm.get("oauth2-proxy.cfg", "")
    proxy = tomllib.loads(proxy_text)
    check(
        "oauth2-proxy: sign-in only on /oauth/authorize",
        proxy.get("skip_auth_routes") == ["!=^/oauth/authorize$"],
        f"skip_auth_routes = {proxy.get('skip_auth_routes')!r}",
    )
    check(
        "oauth2-proxy: never pass_authorization_header",
        proxy.get("pass_authorization_header", False) is False,
    )
    check(
        "oauth2-proxy: trusted_proxy_ips set (CVE-2026-40575)",
        bool(proxy.get("trusted_proxy_ips")),
    )
    check(
        "oauth2-proxy: upstream is mcpgate's loopback listener",
        proxy.get("upstreams") == [f"http://{cfg.get('listen')}/"],
        f"upstreams = {proxy.get('upstreams')!r}",
    )
    # A repository check, whatever was rendered: the base's copy (kustomize
    # reads only files under the base) must not drift from the one the
    # README documents.
    check(
        "base/oauth2-proxy.cfg is the same as config/oauth2-proxy.cfg",
        (HERE / "base" / "oauth2-proxy.cfg").read_bytes() == (HERE.parent / "oauth2-proxy.cfg").read_bytes(),
        "copy config/oauth2-proxy.cfg to config/kubernetes/base/ (kustomize reads only its own directory)",
    )


def named(objs, name):
    return next(o for o in objs if o["metadata"]["name"] == name)


def store_rules(objs, mcpgate_container):
    """The redis overlay: mcpgate's [store] url names the store's Service
    and port, the store never evicts a key, and only mcpgate pods reach it."""
    by_kind = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    env = {e["name"]: e.get("value") for e in mcpgate_container.get("env", [])}
    url = env.get("MCPGATE_STORE__URL") or ""
    m = re.fullmatch(r"rediss?://([a-z0-9-]+):(\d+)/\d+", url)
    service = named(by_kind["Service"], "mcpgate-valkey")
    ports = {p["port"] for p in service["spec"]["ports"]}
    check(
        f"MCPGATE_STORE__URL ({url or 'unset'}) names the store's Service and port",
        bool(m) and m[1] == service["metadata"]["name"] and int(m[2]) in ports,
        f"Service mcpgate-valkey ports {sorted(ports)}",
    )
    timeout = env.get("MCPGATE_STORE__TIMEOUT", "500ms")
    check(f"store timeout {timeout} is within 10ms..10s", 0.01 <= seconds(timeout) <= 10)
    store = named(by_kind["Deployment"], "mcpgate-valkey")
    args = store["spec"]["template"]["spec"]["containers"][0].get("args", [])
    check(
        "the store never evicts a key (maxmemory-policy noeviction): an evicted key is a forgotten use",
        "--maxmemory-policy" in args and args[args.index("--maxmemory-policy") + 1] == "noeviction",
        f"args {args}",
    )
    policy = named(by_kind["NetworkPolicy"], "mcpgate-valkey")
    sources = [f for rule in policy["spec"].get("ingress", []) for f in rule.get("from", [])]
    check(
        "only mcpgate pods reach the store",
        policy["spec"]["podSelector"]["matchLabels"] == store["spec"]["selector"]["matchLabels"]
        and sources == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mcpgate"}}}],
        f"from {sources}",
    )


def main():
    args = [a for a in sys.argv[1:] if a != "--store"]
    store = "--store" in sys.argv[1:]
    src = args[0] if args else "-"
    text = sys.stdin.read() if src == "-" else pathlib.Path(src).read_text()
    objs = [o for o in yaml.safe_load_all(text) if o]
    if not objs:
        sys.exit("no objects to validate")
    print(f"kubernetes-validate {kubernetes_validate.__version__}, Kubernetes {', '.join(VERSIONS)}")
    schemas(objs)
    try:
        deployment_rules(objs, store)
        if store:
            deploy = named([o for o in objs if o["kind"] == "Deployment"], "mcpgate")
            containers = deploy["spec"]["template"]["spec"]["containers"]
            store_rules(objs, next(c for c in containers if c["name"] == "mcpgate"))
    except Exception as e:  # a missing object or key: say which, fail
        check("deployment rules", False, f"{type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
