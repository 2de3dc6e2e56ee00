// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bpfsvc: one binary, subcommands. Only this level prints errors for the user. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "list.h"
#include "log.h"
#include "sock_lb.h"

#ifndef BPFSVC_VERSION
#define BPFSVC_VERSION "unknown"
#endif

#define EXIT_USAGE 2

/* The agent's defaults, written once: the usage text spells them from here. */
#define DEF_REQUEST_TIMEOUT_S 60 /* a 500-object page from a loaded API server */
#define DEF_H2_READ_IDLE_S 30	 /* client-go's HTTP/2 ReadIdleTimeout */
#define DEF_H2_PING_TIMEOUT_S 15 /* client-go's HTTP/2 PingTimeout */
#define DEF_BACKOFF_MAX_S 30	 /* client-go's reflector caps its backoff at 30 s */
#define STR_(x) #x
#define STR(x) STR_(x)

static const char main_usage[] =
	"Usage: bpfsvc <command> [options]\n"
	"\n"
	"eBPF kube-proxy replacement: Service VIPs balanced at connect() time.\n"
	"\n"
	"Commands:\n"
	"  agent     program the datapath from Kubernetes objects and keep it in sync\n"
	"  list      show the programmed services and their backends\n"
	"  cleanup   detach the programs and remove the pinned maps\n"
	"  version   print the version\n"
	"\n"
	"Run 'bpfsvc <command> --help' for a command's options.\n";

static const char agent_usage[] =
	"Usage: bpfsvc agent [--kubeconfig PATH [--context NAME] | --from-file FILE] [options]\n"
	"\n"
	"Objects come from the API server (list+watch of Services and EndpointSlices) or a file.\n"
	"\n"
	"  --kubeconfig PATH     kubeconfig (default $KUBECONFIG; without either, in-cluster:\n"
	"                        KUBERNETES_SERVICE_HOST/PORT and the service account token)\n"
	"  --context NAME        kubeconfig context (default: current-context)\n"
	"  --api-server URL      in-cluster: reach the API server here, not through the\n"
	"                        kubernetes Service VIP (which only bpfsvc itself translates)\n"
	"  --from-file FILE      Kubernetes List of Services and EndpointSlices (JSON or YAML,\n"
	"                        as 'kubectl get services,endpointslices -A -o json' prints);\n"
	"                        re-read on SIGHUP and when the file changes\n"
	"  --request-timeout S   limit for one list request (default " STR(DEF_REQUEST_TIMEOUT_S) ")\n"
	"  --watch-idle-timeout S  a watch silent this long is reconnected (default: its\n"
	"                        timeoutSeconds + 30, so a quiet watch needs no bookmarks)\n"
	"  --api-http-version V  2 (default: HTTP/2 when the server offers it, one connection\n"
	"                        for both watches and the lists) or 1.1\n"
	"  --http2-read-idle-timeout S  an HTTP/2 connection silent this long gets a probe\n"
	"                        (default " STR(DEF_H2_READ_IDLE_S) "; 0: no health check)\n"
	"  --http2-ping-timeout S  ...and is dropped if still silent S later (default "
	STR(DEF_H2_PING_TIMEOUT_S) ")\n"
	"  --api-backoff-max S   API retries back off from 0.8 s doubling up to S (default "
	STR(DEF_BACKOFF_MAX_S) ")\n"
	"  --node-name NAME      this node, for internalTrafficPolicy: Local (default: hostname)\n"
	"  --cgroup PATH         cgroup v2 to attach to (default: the cgroup v2 root)\n"
	"  --pin-path DIR        bpffs directory for maps and links (default " BPFSVC_DEFAULT_PIN_PATH ")\n"
	"  --max-services N      service ports the maps hold (default " STR(BPFSVC_DEF_MAX_SERVICES) ")\n"
	"  --max-backends N      backends the maps hold (default " STR(BPFSVC_DEF_MAX_BACKENDS) ")\n"
	"  --max-sockets N       client sockets remembered for reverse translation (default "
	STR(BPFSVC_DEF_MAX_REVNAT) ")\n"
	"  -v, --verbose         debug logs\n"
	"\n"
	"SIGINT/SIGTERM stop the agent and leave the datapath serving; a new agent on the same\n"
	"pin path adopts it and rewrites only what differs.\n";

