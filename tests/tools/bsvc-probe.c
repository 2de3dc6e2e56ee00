// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bsvc-probe: the client side of end-to-end Service tests. It prints what a socket actually
 * observed (the backend's "NAME:PORT" line, the reply's source address, getpeername()) or the
 * errno the kernel returned, in a fixed format meant to be compared by shell scripts.
 *
 *   bsvc-probe tcp  ADDR PORT [--count N] [--peer]
 *   bsvc-probe udp  ADDR PORT [--count N] [--connected]
 *   bsvc-probe loop ADDR PORT --stop-file PATH [--max-seconds S]
 *
 * Every connect and every receive is bounded by --timeout-ms, so a black-holed Service shows
 * up as "ERR ETIMEDOUT" rather than as a hung test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Not an errno: the peer closed the connection without sending a line. Beyond the errno
 * range so it can travel through the usual negative-errno returns. */
#define E_EOF 4096

#define LINE_MAX_LEN 1024
#define MAX_DISTINCT_ERRORS 64
/* Once the line is in, how long to wait for the server's FIN (see tcp_attempt()). */
#define EOF_GRACE_MS 200

enum cmd { CMD_NONE, CMD_TCP, CMD_UDP, CMD_LOOP };

struct opts {
	enum cmd cmd;
	const char *addr;
	const char *port;
	unsigned long count;
	bool peer;
	bool connected;
	const char *stop_file;
	unsigned long max_seconds;
	unsigned long timeout_ms;
	/* Which options were given, to reject those that do not apply to the subcommand. */
	const char *seen_count, *seen_peer, *seen_connected, *seen_stop_file, *seen_max_seconds;
};

struct target {
	struct sockaddr_storage sa;
	socklen_t len;
	int family;
};

static volatile sig_atomic_t stop_requested;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bsvc-probe [--timeout-ms N] tcp ADDR PORT [--count N] [--peer]\n"
		"       bsvc-probe [--timeout-ms N] udp ADDR PORT [--count N] [--connected]\n"
		"       bsvc-probe [--timeout-ms N] loop ADDR PORT --stop-file PATH [--max-seconds S]\n"
		"       bsvc-probe --help\n"
		"\n"
		"ADDR is numeric (IPv4, IPv6, or v4-mapped IPv6 such as ::ffff:10.96.0.10).\n"
		"Options may appear anywhere after the program name.\n"
		"\n"
		"tcp   N times: connect, read one line, close. Prints per attempt the line, or\n"
		"      \"ERR ERRNAME\"; --peer appends \" peer=ADDR:PORT\" (getpeername).\n"
		"udp   N times with a fresh socket: send \"ping\", wait for the reply. Prints\n"
		"      \"REPLY from=ADDR:PORT\" or \"ERR ERRNAME\"; --connected connects the socket\n"
		"      first and appends \" peer=ADDR:PORT\".\n"
		"loop  connect + read a line in a tight loop until PATH exists or S seconds\n"
		"      (default 120) pass, or SIGINT/SIGTERM; then prints\n"
		"      \"attempts=N ok=N failed=N\" and one \"error ERRNAME count=N\" per error.\n"
		"\n"
		"--timeout-ms N   bound on each connect and each receive (default 2000)\n"
		"--count N        attempts for tcp/udp (default 1)\n"
		"\n"
		"Exit status: 0 all attempts succeeded, 1 some failed, 2 usage error.\n");
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("bsvc-probe: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	exit(2);
}

