"""Objects as kube-apiserver 1.30 serves them, not as the control API posted them.

fake_apiserver.py stores whatever a test posts. A real server answers with the object after
  * defaulting (pkg/apis/core/v1 SetDefaults_Service, pkg/apis/discovery/v1
    SetDefaults_EndpointPort),
  * the Service registry's allocations (clusterIPs from the service CIDRs, ipFamilies and
    ipFamilyPolicy, nodePorts, healthCheckNodePort), kept across updates that leave them out,
  * server-set metadata (generation for EndpointSlices, managedFields),
  * a round trip through Go structs and protobuf storage: an empty list or map is gone, so an
    `omitempty` field disappears and a field without omitempty (EndpointSlice `endpoints`,
    `ports`) is `null`; a non-pointer struct is always there (`status.loadBalancer: {}`,
    an endpoint's `conditions: {}`); keys come in Go struct order.

serve_shape() does all of it for one object; Store.apply calls it with the previous version
and the other stored objects. Nothing is validated: a malformed object (the agent's bad-input
tests post those) keeps its malformed parts as they are. Standard library only.
"""

import copy
import ipaddress
import json
import zlib

# The fake cluster is dual-stack, IPv4 primary (kind's and kubeadm's default CIDRs).
SERVICE_CIDRS = {"IPv4": ipaddress.ip_network("10.96.0.0/16"),
                 "IPv6": ipaddress.ip_network("fd00:10:96::/108")}
NODE_PORTS = (30000, 32767)
# KEP-3070 / KEP-3668: dynamic allocations prefer the upper band, so the lower one stays free
# for the static addresses and ports tests write by hand.
STATIC_IPS = 256
STATIC_NODE_PORTS = 86

SERVICE_MANAGER = "kubectl-client-side-apply"
STATUS_MANAGER = "cloud-controller-manager"
SLICE_MANAGER = "kube-controller-manager"

# Go struct field order (k8s.io/api core/v1, discovery/v1, meta/v1).
META_ORDER = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
              "generation", "creationTimestamp", "deletionTimestamp",
              "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
              "finalizers", "managedFields"]
SPEC_ORDER = ["ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs",
              "sessionAffinity", "loadBalancerIP", "loadBalancerSourceRanges", "externalName",
              "externalTrafficPolicy", "healthCheckNodePort", "publishNotReadyAddresses",
              "sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy",
              "allocateLoadBalancerNodePorts", "loadBalancerClass", "internalTrafficPolicy",
              "trafficDistribution"]
SVC_PORT_ORDER = ["name", "protocol", "appProtocol", "port", "targetPort", "nodePort"]
SLICE_ORDER = ["kind", "apiVersion", "metadata", "addressType", "endpoints", "ports"]
ENDPOINT_ORDER = ["addresses", "conditions", "hostname", "targetRef", "deprecatedTopology",
                  "nodeName", "zone", "hints"]
SLICE_PORT_ORDER = ["name", "protocol", "port", "appProtocol"]
MF_ORDER = ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1",
            "subresource"]

# ServiceSpec fields are all omitempty; these are plain (non-pointer) Go values, so their zero
# value is dropped too, not only an empty list or map.
SPEC_ZERO_DROPPED = {"clusterIP": "", "type": "", "sessionAffinity": "", "loadBalancerIP": "",
                     "externalName": "", "externalTrafficPolicy": "", "healthCheckNodePort": 0,
                     "publishNotReadyAddresses": False}
SVC_PORT_ZERO_DROPPED = {"name": "", "protocol": "", "nodePort": 0}


def _ordered(d, order):
    out = {k: d[k] for k in order if k in d}
    for k, v in d.items():
        if k not in out:
            out[k] = v
    return out


def _empty(v):
    return v is None or v == [] or v == {}


