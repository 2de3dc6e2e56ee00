#!/usr/bin/env python3
"""The fake API server as the official Python client (Debian python3-kubernetes) sees it.

A client nobody here wrote pins the fake's wire format: typed models for paged lists, a get,
watches with ADDED/MODIFIED/DELETED and BOOKMARK, 410 after compaction, 403 from the
forbidden fault, bearer token and client certificate auth. Starts its own fake server (with
mkcerts.sh) and prints "ok - ..." / "not ok - ..." lines and "N passed, N failed".

    /usr/bin/python3 tests/apiserver/pyclient_test.py
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

import kubernetes
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

HERE = os.path.dirname(os.path.abspath(__file__))
passed = 0
failed = 0


def check(cond, desc, detail=None):
    global passed, failed
    if cond:
        passed += 1
        print("ok - %s" % desc)
    else:
        failed += 1
        print("not ok - %s" % desc)
        if detail is not None:
            for line in str(detail).splitlines()[:20]:
                print("#   %s" % line)
    sys.stdout.flush()
    return cond


class Fake:
    """One fake_apiserver.py with its own PKI and token, torn down by stop()."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pyclient-test.")
        self.pki = os.path.join(self.dir, "pki")
        subprocess.run(["bash", os.path.join(HERE, "mkcerts.sh"), self.pki], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.token = "py-token-1"
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write(self.token + "\n")
        ports = os.path.join(self.dir, "ports.json")
        self.err = open(os.path.join(self.dir, "server.err"), "w")
        # Bookmarks only on demand (bookmark_now), so the watch checks see exactly one.
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fake_apiserver.py"), "--listen", "127.0.0.1",
             "--port", "0", "--control-port", "0",
             "--cert", os.path.join(self.pki, "server.crt"),
             "--key", os.path.join(self.pki, "server.key"),
             "--client-ca", os.path.join(self.pki, "ca.crt"),
             "--token-file", os.path.join(self.dir, "token"), "--port-file", ports,
             "--bookmark-interval", "0"],
            stdout=subprocess.DEVNULL, stderr=self.err)
        for _ in range(100):
            if os.path.exists(ports) and os.path.getsize(ports):
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        with open(ports) as f:
            p = json.load(f)
        self.port, self.cport = p["port"], p["control_port"]

    def ctl(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.cport, path), data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def config(self, cert=False):
        c = client.Configuration()
        c.host = "https://127.0.0.1:%d" % self.port
        c.ssl_ca_cert = os.path.join(self.pki, "ca.crt")
        if cert:
            c.cert_file = os.path.join(self.pki, "client.crt")
            c.key_file = os.path.join(self.pki, "client.key")
        else:
            c.api_key = {"authorization": self.token}
            c.api_key_prefix = {"authorization": "Bearer"}
        return c

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        if os.environ.get("KEEP"):
            print("# kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def service(ns, name, **spec):
    spec.setdefault("ports", [{"name": "http", "port": 80}])
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def eslice(ns, name, svc, endpoints):
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": [{"name": "http", "port": 8080}]}


def paged(fn, limit, **kw):
    """All pages of a list call: (pages, items)."""
    pages, items, cont = [], [], None
    while True:
        if cont:
            page = fn(limit=limit, _continue=cont, **kw)
        else:
            page = fn(limit=limit, **kw)
        pages.append(page)
        items.extend(page.items)
        cont = page.metadata._continue
        if not cont or len(pages) > 100:
            return pages, items


def test_lists(fake, core, disc, svcs, slices):
    pages, items = paged(core.list_service_for_all_namespaces, 4)
    keys = [(i.metadata.namespace, i.metadata.name) for i in items]
    check(len(pages) > 2 and all(isinstance(p, client.V1ServiceList) for p in pages),
          "services: %d pages of limit 4, each a V1ServiceList" % len(pages))
    check(sorted(keys) == sorted(svcs) and len(set(keys)) == len(keys),
          "services: every object seen exactly once across the pages (%d)" % len(keys),
          set(keys) ^ set(svcs))
    check(all(isinstance(i, client.V1Service) and isinstance(i.spec, client.V1ServiceSpec)
              and isinstance(i.metadata, client.V1ObjectMeta) for i in items),
          "services: items parsed into V1Service / V1ServiceSpec / V1ObjectMeta")
    rvs = {p.metadata.resource_version for p in pages}
    remaining = [p.metadata.remaining_item_count for p in pages]
    check(len(rvs) == 1 and remaining[0] == len(svcs) - 4 and remaining[-1] is None,
          "services: one list resourceVersion %s, remainingItemCount %s" % (rvs, remaining))

    # An empty slice comes back as "endpoints": null, as from a real server. The generated
    # model insists on the field (required in the OpenAPI schema) and its deserializer always
    # validates, so this client cannot parse such a list into models at all.
    try:
        disc.list_endpoint_slice_for_all_namespaces()
        strict = None
    except ValueError as e:
        strict = str(e)
    check(strict is not None and "endpoints" in strict,
          "endpoint slices: the typed client rejects a list with \"endpoints\": null "
          "(ValueError, as against a real server)", strict)
    pages, items = paged(disc.list_endpoint_slice_for_all_namespaces, 5,
                         label_selector="!pyc-empty")
    keys = [(i.metadata.namespace, i.metadata.name) for i in items]
    want = [k for k in slices if not k[1].startswith("s1-")]
    check(len(pages) > 2 and all(isinstance(p, client.V1EndpointSliceList) for p in pages)
          and all(p.metadata.remaining_item_count is None for p in pages),
          "endpoint slices: %d typed pages of limit 5 with a selector (no remainingItemCount)"
          % len(pages))
    check(sorted(keys) == sorted(want) and len(set(keys)) == len(keys),
          "endpoint slices: every selected object seen exactly once (%d)" % len(keys))
    full = {(i.metadata.namespace, i.metadata.name): i for i in items}[("pyc-a", "s0-1")]
    ep = full.endpoints[0] if full.endpoints else None
    check(isinstance(ep, client.V1Endpoint) and ep.addresses == ["10.244.0.5"]
          and isinstance(ep.conditions, client.V1EndpointConditions) and ep.conditions.ready
          and ep.conditions.terminating is False and ep.node_name == "node1"
          and isinstance(full.ports[0], client.DiscoveryV1EndpointPort)
          and full.ports[0].protocol == "TCP" and full.ports[0].port == 8080
          and full.metadata.generation == 1
          and full.metadata.managed_fields[0].manager == "kube-controller-manager",
          "endpoint slices: V1Endpoint with conditions, DiscoveryV1EndpointPort defaulted to "
          "TCP, generation 1, managedFields", full)
    raw, cont = [], None
    for _ in range(100):
        kw = {"_continue": cont} if cont else {}
        r = disc.list_endpoint_slice_for_all_namespaces(limit=5, _preload_content=False, **kw)
        page = json.loads(r.data)
        raw.extend(page["items"])
        cont = page["metadata"].get("continue")
        if not cont:
            break
    keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in raw]
    empty = [i for i in raw if i["metadata"]["name"].startswith("s1-")]
    check(sorted(keys) == sorted(slices) and len(empty) == 5
          and all("endpoints" in i and i["endpoints"] is None for i in empty),
          "endpoint slices: all %d seen once through raw pages, the empty ones with "
          "\"endpoints\": null" % len(keys))