static const char *errname(int err, char *buf, size_t size)
{
	static const struct {
		int err;
		const char *name;
	} names[] = {
		{ ECONNREFUSED, "ECONNREFUSED" },
		{ ETIMEDOUT, "ETIMEDOUT" },
		{ ENETUNREACH, "ENETUNREACH" },
		{ EHOSTUNREACH, "EHOSTUNREACH" },
		{ EPERM, "EPERM" },
		{ ECONNRESET, "ECONNRESET" },
		{ EACCES, "EACCES" },
		{ EINVAL, "EINVAL" },
		{ EADDRNOTAVAIL, "EADDRNOTAVAIL" },
		{ EADDRINUSE, "EADDRINUSE" },
		{ EAFNOSUPPORT, "EAFNOSUPPORT" },
		{ ECONNABORTED, "ECONNABORTED" },
		{ ENETDOWN, "ENETDOWN" },
		{ EHOSTDOWN, "EHOSTDOWN" },
		{ EPIPE, "EPIPE" },
		{ ENOBUFS, "ENOBUFS" },
		{ ENOMEM, "ENOMEM" },
		{ EMFILE, "EMFILE" },
		{ ENFILE, "ENFILE" },
		{ EAGAIN, "EAGAIN" },
		{ EMSGSIZE, "EMSGSIZE" },
		{ EPROTO, "EPROTO" },
		{ ENOPROTOOPT, "ENOPROTOOPT" },
		{ EOPNOTSUPP, "EOPNOTSUPP" },
		{ ENOENT, "ENOENT" },
		{ E_EOF, "EOF" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].err == err)
			return names[i].name;
	snprintf(buf, size, "E%d", err);
	return buf;
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	const char *positional[3];
	int n_pos = 0, i;

	*o = (struct opts){ .count = 1, .max_seconds = 120, .timeout_ms = 2000 };

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char opt[32];
		size_t olen;
		bool takes_value;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (n_pos == 3)
				usage_error("unexpected argument '%s'", a);
			positional[n_pos++] = a;
			continue;
		}

		/* Accept both "--opt VALUE" and "--opt=VALUE". */
		eq = strchr(a, '=');
		olen = eq ? (size_t)(eq - a) : strlen(a);
		if (olen >= sizeof(opt))
			usage_error("unknown option '%s'", a);
		memcpy(opt, a, olen);
		opt[olen] = '\0';

		takes_value = !strcmp(opt, "--count") || !strcmp(opt, "--timeout-ms") ||
			      !strcmp(opt, "--stop-file") || !strcmp(opt, "--max-seconds");
		if (takes_value) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				usage_error("%s needs a value", opt);
		} else if (eq && (!strcmp(opt, "--peer") || !strcmp(opt, "--connected"))) {
			usage_error("%s takes no value", opt);
		}

		if (!strcmp(opt, "--count")) {
			if (parse_ulong(val, 1, 1000000000, &o->count) < 0)
				usage_error("--count: invalid value '%s' (want a number >= 1)", val);
			o->seen_count = "--count";
		} else if (!strcmp(opt, "--timeout-ms")) {
			if (parse_ulong(val, 1, 3600000, &o->timeout_ms) < 0)
				usage_error("--timeout-ms: invalid value '%s' (want 1-3600000)", val);
		} else if (!strcmp(opt, "--stop-file")) {
			if (!*val)
				usage_error("--stop-file: empty path");
			o->stop_file = val;
			o->seen_stop_file = "--stop-file";
		} else if (!strcmp(opt, "--max-seconds")) {
			if (parse_ulong(val, 1, 31536000, &o->max_seconds) < 0)
				usage_error("--max-seconds: invalid value '%s' (want a number >= 1)",
					    val);
			o->seen_max_seconds = "--max-seconds";
		} else if (!strcmp(opt, "--peer")) {
			o->peer = true;
			o->seen_peer = "--peer";
		} else if (!strcmp(opt, "--connected")) {
			o->connected = true;
			o->seen_connected = "--connected";
		} else {
			usage_error("unknown option '%s'", a);
		}
	}

	if (n_pos == 0)
		usage_error("missing subcommand");
	if (!strcmp(positional[0], "tcp"))
		o->cmd = CMD_TCP;
	else if (!strcmp(positional[0], "udp"))
		o->cmd = CMD_UDP;
	else if (!strcmp(positional[0], "loop"))
		o->cmd = CMD_LOOP;
	else
		usage_error("unknown subcommand '%s'", positional[0]);
	if (n_pos < 3)
		usage_error("%s: missing %s", positional[0], n_pos == 1 ? "ADDR and PORT" : "PORT");
	o->addr = positional[1];
	o->port = positional[2];

#define REJECT_IF(seen, cond)                                                               \
	do {                                                                                \
		if ((seen) && (cond))                                                       \
			usage_error("%s does not apply to '%s'", (seen), positional[0]);    \
	} while (0)
	REJECT_IF(o->seen_count, o->cmd == CMD_LOOP);
	REJECT_IF(o->seen_peer, o->cmd != CMD_TCP);
	REJECT_IF(o->seen_connected, o->cmd != CMD_UDP);
	REJECT_IF(o->seen_stop_file, o->cmd != CMD_LOOP);
	REJECT_IF(o->seen_max_seconds, o->cmd != CMD_LOOP);
#undef REJECT_IF
	if (o->cmd == CMD_LOOP && !o->stop_file)
		usage_error("loop: --stop-file is required");
}

/* Numeric only: a test must never depend on a resolver. getaddrinfo() keeps a v4-mapped
 * literal AF_INET6, which is exactly what dual-stack socket tests need. */
