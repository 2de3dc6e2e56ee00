// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench-server: the backend for the Service VIP benchmarks.
 *
 *   bench-server [--tcp PORT]... [--udp PORT]... [--threads N]
 *
 * TCP: every read (up to 64 bytes) is one request and gets a fixed 16-byte response; the
 * connection is closed when the client closes or resets it. UDP: every datagram is echoed
 * to its sender, from the address it was sent to.
 *
 * Everything listens on [::] with IPV6_V6ONLY off, so any local IPv4 or IPv6 address of the
 * backend namespace reaches it. Each thread runs its own epoll loop over its own sockets
 * (SO_REUSEPORT when there is more than one thread), so threads never share state.
 *
 * Prints "ready" once every socket is bound and listening; exits 0 on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS	64
#define MAX_THREADS	256
/* Matches net.core.somaxconn's default: connect floods must not overflow the queue. */
#define LISTEN_BACKLOG	4096
#define TCP_REQ_MAX	64
#define UDP_BUF_SIZE	65536
#define EPOLL_BATCH	256
/* Datagrams handled per wakeup of one UDP socket before looking at other sockets again. */
#define UDP_BATCH	64

/* bench-client checks these exact bytes, so a reply from anything else counts as failure. */
static const char tcp_response[] = "bpfsvc-bench-ok\n";
#define TCP_RESPONSE_LEN 16
_Static_assert(sizeof(tcp_response) - 1 == TCP_RESPONSE_LEN, "response must be 16 bytes");

enum ep_kind {
	EP_TCP_LISTEN = 1,
	EP_UDP,
	EP_CONN,
};

/* The epoll cookie carries the socket's role next to its fd: no per-connection allocation. */
#define EP_DATA(kind, fd)	(((uint64_t)(kind) << 32) | (uint32_t)(fd))
#define EP_KIND(data)		((enum ep_kind)((data) >> 32))
#define EP_FD(data)		((int)(uint32_t)(data))

struct config {
	uint16_t tcp_ports[MAX_PORTS];
	unsigned n_tcp;
	uint16_t udp_ports[MAX_PORTS];
	unsigned n_udp;
	unsigned threads;
};

struct worker {
	pthread_t tid;
	int epfd;
	uint8_t *udp_buf;
};

static const char *prog = "bench-server";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--tcp PORT]... [--udp PORT]... [--threads N]\n"
		"\n"
		"Benchmark backend listening on [::] (IPv4 and IPv6, any local address).\n"
		"  --tcp PORT     answer each read of up to 64 bytes with a 16-byte response\n"
		"  --udp PORT     echo each datagram back from the address it was sent to\n"
		"  --threads N    N epoll threads, one SO_REUSEPORT socket each (default 1)\n"
		"  -h, --help     show this help\n"
		"\n"
		"Prints \"ready\" once listening; exits 0 on SIGTERM/SIGINT.\n",
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

static void add_port(uint16_t *ports, unsigned *n, const char *opt, const char *arg)
{
	unsigned long v;

	if (parse_uint(arg, 1, 65535, &v) < 0)
		usage_error("invalid %s '%s': expected a port 1-65535", opt, arg);
	if (*n >= MAX_PORTS)
		usage_error("too many %s ports (at most %d)", opt, MAX_PORTS);
	ports[(*n)++] = (uint16_t)v;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "tcp",     required_argument, NULL, 't' },
		{ "udp",     required_argument, NULL, 'u' },
		{ "threads", required_argument, NULL, 'n' },
		{ "help",    no_argument,       NULL, 'h' },
		{}
	};
	unsigned long v;
	int c;

	cfg->threads = 1;
	/* Own messages instead of getopt's, so every error names the offending argument. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			add_port(cfg->tcp_ports, &cfg->n_tcp, "--tcp", optarg);
			break;
		case 'u':
			add_port(cfg->udp_ports, &cfg->n_udp, "--udp", optarg);
			break;
		case 'n':
			if (parse_uint(optarg, 1, MAX_THREADS, &v) < 0)
				usage_error("invalid --threads '%s': expected 1-%d", optarg, MAX_THREADS);
			cfg->threads = (unsigned)v;
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
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (cfg->n_tcp + cfg->n_udp == 0)
		usage_error("nothing to serve: give at least one --tcp or --udp port");
}

/*
 * Connection floods and many parallel clients need more than the usual soft limit of 1024
 * fds; the hard limit is ours to take.
 */
