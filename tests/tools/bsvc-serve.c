// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bsvc-serve: a tiny multi-port test backend that answers with its own name, so end-to-end
 * tests can tell which backend a Service connection landed on.
 *
 *   tcp:  on accept, write "NAME:PORT\n" and close
 *   udp:  answer every datagram with "NAME:PORT\n", from the address it was sent to
 *   http: read the request head, answer a HTTP/1.0 200 whose body is "NAME\n", close
 *
 * One process, one thread, one epoll loop, every socket non-blocking: a slow or silent client
 * can only ever cost its own connection, never delay anyone else.
 */
#define _GNU_SOURCE /* accept4, memmem */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 64
#define MAX_NAME 255
#define HTTP_MAX_REQ 4096
/* A client that has not finished its request head by then is dropped, so idle connections
 * cannot pile up and exhaust descriptors. */
#define HTTP_IDLE_MS 10000
/* After answering we only wait this long for the client's FIN (see conn_finish()). */
#define HTTP_LINGER_MS 2000
/* Work done per wakeup on one socket; level-triggered epoll brings us back for the rest, and
 * a flood on one port cannot starve the others. */
#define BATCH 64

enum kind { K_TCP, K_UDP, K_HTTP, K_CONN, K_SIGNAL };

static const char *const kind_name[] = {
	[K_TCP] = "tcp", [K_UDP] = "udp", [K_HTTP] = "http",
};

/* Every epoll registration points at one of these; .kind comes first so the loop can
 * dispatch on it before knowing the concrete type. */
struct listener {
	enum kind kind;
	int fd;
	uint16_t port;
	int family; /* AF_INET6 normally, AF_INET only if the kernel has no IPv6 */
};

struct conn {
	enum kind kind; /* K_CONN */
	int fd;
	bool draining;
	size_t len;
	uint64_t deadline_ms;
	struct conn *prev, *next;
	char buf[HTTP_MAX_REQ];
};

static const char *name;
static size_t name_len;
static struct listener listeners[MAX_PORTS];
static size_t n_listeners;
static int epfd = -1;

/* Open HTTP connections ordered by deadline: every deadline is "now + constant" when set and
 * a conn whose deadline moves goes to the tail, so the head is always the first to expire. */
static struct conn *conn_head, *conn_tail;
/* Conns closed while an epoll batch is being dispatched: a later event of the same batch may
 * still point at them, so the memory is only released once the batch is done. */
static struct conn *graveyard;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bsvc-serve --name NAME [--tcp PORT]... [--udp PORT]... [--http PORT]...\n"
		"\n"
		"Listens on [::] (IPv4 and IPv6) and answers on every port with its name:\n"
		"  --tcp PORT    on accept: write \"NAME:PORT\\n\" and close\n"
		"  --udp PORT    reply \"NAME:PORT\\n\" to each datagram, from its destination address\n"
		"  --http PORT   answer any request with 200 and body \"NAME\\n\"\n"
		"Each option may be repeated. Prints \"ready\" once every socket listens;\n"
		"exits 0 on SIGTERM/SIGINT, 1 on setup errors, 2 on usage errors.\n");
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("bsvc-serve: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	exit(2);
}

static int parse_port(const char *s, uint16_t *ret)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

static void add_port(enum kind kind, const char *opt, const char *arg)
{
	uint16_t port;
	size_t i;

	if (!arg)
		usage_error("%s needs a PORT argument", opt);
	if (parse_port(arg, &port) < 0)
		usage_error("%s: invalid port '%s' (want 1-65535)", opt, arg);
	/* tcp and http share the TCP port space; a duplicate UDP port would even bind fine thanks
	 * to SO_REUSEADDR and then split the traffic between two sockets, so reject it here. */
	for (i = 0; i < n_listeners; i++) {
		bool same_proto = (listeners[i].kind == K_UDP) == (kind == K_UDP);

		if (same_proto && listeners[i].port == port)
			usage_error("%s %s: port %u is already used by --%s", opt, arg, port,
				    kind_name[listeners[i].kind]);
	}
	if (n_listeners == MAX_PORTS)
		usage_error("%s %s: too many ports (max %d)", opt, arg, MAX_PORTS);
	listeners[n_listeners++] = (struct listener){ .kind = kind, .fd = -1, .port = port };
}

