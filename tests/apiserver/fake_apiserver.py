#!/usr/bin/env python3
"""A fake kube-apiserver for bpfsvc's end-to-end tests (Python 3 standard library and python3-h2).

Serves Services (core/v1) and EndpointSlices (discovery.k8s.io/v1) over HTTPS with list,
pagination, label selectors and watch (replay from a resourceVersion, bookmarks, 410 Expired
after compaction), and a plain-HTTP control API on 127.0.0.1 that creates and deletes objects,
queues faults, compacts history and reports what the client asked for.

Wire format follows the Kubernetes API concepts page (kubernetes/website
content/en/docs/reference/using-api/api-concepts.md) and meta/v1 ListMeta/Status:
  * list: {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":..,
    "continue":..,"remainingItemCount":..},"items":[...]}, items without kind/apiVersion;
  * watch: chunked application/json, one {"type":..,"object":..} per line, objects with
    kind/apiVersion; BOOKMARK objects carry only metadata.resourceVersion;
  * rv unset or "0" on a watch: synthetic ADDED events for the current state first;
  * a watch from a compacted rv, or from before the watch cache's window (the last
    --watch-cache-events events of the resource younger than --watch-cache-seconds): one
    ERROR event, Status 410 reason Expired, "too old resource version: X (Y)";
  * continue tokens: opaque base64url JSON {"v","rv","start"}; a token whose rv is compacted
    gives 410 Expired with an "inconsistent" token (rv -1) in the Status metadata.continue;
  * list responses larger than 128 KiB are gzip-encoded (chunked) when the client accepts
    gzip, as kube-apiserver does.

Run with --help for the CLI; the control API is documented in CONTROL_API below.
"""

import argparse
import base64
import bisect
import collections
import copy
import gzip
import io
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2transport  # noqa: E402
import k8s_objects  # noqa: E402

CONTROL_API = """
Control API (plain HTTP, 127.0.0.1:CONTROL_PORT, no auth, JSON in and out):
  POST /control/apply          object | {"kind":"List","items":[..]} | [..]  -> {"resourceVersion",..}
  POST /control/delete         {"kind","namespace","name"} | {"items":[..]}
  POST /control/fault          {"type":T,"count":N,"resource":R,"on":"list"|"watch"|"get",..}
  GET  /control/faults         pending faults;   POST /control/faults/clear
  POST /control/compact        {} or {"resourceVersion":N}
  POST /control/auth           {"token":bool,"cert":bool}   switch authenticators off/on
  GET  /control/requests       [{id,method,path,query,auth,status,time,..}]  (?since=ID)
  POST /control/requests/clear
  GET  /control/watchers       {"services":n,"endpointslices":m,"total":k,"watches":[..]}
                               ?wait=N[&resource=R][&timeout=S] waits for >= N open watches
  GET  /control/state          rv, compaction point, object counts, faults, auth switches
  GET  /control/objects        every stored object (with kind/apiVersion)
  POST /control/reset          delete every object (DELETED events) and clear faults
"""

RESOURCES = {
    "services": {
        "kind": "Service",
        "apiVersion": "v1",
        "listKind": "ServiceList",
        "prefix": "/api/v1",
    },
    "endpointslices": {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "listKind": "EndpointSliceList",
        "prefix": "/apis/discovery.k8s.io/v1",
    },
}
KIND_TO_RESOURCE = {info["kind"]: res for res, info in RESOURCES.items()}

GZIP_THRESHOLD = 128 * 1024  # kube-apiserver's defaultGzipThresholdBytes

# Fault classes. Response faults: at most one is taken per request, FIFO.
RESPONSE_FAULTS = {"too_many_requests", "unavailable", "server_error", "gone_list", "stall",
                   "forbidden", "too_large_rv", "rst_stream"}
WATCH_MODIFIERS = {"close_mid_event", "split_events", "pack_events", "malformed_event", "gone_watch",
                   "endless_line"}
LIST_MODIFIERS = {"chunked_list", "gzip_list"}
IMMEDIATE_FAULTS = {"end_watch", "bookmark_now", "unauthorized_until_token_changes", "goaway",
                    "stall_connection"}
ALL_FAULTS = RESPONSE_FAULTS | WATCH_MODIFIERS | LIST_MODIFIERS | IMMEDIATE_FAULTS

MSG_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the provided "
    "token results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)
MSG_LIST_EXPIRED = "The resourceVersion for the provided list is too old."
# kube-apiserver waits this long for its watch cache to reach a requested resourceVersion
# (watchCache.waitUntilFreshAndBlock's blockTimeout), then answers 504.
FRESH_WAIT_S = 3.0
# The identity a bearer token maps to: the agent's service account.
TOKEN_USER = "system:serviceaccount:kube-system:bpfsvc"


def too_large_rv(want, current):
    """kube-apiserver's TooLargeResourceVersion error (storage.NewTooLargeResourceVersionError)."""
    return ApiError(504, "Timeout", "Timeout: Too large resource version: %d, current: %d"
                    % (want, current),
                    {"causes": [{"reason": "ResourceVersionTooLarge",
                                 "message": "Too large resource version"}],
                     "retryAfterSeconds": 1},
                    headers={"Retry-After": 1})


def invalid_list_options(field, detail):
    """A ListOptions validation error: kube-apiserver answers 422 Invalid (errors.NewInvalid)."""
    return ApiError(422, "Invalid",
                    'ListOptions.meta.k8s.io "" is invalid: %s: Forbidden: %s' % (field, detail),
                    {"group": "meta.k8s.io", "kind": "ListOptions",
                     "causes": [{"reason": "FieldValueForbidden",
                                 "message": "Forbidden: %s" % detail, "field": field}]})