static const char list_usage[] = "Usage: bpfsvc list [--pin-path DIR] [--json]\n";
static const char cleanup_usage[] =
	"Usage: bpfsvc cleanup [--pin-path DIR]\n"
	"\n"
	"Detach the programs and remove bpfsvc's pins from DIR (default " BPFSVC_DEFAULT_PIN_PATH ").\n"
	"Only bpfsvc's own map and link names are removed, never through a symlink; DIR goes\n"
	"when that leaves it empty. DIR must be on bpffs, owned by root and writable by no one\n"
	"else, and hold nothing else under bpfsvc's names; otherwise nothing is removed.\n";

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
	fprintf(stderr, "bpfsvc: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	return EXIT_USAGE;
}

static int parse_u32(const char *s, uint32_t min, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > UINT32_MAX / 2)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int cmd_agent(int argc, char **argv)
{
	enum { O_FILE = 1, O_NODE, O_CGROUP, O_PIN, O_MAXSVC, O_MAXBE, O_MAXSOCK, O_HELP,
	       O_KUBECONFIG, O_CONTEXT, O_REQ_TIMEOUT, O_IDLE_TIMEOUT, O_API_SERVER, O_BACKOFF,
	       O_HTTP_VERSION, O_H2_IDLE, O_H2_PING };
	static const struct option opts[] = {
		{ "from-file", required_argument, NULL, O_FILE },
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "context", required_argument, NULL, O_CONTEXT },
		{ "api-server", required_argument, NULL, O_API_SERVER },
		{ "api-backoff-max", required_argument, NULL, O_BACKOFF },
		{ "request-timeout", required_argument, NULL, O_REQ_TIMEOUT },
		{ "watch-idle-timeout", required_argument, NULL, O_IDLE_TIMEOUT },
		{ "api-http-version", required_argument, NULL, O_HTTP_VERSION },
		{ "http2-read-idle-timeout", required_argument, NULL, O_H2_IDLE },
		{ "http2-ping-timeout", required_argument, NULL, O_H2_PING },
		{ "node-name", required_argument, NULL, O_NODE },
		{ "cgroup", required_argument, NULL, O_CGROUP },
		{ "pin-path", required_argument, NULL, O_PIN },
		{ "max-services", required_argument, NULL, O_MAXSVC },
		{ "max-backends", required_argument, NULL, O_MAXBE },
		{ "max-sockets", required_argument, NULL, O_MAXSOCK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, O_HELP },
		{},
	};
	struct agent_opts o = { .pin_path = BPFSVC_DEFAULT_PIN_PATH,
				.request_timeout_s = DEF_REQUEST_TIMEOUT_S,
				.http2_read_idle_s = DEF_H2_READ_IDLE_S,
				.http2_ping_timeout_s = DEF_H2_PING_TIMEOUT_S,
				.backoff_max_s = DEF_BACKOFF_MAX_S };
	char host[HOST_NAME_MAX + 1], cg[PATH_MAX];
	uint32_t n;
	int c;

	while ((c = getopt_long(argc, argv, "+v", opts, NULL)) != -1) {
		switch (c) {
		case O_FILE:
			o.from_file = optarg;
			break;
		case O_KUBECONFIG:
			o.kubeconfig = optarg;
			break;
		case O_CONTEXT:
			o.context = optarg;
			break;
		case O_API_SERVER:
			if (strncmp(optarg, "https://", 8))
				return usage_error(agent_usage, "--api-server \"%s\" must be an https:// URL",
						   optarg);
			o.api_server = optarg;
			break;
		case O_REQ_TIMEOUT:
		case O_IDLE_TIMEOUT:
		case O_BACKOFF:
			if (parse_u32(optarg, 1, &n) || n > 86400)
				return usage_error(agent_usage, "bad number of seconds \"%s\" (1..86400)",
						   optarg);
			if (c == O_REQ_TIMEOUT)
				o.request_timeout_s = n;
			else if (c == O_IDLE_TIMEOUT)
				o.watch_idle_timeout_s = n;
			else
				o.backoff_max_s = n;
			break;
		case O_HTTP_VERSION:
			if (strcmp(optarg, "2") && strcmp(optarg, "1.1"))
				return usage_error(agent_usage, "bad --api-http-version \"%s\" (2 or 1.1)",
						   optarg);
			o.api_http1 = !strcmp(optarg, "1.1");
			break;
		case O_H2_IDLE:
		case O_H2_PING:
			if (parse_u32(optarg, 0, &n) || n > 86400)
				return usage_error(agent_usage, "bad number of seconds \"%s\" (0..86400)",
						   optarg);
			if (c == O_H2_IDLE)
				o.http2_read_idle_s = n;
			else if (n)
				o.http2_ping_timeout_s = n;
			else
				return usage_error(agent_usage, "--http2-ping-timeout \"%s\" must be 1 or more",
						   optarg);
			break;
		case O_NODE:
			o.node_name = optarg;
			break;
		case O_CGROUP:
			o.cgroup = optarg;
			break;
		case O_PIN:
			o.pin_path = optarg;
			break;
		case O_MAXSVC:
		case O_MAXBE:
		case O_MAXSOCK:
			if (parse_u32(optarg, 16, &n))
				return usage_error(agent_usage, "bad number \"%s\" (16 or more)",
						   optarg);
			if (c == O_MAXSVC) {
				o.max_services = n;
				o.max_frontends = 2 * n; /* dual-stack: two VIPs per port */
			} else if (c == O_MAXBE) {
				o.max_slots = 2 * n; /* room for the atomic switch */
			} else {
				o.max_revnat = n;
			}
			break;
		case 'v':
			log_max_level = LOG_DEBUG;
			break;
		case O_HELP:
			fputs(agent_usage, stdout);
			return 0;
		default:
			return usage_error(agent_usage, "%s", "invalid option");
		}
	}
	if (optind < argc)
		return usage_error(agent_usage, "unexpected argument \"%s\"", argv[optind]);
	if (o.from_file && (o.kubeconfig || o.context))
		return usage_error(agent_usage, "%s", "--from-file goes without --kubeconfig/--context");
	if (!o.from_file && !o.kubeconfig) {
		const char *env = getenv("KUBECONFIG");

		o.kubeconfig = env && *env ? env : NULL;
	}
	if (o.api_server && (o.kubeconfig || o.from_file))
		return usage_error(agent_usage, "%s", "--api-server is for the in-cluster config only");
	if (o.context && !o.kubeconfig)
		return usage_error(agent_usage, "%s", "--context needs a kubeconfig");
	if (!o.node_name) {
		if (gethostname(host, sizeof(host)))
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = 0;
		/* Node names are lowercase; kube-proxy lowercases the hostname too, or every
		 * internalTrafficPolicy: Local service would look remote. */
		for (char *p = host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		o.node_name = host;
	}
	if (!o.cgroup) {
		if (cgroup2_root(cg, sizeof(cg))) {
			fprintf(stderr, "bpfsvc: no cgroup v2 mount in /proc/mounts; pass --cgroup\n");
			return 1;
		}
		o.cgroup = cg;
	}
	return agent_run(&o) ? 1 : 0;
}