static void parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char opt[32];
		size_t olen;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (strncmp(a, "--", 2))
			usage_error("unexpected argument '%s'", a);

		/* Accept both "--opt VALUE" and "--opt=VALUE". */
		eq = strchr(a, '=');
		olen = eq ? (size_t)(eq - a) : strlen(a);
		if (olen >= sizeof(opt))
			usage_error("unknown option '%s'", a);
		memcpy(opt, a, olen);
		opt[olen] = '\0';
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[i + 1];

		if (!strcmp(opt, "--name")) {
			/* "--name --tcp 80" is a forgotten NAME, not a server called "--tcp". */
			if (!val || (!eq && !strncmp(val, "--", 2)))
				usage_error("--name needs a NAME argument");
			name = val;
		} else if (!strcmp(opt, "--tcp")) {
			add_port(K_TCP, opt, val);
		} else if (!strcmp(opt, "--udp")) {
			add_port(K_UDP, opt, val);
		} else if (!strcmp(opt, "--http")) {
			add_port(K_HTTP, opt, val);
		} else {
			usage_error("unknown option '%s'", a);
		}
		if (!eq)
			i++;
	}

	if (!name)
		usage_error("--name is required");
	name_len = strlen(name);
	if (name_len == 0 || name_len > MAX_NAME)
		usage_error("--name '%s': must be 1-%d characters", name, MAX_NAME);
	if (strpbrk(name, "\r\n"))
		usage_error("--name: must not contain line breaks");
	if (n_listeners == 0)
		usage_error("at least one of --tcp, --udp, --http is required");
}

static int setsockopt_int(int fd, int level, int opt, int val)
{
	return setsockopt(fd, level, opt, &val, sizeof(val)) < 0 ? -errno : 0;
}

static int epoll_add(int fd, void *ptr)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ptr };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* On failure *what names the step that failed, for the error message. */
static int listener_open(struct listener *l, const char **what)
{
	int type = l->kind == K_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fd, r;

	*what = "socket";
	l->family = AF_INET6;
	fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && errno == EAFNOSUPPORT) {
		/* Kernel booted with ipv6.disable=1: IPv4-only is the best we can still offer. */
		l->family = AF_INET;
		fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		return -errno;
	l->fd = fd;

	*what = "setsockopt";
	r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (r < 0)
		return r;
	if (l->family == AF_INET6) {
		/* Explicit, because the default follows net.ipv6.bindv6only. */
		r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
		if (r < 0)
			return r;
		/* On a dual-stack socket this also reports IPv4 destinations, as v4-mapped. */
		if (l->kind == K_UDP)
			r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
	} else if (l->kind == K_UDP) {
		r = setsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
	}
	if (r < 0)
		return r;

	*what = "bind";
	if (l->family == AF_INET6) {
		struct sockaddr_in6 sa = {
			.sin6_family = AF_INET6,
			.sin6_port = htons(l->port),
			.sin6_addr = IN6ADDR_ANY_INIT,
		};

		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	} else {
		struct sockaddr_in sa = {
			.sin_family = AF_INET,
			.sin_port = htons(l->port),
			.sin_addr.s_addr = htonl(INADDR_ANY),
		};

		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	if (r < 0)
		return -errno;

	if (type == SOCK_STREAM) {
		*what = "listen";
		if (listen(fd, SOMAXCONN) < 0)
			return -errno;
	}

	*what = "epoll_ctl";
	return epoll_add(fd, l);
}

static void conn_unlink(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		conn_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		conn_tail = c->prev;
	c->prev = c->next = NULL;
}

static void conn_append(struct conn *c, uint64_t deadline_ms)
{
	c->deadline_ms = deadline_ms;
	c->prev = conn_tail;
	c->next = NULL;
	if (conn_tail)
		conn_tail->next = c;
	else
		conn_head = c;
	conn_tail = c;
}

static void conn_close(struct conn *c)
{
	conn_unlink(c);
	close(c->fd); /* also drops it from the epoll set */
	c->fd = -1;
	c->next = graveyard;
	graveyard = c;
}

static void bury_conns(void)
{
	struct conn *c;

	while ((c = graveyard)) {
		graveyard = c->next;
		free(c);
	}
}

/* Answer, then half-close and wait for the client's FIN before close(): closing with unread
 * request bytes (a body, or a head over 4 KiB) would make the kernel send RST, and an RST can
 * reach the client before it has read our response. */
static void conn_finish(struct conn *c)
{
	char resp[256 + MAX_NAME];
	int n;

	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.0 200 OK\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "\r\n"
		     "%s\n",
		     name_len + 1, name);
	/* A few hundred bytes into a fresh socket's empty send buffer cannot come up short, so
	 * there is no write queue: if this fails the client is gone already. */
	if (send(c->fd, resp, (size_t)n, MSG_NOSIGNAL) != n || shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	c->draining = true;
	conn_unlink(c);
	conn_append(c, now_ms() + HTTP_LINGER_MS);
}

static bool request_complete(const struct conn *c)
{
	/* A bare "\n\n" is accepted too, for hand-typed requests (nc). */
	return memmem(c->buf, c->len, "\r\n\r\n", 4) || memmem(c->buf, c->len, "\n\n", 2);
}

static void conn_readable(struct conn *c)
{
	char discard[4096];
	ssize_t n;
	int i;

	if (c->fd < 0)
		return;
	for (i = 0; i < BATCH; i++) {
		if (c->draining)
			n = recv(c->fd, discard, sizeof(discard), 0);
		else
			n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 || (n == 0 && c->draining)) {
			conn_close(c);
			return;
		}
		if (c->draining)
			continue;
		if (n == 0) {
			/* The client half-closed before finishing the head: answer anyway, it
			 * might still read (e.g. "printf 'GET /' | nc"). */
			conn_finish(c);
			return;
		}
		c->len += (size_t)n;
		if (c->len == sizeof(c->buf) || request_complete(c)) {
			conn_finish(c);
			return;
		}
	}
}