def test_get(core):
    s = core.read_namespaced_service("s0", "pyc-a")
    sp = s.spec
    check(isinstance(s, client.V1Service) and s.kind == "Service" and s.api_version == "v1",
          "get: a V1Service with kind and apiVersion")
    check(sp.type == "ClusterIP" and sp.session_affinity == "None"
          and sp.internal_traffic_policy == "Cluster" and sp.ip_family_policy == "SingleStack"
          and sp.ip_families == ["IPv4"] and sp.cluster_i_ps == [sp.cluster_ip]
          and sp.cluster_ip.startswith("10.96.") and sp.external_traffic_policy is None,
          "get: defaulted and allocated spec (type, affinity, policies, families, clusterIPs %s)"
          % sp.cluster_i_ps, sp)
    p = sp.ports[0]
    check(isinstance(p, client.V1ServicePort) and p.protocol == "TCP" and p.port == 80
          and p.target_port == 80 and p.node_port is None,
          "get: V1ServicePort with protocol TCP and targetPort = port", p)
    check(isinstance(s.status, client.V1ServiceStatus)
          and isinstance(s.status.load_balancer, client.V1LoadBalancerStatus)
          and s.status.load_balancer.ingress is None,
          "get: status.loadBalancer is an empty V1LoadBalancerStatus")
    mf = s.metadata.managed_fields or []
    check(len(mf) == 1 and isinstance(mf[0], client.V1ManagedFieldsEntry)
          and mf[0].manager == "kubectl-client-side-apply" and mf[0].operation == "Update"
          and mf[0].fields_type == "FieldsV1" and "f:spec" in mf[0].fields_v1
          and isinstance(mf[0].time, datetime.datetime) and mf[0].time.tzinfo is not None,
          "get: managedFields as V1ManagedFieldsEntry (manager, Update, FieldsV1, time)", mf)
    check(isinstance(s.metadata.creation_timestamp, datetime.datetime)
          and s.metadata.uid and s.metadata.resource_version,
          "get: uid, resourceVersion, creationTimestamp parsed")
    lb = core.read_namespaced_service("lb", "pyc-b").spec
    check(lb.type == "LoadBalancer" and lb.allocate_load_balancer_node_ports is True
          and lb.external_traffic_policy == "Local" and 30000 <= lb.health_check_node_port <= 32767
          and 30000 <= lb.ports[0].node_port <= 32767,
          "get: a LoadBalancer with allocated nodePort and healthCheckNodePort", lb)