static void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int setsockopt_int(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? -errno : 0;
}

static int open_listener(int type, uint16_t port, bool reuseport, int *ret_fd)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr *sa = (struct sockaddr *)&sin6;
	socklen_t salen = sizeof(sin6);
	int fd, r;

	fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && errno == EAFNOSUPPORT) {
		/* Kernel booted with ipv6.disable=1: IPv4 is still worth serving. */
		fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		sa = (struct sockaddr *)&sin;
		salen = sizeof(sin);
	}
	if (fd < 0)
		return -errno;

	if (sa->sa_family == AF_INET6) {
		/* Dual stack regardless of net.ipv6.bindv6only. */
		r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
		if (r < 0)
			goto fail;
	}
	r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (r < 0)
		goto fail;
	if (reuseport) {
		r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
		if (r < 0)
			goto fail;
	}
	if (type == SOCK_DGRAM) {
		/*
		 * The backend has many addresses and a reply must leave from the one the request
		 * was sent to, or NAT (conntrack or bpfsvc's recvmsg hook) cannot map it back to
		 * the VIP. IPv4 datagrams on a dual-stack socket report IP_PKTINFO, IPv6 ones
		 * IPV6_PKTINFO; ask for both.
		 */
		r = setsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
		if (r < 0)
			goto fail;
		if (sa->sa_family == AF_INET6) {
			r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
			if (r < 0)
				goto fail;
		}
	}
	if (bind(fd, sa, salen) < 0) {
		r = -errno;
		goto fail;
	}
	if (type == SOCK_STREAM && listen(fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

static int epoll_add(int epfd, int fd, enum ep_kind kind, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = EP_DATA(kind, fd) };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Out of fds or memory: say so once rather than once per wakeup of a spinning listener. */
static void warn_once(int *flag, const char *what, int err)
{
	if (!__atomic_exchange_n(flag, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "%s: %s: %s (further errors not shown)\n", prog, what, strerror(err));
}

static void tcp_accept(struct worker *w, int lfd)
{
	static int warned_accept, warned_epoll;
	int fd, r;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* Reset before we got to it: just the next one. */
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				warn_once(&warned_accept, "accept", errno);
			return;
		}
		/* The 16-byte response must go out now, not wait for the peer's ACK. */
		(void)setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
		r = epoll_add(w->epfd, fd, EP_CONN, EPOLLIN | EPOLLRDHUP);
		if (r < 0) {
			warn_once(&warned_epoll, "epoll_ctl", -r);
			close(fd);
		}
	}
}

/*
 * One read per wakeup keeps connections fair under level-triggered epoll; anything left
 * in the socket wakes us again.
 */
static void tcp_conn_event(int fd, uint32_t events)
{
	char buf[TCP_REQ_MAX];
	ssize_t n;

	n = read(fd, buf, sizeof(buf));
	if (n > 0) {
		/*
		 * A well-behaved client reads each response before the next request, so the
		 * socket buffer always has room. If it is full the client is pipelining far
		 * ahead and not reading; with no per-connection state to queue responses in,
		 * dropping it is the only way not to block everyone else on it.
		 */
		if (send(fd, tcp_response, TCP_RESPONSE_LEN, MSG_DONTWAIT | MSG_NOSIGNAL) ==
		    TCP_RESPONSE_LEN)
			return;
	} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) &&
		   !(events & (EPOLLERR | EPOLLHUP))) {
		return;
	}
	/* EOF, RST or error. close() also drops the fd from the epoll set. */
	close(fd);
}