def _drop_empty(d, zero=None):
    """What an omitempty round trip leaves of a dict (None, [], {} and listed zero values)."""
    for k in list(d):
        v = d[k]
        if _empty(v) or (zero and k in zero and v == zero[k] and type(v) is type(zero[k])):
            del d[k]


def _drop_nulls(d):
    for k in [k for k, v in d.items() if v is None]:
        del d[k]


def _crc(text):
    return zlib.crc32(text.encode())


# ---------------------------------------------------------------------------------------------
# managedFields: the FieldsV1 set of an Update from nothing, as the apiserver's field manager
# records it (apimachinery structured-merge-diff): every leaf that differs from the Go zero
# object, "." for a map, struct or list that the zero object lacks, list items by their keys.

ATOMIC = "atomic"
_OWNER_REFS = {"keys": ("uid",), "item": ATOMIC}  # OwnerReference is +structType=atomic
META_SCHEMA = {"labels": {}, "annotations": {}, "ownerReferences": _OWNER_REFS,
               "finalizers": {"set": True}}
SERVICE_SCHEMA = {
    "metadata": META_SCHEMA,
    "spec": {"ports": {"keys": ("port", "protocol"), "item": {"targetPort": ATOMIC}},
             "selector": ATOMIC, "clusterIPs": ATOMIC, "externalIPs": ATOMIC,
             "ipFamilies": ATOMIC, "loadBalancerSourceRanges": ATOMIC},
    "status": {"loadBalancer": {"ingress": ATOMIC}, "conditions": {"keys": ("type",), "item": {}}},
}
SLICE_SCHEMA = {"metadata": META_SCHEMA, "endpoints": ATOMIC, "ports": ATOMIC}
# The Go zero objects (what a Create is diffed against).
SERVICE_ZERO = {"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}}
SLICE_ZERO = {"metadata": {}, "addressType": "", "endpoints": None, "ports": None}
# Server-owned metadata the field manager leaves out.
META_STRIPPED = {"name", "namespace", "uid", "resourceVersion", "generation",
                 "creationTimestamp", "selfLink", "managedFields"}

_MISSING = object()


def _fieldset(new, old, schema):
    out = {}
    for k, v in new.items():
        if v is None:
            continue
        sch = schema.get(k, {}) if isinstance(schema, dict) else ATOMIC
        ov = old.get(k, _MISSING) if isinstance(old, dict) else _MISSING
        if sch == ATOMIC or not isinstance(v, (dict, list)):
            if ov is _MISSING or ov != v:
                out["f:" + k] = {}
            continue
        sub = {} if isinstance(ov, type(v)) else {".": {}}
        if isinstance(v, dict):
            sub.update(_fieldset(v, ov if isinstance(ov, dict) else {}, sch))
        elif sch.get("set"):
            for item in v:
                sub["v:" + json.dumps(item, separators=(",", ":"))] = {}
        elif sch.get("keys"):
            for item in v:
                if not isinstance(item, dict):
                    continue
                key = {kk: item[kk] for kk in sorted(sch["keys"]) if kk in item}
                name = "k:" + json.dumps(key, separators=(",", ":"))
                if sch.get("item") == ATOMIC:
                    sub[name] = {}
                else:
                    sub[name] = dict({".": {}}, **_fieldset(item, {}, sch.get("item", {})))
        else:
            sub = {}  # a list without a known schema is atomic
        if sub:
            out["f:" + k] = sub
    return out


def _sorted_set(s):
    """The wire order of a FieldsV1 set: "." first, then fields, keys, values, each sorted."""
    rank = {".": 0, "f": 1, "k": 2, "v": 3, "i": 4}
    return {k: _sorted_set(s[k]) for k in sorted(s, key=lambda k: (rank.get(k[0], 5), k))}


def fields_v1(obj, kind):
    schema, zero = (SERVICE_SCHEMA, SERVICE_ZERO) if kind == "Service" else (SLICE_SCHEMA,
                                                                              SLICE_ZERO)
    body = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    md = body.get("metadata")
    if isinstance(md, dict):
        body["metadata"] = {k: v for k, v in md.items() if k not in META_STRIPPED}
    return _sorted_set(_fieldset(body, zero, schema))


def managed_entry(manager, api_version, when, fields, subresource=None):
    e = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": when,
         "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        e["subresource"] = subresource
    return _ordered(e, MF_ORDER)


# ---------------------------------------------------------------------------------------------
# Services


def _svc_defaults(spec, status):
    """SetDefaults_Service."""
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        cip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(cip, dict) or cip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    typ = spec["type"]
    ports = spec.get("ports")
    if isinstance(ports, list):
        for p in ports:
            if not isinstance(p, dict):
                continue
            if not p.get("protocol"):
                p["protocol"] = "TCP"
            if p.get("targetPort") in (None, 0, "") and isinstance(p.get("port"), int):
                p["targetPort"] = p["port"]
    external = typ in ("NodePort", "LoadBalancer") or (typ == "ClusterIP"
                                                       and spec.get("externalIPs"))
    if external and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and typ in ("ClusterIP", "NodePort",
                                                             "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if typ == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    lb = status.get("loadBalancer")
    if typ == "LoadBalancer" and isinstance(lb, dict) and isinstance(lb.get("ingress"), list):
        for ing in lb["ingress"]:
            if isinstance(ing, dict) and ing.get("ip") and ing.get("ipMode") is None:
                ing["ipMode"] = "VIP"


def _family(ip):
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except (ValueError, TypeError):
        return None


def _used(objects, skip_key):
    """Cluster IPs and node ports held by the other stored Services."""
    ips, ports = set(), set()
    for key, o in objects.items():
        if key[0] != "services" or key == skip_key:
            continue
        spec = o.get("spec") if isinstance(o.get("spec"), dict) else {}
        for ip in [spec.get("clusterIP")] + list(spec.get("clusterIPs") or []):
            if isinstance(ip, str):
                ips.add(ip)
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int):
                ports.add(p["nodePort"])
        if isinstance(spec.get("healthCheckNodePort"), int):
            ports.add(spec["healthCheckNodePort"])
    return ips, ports


def _alloc_ip(fam, seed, used):
    net = SERVICE_CIDRS[fam]
    lo, hi = STATIC_IPS, net.num_addresses - 2  # neither the network nor the last address
    span = hi - lo + 1
    start = _crc(seed) % span
    for i in range(span):
        ip = str(net.network_address + lo + (start + i) % span)
        if ip not in used:
            used.add(ip)
            return ip
    raise ValueError("service CIDR %s is full" % net)


def _alloc_port(seed, used):
    lo, hi = NODE_PORTS[0] + STATIC_NODE_PORTS, NODE_PORTS[1]
    span = hi - lo + 1
    start = _crc(seed) % span
    for i in range(span):
        port = lo + (start + i) % span
        if port not in used:
            used.add(port)
            return port
    raise ValueError("node port range is full")


def _svc_allocate(spec, prev_spec, ident, objects, skip_key):
    """The registry's part: clusterIPs, ipFamilies/ipFamilyPolicy, nodePorts, health port."""
    typ = spec.get("type")
    used_ips = used_ports = None

    def used():
        nonlocal used_ips, used_ports
        if used_ips is None:
            used_ips, used_ports = _used(objects, skip_key)
        return used_ips, used_ports

    if typ == "ExternalName":
        return
    # An update that leaves allocated values out keeps them (patchAllocatedValues).
    if prev_spec and prev_spec.get("type") != "ExternalName":
        if not spec.get("clusterIP") and not spec.get("clusterIPs"):
            for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if k in prev_spec and k not in spec:
                    spec[k] = copy.deepcopy(prev_spec[k])
    ips = spec.get("clusterIPs")
    if isinstance(spec.get("clusterIP"), str) and spec["clusterIP"] and not ips:
        spec["clusterIPs"] = ips = [spec["clusterIP"]]
    elif isinstance(ips, list) and ips and not spec.get("clusterIP") and isinstance(ips[0], str):
        spec["clusterIP"] = ips[0]
    if ips is not None and not isinstance(ips, list):
        return  # malformed: leave it to the client under test
    ips = list(ips or [])
    headless = spec.get("clusterIP") == "None"
    families = spec.get("ipFamilies")
    if families is not None and not isinstance(families, list):
        return
    policy = spec.get("ipFamilyPolicy")
    if headless:
        if policy is None:
            policy = "SingleStack" if spec.get("selector") else "RequireDualStack"
        if families is None:
            families = ["IPv4", "IPv6"] if policy != "SingleStack" else ["IPv4"]
        spec.setdefault("ipFamilies", families)
        spec.setdefault("ipFamilyPolicy", policy)
    else:
        fams_of_ips = [_family(ip) for ip in ips]
        if None in fams_of_ips:
            return  # an unparsable clusterIP: served as posted
        if families is None:
            families = list(fams_of_ips) or ["IPv4"]
        if policy is None:
            policy = "SingleStack" if max(len(families), len(ips)) < 2 else "RequireDualStack"
        if policy in ("PreferDualStack", "RequireDualStack") and len(families) == 1:
            families = families + ["IPv6" if families[0] == "IPv4" else "IPv4"]
        for fam in families[len(ips):2]:
            if fam not in SERVICE_CIDRS:
                break
            ips.append(_alloc_ip(fam, "%s/%s" % (ident, fam), used()[0]))
        if ips:
            spec["clusterIPs"] = ips
            spec["clusterIP"] = ips[0]
        spec.setdefault("ipFamilies", families)
        spec.setdefault("ipFamilyPolicy", policy)

    if typ == "NodePort" or (typ == "LoadBalancer" and
                             spec.get("allocateLoadBalancerNodePorts") is not False):
        prev_np = {}
        for p in (prev_spec or {}).get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int):
                prev_np[(p.get("port"), p.get("protocol"))] = p["nodePort"]
        by_port = {}  # one node port for TCP and UDP of the same port number
        ports = spec.get("ports") if isinstance(spec.get("ports"), list) else []
        for p in ports:
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int) and p["nodePort"]:
                by_port.setdefault(p.get("port"), p["nodePort"])
        for p in ports:
            if not isinstance(p, dict) or p.get("nodePort"):
                continue
            np = prev_np.get((p.get("port"), p.get("protocol"))) or by_port.get(p.get("port"))
            if not np:
                np = _alloc_port("%s/%s/%s" % (ident, p.get("port"), p.get("protocol")),
                                 used()[1])
            p["nodePort"] = np
            by_port.setdefault(p.get("port"), np)
    if typ == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local" \
            and not spec.get("healthCheckNodePort"):
        hc = (prev_spec or {}).get("healthCheckNodePort")
        spec["healthCheckNodePort"] = hc if isinstance(hc, int) and hc else \
            _alloc_port("%s/health" % ident, used()[1])


