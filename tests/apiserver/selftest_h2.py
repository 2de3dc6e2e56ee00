#!/usr/bin/python3
"""HTTP/2 self-test of the fake kube-apiserver, with a client built on h2 (python3-h2), so
frames are seen as they are: ALPN, multiplexed watches on one connection, flow control on a
large list, PING, RST_STREAM, GOAWAY (graceful and abrupt), a stalled connection, and the
HTTP/1.1 fallback. Prints "ok - ..." / "not ok - ..." lines and "N passed, N failed".

usage: selftest_h2.py PKI_DIR TOKEN_FILE
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import h2.settings

HERE = os.path.dirname(os.path.abspath(__file__))
passed = failed = 0


def check(desc, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + desc)
    else:
        failed += 1
        print("not ok - " + desc)
    sys.stdout.flush()


class Server:
    def __init__(self, pki, token_file, *extra):
        self.tmp = tempfile.mkdtemp(prefix="h2selftest.")
        pf = os.path.join(self.tmp, "ports.json")
        self.err = open(os.path.join(self.tmp, "err"), "w")
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fake_apiserver.py"), "--port", "0",
             "--control-port", "0", "--cert", pki + "/server.crt", "--key", pki + "/server.key",
             "--client-ca", pki + "/ca.crt", "--token-file", token_file, "--port-file", pf,
             "--bookmark-interval", "0"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=self.err)
        for _ in range(200):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        d = json.load(open(pf))
        self.port, self.cport = d["port"], d["control_port"]

    def ctl(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.cport, path), data=data,
                                     method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.err.close()


class Client:
    """A minimal HTTP/2 client: one TLS connection, h2's state machine, blocking reads."""

    def __init__(self, port, pki, token, alpn=("h2", "http/1.1"), window=None):
        ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
        ctx.set_alpn_protocols(list(alpn))
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.alpn = self.sock.selected_alpn_protocol()
        self.token = token
        self.h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        if window:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.auto_window = window is None
        self.streams = {}  # sid -> {"status","headers","data","ended","reset"}
        self.events = []
        self.goaway = None
        self.closed = False
        self.ping_acks = 0
        self.buf = b""
        self._send()

    def _send(self):
        d = self.h2.data_to_send()
        if d:
            self.sock.sendall(d)

    def get(self, path, end=True):
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                   (":authority", "127.0.0.1"), (":path", path),
                                   ("authorization", "Bearer " + self.token),
                                   ("accept", "application/json")], end_stream=end)
        self.streams[sid] = {"status": None, "data": b"", "ended": False, "reset": None,
                             "headers": {}}
        self._send()
        return sid

    def ping(self):
        self.h2.ping(b"12345678")
        self._send()

    def pump(self, timeout, until=lambda: False):
        """Read frames for up to `timeout` s or until until() holds; False once closed."""
        end = time.monotonic() + timeout
        while not until():
            left = end - time.monotonic()
            if left <= 0 or self.closed:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except (OSError, ssl.SSLError):
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            for ev in self._receive(data):
                self._event(ev)
            self._send()
        return until()

    def _receive(self, data):
        """Frames to h2, except GOAWAY: h2 treats it as the end of the connection, while a
        graceful GOAWAY lets running streams finish, so it is recorded here instead."""
        self.buf += data
        events = []
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            frame, self.buf = self.buf[:9 + n], self.buf[9 + n:]
            if frame[3] == 0x7:
                self.goaway = (int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF,
                               int.from_bytes(frame[13:17], "big"))
                continue
            events.extend(self.h2.receive_data(bytes(frame)))
        return events

    def _event(self, ev):
        self.events.append(ev)
        st = self.streams.get(getattr(ev, "stream_id", 0))
        if isinstance(ev, h2.events.ResponseReceived):
            st["headers"] = dict(ev.headers)
            st["status"] = int(st["headers"][":status"])
        elif isinstance(ev, h2.events.DataReceived):
            st["data"] += ev.data
            if self.auto_window and ev.flow_controlled_length:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None:
                st["reset"] = ev.error_code
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks += 1

    def open_window(self, sid, n):
        self.h2.increment_flow_control_window(n, stream_id=sid)
        self.h2.increment_flow_control_window(n)
        self._send()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def lines(data):
    """Complete watch lines (a partial last line is still on its way)."""
    return [json.loads(x) for x in data.split(b"\n")[:-1] if x.strip()]