static void resolve(const char *addr, const char *port, int socktype, struct target *t)
{
	struct addrinfo hints = {
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
		.ai_family = AF_UNSPEC,
		.ai_socktype = socktype,
	};
	struct addrinfo *ai;
	unsigned long p;
	int r;

	if (parse_ulong(port, 1, 65535, &p) < 0)
		usage_error("invalid port '%s' (want 1-65535)", port);
	r = getaddrinfo(addr, port, &hints, &ai);
	if (r != 0)
		usage_error("invalid address '%s': %s (must be a numeric IPv4/IPv6 address)", addr,
			    gai_strerror(r));
	memcpy(&t->sa, ai->ai_addr, ai->ai_addrlen);
	t->len = ai->ai_addrlen;
	t->family = ai->ai_family;
	freeaddrinfo(ai);
}

static void format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		size_t l;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		if (sin6->sin6_scope_id) {
			l = strlen(host);
			host[l++] = '%';
			if (!if_indextoname(sin6->sin6_scope_id, host + l))
				snprintf(host + l, sizeof(host) - l, "%u", sin6->sin6_scope_id);
		}
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, size, "family%u", ss->ss_family);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Returns the revents, or -ETIMEDOUT once deadline_ms has passed. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int r;

	for (;;) {
		now = now_ms();
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(deadline_ms - now));
		if (r > 0)
			return p.revents;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_timeout(int fd, const struct target *t, unsigned long timeout_ms)
{
	socklen_t len = sizeof(int);
	int r, err = 0;

	if (connect(fd, (const struct sockaddr *)&t->sa, t->len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	r = wait_fd(fd, POLLOUT, now_ms() + timeout_ms);
	if (r < 0)
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

static void strip_eol(char *s, size_t *len)
{
	while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r'))
		s[--*len] = '\0';
}

/*
 * One connect + read-a-line. The line is complete at '\n' or at EOF; after the '\n' we still
 * wait briefly for the server's FIN so that the server closes first: TIME_WAIT then stays on
 * the server side, and the loop subcommand cannot run out of local ports even at thousands
 * of connects per second.
 */
static int tcp_attempt(const struct target *t, unsigned long timeout_ms, char *line, size_t size,
		       struct sockaddr_storage *peer)
{
	uint64_t deadline;
	size_t len = 0;
	bool have_line = false;
	char *nl;
	ssize_t n;
	int fd, r;

	fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect_timeout(fd, t, timeout_ms);
	if (r < 0)
		goto out;
	if (peer) {
		socklen_t plen = sizeof(*peer);

		if (getpeername(fd, (struct sockaddr *)peer, &plen) < 0) {
			r = -errno;
			goto out;
		}
	}

	deadline = now_ms() + timeout_ms;
	for (;;) {
		char discard[512];

		r = wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			break;
		if (have_line)
			n = recv(fd, discard, sizeof(discard), 0);
		else
			n = recv(fd, line + len, size - 1 - len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			r = -errno;
			break;
		}
		if (n == 0) {
			r = len > 0 ? 0 : -E_EOF;
			break;
		}
		if (have_line)
			continue;
		nl = memchr(line + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl)
			len = (size_t)(nl - line);
		/* An overlong line is cut, not an error: what fits is enough to compare. */
		if (nl || len == size - 1) {
			have_line = true;
			deadline = now_ms() + EOF_GRACE_MS;
		}
	}
	/* Once the line is in, neither a missing FIN nor a reset changes the outcome. */
	if (have_line)
		r = 0;
	line[len] = '\0';
	strip_eol(line, &len);
	if (r == 0 && len == 0)
		r = -E_EOF;
out:
	close(fd);
	return r;
}

/* One fresh socket per attempt, so every attempt goes through connect()/sendmsg() anew and
 * none inherits socket-level state (a cached route, a remembered translation) from the last. */
static int udp_attempt(const struct target *t, const struct opts *o, char *reply, size_t size,
		       struct sockaddr_storage *from, struct sockaddr_storage *peer)
{
	static const char ping[] = "ping";
	socklen_t flen = sizeof(*from);
	size_t len;
	ssize_t n;
	int fd, r;

	fd = socket(t->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;

	if (o->connected) {
		socklen_t plen = sizeof(*peer);

		if (connect(fd, (const struct sockaddr *)&t->sa, t->len) < 0 ||
		    getpeername(fd, (struct sockaddr *)peer, &plen) < 0 ||
		    send(fd, ping, sizeof(ping) - 1, 0) < 0) {
			r = -errno;
			goto out;
		}
	} else if (sendto(fd, ping, sizeof(ping) - 1, 0, (const struct sockaddr *)&t->sa, t->len) <
		   0) {
		r = -errno;
		goto out;
	}

	/* On a connected socket an ICMP unreachable surfaces here as ECONNREFUSED; an
	 * unconnected one never learns about it and simply times out. */
	r = wait_fd(fd, POLLIN, now_ms() + o->timeout_ms);
	if (r < 0)
		goto out;
	n = recvfrom(fd, reply, size - 1, 0, (struct sockaddr *)from, &flen);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	len = (size_t)n;
	reply[len] = '\0';
	strip_eol(reply, &len);
	r = 0;
out:
	close(fd);
	return r;
}

static void print_err(int r)
{
	char buf[32];

	printf("ERR %s\n", errname(-r, buf, sizeof(buf)));
}

static int cmd_tcp(const struct opts *o)
{
	struct target t;
	unsigned long i;
	bool all_ok = true;

	resolve(o->addr, o->port, SOCK_STREAM, &t);
	for (i = 0; i < o->count; i++) {
		struct sockaddr_storage peer = { 0 };
		char line[LINE_MAX_LEN], pbuf[128];
		int r;

		r = tcp_attempt(&t, o->timeout_ms, line, sizeof(line), o->peer ? &peer : NULL);
		if (r < 0) {
			all_ok = false;
			print_err(r);
		} else if (o->peer) {
			format_sockaddr(&peer, pbuf, sizeof(pbuf));
			printf("%s peer=%s\n", line, pbuf);
		} else {
			printf("%s\n", line);
		}
		/* Scripts may tail the output while a long --count run is in progress. */
		fflush(stdout);
	}
	return all_ok ? 0 : 1;
}

static int cmd_udp(const struct opts *o)
{
	struct target t;
	unsigned long i;
	bool all_ok = true;

	resolve(o->addr, o->port, SOCK_DGRAM, &t);
	for (i = 0; i < o->count; i++) {
		struct sockaddr_storage from = { 0 }, peer = { 0 };
		char reply[LINE_MAX_LEN], fbuf[128], pbuf[128];
		int r;

		r = udp_attempt(&t, o, reply, sizeof(reply), &from, &peer);
		if (r < 0) {
			all_ok = false;
			print_err(r);
		} else {
			format_sockaddr(&from, fbuf, sizeof(fbuf));
			if (o->connected) {
				format_sockaddr(&peer, pbuf, sizeof(pbuf));
				printf("%s from=%s peer=%s\n", reply, fbuf, pbuf);
			} else {
				printf("%s from=%s\n", reply, fbuf);
			}
		}
		fflush(stdout);
	}
	return all_ok ? 0 : 1;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int cmd_loop(const struct opts *o)
{
	struct {
		int err;
		unsigned long count;
	} errs[MAX_DISTINCT_ERRORS];
	size_t n_errs = 0, k;
	unsigned long attempts = 0, ok = 0, failed = 0;
	struct sigaction sa = { .sa_handler = on_stop_signal };
	uint64_t end, next_check = 0, now;
	struct target t;

	resolve(o->addr, o->port, SOCK_STREAM, &t);

	/* A harness that kills the loop instead of creating the stop file still gets the
	 * summary. No SA_RESTART: poll() returns early and the attempt finishes promptly. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	end = now_ms() + o->max_seconds * 1000;
	while (!stop_requested) {
		char line[LINE_MAX_LEN];
		int r;

		now = now_ms();
		if (now >= end)
			break;
		if (now >= next_check) {
			if (access(o->stop_file, F_OK) == 0)
				break;
			next_check = now + 10;
		}

		attempts++;
		r = tcp_attempt(&t, o->timeout_ms, line, sizeof(line), NULL);
		if (r == 0) {
			ok++;
			continue;
		}
		failed++;
		for (k = 0; k < n_errs && errs[k].err != -r; k++)
			;
		if (k == n_errs && n_errs < MAX_DISTINCT_ERRORS)
			errs[n_errs++] = (typeof(errs[0])){ .err = -r };
		if (k < n_errs)
			errs[k].count++;
	}

	printf("attempts=%lu ok=%lu failed=%lu\n", attempts, ok, failed);
	for (k = 0; k < n_errs; k++) {
		char buf[32];

		printf("error %s count=%lu\n", errname(errs[k].err, buf, sizeof(buf)), errs[k].count);
	}
	fflush(stdout);
	return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct opts o;

	parse_args(argc, argv, &o);
	switch (o.cmd) {
	case CMD_TCP:
		return cmd_tcp(&o);
	case CMD_UDP:
		return cmd_udp(&o);
	case CMD_LOOP:
		return cmd_loop(&o);
	case CMD_NONE:
		break;
	}
	return 2;
}
