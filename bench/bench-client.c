// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench-client: connect latency, request rate and UDP round-trip latency against
 * bench-server, used to compare Service VIPs (iptables DNAT, nftables DNAT, bpfsvc's
 * connect()-time rewrite) with the pod IP itself.
 *
 *   bench-client connect --count N [--warmup W] [--timeout MS] TARGET...
 *   bench-client rps --seconds S [--timeout MS] TARGET
 *   bench-client udp --count N [--warmup W] [--new-socket|--reuse-socket] [--timeout MS] TARGET...
 *
 * TARGET is numeric: 10.0.0.1:80 or [fd00::1]:80.
 *
 * Fairness: several targets are measured interleaved, one sample each in turn, so drift
 * (frequency scaling, other load, cache state) hits all of them alike; the target that
 * opens a round rotates, so no target always follows the same other one.
 *
 * Output, one line per target, key=value:
 *   target=ADDR:PORT n= fail= p50_us= p90_us= p99_us= mean_us= min_us= max_us=
 *   target=ADDR:PORT seconds= requests= rps= fail=                       (rps)
 * Exit status: 0, 1 if any target failed more than 1% of its attempts, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define MAX_TARGETS	64
#define MAX_COUNT	100000000UL
#define MAX_TIMEOUT_MS	600000UL
/* Reported per target; after that only the counters say how many more there were. */
#define MAX_ERRORS_SHOWN 3
#define MSG_LEN		16

/* What bench-server answers every TCP request with. */
static const char tcp_response[] = "bpfsvc-bench-ok\n";
static const char tcp_request[] = "bpfsvc-bench-rq\n";
_Static_assert(sizeof(tcp_response) - 1 == MSG_LEN, "response must be 16 bytes");
_Static_assert(sizeof(tcp_request) - 1 == MSG_LEN, "request must be 16 bytes");

enum mode {
	MODE_CONNECT,
	MODE_RPS,
	MODE_UDP,
};

/* Which options each mode takes, as a bitmask over enum opt_bit. */
enum opt_bit {
	OPT_COUNT	= 1 << 0,
	OPT_WARMUP	= 1 << 1,
	OPT_SECONDS	= 1 << 2,
	OPT_SOCKET	= 1 << 3,
	OPT_TIMEOUT	= 1 << 4,
};

struct target {
	char name[INET6_ADDRSTRLEN + IF_NAMESIZE + 16];
	struct sockaddr_storage sa;
	socklen_t salen;
	int family;
	int udp_fd;			/* --reuse-socket only */
	uint64_t *samples;		/* nanoseconds */
	size_t n;
	uint64_t fail;
	unsigned errors_shown;
};

struct config {
	enum mode mode;
	const char *mode_name;
	unsigned long count;
	unsigned long warmup;
	double seconds;
	unsigned long timeout_ms;
	bool new_socket;
	struct target targets[MAX_TARGETS];
	unsigned n_targets;
};