static void udp_echo(struct worker *w, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo)) +
			 CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} rcv_ctl, snd_ctl;

	for (unsigned i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage peer;
		struct iovec iov = { .iov_base = w->udp_buf, .iov_len = UDP_BUF_SIZE };
		struct msghdr msg = {
			.msg_name = &peer,
			.msg_namelen = sizeof(peer),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = rcv_ctl.buf,
			.msg_controllen = sizeof(rcv_ctl.buf),
		};
		struct in_pktinfo *pi4 = NULL;
		struct in6_pktinfo *pi6 = NULL;
		struct cmsghdr *cm;
		ssize_t n;

		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN, or a transient error: either way nothing more to do now. */
			return;
		}

		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
				pi4 = (struct in_pktinfo *)CMSG_DATA(cm);
			else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO)
				pi6 = (struct in6_pktinfo *)CMSG_DATA(cm);
		}

		iov.iov_len = (size_t)n;
		msg.msg_flags = 0;
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		memset(&snd_ctl, 0, sizeof(snd_ctl));
		if (pi4) {
			struct in_pktinfo spi = { .ipi_spec_dst = pi4->ipi_addr };

			/*
			 * ipi_addr is the header's destination; ipi_spec_dst is what the kernel
			 * uses as the source on send. No ifindex: let routing pick the way back.
			 */
			msg.msg_control = snd_ctl.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(spi));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(spi));
			memcpy(CMSG_DATA(cm), &spi, sizeof(spi));
		} else if (pi6) {
			struct in6_pktinfo spi = { .ipi6_addr = pi6->ipi6_addr };

			/* Link-local sources only mean something together with their interface. */
			if (IN6_IS_ADDR_LINKLOCAL(&pi6->ipi6_addr))
				spi.ipi6_ifindex = pi6->ipi6_ifindex;
			msg.msg_control = snd_ctl.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(spi));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(spi));
			memcpy(CMSG_DATA(cm), &spi, sizeof(spi));
		}
		/* UDP is best effort: a full send buffer drops the reply, the client times out. */
		(void)sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event events[EPOLL_BATCH];
	int n;

	for (;;) {
		n = epoll_wait(w->epfd, events, EPOLL_BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: epoll_wait: %s\n", prog, strerror(errno));
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			uint64_t data = events[i].data.u64;

			switch (EP_KIND(data)) {
			case EP_TCP_LISTEN:
				tcp_accept(w, EP_FD(data));
				break;
			case EP_UDP:
				udp_echo(w, EP_FD(data));
				break;
			case EP_CONN:
				tcp_conn_event(EP_FD(data), events[i].events);
				break;
			}
		}
	}
	return NULL;
}

static int worker_setup(struct worker *w, const struct config *cfg)
{
	bool reuseport = cfg->threads > 1;
	int fd, r;

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	w->udp_buf = malloc(UDP_BUF_SIZE);
	if (!w->udp_buf)
		return -ENOMEM;

	for (unsigned i = 0; i < cfg->n_tcp; i++) {
		r = open_listener(SOCK_STREAM, cfg->tcp_ports[i], reuseport, &fd);
		if (r < 0) {
			fprintf(stderr, "%s: listen on tcp port %u: %s\n", prog, cfg->tcp_ports[i],
				strerror(-r));
			return r;
		}
		r = epoll_add(w->epfd, fd, EP_TCP_LISTEN, EPOLLIN);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < cfg->n_udp; i++) {
		r = open_listener(SOCK_DGRAM, cfg->udp_ports[i], reuseport, &fd);
		if (r < 0) {
			fprintf(stderr, "%s: bind udp port %u: %s\n", prog, cfg->udp_ports[i],
				strerror(-r));
			return r;
		}
		r = epoll_add(w->epfd, fd, EP_UDP, EPOLLIN);
		if (r < 0)
			return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg = {};
	struct worker *workers;
	sigset_t sigs;
	int r, sig;

	parse_args(argc, argv, &cfg);
	raise_nofile_limit();
	/* Belt and braces: every send already uses MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);

	/*
	 * Block the exit signals before any thread exists so all of them inherit the mask and
	 * the main thread alone collects the signal with sigwait().
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	r = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (r) {
		fprintf(stderr, "%s: pthread_sigmask: %s\n", prog, strerror(r));
		return 1;
	}

	workers = calloc(cfg.threads, sizeof(*workers));
	if (!workers) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	/* Bind everything first: "ready" must mean every port of every thread is open. */
	for (unsigned i = 0; i < cfg.threads; i++) {
		r = worker_setup(&workers[i], &cfg);
		if (r < 0) {
			fprintf(stderr, "%s: setup failed: %s\n", prog, strerror(-r));
			return 1;
		}
	}
	for (unsigned i = 0; i < cfg.threads; i++) {
		r = pthread_create(&workers[i].tid, NULL, worker_run, &workers[i]);
		if (r) {
			fprintf(stderr, "%s: pthread_create: %s\n", prog, strerror(r));
			return 1;
		}
	}

	printf("ready\n");
	fflush(stdout);

	do {
		r = sigwait(&sigs, &sig);
	} while (r == EINTR);
	/* Returning exits the process; the workers hold nothing that needs flushing. */
	return 0;
}