def _service(obj, prev, objects, key, now):
    spec = obj.get("spec", {})
    status = obj.get("status", {})
    if not isinstance(spec, dict) or not isinstance(status, dict):
        return obj  # malformed: as posted
    obj["spec"], obj["status"] = spec, status
    _svc_defaults(spec, status)
    if not isinstance(status.get("loadBalancer"), dict):
        status["loadBalancer"] = {}
    md = obj["metadata"]
    if "managedFields" not in md:
        # The field manager runs before the registry allocates: allocated fields are nobody's.
        no_status = {k: v for k, v in obj.items() if k != "status"}
        entries = [managed_entry(SERVICE_MANAGER, "v1", now, fields_v1(no_status, "Service"))]
        lbs = {k: v for k, v in status.get("loadBalancer", {}).items() if not _empty(v)}
        if lbs or status.get("conditions"):
            only = {"status": {"loadBalancer": lbs, "conditions": status.get("conditions")}}
            entries.append(managed_entry(STATUS_MANAGER, "v1", now,
                                         fields_v1(only, "Service"), "status"))
        md["managedFields"] = entries
    prev_spec = prev.get("spec") if prev and isinstance(prev.get("spec"), dict) else None
    _svc_allocate(spec, prev_spec, "%s/%s" % key[1:], objects, key)
    ports = spec.get("ports")
    if isinstance(ports, list):
        for i, p in enumerate(ports):
            if isinstance(p, dict):
                _drop_empty(p, SVC_PORT_ZERO_DROPPED)
                ports[i] = _ordered(p, SVC_PORT_ORDER)
    _drop_empty(spec, SPEC_ZERO_DROPPED)
    if isinstance(status.get("loadBalancer"), dict):
        _drop_empty(status["loadBalancer"])
    _drop_empty(status)
    status.setdefault("loadBalancer", {})
    obj["spec"] = _ordered(spec, SPEC_ORDER)
    return obj