def test_watch(fake, core):
    rv = fake.ctl("GET", "/control/state")["resourceVersion"]
    seen, errors = [], []

    def changes():
        try:
            st = fake.ctl("GET", "/control/watchers?wait=1&timeout=10")
            if not st.get("satisfied"):
                errors.append("no watch opened")
                return
            fake.ctl("POST", "/control/apply", service("pyc-w", "new"))
            fake.ctl("POST", "/control/apply", service("pyc-w", "new", sessionAffinity="ClientIP"))
            fake.ctl("POST", "/control/delete", {"kind": "Service", "namespace": "pyc-w",
                                                 "name": "new"})
            time.sleep(0.3)
            fake.ctl("POST", "/control/fault", {"type": "bookmark_now"})
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    t = threading.Thread(target=changes, daemon=True)
    w = watch.Watch()
    t.start()
    for ev in w.stream(core.list_service_for_all_namespaces, resource_version=rv,
                       allow_watch_bookmarks=True, timeout_seconds=10):
        seen.append(ev)
        if ev["type"] == "BOOKMARK":
            w.stop()
    t.join(10)
    types = [e["type"] for e in seen]
    check(not errors and types == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"],
          "watch: ADDED, MODIFIED, DELETED from the control API, then a BOOKMARK (%s)" % types,
          errors)
    objs = [e["object"] for e in seen[:3]]
    check(len(objs) == 3 and all(isinstance(o, client.V1Service) for o in objs)
          and objs[1].spec.session_affinity == "ClientIP"
          and objs[1].spec.session_affinity_config.client_ip.timeout_seconds == 10800
          and objs[0].spec.cluster_ip == objs[2].spec.cluster_ip,
          "watch: events carry V1Service objects (defaulted sessionAffinityConfig, one clusterIP)")
    now = fake.ctl("GET", "/control/state")["resourceVersion"]
    bm = seen[-1]["raw_object"] if seen else {}
    check(bm.get("kind") == "Service" and bm.get("metadata") == {"resourceVersion": now},
          "watch: the BOOKMARK carries only kind, apiVersion and metadata.resourceVersion %s"
          % now, bm)
    check(w.resource_version == seen[2]["object"].metadata.resource_version if len(seen) > 2
          else False, "watch: the client tracks the rv of the last object event (not bookmarks)")


