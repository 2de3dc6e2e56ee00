"""HTTP/2 server side of the fake kube-apiserver (Debian's python3-h2).

One I/O thread per TLS connection owns the socket and h2's state machine; every request
(stream) runs in its own thread and talks to the connection through H2Conn's stream methods,
which block on HTTP/2 flow control the way a real server does: a stream never sends more than
the client's window allows, and the connection never queues more than OUT_HIGH bytes for the
socket.

Faults a real kube-apiserver (Go's net/http2) can show a client, driven from the control API:
  goaway(...)            GOAWAY to every connection. Graceful (NO_ERROR, last stream id = the
                         highest one started): running streams finish, new ones are refused
                         with REFUSED_STREAM, the connection closes once idle (Go's graceful
                         shutdown, what kube-apiserver's --goaway-chance does). abrupt=True
                         closes the TCP connection right after the frame.
  stall(seconds)         the connection stops reading and writing: PINGs go unanswered, the
                         TCP connection stays up (a hung server or middlebox).
  reset on a stream      RST_STREAM with an error code (H2Conn.reset).
"""

import select
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

OUT_HIGH = 256 * 1024  # bytes queued for the socket before stream threads wait
MAX_STREAMS = 250      # Go's http2 server default (kube-apiserver keeps it)

ERROR_CODES = {e.name: int(e) for e in h2.errors.ErrorCodes}


def error_code(v, default="INTERNAL_ERROR"):
    """An h2 error code from a name ("CANCEL") or a number."""
    if v is None:
        v = default
    if isinstance(v, int):
        return v
    try:
        return ERROR_CODES[str(v).upper()]
    except KeyError:
        raise ValueError("unknown HTTP/2 error code %r; known: %s" % (v, ", ".join(ERROR_CODES)))


class StreamGone(Exception):
    """The stream was reset by the client, or the connection is gone."""