def log(msg):
    try:
        sys.stderr.write("fake-apiserver: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status_body(code, reason, message, details=None, list_meta=None):
    st = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": list_meta or {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, list_meta=None, headers=None):
        super().__init__(message)
        self.code = code
        self.status = status_body(code, reason, message, details, list_meta)
        self.headers = headers or {}


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


# ---------------------------------------------------------------------------------------------
# Label selectors: key, !key, key=value, key==value, key!=value, key in (a,b), key notin (a,b)

_KEY_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VAL_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")


def parse_selector(text):
    if text is None or not text.strip():
        return []
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    reqs = []
    for raw in parts:
        p = raw.strip()
        if not p:
            raise bad_request("unable to parse requirement: empty requirement in %r" % text)
        m = _SET_RE.match(p)
        if m:
            key, op = m.group(1), m.group(2)
            vals = {v.strip() for v in m.group(3).split(",")}
            if any(not _VAL_RE.match(v) for v in vals):
                raise bad_request("unable to parse requirement: invalid value in %r" % p)
            val = vals
        elif p.startswith("!"):
            key, op, val = p[1:].strip(), "!exists", None
        elif "!=" in p:
            key, val = p.split("!=", 1)
            op = "!="
        elif "==" in p:
            key, val = p.split("==", 1)
            op = "="
        elif "=" in p:
            key, val = p.split("=", 1)
            op = "="
        else:
            key, op, val = p, "exists", None
        key = key.strip()
        if isinstance(val, str):
            val = val.strip()
            if not _VAL_RE.match(val):
                raise bad_request("unable to parse requirement: invalid label value %r" % val)
        if not _KEY_RE.match(key):
            raise bad_request("unable to parse requirement: invalid label key %r" % key)
        reqs.append((op, key, val))
    return reqs


def selector_matches(reqs, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for op, key, val in reqs:
        has = key in labels
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
        if op == "=" and labels.get(key) != val:
            return False
        if op == "!=" and has and labels[key] == val:
            return False
        if op == "in" and (not has or labels[key] not in val):
            return False
        if op == "notin" and has and labels[key] in val:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Continue tokens


def encode_continue(rv, start):
    raw = dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(tok):
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        d = json.loads(raw)
        if d.get("v") != "meta.k8s.io/v1" or not isinstance(d.get("rv"), int):
            raise ValueError("bad version")
        if not isinstance(d.get("start"), str):
            raise ValueError("bad start")
        return d["rv"], d["start"]
    except Exception as e:  # noqa: BLE001
        raise bad_request("continue key is not valid: %s" % e)


# ---------------------------------------------------------------------------------------------
# Object store with a full event history


def ordered_object(obj, info):
    """kind, apiVersion, metadata first; metadata keys in apiserver order."""
    out = {"kind": info["kind"], "apiVersion": info["apiVersion"]}
    md = obj.get("metadata") or {}
    order = ["name", "generateName", "namespace", "uid", "resourceVersion", "generation",
             "creationTimestamp", "deletionTimestamp", "labels", "annotations", "ownerReferences"]
    nmd = {k: md[k] for k in order if k in md}
    for k, v in md.items():
        if k not in nmd:
            nmd[k] = v
    out["metadata"] = nmd
    for k, v in obj.items():
        if k not in ("kind", "apiVersion", "metadata"):
            out[k] = v
    return out


def strip_type(obj):
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class Store:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 0
        self.objects = {}  # (resource, ns, name) -> object with kind/apiVersion
        # history[i] = (rv, resource, (ns, name), type, object, previous object or None);
        # every rv increment appends exactly one entry, so rvs are strictly increasing.
        self.history = []
        self.history_rvs = []
        self.compacted = 0
        self.closing = False
        # The watch cache: per resource, (rv, monotonic time) of the events a watch can still
        # replay, and the rv of the newest event that fell out (0: none yet).
        self.cache_events = 1000
        self.cache_seconds = 75.0
        self.cached = {r: collections.deque() for r in RESOURCES}
        self.evicted_rv = {r: 0 for r in RESOURCES}

    def _append(self, res, key, typ, obj, prev):
        self.history.append((self.rv, res, key, typ, obj, prev))
        self.history_rvs.append(self.rv)
        self.cached[res].append((self.rv, time.monotonic()))
        self.cond.notify_all()

    def too_old_below(self, res):
        """A watch of res from an rv below this gets 410 (lock held): the compaction point, or
        the newest event the watch cache dropped. An event drops out when it is not among the
        last cache_events of its resource, or older than cache_seconds."""
        q = self.cached[res]
        horizon = time.monotonic() - self.cache_seconds
        while q and (len(q) > self.cache_events or q[0][1] < horizon):
            self.evicted_rv[res] = q.popleft()[0]
        return max(self.compacted, self.evicted_rv[res])

    def cache_window(self, res):
        """What the watch cache of res holds now (lock held), for /control/state."""
        below = self.too_old_below(res)
        q = self.cached[res]
        return {"events": len(q), "oldestResourceVersion": q[0][0] if q else None,
                "tooOldBelow": below}

    def apply(self, obj):
        if not isinstance(obj, dict):
            raise bad_request("object must be a JSON object")
        kind = obj.get("kind")
        res = KIND_TO_RESOURCE.get(kind)
        if not res:
            raise bad_request("unsupported kind %r (Service or EndpointSlice)" % kind)
        info = RESOURCES[res]
        obj = copy.deepcopy(obj)
        md = obj.get("metadata")
        if not isinstance(md, dict) or not md.get("name"):
            raise bad_request("metadata.name is required")
        md["namespace"] = md.get("namespace") or "default"
        key = (md["namespace"], md["name"])
        with self.cond:
            prev = self.objects.get((res,) + key)
            # Served as kube-apiserver would: defaulted, allocated, with managedFields.
            obj = k8s_objects.serve_shape(obj, prev, self.objects, (res,) + key, now_rfc3339())
            md = obj["metadata"]
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            if prev is not None:
                md.setdefault("uid", prev["metadata"]["uid"])
                md.setdefault("creationTimestamp", prev["metadata"]["creationTimestamp"])
            else:
                md.setdefault("uid", str(uuid.uuid4()))
                md.setdefault("creationTimestamp", now_rfc3339())
            obj = ordered_object(obj, info)
            self.objects[(res,) + key] = obj
            typ = "MODIFIED" if prev is not None else "ADDED"
            self._append(res, key, typ, obj, prev)
            return {"type": typ, "kind": info["kind"], "namespace": key[0], "name": key[1],
                    "uid": md["uid"], "resourceVersion": str(self.rv)}

    def delete(self, kind, ns, name):
        res = KIND_TO_RESOURCE.get(kind) or (kind if kind in RESOURCES else None)
        if not res:
            raise bad_request("unsupported kind %r" % kind)
        ns = ns or "default"
        with self.cond:
            prev = self.objects.pop((res, ns, name), None)
            if prev is None:
                raise ApiError(404, "NotFound", '%s "%s" not found' % (res, name),
                               {"name": name, "kind": res})
            self.rv += 1
            obj = copy.deepcopy(prev)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._append(res, (ns, name), "DELETED", obj, prev)
            return {"type": "DELETED", "kind": RESOURCES[res]["kind"], "namespace": ns,
                    "name": name, "resourceVersion": str(self.rv)}

    def snapshot(self, res, at_rv):
        """{(ns, name): object} for res as it was at resourceVersion at_rv (lock held)."""
        state = {}
        n = bisect.bisect_right(self.history_rvs, at_rv)
        for rv, r, key, typ, obj, _prev in self.history[:n]:
            if r != res:
                continue
            if typ == "DELETED":
                state.pop(key, None)
            else:
                state[key] = obj
        return state

    def current(self, res):
        return {(k[1], k[2]): v for k, v in self.objects.items() if k[0] == res}


# ---------------------------------------------------------------------------------------------
# Faults


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.queue = []
        self.next_id = 1

    def add(self, spec):
        spec = dict(spec)
        spec["id"] = self.next_id
        self.next_id += 1
        cnt = int(spec.get("count", 1))
        if cnt == 0 or cnt < -1:
            raise ApiError(400, "BadRequest", "count must be >= 1, or -1 for unlimited")
        spec["remaining"] = cnt
        with self.lock:
            self.queue.append(spec)
        return spec

    def clear(self):
        with self.lock:
            self.queue = []

    def pending(self):
        with self.lock:
            return [dict(f) for f in self.queue]

    @staticmethod
    def _applies(f, types, res, verb, has_continue):
        if f["type"] not in types:
            return False
        r = f.get("resource")
        if r not in (None, "", "any", "*") and r != res:
            return False
        on = f.get("on")
        if on not in (None, "", "any") and on != verb:
            return False
        if f["type"] == "gone_list" and verb != "list":
            return False
        if f["type"] in LIST_MODIFIERS and verb != "list":
            return False
        if f["type"] in WATCH_MODIFIERS and verb != "watch":
            return False
        if f.get("continue") is True and not has_continue:
            return False
        if f.get("continue") is False and has_continue:
            return False
        return True

    def _consume(self, f):
        if f["remaining"] > 0:
            f["remaining"] -= 1
            if f["remaining"] == 0:
                self.queue.remove(f)

    def take_response(self, res, verb, has_continue):
        with self.lock:
            for f in self.queue:
                if self._applies(f, RESPONSE_FAULTS, res, verb, has_continue):
                    self._consume(f)
                    return dict(f)
        return None

    def take_modifiers(self, types, res, verb, has_continue):
        """The first pending fault of each modifier type that applies."""
        out = {}
        with self.lock:
            for f in list(self.queue):
                if f["type"] in out:
                    continue
                if self._applies(f, types, res, verb, has_continue):
                    self._consume(f)
                    out[f["type"]] = dict(f)
        return out


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class ClientGone(Exception):
    pass


class Aborted(Exception):
    pass


class WatchState:
    _ids = 0
    _ids_lock = threading.Lock()

    def __init__(self, res, ns, allow_bookmarks, peer, rv):
        with WatchState._ids_lock:
            WatchState._ids += 1
            self.id = WatchState._ids
        self.res = res
        self.ns = ns
        self.allow_bookmarks = allow_bookmarks
        self.peer = peer
        self.start_rv = rv
        self.started = time.time()
        self.end = None  # None | "clean" | "abrupt"
        self.bookmark = None  # None | "normal" | "force"
        self.events_sent = 0

    def describe(self):
        return {"id": self.id, "resource": self.res, "namespace": self.ns,
                "allowWatchBookmarks": self.allow_bookmarks, "peer": self.peer,
                "resourceVersion": self.start_rv, "started": self.started,
                "eventsSent": self.events_sent}


class App:
    def __init__(self, args):
        self.args = args
        self.store = Store()
        self.faults = Faults()
        self.requests = []
        self.req_lock = threading.Lock()
        self.req_next = 1
        self.watchers = {}  # id -> WatchState (guarded by store.cond)
        self.token_auth = True
        self.cert_auth = True
        self.blocked_token = None  # token content that fails while unchanged
        self.blocked = False
        self.stop = threading.Event()

    # --- request log ------------------------------------------------------------------------
    def record(self, entry):
        with self.req_lock:
            entry["id"] = self.req_next
            self.req_next += 1
            self.requests.append(entry)
        return entry

    # --- auth --------------------------------------------------------------------------------
    def read_token(self):
        try:
            with open(self.args.token_file, "r") as f:
                return f.read().strip()
        except (OSError, TypeError):
            return None

    def authenticate(self, h):
        """Returns ("cert"|"token"|"none", detail)."""
        if self.cert_auth:
            try:
                cert = h.connection.getpeercert()
            except (ValueError, AttributeError):
                cert = None
            if cert:
                cn = None
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
                return "cert", cn
        authz = h.headers.get("Authorization")
        if authz and self.token_auth:
            parts = authz.split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "bearer":
                want = self.read_token()
                with self.req_lock:
                    if self.blocked:
                        if want == self.blocked_token:
                            return "none", "token blocked until the token file changes"
                        self.blocked = False
                        log("token file changed; token auth restored")
                if want and parts[1].strip() == want:
                    return "token", None
        return "none", None

    # --- watchers ----------------------------------------------------------------------------
    def watcher_counts(self):
        with self.store.cond:
            counts = {r: 0 for r in RESOURCES}
            for w in self.watchers.values():
                counts[w.res] += 1
            counts["total"] = len(self.watchers)
            counts["watches"] = [w.describe() for w in self.watchers.values()]
            return counts

    def signal_watchers(self, res=None, end=None, bookmark=None):
        n = 0
        with self.store.cond:
            for w in self.watchers.values():
                if res not in (None, "", "any", "*") and w.res != res:
                    continue
                if end:
                    w.end = end
                if bookmark:
                    w.bookmark = bookmark
                n += 1
            self.store.cond.notify_all()
        return n


def route(path):
    """(resource, namespace or None, name or None) or None."""
    for res, info in RESOURCES.items():
        p = info["prefix"] + "/"
        if not path.startswith(p):
            continue
        rest = path[len(p):].split("/")
        if rest == [res]:
            return res, None, None
        if len(rest) == 3 and rest[0] == "namespaces" and rest[1] and rest[2] == res:
            return res, rest[1], None
        if len(rest) == 4 and rest[0] == "namespaces" and rest[1] and rest[2] == res and rest[3]:
            return res, rest[1], rest[3]
    return None


def discovery(path):
    """The legacy discovery document at path (kube-apiserver 1.30's), or None."""
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "127.0.0.1:6443"}]}
    if path == "/apis":
        gv = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [{"name": "discovery.k8s.io", "versions": [gv],
                            "preferredVersion": gv}]}
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "services", "singularName": "service", "namespaced": True,
             "kind": "Service", "verbs": [v for v in verbs if v != "deletecollection"],
             "shortNames": ["svc"], "categories": ["all"]},
            {"name": "services/status", "singularName": "", "namespaced": True,
             "kind": "Service", "verbs": ["get", "patch", "update"]}]}
    if path == "/apis/discovery.k8s.io/v1":
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "discovery.k8s.io/v1", "resources": [
                    {"name": "endpointslices", "singularName": "endpointslice",
                     "namespaced": True, "kind": "EndpointSlice", "verbs": verbs}]}
    if path == "/apis/discovery.k8s.io":
        gv = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
        return {"kind": "APIGroup", "apiVersion": "v1", "name": "discovery.k8s.io",
                "versions": [gv], "preferredVersion": gv}
    return None


