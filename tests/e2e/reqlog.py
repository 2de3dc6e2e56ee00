#!/usr/bin/env python3
"""Print the fake API server's request log one request a line, for grep in e2e tests:
   ID RESOURCE list|watch|other STATUS auth=.. rv=.. continue=0|1 timeout=.. selector=..
   proto=h2|http/1.1 conn=.. t=..   ("other": not a Service/EndpointSlice list or watch, such
   as the agent's HTTP/2 health probe, GET /version)"""
import json
import sys

for r in json.load(sys.stdin):
    q = r.get("query", {})
    res = r["path"].rstrip("/").split("/")[-1]
    kind = "watch" if r.get("watch") else "list"
    if res not in ("services", "endpointslices"):
        kind = "other"
    print("%d %s %s %s auth=%s rv=%s continue=%d timeout=%s bookmarks=%s selector=%s "
          "proto=%s conn=%s t=%.3f" % (
              r["id"], res, kind, r.get("status"), r.get("auth"), q.get("resourceVersion", "-"),
              1 if q.get("continue") else 0, q.get("timeoutSeconds", "-"),
              q.get("allowWatchBookmarks", "-"), q.get("labelSelector", "-"),
              r.get("proto", "-"), r.get("conn", "-"), r.get("time", 0)))