static const char *prog = "bench-client";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage:\n"
		"  %1$s connect --count N [--warmup W] [--timeout MS] TARGET...\n"
		"  %1$s rps --seconds S [--timeout MS] TARGET\n"
		"  %1$s udp --count N [--warmup W] [--new-socket|--reuse-socket] [--timeout MS] TARGET...\n"
		"\n"
		"TARGET is a numeric ADDR:PORT, IPv6 as [ADDR]:PORT.\n"
		"\n"
		"connect  N blocking connect()s per target, round-robin over the targets, each closed\n"
		"         with RST; reports connect() latency. W warmup rounds (default 50) are not\n"
		"         recorded. --timeout defaults to 3000 ms, long enough to record a SYN\n"
		"         retransmit as a ~1 s sample instead of a failure.\n"
		"rps      S seconds of connect, 16-byte request, 16-byte response, RST close, one at\n"
		"         a time; reports completed requests per second. --timeout defaults to 1000 ms\n"
		"         for connect and for the response.\n"
		"udp      N 16-byte datagrams per target, round-robin, each awaiting its echo; reports\n"
		"         send-to-reply latency. --new-socket (default) uses a fresh unconnected socket\n"
		"         per request like a DNS stub resolver, --reuse-socket one per target.\n"
		"         --timeout (default 1000 ms) bounds the wait for each reply.\n"
		"\n"
		"Prints one key=value line per target:\n"
		"  target= n= fail= p50_us= p90_us= p99_us= mean_us= min_us= max_us=\n"
		"  target= seconds= requests= rps= fail=          (rps)\n"
		"Exits 1 if any target failed more than 1%% of its attempts, 2 on usage errors.\n",
		prog);
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	exit(2);
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	/* strtoul() would silently accept "-1" as ULONG_MAX and " 5" with a leading blank. */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int parse_target(const char *s, struct target *t)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *port_s, *end;
	unsigned long port;
	bool bracketed = s[0] == '[';
	size_t len;

	if (bracketed) {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		len = (size_t)(end - s - 1);
		port_s = end + 2;
		s++;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return -EINVAL;
		len = (size_t)(end - s);
		port_s = end + 1;
	}
	if (len == 0 || len >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	if (parse_uint(port_s, 1, 65535, &port) < 0)
		return -EINVAL;

	memset(&t->sa, 0, sizeof(t->sa));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&t->sa)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->sa;

		/* Bare IPv4 only: "[1.2.3.4]:80" is a mistake, not an alternative spelling. */
		if (bracketed)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		t->salen = sizeof(*sin);
		snprintf(t->name, sizeof(t->name), "%s:%lu", host, port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->sa;
		char *scope = strchr(host, '%');
		char buf[INET6_ADDRSTRLEN];

		/* An IPv6 address must be bracketed, or its last group would be the port. */
		if (!bracketed)
			return -EINVAL;
		if (scope) {
			unsigned long idx;

			*scope++ = '\0';
			/* A link-local scope, by interface name or index. */
			if (parse_uint(scope, 1, UINT32_MAX, &idx) == 0)
				sin6->sin6_scope_id = (uint32_t)idx;
			else if (!(sin6->sin6_scope_id = if_nametoindex(scope)))
				return -EINVAL;
		}
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		t->salen = sizeof(*sin6);
		/* Canonical form, so output matches however the address was spelled. */
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		if (sin6->sin6_scope_id)
			snprintf(t->name, sizeof(t->name), "[%s%%%u]:%lu", buf,
				 sin6->sin6_scope_id, port);
		else
			snprintf(t->name, sizeof(t->name), "[%s]:%lu", buf, port);
	}
	t->family = t->sa.ss_family;
	t->udp_fd = -1;
	return 0;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "count",        required_argument, NULL, 'c' },
		{ "warmup",       required_argument, NULL, 'w' },
		{ "seconds",      required_argument, NULL, 's' },
		{ "new-socket",   no_argument,       NULL, 'N' },
		{ "reuse-socket", no_argument,       NULL, 'R' },
		{ "timeout",      required_argument, NULL, 'T' },
		{ "help",         no_argument,       NULL, 'h' },
		{}
	};
	unsigned allowed, seen = 0;
	int c, idx;

	if (argc < 2)
		usage_error("missing mode: connect, rps or udp");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		exit(0);
	}
	cfg->mode_name = argv[1];
	if (!strcmp(argv[1], "connect")) {
		cfg->mode = MODE_CONNECT;
		allowed = OPT_COUNT | OPT_WARMUP | OPT_TIMEOUT;
		cfg->timeout_ms = 3000;
	} else if (!strcmp(argv[1], "rps")) {
		cfg->mode = MODE_RPS;
		allowed = OPT_SECONDS | OPT_TIMEOUT;
		cfg->timeout_ms = 1000;
	} else if (!strcmp(argv[1], "udp")) {
		cfg->mode = MODE_UDP;
		allowed = OPT_COUNT | OPT_WARMUP | OPT_SOCKET | OPT_TIMEOUT;
		cfg->timeout_ms = 1000;
	} else {
		usage_error("unknown mode '%s': expected connect, rps or udp", argv[1]);
	}
	cfg->warmup = 50;
	cfg->new_socket = true;

	/* Parse what follows the mode: getopt skips element 0, which is then the mode. */
	argc--;
	argv++;
	opterr = 0;
	while (idx = -1, (c = getopt_long(argc, argv, ":h", opts, &idx)) != -1) {
		/* argv[optind - 1] would be the option's argument when given separately. */
		const char *opt = idx >= 0 ? opts[idx].name : argv[optind - 1];
		unsigned bit = 0;
		char *end;

		switch (c) {
		case 'c':
			bit = OPT_COUNT;
			if (parse_uint(optarg, 1, MAX_COUNT, &cfg->count) < 0)
				usage_error("invalid --count '%s': expected 1-%lu", optarg, MAX_COUNT);
			break;
		case 'w':
			bit = OPT_WARMUP;
			if (parse_uint(optarg, 0, MAX_COUNT, &cfg->warmup) < 0)
				usage_error("invalid --warmup '%s': expected 0-%lu", optarg, MAX_COUNT);
			break;
		case 's':
			bit = OPT_SECONDS;
			errno = 0;
			cfg->seconds = strtod(optarg, &end);
			/* The !(x > 0) form also rejects NaN. */
			if (errno || end == optarg || *end || !(cfg->seconds > 0) ||
			    cfg->seconds > 86400)
				usage_error("invalid --seconds '%s': expected a number > 0 and <= 86400",
					    optarg);
			break;
		case 'N':
		case 'R':
			bit = OPT_SOCKET;
			cfg->new_socket = c == 'N';
			break;
		case 'T':
			bit = OPT_TIMEOUT;
			if (parse_uint(optarg, 1, MAX_TIMEOUT_MS, &cfg->timeout_ms) < 0)
				usage_error("invalid --timeout '%s': expected 1-%lu milliseconds",
					    optarg, MAX_TIMEOUT_MS);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			usage_error("option '%s' requires an argument", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unrecognized option '-%c'", optopt);
			usage_error("unrecognized option '%s'", argv[optind - 1]);
		}
		if (!(allowed & bit))
			usage_error("option '--%s' does not apply to mode '%s'", opt, cfg->mode_name);
		seen |= bit;
	}

	if ((allowed & OPT_COUNT) && !(seen & OPT_COUNT))
		usage_error("mode '%s' needs --count N", cfg->mode_name);
	if ((allowed & OPT_SECONDS) && !(seen & OPT_SECONDS))
		usage_error("mode '%s' needs --seconds S", cfg->mode_name);
	if (optind >= argc)
		usage_error("mode '%s' needs a TARGET (ADDR:PORT or [ADDR]:PORT)", cfg->mode_name);
	if (cfg->mode == MODE_RPS && argc - optind > 1)
		usage_error("mode 'rps' takes exactly one TARGET, got extra '%s'", argv[optind + 1]);
	if (argc - optind > MAX_TARGETS)
		usage_error("too many targets (at most %d)", MAX_TARGETS);
	for (int i = optind; i < argc; i++) {
		if (parse_target(argv[i], &cfg->targets[cfg->n_targets]) < 0)
			usage_error("invalid target '%s': expected numeric ADDR:PORT or [ADDR]:PORT",
				    argv[i]);
		cfg->n_targets++;
	}
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int setsockopt_int(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? -errno : 0;
}

static int set_timeout(int fd, int name, uint64_t ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000 * 1000),
	};

	return setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)) < 0 ? -errno : 0;
}

