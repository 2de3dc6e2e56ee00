#!/usr/bin/env python3
"""Print the fake API server's request log one request a line, for grep in e2e tests:
   ID RESOURCE list|watch STATUS auth=.. rv=.. continue=0|1 timeout=.. selector=.. t=.."""
import json
import sys

for r in json.load(sys.stdin):
    q = r.get("query", {})
    res = r["path"].rstrip("/").split("/")[-1]
    kind = "watch" if r.get("watch") else "list"
    print("%d %s %s %s auth=%s rv=%s continue=%d timeout=%s bookmarks=%s selector=%s t=%.3f" % (
        r["id"], res, kind, r.get("status"), r.get("auth"), q.get("resourceVersion", "-"),
        1 if q.get("continue") else 0, q.get("timeoutSeconds", "-"),
        q.get("allowWatchBookmarks", "-"), q.get("labelSelector", "-"), r.get("time", 0)))