/* The options list and cleanup share: --pin-path, --help and (list) --json. Returns -1 to go
 * on, or the exit status. */
static int pin_opts(int argc, char **argv, const char *usage, const char **pin, bool *json)
{
	static const struct option opts[] = {
		{ "pin-path", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	*pin = BPFSVC_DEFAULT_PIN_PATH;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			*pin = optarg;
			break;
		case 'j':
			if (!json)
				return usage_error(usage, "%s", "invalid option");
			*json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return usage_error(usage, "%s", "invalid option");
		}
	}
	if (optind < argc)
		return usage_error(usage, "unexpected argument \"%s\"", argv[optind]);
	return -1;
}

static int cmd_list(int argc, char **argv)
{
	const char *pin;
	bool json = false;
	char err[512] = "";
	int ret = pin_opts(argc, argv, list_usage, &pin, &json);

	if (ret >= 0)
		return ret;
	if (list_print(pin, json, stdout, err, sizeof(err))) {
		fprintf(stderr, "bpfsvc list: %s\n", err);
		return 1;
	}
	return 0;
}

static int cmd_cleanup(int argc, char **argv)
{
	const char *pin;
	struct cleanup_result res;
	char err[1024] = "";
	int ret = pin_opts(argc, argv, cleanup_usage, &pin, NULL);

	if (ret >= 0)
		return ret;
	if (datapath_cleanup(pin, &res, err, sizeof(err))) {
		fprintf(stderr, "bpfsvc cleanup: %s\n", err);
		return 1;
	}
	if (res.dir_kept)
		fprintf(stderr,
			"bpfsvc cleanup: removed %u pins; kept %s: it holds entries that are not "
			"bpfsvc's\n",
			res.removed, pin);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd)
		return usage_error(main_usage, "%s", "missing command");
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(main_usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("bpfsvc %s\n", BPFSVC_VERSION);
		return 0;
	}
	/* Subcommands parse from their own name, so getopt's messages say "agent: ...". */
	argc--;
	argv++;
	if (!strcmp(cmd, "agent"))
		return cmd_agent(argc, argv);
	if (!strcmp(cmd, "list"))
		return cmd_list(argc, argv);
	if (!strcmp(cmd, "cleanup"))
		return cmd_cleanup(argc, argv);
	return usage_error(main_usage, "unknown command \"%s\"", cmd);
}