def test_gone(fake, core):
    old = fake.ctl("GET", "/control/state")["resourceVersion"]
    fake.ctl("POST", "/control/apply", service("pyc-w", "after-compact"))
    fake.ctl("POST", "/control/compact", {})
    # With timeoutSeconds the client does not retry: the ERROR event becomes an ApiException.
    try:
        for _ev in watch.Watch().stream(core.list_service_for_all_namespaces,
                                        resource_version=old, timeout_seconds=5):
            pass
        got = None
    except ApiException as e:
        got = e
    check(got is not None and got.status == 410 and "Expired" in str(got.reason)
          and "too old resource version" in str(got.reason),
          "410: a watch from a compacted rv raises ApiException 410 (Expired: too old "
          "resource version)", got)
    # Without it the client retries once from the same rv, then gives up the same way.
    before = len(fake.ctl("GET", "/control/requests"))
    try:
        for _ev in watch.Watch().stream(core.list_service_for_all_namespaces,
                                        resource_version=old):
            pass
        got = None
    except ApiException as e:
        got = e
    reqs = fake.ctl("GET", "/control/requests")[before:]
    watches = [r for r in reqs if r.get("watch")]
    check(got is not None and got.status == 410 and len(watches) == 2,
          "410: without timeoutSeconds the client retries once, then raises 410 (%d watches)"
          % len(watches), got)
    try:
        core.list_service_for_all_namespaces(limit=1, resource_version=old,
                                             resource_version_match="Exact")
        got = None
    except ApiException as e:
        got = e
    body = json.loads(got.body) if got is not None and got.body else {}
    check(got is not None and got.status == 410 and body.get("reason") == "Expired",
          "410: an exact list at a compacted rv raises ApiException 410 with a Status body", got)


def test_forbidden(fake, core):
    fake.ctl("POST", "/control/fault", {"type": "forbidden", "resource": "services", "on": "list"})
    try:
        core.list_service_for_all_namespaces()
        got = None
    except ApiException as e:
        got = e
    body = json.loads(got.body) if got is not None and got.body else {}
    check(got is not None and got.status == 403 and body.get("kind") == "Status"
          and body.get("reason") == "Forbidden" and body.get("code") == 403
          and "forbidden" in body.get("message", ""),
          "403: the forbidden fault raises ApiException 403 with a Forbidden Status", got)
    ok = core.list_service_for_all_namespaces()
    check(isinstance(ok, client.V1ServiceList), "403: the fault fires once, the next list works")
    fake.ctl("POST", "/control/faults/clear")


def test_cert(fake, svcs):
    core = client.CoreV1Api(client.ApiClient(fake.config(cert=True)))
    fake.ctl("POST", "/control/requests/clear")
    items = core.list_service_for_all_namespaces().items
    reqs = fake.ctl("GET", "/control/requests")
    check(len(items) >= len(svcs) and [r["auth"] for r in reqs] == ["cert"]
          and reqs[0].get("user") == "bpfsvc",
          "client certificate: list works, the server saw cert auth as CN bpfsvc", reqs)


def main():
    fake = Fake()
    try:
        print("# python3-kubernetes %s, fake on port %d" % (kubernetes.__version__, fake.port))
        svcs, slices, objs = [], [], []
        for ns, n in (("pyc-a", 6), ("pyc-b", 4), ("pyc-c", 3)):
            for i in range(n):
                objs.append(service(ns, "s%d" % i, selector={"app": "s%d" % i}))
                svcs.append((ns, "s%d" % i))
                for j in (1, 2) if ns != "pyc-c" else (1,):
                    eps = [] if i == 1 else [{"addresses": ["10.244.0.%d" % (i + 5)],
                                              "conditions": {"ready": True, "serving": True,
                                                             "terminating": False},
                                              "nodeName": "node1"}]
                    objs.append(eslice(ns, "s%d-%d" % (i, j), "s%d" % i, eps))
                    if not eps:
                        objs[-1]["metadata"]["labels"]["pyc-empty"] = "true"
                    slices.append((ns, "s%d-%d" % (i, j)))
        objs.append(service("pyc-b", "lb", type="LoadBalancer", externalTrafficPolicy="Local"))
        svcs.append(("pyc-b", "lb"))
        fake.ctl("POST", "/control/apply", {"kind": "List", "items": objs})
        core = client.CoreV1Api(client.ApiClient(fake.config()))
        disc = client.DiscoveryV1Api(client.ApiClient(fake.config()))
        for name, fn, args in (("lists", test_lists, (fake, core, disc, svcs, slices)),
                               ("get", test_get, (core,)),
                               ("watch", test_watch, (fake, core)),
                               ("410", test_gone, (fake, core)),
                               ("403", test_forbidden, (fake, core)),
                               ("client certificate", test_cert, (fake, svcs))):
            try:
                fn(*args)
            except Exception:  # noqa: BLE001
                check(False, "%s: no unexpected exception" % name, traceback.format_exc())
    finally:
        fake.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