/*
 * Close with RST (SO_LINGER {1, 0}): no TIME_WAIT on either side, so tens of thousands of
 * back-to-back connections neither run out of ephemeral ports (EADDRNOTAVAIL) nor leave
 * conntrack entries lingering in TIME_WAIT for the NAT variants.
 */
static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void report_error(struct target *t, const char *what, int err)
{
	if (t->errors_shown >= MAX_ERRORS_SHOWN)
		return;
	t->errors_shown++;
	fprintf(stderr, "%s: %s %s: %s%s\n", prog, what, t->name, strerror(err),
		t->errors_shown == MAX_ERRORS_SHOWN ? " (further errors for this target not shown)" :
		"");
}

/* One connect(), timed; returns 0 or -errno. */
static int connect_once(struct target *t, uint64_t timeout_ms, uint64_t *ret_ns)
{
	uint64_t t0, t1;
	int fd, r;

	fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A blocking connect() honours SO_SNDTIMEO; set outside the timed region. */
	r = set_timeout(fd, SO_SNDTIMEO, timeout_ms);
	if (r < 0)
		goto out;

	t0 = now_ns();
	r = connect(fd, (struct sockaddr *)&t->sa, t->salen);
	t1 = now_ns();
	if (r < 0) {
		/* A timed-out blocking connect() reports EINPROGRESS. */
		r = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		goto out;
	}
	*ret_ns = t1 - t0;
out:
	close_rst(fd);
	return r;
}