# ---------------------------------------------------------------------------------------------
# EndpointSlices


def _slice(obj, prev, now):
    for k in ("endpoints", "ports"):
        v = obj.get(k)
        if v == [] or k not in obj:
            obj[k] = None  # no omitempty: an empty slice comes back as null
    if isinstance(obj["ports"], list):
        for i, p in enumerate(obj["ports"]):
            if isinstance(p, dict):
                if p.get("name") is None:
                    p["name"] = ""  # SetDefaults_EndpointPort
                if p.get("protocol") is None:
                    p["protocol"] = "TCP"
                _drop_nulls(p)
                obj["ports"][i] = _ordered(p, SLICE_PORT_ORDER)
    if isinstance(obj["endpoints"], list):
        for i, ep in enumerate(obj["endpoints"]):
            if isinstance(ep, dict):
                if not isinstance(ep.get("conditions"), dict):
                    ep["conditions"] = {}  # a struct, never omitted
                _drop_nulls(ep["conditions"])  # pointers with omitempty
                _drop_nulls(ep)
                for k in ("targetRef", "deprecatedTopology", "hints"):
                    if _empty(ep.get(k)):
                        ep.pop(k, None)
                obj["endpoints"][i] = _ordered(ep, ENDPOINT_ORDER)
    md = obj["metadata"]
    if "generation" not in md:
        gen = 1
        if prev is not None:
            gen = prev["metadata"].get("generation", 1)
            if any(prev.get(k) != obj.get(k) for k in ("addressType", "endpoints", "ports")):
                gen += 1
        md["generation"] = gen
    if "managedFields" not in md:
        md["managedFields"] = [managed_entry(SLICE_MANAGER, "discovery.k8s.io/v1", now,
                                             fields_v1(obj, "EndpointSlice"))]
    return _ordered(obj, SLICE_ORDER)


# ---------------------------------------------------------------------------------------------


def serve_shape(obj, prev, objects, key, now):
    """The object as the API server would return it after this create or update.

    obj: the posted object (a private copy, changed in place) with metadata name, namespace,
    uid and creationTimestamp set; prev: the stored previous version or None; objects: the
    store's {(resource, ns, name): object}; key: this object's (resource, ns, name); now: the
    RFC 3339 time of the write. Metadata the poster set (managedFields, generation) is kept.
    """
    md = obj["metadata"]
    for k in ("labels", "annotations", "ownerReferences", "finalizers"):
        if _empty(md.get(k, 0)):
            md.pop(k, None)
    if obj.get("kind") == "Service":
        obj = _service(obj, prev, objects, key, now)
    elif obj.get("kind") == "EndpointSlice":
        obj = _slice(obj, prev, now)
    obj["metadata"] = _ordered(obj["metadata"], META_ORDER)
    return obj