class Registry:
    """Every open HTTP/2 connection, and counters the control API reports."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conns = {}
        self.next_id = 1
        self.stats = {"connections": 0, "streams": 0, "pings": 0, "window_waits": 0,
                      "goaways": 0, "resets_sent": 0, "resets_received": 0, "refused": 0,
                      "stalls": 0}

    def add(self, c):
        with self.lock:
            c.id = self.next_id
            self.next_id += 1
            self.conns[c.id] = c
            self.stats["connections"] += 1

    def remove(self, c):
        with self.lock:
            self.conns.pop(c.id, None)

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def snapshot(self):
        # describe() takes each connection's lock, and connections take this one to count:
        # never hold both.
        with self.lock:
            out = dict(self.stats)
            conns = list(self.conns.values())
        out["open"] = len(conns)
        out["conns"] = [c.describe() for c in conns]
        return out

    def each(self):
        with self.lock:
            return list(self.conns.values())


REGISTRY = Registry()


class H2Conn:
    def __init__(self, sock, peer, serve_stream, log, registry=REGISTRY):
        self.sock = sock
        self.peer = peer
        self.serve_stream = serve_stream  # fn(conn, stream_id, headers): serves one request
        self.log = log
        self.reg = registry
        self.id = 0
        self.cond = threading.Condition()
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.out = bytearray()
        self.dead = False
        self.open_streams = set()
        self.reset_streams = set()
        self.ended_streams = set()
        self.last_sid = 0
        self.goaway_last = None  # set once a GOAWAY went out
        self.close_at = None
        self.stall_until = 0.0
        self.pings = 0
        self.sent = 0  # DATA payload bytes
        self.started = time.time()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)

    def describe(self):
        with self.cond:
            return {"id": self.id, "peer": "%s:%s" % self.peer[:2], "streams": len(self.open_streams),
                    "last_stream_id": self.last_sid, "pings": self.pings,
                    "client_initial_window": self.h2.remote_settings.initial_window_size,
                    "data_sent": self.sent,
                    "goaway": self.goaway_last is not None,
                    "stalled": time.monotonic() < self.stall_until}

    # -- I/O thread ----------------------------------------------------------------------------
    def run(self):
        self.reg.add(self)
        self.sock.setblocking(False)
        with self.cond:
            self.h2.initiate_connection()
            self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS})
            self._pull()
        try:
            self._loop()
        finally:
            with self.cond:
                self.dead = True
                self.cond.notify_all()
            self.reg.remove(self)
            for s in (self.wake_r, self.wake_w):
                s.close()

    def _loop(self):
        poller = select.poll()
        while True:
            now = time.monotonic()
            with self.cond:
                if self.dead:
                    return
                if self.close_at is not None and now >= self.close_at:
                    return
                if self.goaway_last is not None and not self.open_streams and not self.out:
                    self.log("h2 conn %d: idle after GOAWAY, closing" % self.id)
                    return
                stalled = now < self.stall_until
                want_write = bool(self.out) and not stalled
            if stalled:
                # Neither read nor write; only notice a peer that hung up (POLLRDHUP).
                poller.register(self.sock.fileno(), select.POLLRDHUP)
                hup = poller.poll(100)
                poller.unregister(self.sock.fileno())
                self._drain_wake()
                if hup:
                    self.log("h2 conn %d: peer closed during a stall" % self.id)
                    return
                continue
            if self.sock.pending():
                r = [self.sock]
                w = [self.sock] if want_write else []
            else:
                r, w, _ = select.select([self.sock, self.wake_r],
                                        [self.sock] if want_write else [], [], 0.25)
            if self.wake_r in r:
                self._drain_wake()
            if self.sock in r and not self._read():
                return
            if w and not self._write():
                return

    def _drain_wake(self):
        try:
            while self.wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _wake(self):
        try:
            self.wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return True
            except (OSError, ssl.SSLError) as e:
                self.log("h2 conn %d: read: %s" % (self.id, e))
                return False
            if not data:
                return False
            with self.cond:
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.log("h2 conn %d: protocol error from the client: %s" % (self.id, e))
                    self._pull()
                    self._flush_now()
                    return False
                for ev in events:
                    self._event(ev)
                self._pull()
                self.cond.notify_all()

    def _write(self):
        with self.cond:
            data = bytes(self.out[:65536])
        try:
            n = self.sock.send(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True
        except (OSError, ssl.SSLError) as e:
            self.log("h2 conn %d: write: %s" % (self.id, e))
            return False
        with self.cond:
            del self.out[:n]
            self.cond.notify_all()
        return True

    def _flush_now(self):
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(1)
            self.sock.sendall(bytes(self.out))
        except (OSError, ssl.SSLError):
            pass

    def _pull(self):
        """h2's pending frames to our socket queue (cond held)."""
        data = self.h2.data_to_send()
        if data:
            self.out += data

    def _event(self, ev):
        """One h2 event (cond held)."""
        if isinstance(ev, h2.events.RequestReceived):
            sid = ev.stream_id
            if self.goaway_last is not None and sid > self.goaway_last:
                # After GOAWAY: not processed, the client may retry it elsewhere.
                self.h2.reset_stream(sid, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                self.reg.count("refused")
                return
            self.last_sid = max(self.last_sid, sid)
            self.open_streams.add(sid)
            self.reg.count("streams")
            threading.Thread(target=self._serve, args=(sid, ev.headers), daemon=True).start()
        elif isinstance(ev, h2.events.DataReceived):
            try:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            except h2.exceptions.StreamClosedError:
                pass
        elif isinstance(ev, h2.events.StreamReset):
            self.reset_streams.add(ev.stream_id)
            self.open_streams.discard(ev.stream_id)
            if ev.remote_reset:
                self.reg.count("resets_received")
        elif isinstance(ev, h2.events.PingReceived):
            self.pings += 1  # h2 queues the ACK itself
            self.reg.count("pings")
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.log("h2 conn %d: client sent GOAWAY (error %s)" % (self.id, ev.error_code))
            self.close_at = time.monotonic()

    def _serve(self, sid, headers):
        try:
            self.serve_stream(self, sid, headers)
        except Exception as e:  # noqa: BLE001
            self.log("h2 conn %d stream %d: handler error: %r" % (self.id, sid, e))
            self.reset(sid, "INTERNAL_ERROR")
        finally:
            try:
                self.end_stream(sid)
            except StreamGone:
                pass
            with self.cond:
                self.open_streams.discard(sid)
                self.cond.notify_all()
            self._wake()

    # -- stream API (request threads) ----------------------------------------------------------
    def _check(self, sid):
        if self.dead or self.close_at is not None:
            raise StreamGone("connection closed")
        if sid in self.reset_streams:
            raise StreamGone("stream reset")

    def send_headers(self, sid, status, headers, end=False):
        with self.cond:
            self._check(sid)
            try:
                self.h2.send_headers(sid, [(":status", str(status))] + list(headers),
                                     end_stream=end)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
                raise StreamGone(str(e))
            if end:
                self.ended_streams.add(sid)
            self._pull()
        self._wake()

    def send_data(self, sid, data, end=False):
        view = memoryview(data)
        waited = False
        with self.cond:
            while True:
                self._check(sid)
                if not view:
                    if end:
                        self._end_locked(sid)
                    return
                stalled = time.monotonic() < self.stall_until
                try:
                    win = self.h2.local_flow_control_window(sid)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
                    raise StreamGone(str(e))
                if win <= 0 or len(self.out) >= OUT_HIGH or stalled:
                    if win <= 0 and not waited:
                        waited = True
                        self.reg.count("window_waits")
                    self.cond.wait(0.25)
                    continue
                waited = False
                n = min(win, self.h2.max_outbound_frame_size, len(view))
                last = end and n == len(view)
                try:
                    self.h2.send_data(sid, view[:n].tobytes(), end_stream=last)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
                    raise StreamGone(str(e))
                if last:
                    self.ended_streams.add(sid)
                self.sent += n
                view = view[n:]
                self._pull()
                self._wake()
                if last:
                    return

    def _end_locked(self, sid):
        if sid in self.ended_streams or sid in self.reset_streams:
            return
        try:
            self.h2.end_stream(sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        self.ended_streams.add(sid)
        self._pull()

    def end_stream(self, sid):
        with self.cond:
            if self.dead or self.close_at is not None:
                raise StreamGone("connection closed")
            self._end_locked(sid)
        self._wake()

    def reset(self, sid, code="INTERNAL_ERROR"):
        with self.cond:
            if self.dead or sid in self.reset_streams or sid in self.ended_streams:
                return
            try:
                self.h2.reset_stream(sid, error_code=error_code(code))
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            self.reset_streams.add(sid)
            self.open_streams.discard(sid)
            self._pull()
            self.cond.notify_all()
        self.reg.count("resets_sent")
        self._wake()

    def stream_closed(self, sid, wait):
        """Waits up to `wait` s for the client to reset the stream or drop the connection."""
        end = time.monotonic() + max(0.0, wait)
        with self.cond:
            while True:
                if self.dead or sid in self.reset_streams:
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def abort(self):
        """Drop the TCP connection: no GOAWAY, no close_notify."""
        with self.cond:
            self.dead = True
            self.cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._wake()

    # -- connection faults (control API) -------------------------------------------------------
    def goaway(self, abrupt=False, code="NO_ERROR", last_stream_id=None, debug=b""):
        with self.cond:
            if self.dead:
                return False
            self._pull()  # h2's frames first: the GOAWAY must not overtake them
            f = GoAwayFrame(0)
            f.last_stream_id = self.last_sid if last_stream_id is None else int(last_stream_id)
            f.error_code = error_code(code)
            f.additional_data = debug
            self.out += f.serialize()
            self.goaway_last = f.last_stream_id
            if abrupt:
                self.close_at = time.monotonic() + 0.2  # time to flush the frame
            self.cond.notify_all()
        self.reg.count("goaways")
        self._wake()
        return True

    def stall(self, seconds):
        with self.cond:
            self.stall_until = time.monotonic() + float(seconds)
            self.cond.notify_all()
        self.reg.count("stalls")
        self._wake()


def serve(sock, peer, serve_stream, log):
    H2Conn(sock, peer, serve_stream, log).run()


def goaway_all(**kw):
    return sum(1 for c in REGISTRY.each() if c.goaway(**kw))


def stall_all(seconds):
    conns = REGISTRY.each()
    for c in conns:
        c.stall(seconds)
    return len(conns)