/* recv() exactly len bytes; -ETIMEDOUT on SO_RCVTIMEO, -ECONNRESET on early EOF. */
static int recv_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = recv(fd, buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

/* One connect, request, response, RST close; returns 0 or -errno. */
static int request_once(struct target *t, uint64_t timeout_ms)
{
	char buf[MSG_LEN];
	int fd, r;

	fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = set_timeout(fd, SO_SNDTIMEO, timeout_ms);
	if (r == 0)
		r = set_timeout(fd, SO_RCVTIMEO, timeout_ms);
	/* The request is one small segment: Nagle has nothing to coalesce, only delay. */
	if (r == 0)
		r = setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (r < 0)
		goto out;

	if (connect(fd, (struct sockaddr *)&t->sa, t->salen) < 0) {
		r = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		goto out;
	}
	if (send(fd, tcp_request, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN) {
		r = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		goto out;
	}
	r = recv_all(fd, buf, MSG_LEN);
	if (r == 0 && memcmp(buf, tcp_response, MSG_LEN) != 0)
		r = -EBADMSG;
out:
	close_rst(fd);
	return r;
}

static bool same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port &&
	       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
}

static void format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	}
}

/*
 * One datagram and its echo, timed from just before sendto() to just after the matching
 * recvfrom(); returns 0 or -errno. The payload carries a sequence number so that, on a
 * reused socket, a late echo of an earlier timed-out request is not taken for this one.
 */
static int udp_once(struct target *t, int fd, uint64_t timeout_ms, uint64_t seq,
		    uint64_t *ret_ns)
{
	char req[MSG_LEN], rsp[MSG_LEN + 1];
	struct sockaddr_storage from;
	socklen_t fromlen;
	uint64_t t0, t1, deadline;
	bool own = fd < 0, shortened = false;
	ssize_t n;
	int r = 0;

	if (own) {
		/* Fresh and unconnected, like a DNS stub resolver: sendto() autobinds a port. */
		fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		r = set_timeout(fd, SO_RCVTIMEO, timeout_ms);
		if (r < 0)
			goto out;
	}
	memcpy(req, "bsvcudp:", 8);
	memcpy(req + 8, &seq, 8);

	t0 = now_ns();
	deadline = t0 + timeout_ms * 1000000ULL;
	if (sendto(fd, req, MSG_LEN, 0, (struct sockaddr *)&t->sa, t->salen) != MSG_LEN) {
		r = -errno;
		goto out;
	}
	for (;;) {
		fromlen = sizeof(from);
		n = recvfrom(fd, rsp, sizeof(rsp), 0, (struct sockaddr *)&from, &fromlen);
		t1 = now_ns();
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
			break;
		}
		if (n == MSG_LEN && !memcmp(rsp, req, MSG_LEN)) {
			/*
			 * Our echo, but an unconnected socket takes it from anyone: a reply from
			 * the backend's own address means nothing translated it back to the VIP,
			 * which a real resolver would drop.
			 */
			if (!same_endpoint(&from, &t->sa)) {
				char got[INET6_ADDRSTRLEN + 16];

				/* Reported here, where the address is known; the caller skips it. */
				if (t->errors_shown < MAX_ERRORS_SHOWN) {
					t->errors_shown++;
					format_sockaddr(&from, got, sizeof(got));
					fprintf(stderr, "%s: udp %s: reply came from %s, not translated "
						"back to the target%s\n", prog, t->name, got,
						t->errors_shown == MAX_ERRORS_SHOWN ?
						" (further errors for this target not shown)" : "");
				}
				r = -EPROTO;
				break;
			}
			*ret_ns = t1 - t0;
			break;
		}
		/* A stale echo: keep waiting, but only for what is left of this request's time. */
		if (t1 >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		r = set_timeout(fd, SO_RCVTIMEO, (deadline - t1 + 999999) / 1000000);
		if (r < 0)
			break;
		shortened = true;
	}
	/* A reused socket must start its next request with the full timeout again. */
	if (!own && shortened)
		(void)set_timeout(fd, SO_RCVTIMEO, timeout_ms);
out:
	if (own)
		close(fd);
	return r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sample at index floor(p * (n - 1)), in integer arithmetic so 0.99 * 100 cannot round down. */
static double quantile_us(const uint64_t *sorted, size_t n, unsigned percent)
{
	return (double)sorted[(n - 1) * percent / 100] / 1000.0;
}

static void print_latency(struct target *t)
{
	uint64_t sum = 0;

	if (t->n == 0) {
		/* "nan" rather than 0: a missing measurement must not read as a fast one. */
		printf("target=%s n=0 fail=%" PRIu64 " p50_us=nan p90_us=nan p99_us=nan "
		       "mean_us=nan min_us=nan max_us=nan\n", t->name, t->fail);
		return;
	}
	qsort(t->samples, t->n, sizeof(*t->samples), cmp_u64);
	for (size_t i = 0; i < t->n; i++)
		sum += t->samples[i];
	printf("target=%s n=%zu fail=%" PRIu64 " p50_us=%.1f p90_us=%.1f p99_us=%.1f "
	       "mean_us=%.1f min_us=%.1f max_us=%.1f\n",
	       t->name, t->n, t->fail,
	       quantile_us(t->samples, t->n, 50),
	       quantile_us(t->samples, t->n, 90),
	       quantile_us(t->samples, t->n, 99),
	       (double)sum / (double)t->n / 1000.0,
	       (double)t->samples[0] / 1000.0,
	       (double)t->samples[t->n - 1] / 1000.0);
}

/* More than 1% of the attempts failed. */
static bool too_many_failures(uint64_t fail, uint64_t attempts)
{
	return fail * 100 > attempts;
}

static int alloc_samples(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->n_targets; i++) {
		cfg->targets[i].samples = calloc(cfg->count, sizeof(uint64_t));
		if (!cfg->targets[i].samples)
			return -ENOMEM;
	}
	return 0;
}