def names(data):
    return [e["object"]["metadata"].get("name") for e in lines(data)]


def svc(name, ip):
    return {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}


def main():
    pki, token_file = sys.argv[1], sys.argv[2]
    token = open(token_file).read().strip()
    srv = Server(pki, token_file)
    try:
        run(srv, pki, token)
    finally:
        srv.stop()
    srv1 = Server(pki, token_file, "--alpn", "http/1.1")
    try:
        c = Client(srv1.port, pki, token)
        check("--alpn http/1.1: a client offering h2 gets HTTP/1.1 (ALPN %r)" % c.alpn,
              c.alpn == "http/1.1")
        c.close()
    finally:
        srv1.stop()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def run(srv, pki, token):
    srv.ctl("POST", "/control/apply", [svc("a%d" % i, "10.96.1.%d" % i) for i in range(1, 4)])

    c = Client(srv.port, pki, token)
    check("ALPN offers h2 and a client offering h2 gets it (%r)" % c.alpn, c.alpn == "h2")
    sid = c.get("/api/v1/services")
    c.pump(5, lambda: c.streams[sid]["ended"])
    st = c.streams[sid]
    body = json.loads(st["data"] or b"{}")
    check("list over HTTP/2: 200, ServiceList with 3 items, END_STREAM",
          st["status"] == 200 and body.get("kind") == "ServiceList" and len(body["items"]) == 3)
    check("  no connection-specific headers (transfer-encoding, connection) in HEADERS",
          not {"transfer-encoding", "connection", "keep-alive"} & set(st["headers"]))

    # Two watches and a list multiplexed on one connection, as libcurl does with PIPEWAIT.
    w1 = c.get("/api/v1/namespaces/default/services?watch=1&resourceVersion=0")
    w2 = c.get("/apis/discovery.k8s.io/v1/endpointslices?watch=1&allowWatchBookmarks=true")
    c.pump(5, lambda: len(lines(c.streams[w1]["data"])) >= 3)
    srv.ctl("POST", "/control/apply", svc("b", "10.96.2.1"))
    c.pump(5, lambda: len(lines(c.streams[w1]["data"])) >= 4)
    ev = lines(c.streams[w1]["data"])
    check("two watches on one connection: the services watch gets the replay and a live ADDED",
          [e["type"] for e in ev] == ["ADDED"] * 4 and ev[-1]["object"]["metadata"]["name"] == "b")
    state = srv.ctl("GET", "/control/state")
    check("  the server sees 1 connection with both watch streams open",
          state["h2"]["open"] == 1 and state["h2"]["conns"][0]["streams"] == 2)
    reqs = srv.ctl("GET", "/control/requests")
    check("  the request log records proto h2 and the connection/stream ids",
          all(r.get("proto") == "h2" and r.get("conn") == reqs[0]["conn"] for r in reqs)
          and {r["stream"] for r in reqs} == {sid, w1, w2})

    # PING answered.
    c.ping()
    c.pump(3, lambda: c.ping_acks >= 1)
    check("PING is acknowledged", c.ping_acks == 1)

    # RST_STREAM on a watch after one event.
    srv.ctl("POST", "/control/fault", {"type": "rst_stream", "on": "watch", "phase": "after_events",
                                       "after": 1, "error": "INTERNAL_ERROR"})
    w3 = c.get("/api/v1/services?watch=1&resourceVersion=0")
    c.pump(5, lambda: c.streams[w3]["reset"] is not None)
    check("rst_stream after 1 event: one ADDED, then RST_STREAM INTERNAL_ERROR (2); the "
          "connection lives",
          c.streams[w3]["reset"] == 2 and len(lines(c.streams[w3]["data"])) == 1
          and not c.closed)
    srv.ctl("POST", "/control/fault", {"type": "rst_stream", "on": "list", "error": "REFUSED_STREAM"})
    r4 = c.get("/api/v1/services")
    c.pump(5, lambda: c.streams[r4]["reset"] is not None)
    check("rst_stream before headers on a list: RST_STREAM REFUSED_STREAM (7), no HEADERS",
          c.streams[r4]["reset"] == 7 and c.streams[r4]["status"] is None)

    # A stalled connection: PINGs unanswered, events held, both watches stalled; then resumed.
    srv.ctl("POST", "/control/fault", {"type": "stall_connection", "seconds": 2})
    c.ping()
    srv.ctl("POST", "/control/apply", svc("c", "10.96.2.2"))
    got = c.pump(1.2, lambda: c.ping_acks >= 2)
    n_before = len(lines(c.streams[w1]["data"]))
    check("stall_connection: no PING ACK and no event for 1.2 s", not got and n_before == 4)
    c.pump(4, lambda: c.ping_acks >= 2 and len(lines(c.streams[w1]["data"])) >= 5)
    check("  after the stall: the PING ACK and the held event arrive",
          c.ping_acks == 2 and len(lines(c.streams[w1]["data"])) == 5)

    # Flow control: a client window of 16 KiB on a list of ~1 MB.
    big = [svc("big%04d" % i, "10.97.%d.%d" % (i // 250, i % 250 + 1)) for i in range(2500)]
    for o in big:
        o["metadata"]["annotations"] = {"pad": "x" * 300}
        o["metadata"]["namespace"] = "big"
    srv.ctl("POST", "/control/apply", big)
    c2 = Client(srv.port, pki, token, window=16384)
    waits0 = srv.ctl("GET", "/control/state")["h2"]["window_waits"]
    s2 = c2.get("/api/v1/services?limit=5000")
    c2.pump(2, lambda: c2.streams[s2]["ended"])
    size1 = len(c2.streams[s2]["data"])
    check("flow control: with a 16 KiB window and no WINDOW_UPDATE the server sends "
          "at most 16 KiB (%d)" % size1, 0 < size1 <= 16384)
    done = False
    t_end = time.monotonic() + 30
    while not done and time.monotonic() < t_end:
        c2.open_window(s2, 1 << 20)
        done = c2.pump(1, lambda: c2.streams[s2]["ended"])
    body = json.loads(c2.streams[s2]["data"] or b"{}")
    waits1 = srv.ctl("GET", "/control/state")["h2"]["window_waits"]
    check("  with WINDOW_UPDATEs the list completes (%d items, %d bytes; server waited for "
          "the window %d times)" % (len(body.get("items", [])), len(c2.streams[s2]["data"]),
                                    waits1 - waits0),
          done and len(body.get("items", [])) == 2505 and waits1 > waits0)
    c2.close()

    # Graceful GOAWAY: running streams go on, new ones are refused, the connection closes
    # once idle.
    r = srv.ctl("POST", "/control/fault", {"type": "goaway"})
    c.pump(2, lambda: c.goaway is not None)
    check("goaway: GOAWAY NO_ERROR with last_stream_id = the last stream started (%s)"
          % (c.goaway and c.goaway[0]),
          r["connections"] >= 1 and c.goaway is not None and c.goaway[1] == 0
          and c.goaway[0] == max(c.streams))
    srv.ctl("POST", "/control/apply", svc("d", "10.96.2.3"))
    c.pump(10, lambda: "d" in names(c.streams[w1]["data"]))
    nm = names(c.streams[w1]["data"])
    check("  a watch started before the GOAWAY still gets events (%d, last %s, closed %s)"
          % (len(nm), nm[-1:], c.closed), "d" in nm)
    # h2 refuses to open streams after GOAWAY; write the frame past its state machine.
    srv.ctl("POST", "/control/fault", {"type": "end_watch"})
    c.pump(5, lambda: c.closed)
    check("  the connection closes once its streams have ended", c.closed)
    c.close()

    c3 = Client(srv.port, pki, token)
    w = c3.get("/api/v1/services?watch=1&resourceVersion=0")
    c3.pump(3, lambda: len(lines(c3.streams[w]["data"])) >= 1)
    srv.ctl("POST", "/control/fault", {"type": "goaway", "abrupt": True, "error": "NO_ERROR"})
    c3.pump(5, lambda: c3.closed)
    check("goaway abrupt: GOAWAY, then the TCP connection closes under a running watch",
          c3.goaway is not None and c3.closed and not c3.streams[w]["ended"])
    c3.close()

    # An HTTP/1.1-only client on the same server.
    c4 = Client(srv.port, pki, token, alpn=("http/1.1",))
    check("a client offering only http/1.1 gets HTTP/1.1 (ALPN %r)" % c4.alpn,
          c4.alpn == "http/1.1")
    c4.close()


if __name__ == "__main__":
    main()