/* Makes room when out of descriptors: only HTTP connections hold fds beyond the listeners, so
 * sacrificing the oldest one is enough to let accept() make progress again. */
static bool shed_oldest_conn(void)
{
	if (!conn_head)
		return false;
	conn_close(conn_head);
	return true;
}

static void tcp_accept(struct listener *l)
{
	char line[MAX_NAME + 16];
	int i, fd, n;

	n = snprintf(line, sizeof(line), "%s:%u\n", name, l->port);
	for (i = 0; i < BATCH; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) && shed_oldest_conn())
				continue;
			/* An aborted handshake concerns one client only. */
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		/* Fits the empty send buffer of a fresh connection; failure means the client
		 * already left, which is its own business. */
		(void)!send(fd, line, (size_t)n, MSG_NOSIGNAL);
		close(fd);
	}
}

static void http_accept(struct listener *l)
{
	struct conn *c;
	int i, fd;

	for (i = 0; i < BATCH; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) && shed_oldest_conn())
				continue;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->kind = K_CONN;
		c->fd = fd;
		if (epoll_add(fd, c) < 0) {
			close(fd);
			free(c);
			continue;
		}
		conn_append(c, now_ms() + HTTP_IDLE_MS);
	}
}

/* Replies go out with the datagram's destination as source address: on a host with several
 * addresses the kernel would otherwise pick one by route, and a client whose socket is
 * connected to (or that filters on) the address it used would drop or never see the reply. */