static void free_targets(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->n_targets; i++) {
		free(cfg->targets[i].samples);
		if (cfg->targets[i].udp_fd >= 0)
			close(cfg->targets[i].udp_fd);
	}
}

/*
 * Shared driver of the connect and udp modes: warmup rounds, then count rounds, each round
 * taking one sample from every target. Round r starts at target r % n_targets.
 */
static int run_latency(struct config *cfg)
{
	unsigned nt = cfg->n_targets;
	uint64_t rounds = cfg->warmup + cfg->count, seq = 0;
	bool failed = false;
	int r;

	r = alloc_samples(cfg);
	if (r < 0) {
		fprintf(stderr, "%s: cannot allocate %lu samples per target: %s\n", prog,
			cfg->count, strerror(-r));
		return r;
	}
	if (cfg->mode == MODE_UDP && !cfg->new_socket) {
		for (unsigned i = 0; i < nt; i++) {
			struct target *t = &cfg->targets[i];

			t->udp_fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (t->udp_fd < 0 || set_timeout(t->udp_fd, SO_RCVTIMEO, cfg->timeout_ms) < 0) {
				r = -errno;
				fprintf(stderr, "%s: udp socket for %s: %s\n", prog, t->name,
					strerror(-r));
				return r;
			}
		}
	}

	for (uint64_t round = 0; round < rounds; round++) {
		bool warm = round < cfg->warmup;

		for (unsigned j = 0; j < nt; j++) {
			struct target *t = &cfg->targets[(round + j) % nt];
			uint64_t ns = 0;

			if (cfg->mode == MODE_CONNECT)
				r = connect_once(t, cfg->timeout_ms, &ns);
			else
				r = udp_once(t, t->udp_fd, cfg->timeout_ms, seq++, &ns);
			if (warm)
				continue;
			if (r < 0) {
				t->fail++;
				if (r != -EPROTO)
					report_error(t, cfg->mode_name, -r);
			} else {
				t->samples[t->n++] = ns;
			}
		}
	}

	for (unsigned i = 0; i < nt; i++) {
		print_latency(&cfg->targets[i]);
		failed |= too_many_failures(cfg->targets[i].fail, cfg->count);
	}
	return failed ? 1 : 0;
}

static int run_rps(struct config *cfg)
{
	struct target *t = &cfg->targets[0];
	uint64_t start, end, deadline, requests = 0;
	double elapsed;
	int r;

	start = now_ns();
	deadline = start + (uint64_t)(cfg->seconds * 1e9);
	do {
		r = request_once(t, cfg->timeout_ms);
		if (r < 0) {
			t->fail++;
			report_error(t, "rps", -r);
		} else {
			requests++;
		}
		end = now_ns();
	} while (end < deadline);

	elapsed = (double)(end - start) / 1e9;
	printf("target=%s seconds=%.3f requests=%" PRIu64 " rps=%.1f fail=%" PRIu64 "\n",
	       t->name, elapsed, requests, (double)requests / elapsed, t->fail);
	return too_many_failures(t->fail, requests + t->fail) ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	int r;

	parse_args(argc, argv, &cfg);
	/* Belt and braces: every send already uses MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);

	if (cfg.mode == MODE_RPS)
		r = run_rps(&cfg);
	else
		r = run_latency(&cfg);
	fflush(stdout);
	free_targets(&cfg);
	return r < 0 ? 1 : r;
}