def truthy(v):
    return v is not None and v.lower() in ("true", "1", "yes")


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-apiserver"
    sys_version = ""

    # -- helpers ------------------------------------------------------------------------------
    @property
    def app(self):
        return self.server.app

    def log_message(self, fmt, *args):
        log("api %s %s" % (self.address_string(), fmt % args))

    def send_response(self, code, message=None):
        entry = getattr(self, "_entry", None)
        if entry is not None:
            entry["status"] = code
        super().send_response(code, message)

    def write_raw(self, data):
        try:
            self.wfile.write(data)
        except (OSError, ssl.SSLError, ValueError) as e:
            raise ClientGone(str(e))

    def write_chunk(self, data):
        if data:
            self.write_raw(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunks(self):
        self.write_raw(b"0\r\n\r\n")

    def start_chunked(self):
        """200 and the headers of a JSON body that follows in pieces (a watch)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def record_proto(self):
        self._entry["proto"] = "http/1.1"

    def write_cut(self, total, part):
        """The start of a chunk of `total` bytes: its header and `part` of it."""
        self.write_raw(b"%x\r\n" % total + part)

    def reset_stream(self, code):
        """HTTP/1.1 has no stream to reset: the connection goes (HTTP/2 overrides)."""
        self.abort()

    def abort(self):
        """Drop the connection without a terminating chunk or TLS close_notify."""
        self.close_connection = True
        self._aborted = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise Aborted()

    def client_gone(self, wait):
        """Wait up to `wait` seconds for the peer to close; True if it did."""
        sock = self.connection
        try:
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                r = [sock]
            else:
                r, _, _ = select.select([sock], [], [], max(0.0, wait))
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            sock.settimeout(0.05)
            data = sock.recv(4096)
            return not data
        except (ssl.SSLWantReadError, socket.timeout, BlockingIOError):
            return False
        except (OSError, ssl.SSLError):
            return True
        finally:
            try:
                sock.settimeout(None)
            except OSError:
                pass

    def send_json(self, code, obj, extra_headers=None):
        body = dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.write_raw(body)

    def send_error_status(self, err):
        self.send_json(err.code, err.status, err.headers)

    # -- dispatch -----------------------------------------------------------------------------
    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_DELETE(self):
        self.handle_api("DELETE")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def handle_api(self, method):
        app = self.app
        self._headers_sent = False
        self._aborted = False
        u = urlsplit(self.path)
        qs = parse_qs(u.query, keep_blank_values=True)
        q = {k: v[-1] for k, v in qs.items()}
        auth, detail = app.authenticate(self)
        entry = {"method": method, "path": u.path, "query": q, "auth": auth, "status": None,
                 "time": time.time(), "watch": truthy(q.get("watch"))}
        if auth == "cert":
            entry["user"] = detail
        self._entry = app.record(entry)
        self.record_proto()
        # Drain any request body so keep-alive stays in sync.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        try:
            if u.path in ("/healthz", "/readyz", "/livez"):
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.write_raw(body)
                return
            if u.path == "/version":
                self.send_json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake",
                                     "platform": "linux/amd64"})
                return
            if auth == "none":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            doc = discovery(u.path.rstrip("/") or "/")
            if doc is not None and method == "GET":
                self.send_json(200, doc)
                return
            rt = route(u.path)
            if rt is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource",
                               {})
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource",
                               {})
            res, ns, name = rt
            if name is not None:
                verb = "get"
            elif truthy(q.get("watch")):
                verb = "watch"
            else:
                verb = "list"
            has_cont = bool(q.get("continue"))
            fault = app.faults.take_response(res, verb, has_cont)
            if fault:
                entry["fault"] = fault["type"]
                if not self.apply_response_fault(fault, res, verb, q):
                    return
            if verb == "get":
                self.serve_get(res, ns, name)
            elif verb == "watch":
                self.serve_watch(res, ns, q)
            else:
                self.serve_list(res, ns, q)
        except ApiError as e:
            if self._headers_sent:
                # Too late for a status line: end the promised chunked body and hang up.
                log("error after headers: %s" % e)
                self.close_connection = True
                try:
                    self.end_chunks()
                except ClientGone:
                    pass
            else:
                self.send_error_status(e)
        except (ClientGone, Aborted):
            self.close_connection = True

    # -- faults -------------------------------------------------------------------------------
    def apply_response_fault(self, f, res, verb, q):
        """Send the fault's response; True to carry on serving the request normally."""
        t = f["type"]
        retry = f.get("retry_after", 1)
        log("fault %s on %s %s" % (t, verb, res))
        if t == "too_many_requests":
            raise ApiError(429, "TooManyRequests", f.get("message", "Too many requests, please try again later."),
                           {"retryAfterSeconds": retry}, headers={"Retry-After": retry})
        if t == "unavailable":
            raise ApiError(503, "ServiceUnavailable", f.get("message", "The server is currently unable to handle the request"),
                           {"retryAfterSeconds": retry}, headers={"Retry-After": retry})
        if t == "server_error":
            hdrs = {"Retry-After": f["retry_after"]} if "retry_after" in f else None
            raise ApiError(500, "InternalError",
                           "Internal error occurred: %s" % f.get("message", "injected fault"),
                           {"causes": [{"message": f.get("message", "injected fault")}]},
                           headers=hdrs)
        if t == "forbidden":
            raise self.forbidden(res, verb)
        if t == "too_large_rv":
            return self.fault_too_large_rv(f, verb, q)
        if t == "gone_list":
            if q.get("continue"):
                _rv, start = decode_continue(q["continue"])
                raise ApiError(410, "Expired", MSG_CONTINUE_EXPIRED,
                               list_meta={"continue": encode_continue(-1, start)})
            raise ApiError(410, "Expired", MSG_LIST_EXPIRED)
        if t == "rst_stream":
            # HTTP/2 RST_STREAM (HTTP/1.1: the connection is dropped), before the response
            # headers, right after them, or (watch) after `after` events.
            code = f.get("error", "INTERNAL_ERROR")
            h2transport.error_code(code)
            phase = f.get("phase", "before_headers")
            if phase == "after_events":
                self._rst_after = (int(f.get("after", 1)), code)
                return True
            if phase == "after_headers":
                self.start_chunked()
                self._headers_sent = True
            self.reset_stream(code)
        if t == "stall":
            seconds = float(f.get("seconds", 300))
            phase = f.get("phase", "before_headers")
            if phase == "after_headers":
                self.start_chunked()
                self._headers_sent = True
            if not self.stall(seconds):
                self.close_connection = True
                return False
            return True
        return True

    def forbidden(self, res, verb):
        """kube-apiserver's 403 for a request RBAC denies (responsewriters.Forbidden)."""
        entry = self._entry
        user = entry.get("user") if entry.get("auth") == "cert" else None
        user = user or TOKEN_USER
        group = RESOURCES[res]["apiVersion"].rpartition("/")[0]
        rt = route(entry["path"]) or (res, None, None)
        ns, name = rt[1], rt[2]
        scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
        what = '%s "%s"' % (res, name) if name else res
        details = {"group": group, "kind": res} if group else {"kind": res}
        if name:
            details["name"] = name
        return ApiError(403, "Forbidden",
                        '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s'
                        % (what, user, verb, res, group, scope), details)

    def fault_too_large_rv(self, f, verb, q):
        """This server's cache is behind the rv the client asks for (an HA peer that lags, an
        etcd restored from a backup): after `seconds` (default 3) a list gets 504, a watch a 200
        with one ERROR event carrying the 504 Status, as kube-apiserver's errWatcher sends."""
        store = self.app.store
        if not self.stall(float(f.get("seconds", FRESH_WAIT_S))):
            self.close_connection = True
            return False
        with store.cond:
            cur = store.rv
        try:
            want = int(q.get("resourceVersion") or 0)
        except ValueError:
            want = 0
        err = too_large_rv(max(want, cur + 1), cur)
        if verb != "watch":
            raise err
        if not self._headers_sent:
            self.start_chunked()
            self._headers_sent = True
        self.write_chunk(dumps({"type": "ERROR", "object": err.status}).encode() + b"\n")
        self.end_chunks()
        return False

    def stall(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            if self.app.stop.is_set():
                return False
            if self.client_gone(min(0.25, left)):
                log("stalled client went away")
                return False

    # -- get ----------------------------------------------------------------------------------
    def serve_get(self, res, ns, name):
        store = self.app.store
        with store.cond:
            obj = store.objects.get((res, ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", '%s "%s" not found' % (res, name),
                           {"name": name, "kind": res})
        self.send_json(200, obj)

    # -- list ---------------------------------------------------------------------------------
    def serve_list(self, res, ns, q):
        app, store, info = self.app, self.app.store, RESOURCES[res]
        reqs = parse_selector(q.get("labelSelector"))
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise bad_request("limit must be an integer")
        if limit < 0:
            raise bad_request("limit must not be negative")
        cont = q.get("continue") or ""
        rvp = q.get("resourceVersion") or ""
        rvm = q.get("resourceVersionMatch") or ""
        start = ""
        # apimachinery's ValidateListOptions, as the list handler runs it before anything else.
        if rvm:
            if not rvp:
                raise invalid_list_options(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided")
            if cont:
                raise invalid_list_options(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
            if rvm not in ("Exact", "NotOlderThan"):
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: '
                               'resourceVersionMatch: Unsupported value: "%s": supported values: '
                               '"Exact", "NotOlderThan", ""' % rvm)
            if rvm == "Exact" and rvp == "0":
                raise invalid_list_options(
                    "resourceVersionMatch",
                    'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        with store.cond:
            if cont:
                if rvp not in ("", "0"):
                    raise bad_request("specifying resource version is not allowed when using continue")
                tok_rv, start = decode_continue(cont)
                if tok_rv >= 0 and tok_rv < store.compacted:
                    raise ApiError(410, "Expired", MSG_CONTINUE_EXPIRED,
                                   list_meta={"continue": encode_continue(-1, start)})
                cached = getattr(app, "list_cache", None)
                if tok_rv < 0:
                    state, list_rv = store.current(res), store.rv
                elif cached and cached[0] == (res, tok_rv, ns, q.get("labelSelector") or ""):
                    state, list_rv = None, tok_rv  # the cached snapshot below
                else:
                    state, list_rv = store.snapshot(res, tok_rv), tok_rv
            else:
                exact = rvm == "Exact" or (limit > 0 and rvp not in ("", "0") and rvm != "NotOlderThan")
                if rvp not in ("", "0"):
                    try:
                        want = int(rvp)
                    except ValueError:
                        raise bad_request("invalid resource version %r" % rvp)
                else:
                    want = None
                if exact and want is not None:
                    if want < store.compacted:
                        raise ApiError(410, "Expired", MSG_LIST_EXPIRED)
                    if want > store.rv:
                        raise too_large_rv(want, store.rv)
                    state, list_rv = store.snapshot(res, want), want
                else:
                    if want is not None and want > store.rv:
                        # NotOlderThan a future rv: kube-apiserver's watch cache waits up to
                        # 3 s to catch up, then gives up with 504.
                        store.cond.wait_for(lambda: store.rv >= want or store.closing,
                                            timeout=FRESH_WAIT_S)
                        if store.rv < want:
                            raise too_large_rv(want, store.rv)
                    state, list_rv = store.current(res), store.rv
        # Paging a large list re-reads the same snapshot once per page: build the sorted key
        # list (with whether each object matches the selector) once per (resource, rv,
        # namespace, selector) and walk it.
        ckey = (res, list_rv, ns, q.get("labelSelector") or "")
        cached = getattr(app, "list_cache", None)
        if cached and cached[0] == ckey:
            all_items, all_keys = cached[1], cached[2]
        else:
            all_items = []
            for k in sorted(state, key=lambda k: "%s/%s" % k):
                if ns and k[0] != ns:
                    continue
                all_items.append(("%s/%s" % k, state[k],
                                  not reqs or selector_matches(reqs, state[k])))
            all_keys = [k for k, _o, _m in all_items]
            app.list_cache = (ckey, all_items, all_keys)
        i = bisect.bisect_left(all_keys, start) if start else 0
        meta = {"resourceVersion": str(list_rv)}
        if not limit:
            page = [o for _k, o, m in all_items[i:] if m]
        else:
            # As the etcd-backed list: keys are read in order and filtered until the page holds
            # `limit` matches; `continue` follows whenever keys remain after the last one read,
            # matching or not, so the page after a full one can be empty.
            page = []
            j = i
            while j < len(all_items) and len(page) < limit:
                if all_items[j][2]:
                    page.append(all_items[j][1])
                j += 1
            if len(page) >= limit and j < len(all_items):
                meta["continue"] = encode_continue(list_rv, all_items[j - 1][0] + "\x00")
                if not reqs:
                    meta["remainingItemCount"] = len(all_items) - j
        body = {"kind": info["listKind"], "apiVersion": info["apiVersion"], "metadata": meta,
                "items": [strip_type(o) for o in page]}
        mods = app.faults.take_modifiers(LIST_MODIFIERS, res, "list", bool(cont))
        if mods:
            self._entry["modifiers"] = sorted(mods)
        self.send_list_body(dumps(body).encode(), mods)

    def send_list_body(self, data, mods):
        accept = self.headers.get("Accept-Encoding") or ""
        gz_ok = "gzip" in [a.split(";")[0].strip().lower() for a in accept.split(",")]
        thr = self.app.args.gzip_threshold
        use_gzip = gz_ok and ("gzip_list" in mods or (thr >= 0 and len(data) > thr))
        if self._headers_sent:
            use_gzip = False
        chunked = use_gzip or "chunked_list" in mods
        if self._headers_sent:
            chunked = True  # a stall after headers already promised a chunked body
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-cache, private")
            if use_gzip:
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Vary", "Accept-Encoding")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
        if use_gzip:
            data = gzip.compress(data, compresslevel=1)
        if not chunked:
            self.write_raw(data)
            return
        size = int(mods.get("chunked_list", {}).get("chunk_size", 0)) or 16384
        for i in range(0, len(data), size):
            self.write_chunk(data[i:i + size])
        self.end_chunks()

    # -- watch --------------------------------------------------------------------------------
    def serve_watch(self, res, ns, q):
        app, store, info = self.app, self.app.store, RESOURCES[res]
        reqs = parse_selector(q.get("labelSelector"))
        allow_bm = truthy(q.get("allowWatchBookmarks"))
        timeout = q.get("timeoutSeconds")
        try:
            timeout = float(timeout) if timeout not in (None, "") else float(app.args.default_watch_timeout)
        except ValueError:
            raise bad_request("timeoutSeconds must be a number")
        deadline = time.monotonic() + timeout if timeout > 0 else None
        rvp = q.get("resourceVersion") or ""
        if rvp not in ("", "0"):
            try:
                rv = int(rvp)
            except ValueError:
                raise bad_request("invalid resource version %r" % rvp)
        else:
            rv = None
        mods = app.faults.take_modifiers(WATCH_MODIFIERS, res, "watch", False)
        if mods:
            self._entry["modifiers"] = sorted(mods)

        def matches(o):
            if ns and o["metadata"].get("namespace") != ns:
                return False
            return not reqs or selector_matches(reqs, o)

        initial = []
        gone_msg = None
        with store.cond:
            if rv is None:
                cur = store.current(res)
                for k in sorted(cur, key=lambda k: "%s/%s" % k):
                    if matches(cur[k]):
                        initial.append(("ADDED", cur[k]))
                idx = len(store.history)
                start_rv = store.rv
            else:
                # A future rv is accepted: kube-apiserver 1.30 only waits for its cache to catch
                # up (and fails with 504) for sendInitialEvents watches; a plain watch just gets
                # the events past rv when they happen.
                start_rv = rv
                below = store.too_old_below(res)
                if rv < below:
                    gone_msg = "too old resource version: %d (%d)" % (rv, below)
                idx = bisect.bisect_right(store.history_rvs, rv)
            if "gone_watch" in mods and gone_msg is None:
                gone_msg = "too old resource version: %d (%d)" % (start_rv, store.rv)
            w = WatchState(res, ns, allow_bm, self.address_string(), start_rv)
            app.watchers[w.id] = w
        self._entry["watch_id"] = w.id
        try:
            self._watch_loop(w, info, idx, initial, gone_msg, matches, deadline, mods)
        finally:
            with store.cond:
                app.watchers.pop(w.id, None)
            log("watch %d on %s ended after %d events" % (w.id, res, w.events_sent))

    def _watch_loop(self, w, info, idx, initial, gone_msg, matches, deadline, mods):
        app, store = self.app, self.app.store
        if not self._headers_sent:
            self.start_chunked()
        out = EventWriter(self, mods, w)
        if gone_msg is not None:
            st = status_body(410, "Expired", gone_msg)
            out.emit(dumps({"type": "ERROR", "object": st}).encode() + b"\n", real=False)
            out.flush()
            self.end_chunks()
            return
        out.start()
        interval = app.args.bookmark_interval
        next_bm = time.monotonic() + interval if (w.allow_bookmarks and interval > 0) else None
        # kube-apiserver's cacheWatcher.nextBookmarkTime: besides the ~1/min heartbeat, one
        # BOOKMARK 2 s before timeoutSeconds runs out, so the client resumes from a fresh rv.
        pre_bm = deadline - 2.0 if (w.allow_bookmarks and deadline is not None) else None
        pack = mods.get("pack_events")
        window = float(pack.get("window", 0)) if pack else 0.0

        def send(events):
            for typ, obj in events:
                out.emit(dumps({"type": typ, "object": obj}).encode() + b"\n", real=True)
            out.flush()

        send(initial)
        while True:
            # Wait for something to do: new history, a control signal, a bookmark or the end.
            with store.cond:
                nowm = time.monotonic()
                if not (len(store.history) > idx or w.end or w.bookmark or store.closing
                        or app.stop.is_set()
                        or (next_bm is not None and nowm >= next_bm)
                        or (pre_bm is not None and nowm >= pre_bm)
                        or (deadline is not None and nowm >= deadline)):
                    waits = [0.25]
                    for t in (next_bm, pre_bm):
                        if t is not None:
                            waits.append(t - nowm)
                    if deadline is not None:
                        waits.append(deadline - nowm)
                    store.cond.wait(max(0.001, min(waits)))
                if window and len(store.history) > idx:
                    store.cond.wait(window)  # pack_events: let more events pile up
                new = store.history[idx:]
                idx = len(store.history)
                cur_rv = store.rv
                end = w.end
                bm = w.bookmark
                w.bookmark = None
                closing = store.closing or app.stop.is_set()
            events = [ev for ev in (self.convert(w, e, matches) for e in new) if ev]
            send(events)
            nowm = time.monotonic()
            periodic = next_bm is not None and nowm >= next_bm
            pre = pre_bm is not None and nowm >= pre_bm
            if pre:
                pre_bm = None
            if periodic:
                next_bm = nowm + interval
            # Never a bookmark behind the rv the watch started from (a watch from a future rv
            # would otherwise move its client back).
            if cur_rv < w.start_rv:
                bm, periodic, pre = None, False, False
            if bm == "force" or (w.allow_bookmarks and (bm or periodic or pre)):
                # Every change up to cur_rv has been considered, so cur_rv is a safe bookmark.
                bmobj = {"kind": info["kind"], "apiVersion": info["apiVersion"],
                         "metadata": {"resourceVersion": str(cur_rv)}}
                out.emit(dumps({"type": "BOOKMARK", "object": bmobj}).encode() + b"\n", real=False)
                out.flush()
                if next_bm is not None:
                    next_bm = nowm + interval
            if end == "abrupt":
                self.abort()
            if end or closing or (deadline is not None and nowm >= deadline):
                if closing:
                    self.close_connection = True
                self.end_chunks()
                return
            if not events and self.client_gone(0):
                raise ClientGone("peer closed")

    @staticmethod
    def convert(w, entry, matches):
        rv, res, _key, typ, obj, prev = entry
        # A watch from a future rv sees only what comes after it.
        if res != w.res or rv <= w.start_rv:
            return None
        if typ == "DELETED":
            return ("DELETED", obj) if matches(obj) else None
        cur_ok = matches(obj)
        prev_ok = prev is not None and matches(prev)
        if cur_ok:
            return ("MODIFIED" if prev_ok else "ADDED", obj)
        if prev_ok:
            gone = copy.deepcopy(prev)
            gone["metadata"]["resourceVersion"] = str(rv)
            return ("DELETED", gone)
        return None


class EventWriter:
    """Writes watch lines as HTTP chunks, applying the split/pack/cut/malformed modifiers."""

    def __init__(self, h, mods, w):
        self.h = h
        self.w = w
        self.split = mods.get("split_events")
        self.pack = mods.get("pack_events")
        self.cut = mods.get("close_mid_event")
        self.bad = mods.get("malformed_event")
        self.bad_done = False
        self.endless = mods.get("endless_line")
        seed = None
        for m in (self.split, self.pack):
            if m and "seed" in m:
                seed = m["seed"]
        self.rng = random.Random(seed)
        self.buf = []

    def _chunks(self, data):
        if self.split:
            lo = max(1, int(self.split.get("min", 1)))
            hi = max(lo, int(self.split.get("max", 7)))
            delay = float(self.split.get("delay", 0))
            i = 0
            while i < len(data):
                n = self.rng.randint(lo, hi)
                self.h.write_chunk(data[i:i + n])
                i += n
                if delay:
                    time.sleep(delay)
        else:
            self.h.write_chunk(data)

    def _maybe_bad(self):
        if self.bad and not self.bad_done and self.w.events_sent >= int(self.bad.get("after", 0)):
            self.bad_done = True
            line = self.bad.get("line", '{"type":"ADDED","object":{')
            if not line.endswith("\n"):
                line += "\n"
            self._out(line.encode())

    def _maybe_endless(self):
        """endless_line: an event line that does not end (or ends after `bytes` bytes)."""
        e = self.endless
        if not e or self.w.events_sent < int(e.get("after", 0)):
            return
        self.endless = None
        self.flush()
        size = max(1, int(e.get("chunk_size", 65536)))
        limit = int(e.get("bytes", 0))
        head = b'{"type":"ADDED","object":{"kind":"Service","metadata":{"name":"endless","annotations":{"pad":"'
        self.h.write_chunk(head)
        sent = len(head)
        log("endless_line: started")
        pad = b"x" * size
        try:
            while not limit or sent < limit:
                if self.h.app.stop.is_set():
                    self.h.abort()
                n = size if not limit else min(size, limit - sent)
                self.h.write_chunk(pad[:n])
                sent += n
        finally:
            log("endless_line: %d bytes sent" % sent)
        self.h.write_chunk(b'"}}}}\n')

    def _out(self, data):
        if self.pack:
            self.buf.append(data)
        else:
            self._chunks(data)

    def start(self):
        self._maybe_bad()
        self.flush()
        self._maybe_endless()

    def emit(self, data, real):
        if real:
            self._maybe_bad()
            if self.cut and self.w.events_sent >= int(self.cut.get("after", 1)):
                self.flush()
                half = data[:max(1, len(data) // 2)]
                if self.cut.get("mode", "mid_chunk") == "mid_chunk":
                    # The chunk header promises the whole line; half of it follows.
                    self.h.write_cut(len(data), half)
                else:
                    self.h.write_chunk(half)
                log("close_mid_event: cut the connection after %d bytes of %d"
                    % (len(half), len(data)))
                self.h.abort()
        self._out(data)
        if real:
            self.w.events_sent += 1
            rst = getattr(self.h, "_rst_after", None)
            if rst and self.w.events_sent >= rst[0]:
                self.flush()
                log("rst_stream: reset after %d events" % self.w.events_sent)
                self.h.reset_stream(rst[1])
            self._maybe_bad()
            self._maybe_endless()

    def flush(self):
        if not self.buf:
            return
        data = b"".join(self.buf)
        self.buf = []
        size = int(self.pack.get("chunk_size", 0)) if self.pack else 0
        if size > 0:
            for i in range(0, len(data), size):
                self._chunks(data[i:i + size])
        else:
            self._chunks(data)


class H2Headers:
    """Request headers of an HTTP/2 stream, looked up case-insensitively like http.client's."""

    def __init__(self, pairs):
        self.d = {}
        for k, v in pairs:
            k = k.lower()
            self.d[k] = "%s, %s" % (self.d[k], v) if k in self.d and k != "cookie" else v

    def get(self, name, default=None):
        return self.d.get(name.lower(), default)

    def __getitem__(self, name):
        return self.d.get(name.lower())


class H2ApiStream(ApiHandler):
    """One HTTP/2 request served by ApiHandler's logic. Only the transport differs: headers
    become a HEADERS frame (connection-specific ones dropped, as RFC 9113 requires), body
    bytes and chunks become DATA frames under flow control, the end of the chunked body is
    END_STREAM, and "reset" is a real RST_STREAM."""

    def __init__(self, conn, sid, headers, server):
        # BaseHTTPRequestHandler.__init__ would run an HTTP/1.1 read loop: not called.
        self.h2c = conn
        self.sid = sid
        self.server = server
        self.client_address = conn.peer
        self.connection = conn.sock
        self.headers = H2Headers(headers)
        self.command = self.headers.get(":method") or "GET"
        self.path = self.headers.get(":path") or "/"
        self.request_version = "HTTP/2"
        self.rfile = io.BytesIO(b"")
        self.close_connection = False
        self._status = None
        self._hdrs = []
        self._aborted = False

    def serve(self):
        try:
            fn = getattr(self, "do_" + self.command, None)
            if fn is None:
                raise ApiError(405, "MethodNotAllowed", "method %s not allowed" % self.command)
            fn()
        except ApiError as e:
            try:
                self.send_error_status(e)
            except (ClientGone, Aborted):
                pass
        except (ClientGone, Aborted):
            pass
        log("api h2 %s conn=%d stream=%d \"%s %s\" %s" % (self.client_address[0], self.h2c.id,
                                                         self.sid, self.command, self.path,
                                                         self._status))

    def record_proto(self):
        entry = getattr(self, "_entry", None)
        if entry is not None:
            entry["proto"] = "h2"
            entry["conn"] = self.h2c.id
            entry["stream"] = self.sid

    def send_response(self, code, message=None):
        entry = getattr(self, "_entry", None)
        if entry is not None:
            entry["status"] = code
            self.record_proto()
        self._status = code
        self._hdrs = [("server", self.server_version), ("date", self.date_time_string())]

    def send_header(self, keyword, value):
        k = keyword.lower()
        if k in ("connection", "transfer-encoding", "keep-alive", "proxy-connection", "upgrade"):
            return
        self._hdrs.append((k, str(value)))

    def end_headers(self):
        try:
            self.h2c.send_headers(self.sid, self._status, self._hdrs)
        except h2transport.StreamGone as e:
            raise ClientGone(str(e))

    def write_raw(self, data):
        try:
            self.h2c.send_data(self.sid, data)
        except h2transport.StreamGone as e:
            raise ClientGone(str(e))

    def write_chunk(self, data):
        if data:
            self.write_raw(data)

    def write_cut(self, total, part):
        self.write_raw(part)

    def end_chunks(self):
        try:
            self.h2c.end_stream(self.sid)
        except h2transport.StreamGone as e:
            raise ClientGone(str(e))

    def abort(self):
        """Drop the whole TCP connection, every stream on it: what a crash or a cut cable
        does to an HTTP/2 client."""
        self._aborted = True
        self.h2c.abort()
        raise Aborted()

    def reset_stream(self, code):
        self.h2c.reset(self.sid, code)
        raise Aborted()

    def client_gone(self, wait):
        return self.h2c.stream_closed(self.sid, wait)

    def address_string(self):
        return self.client_address[0]


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, app, ctx, family):
        self.address_family = family
        self.app = app
        self.ctx = ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread so a slow client cannot block accept().
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        request.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("api %s TLS handshake failed: %s" % (client_address[0], e))
            return
        tls.settimeout(None)
        if tls.selected_alpn_protocol() == "h2":
            def stream(conn, sid, headers):
                H2ApiStream(conn, sid, headers, self).serve()
            try:
                h2transport.serve(tls, client_address, stream, log)
            finally:
                try:
                    tls.close()
                except OSError:
                    pass
            return
        h = None
        try:
            h = self.RequestHandlerClass(tls, client_address, self)
        except Exception as e:  # noqa: BLE001
            log("api %s connection error: %r" % (client_address[0], e))
        finally:
            aborted = h is not None and getattr(h, "_aborted", False)
            try:
                if not aborted:
                    tls.settimeout(0.2)
                    tls.unwrap()
            except (OSError, ssl.SSLError, ValueError):
                pass
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        log("api %s unhandled error: %r" % (client_address, sys.exc_info()[1]))


# ---------------------------------------------------------------------------------------------
# Control API


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-apiserver-control"
    sys_version = ""

    @property
    def app(self):
        return self.server.app

    def log_message(self, fmt, *args):
        log("control %s" % (fmt % args))

    def reply(self, code, obj):
        body = (dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        raw = self._raw
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", "invalid JSON: %s" % e)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        # Read the whole body whether the endpoint wants it or not: bytes left unread would be
        # taken for the next request on this keep-alive connection.
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self.reply(400, {"error": "a body needs a valid Content-Length (no chunked bodies)"})
            return
        self._raw = self.rfile.read(n) if n else b""
        try:
            fn = getattr(self, "c_%s_%s" % (method.lower(), u.path.strip("/").replace("/", "_")),
                         None)
            if fn is None:
                self.reply(404, {"error": "no such control endpoint %s %s" % (method, u.path),
                                 "help": CONTROL_API})
                return
            self.reply(200, fn(q))
        except ApiError as e:
            self.reply(e.code, {"error": e.status["message"]})
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, {"error": "%s: %s" % (type(e).__name__, e)})

    # --- endpoints ---------------------------------------------------------------------------
    def c_post_control_apply(self, q):
        b = self.body()
        if isinstance(b, list):
            items = b
        elif isinstance(b, dict) and (b.get("kind") in ("List", "ServiceList", "EndpointSliceList")
                                      or ("items" in b and "kind" not in b)):
            items = b.get("items") or []
            lk = b.get("kind")
            if lk in ("ServiceList", "EndpointSliceList"):
                k = lk[:-4]
                items = [dict(i, kind=i.get("kind") or k) for i in items]
        else:
            items = [b]
        results = [self.app.store.apply(o) for o in items]
        with self.app.store.cond:
            rv = self.app.store.rv
        return {"resourceVersion": str(rv), "items": results}

    def c_post_control_delete(self, q):
        b = self.body()
        items = b.get("items") if isinstance(b, dict) and "items" in b else [b]
        results = []
        for d in items:
            results.append(self.app.store.delete(d.get("kind"), d.get("namespace"), d.get("name")))
        with self.app.store.cond:
            rv = self.app.store.rv
        return {"resourceVersion": str(rv), "items": results}

    def c_post_control_fault(self, q):
        b = self.body()
        t = b.get("type")
        if t not in ALL_FAULTS:
            raise ApiError(400, "BadRequest", "unknown fault type %r; known: %s"
                           % (t, ", ".join(sorted(ALL_FAULTS))))
        r = b.get("resource")
        if r not in (None, "", "any", "*") and r not in RESOURCES:
            raise ApiError(400, "BadRequest", "unknown resource %r" % r)
        app = self.app
        if t == "end_watch":
            n = app.signal_watchers(r, end="abrupt" if b.get("abrupt") else "clean")
            return {"type": t, "watches": n}
        if t == "bookmark_now":
            n = app.signal_watchers(r, bookmark="force" if b.get("force") else "normal")
            return {"type": t, "watches": n}
        if t == "goaway":
            kw = {"abrupt": bool(b.get("abrupt")), "code": b.get("error", "NO_ERROR"),
                  "last_stream_id": b.get("last_stream_id"),
                  "debug": str(b.get("debug", "")).encode()}
            h2transport.error_code(kw["code"])
            return {"type": t, "connections": h2transport.goaway_all(**kw)}
        if t == "stall_connection":
            n = h2transport.stall_all(float(b.get("seconds", 300)))
            return {"type": t, "connections": n}
        if t == "unauthorized_until_token_changes":
            tok = app.read_token()
            with app.req_lock:
                app.blocked_token = tok
                app.blocked = True
            return {"type": t, "blocked": True}
        spec = app.faults.add(b)
        return {"type": t, "id": spec["id"], "remaining": spec["remaining"]}

    def c_get_control_faults(self, q):
        return self.app.faults.pending()

    def c_post_control_faults_clear(self, q):
        self.app.faults.clear()
        with self.app.req_lock:
            self.app.blocked = False
        return {"cleared": True}

    def c_post_control_compact(self, q):
        b = self.body()
        store = self.app.store
        with store.cond:
            at = int(b.get("resourceVersion", store.rv)) if isinstance(b, dict) else store.rv
            store.compacted = max(store.compacted, min(at, store.rv))
            return {"compacted": store.compacted, "resourceVersion": str(store.rv)}

    def c_post_control_auth(self, q):
        b = self.body()
        if "token" in b:
            self.app.token_auth = bool(b["token"])
        if "cert" in b:
            self.app.cert_auth = bool(b["cert"])
        return {"token": self.app.token_auth, "cert": self.app.cert_auth}

    def c_get_control_requests(self, q):
        since = int(q.get("since", 0))
        with self.app.req_lock:
            return [dict(e) for e in self.app.requests if e["id"] > since]

    def c_post_control_requests_clear(self, q):
        with self.app.req_lock:
            self.app.requests = []
        return {"cleared": True}

    def c_get_control_watchers(self, q):
        app = self.app
        if "wait" in q:
            want = int(q["wait"])
            res = q.get("resource")
            end = time.monotonic() + float(q.get("timeout", 10))
            while True:
                c = app.watcher_counts()
                have = c["total"] if not res else c.get(res, 0)
                if have >= want or time.monotonic() >= end:
                    c["satisfied"] = have >= want
                    return c
                time.sleep(0.05)
        return app.watcher_counts()

    def c_get_control_state(self, q):
        app, store = self.app, self.app.store
        with store.cond:
            counts = {r: 0 for r in RESOURCES}
            for k in store.objects:
                counts[k[0]] += 1
            st = {"resourceVersion": str(store.rv), "rv": store.rv, "compacted": store.compacted,
                  "counts": counts, "history": len(store.history)}
            wc = {"maxEvents": store.cache_events, "seconds": store.cache_seconds}
            for r in RESOURCES:
                wc[r] = store.cache_window(r)
            st["watchCache"] = wc
        st["watchers"] = {k: v for k, v in app.watcher_counts().items() if k != "watches"}
        st["faults"] = app.faults.pending()
        st["h2"] = h2transport.REGISTRY.snapshot()
        st["token_auth"] = app.token_auth
        st["cert_auth"] = app.cert_auth
        st["token_blocked"] = app.blocked
        with app.req_lock:
            st["requests"] = len(app.requests)
        return st

    def c_get_control_objects(self, q):
        with self.app.store.cond:
            return [self.app.store.objects[k] for k in sorted(self.app.store.objects)]

    def c_post_control_reset(self, q):
        store = self.app.store
        with store.cond:
            keys = sorted(store.objects)
        for res, ns, name in keys:
            try:
                store.delete(res, ns, name)
            except ApiError:
                pass
        self.app.faults.clear()
        with self.app.req_lock:
            self.app.blocked = False
        with store.cond:
            return {"resourceVersion": str(store.rv), "deleted": len(keys)}


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, app):
        self.app = app
        super().__init__(addr, handler)


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake kube-apiserver for bpfsvc e2e tests.",
                                 epilog=CONTROL_API,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1", help="API address (127.0.0.1 or ::1)")
    ap.add_argument("--port", type=int, default=0, help="API port (0: pick a free one)")
    ap.add_argument("--control-port", type=int, default=0, help="control port on 127.0.0.1")
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server key (PEM)")
    ap.add_argument("--client-ca", help="CA for client certificates (CERT_OPTIONAL)")
    ap.add_argument("--token-file", help="bearer token file, re-read on every request")
    ap.add_argument("--bookmark-interval", type=float, default=60.0,
                    help="seconds between periodic BOOKMARK events (0: none; the one 2 s "
                         "before timeoutSeconds ends is sent anyway)")
    ap.add_argument("--watch-cache-events", type=int, default=1000,
                    help="events per resource a watch can replay at most")
    ap.add_argument("--watch-cache-seconds", type=float, default=75.0,
                    help="events older than this cannot be replayed (kube-apiserver's "
                         "eventFreshDuration)")
    ap.add_argument("--default-watch-timeout", type=float, default=0,
                    help="end watches without timeoutSeconds after this many seconds (0: never)")
    ap.add_argument("--gzip-threshold", type=int, default=GZIP_THRESHOLD,
                    help="gzip list bodies larger than this when accepted (-1: never)")
    ap.add_argument("--alpn", default="h2,http/1.1",
                    help="ALPN protocols offered, in preference order (http/1.1: no HTTP/2)")
    ap.add_argument("--port-file", help='write {"port":P,"control_port":C} here when ready')
    args = ap.parse_args(argv)

    app = App(args)
    app.store.cache_events = max(1, args.watch_cache_events)
    app.store.cache_seconds = args.watch_cache_seconds
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(cafile=args.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    # Like kube-apiserver: HTTP/2 for clients that offer it, HTTP/1.1 for the rest.
    ctx.set_alpn_protocols([p.strip() for p in args.alpn.split(",") if p.strip()])

    host = args.listen.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    api = TLSServer((host, args.port), ApiHandler, app, ctx, family)
    ctl = ControlServer(("127.0.0.1", args.control_port), ControlHandler, app)
    port = api.server_address[1]
    cport = ctl.server_address[1]
    for srv in (api, ctl):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()

    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write(dumps({"port": port, "control_port": cport}) + "\n")
        os.replace(tmp, args.port_file)
    sys.stdout.write("ready port=%d control_port=%d\n" % (port, cport))
    sys.stdout.flush()
    log("serving https://%s:%d (control http://127.0.0.1:%d)"
        % ("[%s]" % host if family == socket.AF_INET6 else host, port, cport))

    def on_signal(signum, _frame):
        log("signal %d, shutting down" % signum)
        app.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not app.stop.wait(0.5):
        pass
    # Close watch streams cleanly (terminating chunk), then stop.
    with app.store.cond:
        app.store.closing = True
        app.store.cond.notify_all()
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        with app.store.cond:
            if not app.watchers:
                break
        time.sleep(0.05)
    for srv in (api, ctl):
        try:
            srv.shutdown()
            srv.server_close()
        except Exception:  # noqa: BLE001
            pass
    log("stopped")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