static void udp_readable(struct listener *l)
{
	static char buf[65536];
	char line[MAX_NAME + 16];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
	} rcv_ctl, snd_ctl;
	struct sockaddr_storage peer;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	int i, n;

	n = snprintf(line, sizeof(line), "%s:%u\n", name, l->port);
	for (i = 0; i < BATCH; i++) {
		struct in6_pktinfo *pi6 = NULL;
		struct in_pktinfo *pi4 = NULL;
		ssize_t r;

		iov = (struct iovec){ .iov_base = buf, .iov_len = sizeof(buf) };
		msg = (struct msghdr){
			.msg_name = &peer,
			.msg_namelen = sizeof(peer),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = rcv_ctl.buf,
			.msg_controllen = sizeof(rcv_ctl.buf),
		};
		r = recvmsg(l->fd, &msg, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN ends the batch; anything else (a queued ICMP error from an
			 * earlier reply) is about some other client. */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}

		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO)
				pi6 = (struct in6_pktinfo *)CMSG_DATA(cm);
			else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
				pi4 = (struct in_pktinfo *)CMSG_DATA(cm);
		}

		iov = (struct iovec){ .iov_base = line, .iov_len = (size_t)n };
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		memset(&snd_ctl, 0, sizeof(snd_ctl));
		if (l->family == AF_INET6 && pi6) {
			struct in6_pktinfo src = { .ipi6_addr = pi6->ipi6_addr };

			msg.msg_control = snd_ctl.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(src));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(src));
			/* ifindex 0: only the source address is pinned, routing still picks the
			 * way out (a link-local peer carries its scope in sin6_scope_id). */
			memcpy(CMSG_DATA(cm), &src, sizeof(src));
		} else if (l->family == AF_INET && pi4) {
			struct in_pktinfo src = { .ipi_spec_dst = pi4->ipi_addr };

			msg.msg_control = snd_ctl.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(src));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(src));
			memcpy(CMSG_DATA(cm), &src, sizeof(src));
		}

		r = sendmsg(l->fd, &msg, MSG_NOSIGNAL);
		if (r < 0 && msg.msg_control && (errno == EINVAL || errno == EADDRNOTAVAIL)) {
			/* The destination was not one of our unicast addresses (broadcast,
			 * multicast): nothing valid to pin, let the kernel choose. */
			msg.msg_control = NULL;
			msg.msg_controllen = 0;
			r = sendmsg(l->fd, &msg, MSG_NOSIGNAL);
		}
		/* Any other send error (full buffer, unreachable peer) just loses this reply,
		 * as UDP may. */
	}
}

static int signalfd_open(sigset_t *mask)
{
	int fd;

	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	/* Blocked so they queue on the signalfd and are handled in the loop, never in the
	 * middle of a syscall sequence. */
	if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
		return -errno;
	fd = signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void raise_nofile_limit(void)
{
	struct rlimit rl;

	/* Many concurrent test clients can exceed the 1024 soft default; best effort. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void expire_conns(void)
{
	uint64_t now = now_ms();

	while (conn_head && conn_head->deadline_ms <= now)
		conn_close(conn_head);
}

static int next_timeout(void)
{
	uint64_t now;

	if (!conn_head)
		return -1;
	now = now_ms();
	if (conn_head->deadline_ms <= now)
		return 0;
	return (int)(conn_head->deadline_ms - now);
}

int main(int argc, char **argv)
{
	struct listener sig_listener = { .kind = K_SIGNAL, .fd = -1 };
	struct epoll_event evs[64];
	sigset_t mask;
	bool running = true;
	size_t i;
	int r, n, k;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile_limit();

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		fprintf(stderr, "bsvc-serve: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	r = signalfd_open(&mask);
	if (r >= 0) {
		sig_listener.fd = r;
		r = epoll_add(sig_listener.fd, &sig_listener);
	}
	if (r < 0) {
		fprintf(stderr, "bsvc-serve: signalfd: %s\n", strerror(-r));
		return 1;
	}

	for (i = 0; i < n_listeners; i++) {
		const char *what;

		r = listener_open(&listeners[i], &what);
		if (r < 0) {
			fprintf(stderr, "bsvc-serve: %s port %u: %s: %s\n",
				kind_name[listeners[i].kind], listeners[i].port, what, strerror(-r));
			return 1;
		}
	}

	printf("ready\n");
	fflush(stdout);

	while (running) {
		n = epoll_wait(epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), next_timeout());
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "bsvc-serve: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (k = 0; k < n; k++) {
			enum kind *kind = evs[k].data.ptr;

			switch (*kind) {
			case K_TCP:
				tcp_accept((struct listener *)kind);
				break;
			case K_HTTP:
				http_accept((struct listener *)kind);
				break;
			case K_UDP:
				udp_readable((struct listener *)kind);
				break;
			case K_CONN:
				conn_readable((struct conn *)kind);
				break;
			case K_SIGNAL:
				running = false;
				break;
			}
		}
		expire_conns();
		bury_conns();
	}

	while (conn_head)
		conn_close(conn_head);
	bury_conns();
	for (i = 0; i < n_listeners; i++)
		close(listeners[i].fd);
	close(sig_listener.fd);
	close(epfd);
	return 0;
}
