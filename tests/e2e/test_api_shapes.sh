#!/usr/bin/env bash
# The agent on objects as kube-apiserver 1.30 serves them: the kubectl-shaped fixtures of
# tests/apiserver/testdata (managedFields, "endpoints": null and "ports": null, hints,
# terminating endpoints, headless, ExternalName, NodePort, LoadBalancer) and a minimal Service
# whose clusterIP the fake allocates. `bpfsvc list --json` must hold exactly the expected
# frontends and backends.
. "$(dirname "$0")/lib.sh"

FIXTURE=$TOP/tests/apiserver/testdata/kubectl-get-svc-endpointslice.json

infra_up || { not_ok "bpffs and test cgroup"; finish; exit 1; }
api_up || { not_ok "fake API server"; finish; exit 1; }
kubeconfig_write "    tokenFile: token"

ctl_file POST /control/apply "$FIXTURE" >/dev/null
api_apply '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"min","name":"alloc"},"spec":{"selector":{"app":"a"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}'
api_apply "$(slice min alloc alloc-1 IPv4 'http:8080:TCP' '10.244.0.11 10.244.0.12/false')"
vip=$(curl -sf "$CTL/control/objects" | python3 -c '
import json, sys
print([o for o in json.load(sys.stdin) if o["metadata"]["name"] == "alloc"][0]["spec"]["clusterIP"])')
check "the fake allocated a clusterIP for the minimal service ($vip)" grep -Eq '^10\.96\.[0-9]+\.[0-9]+$' <<<"$vip"

api_agent_start || { not_ok "agent start"; tail -20 "$AGENT_LOG"; finish; exit 1; }

# frontends_are EXPECTED-JSON: `bpfsvc list --json` holds exactly these
# [ns, name, port_name, vip, port, protocol, ["ip:port", ...]] rows (backends sorted).
frontends_are() {
	"$BPFSVC" list --pin-path "$PIN" --json | python3 -c '
import json, sys
want = sorted(json.loads(sys.argv[1]))
got = sorted([r["namespace"], r["name"], r["port_name"], r["vip"], r["port"], r["protocol"],
              sorted("%s:%d" % (("[%s]" % b["ip"]) if ":" in b["ip"] else b["ip"], b["port"])
                     for b in r["backends"])] for r in json.load(sys.stdin))
if got != want:
    for row in got:
        print("#   got  %s" % row, file=sys.stderr)
    for row in want:
        print("#   want %s" % row, file=sys.stderr)
sys.exit(0 if got == want else 1)' "$1"
}

expected='[
 ["demo","web","http","10.96.120.34",80,"TCP",["10.244.1.5:8080"]],
 ["demo","dual","dns","10.96.5.7",53,"UDP",["10.244.1.9:5353"]],
 ["demo","dual","dns-tcp","10.96.5.7",53,"TCP",["10.244.1.9:5353"]],
 ["demo","dual","dns","fd00:10:96::5:7",53,"UDP",["[fd00:244:1::9]:5353"]],
 ["demo","dual","dns-tcp","fd00:10:96::5:7",53,"TCP",["[fd00:244:1::9]:5353"]],
 ["demo","np","web","10.96.33.10",8080,"TCP",["10.244.1.20:8080","10.244.2.21:8080"]],
 ["demo","lb","","10.96.200.5",443,"TCP",["10.244.1.30:8443","10.244.2.31:8443"]],
 ["demo","idle","http","10.96.44.44",80,"TCP",[]],
 ["min","alloc","http","'"$vip"'",80,"TCP",["10.244.0.11:8080"]]]'
check "exactly the expected frontends: ready endpoints, the terminating fallback, null endpoints and ports, no headless or ExternalName" \
	wait_for "frontends" 50 frontends_are "$expected"

# An update that leaves clusterIP out keeps the allocated VIP; the slice empties to null.
api_apply '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"min","name":"alloc","labels":{"v":"2"}},"spec":{"selector":{"app":"a"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}'
api_apply '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"namespace":"min","name":"alloc-1","labels":{"kubernetes.io/service-name":"alloc"}},"addressType":"IPv4","endpoints":[],"ports":[]}'
check "after the update: the same VIP, no backends (\"endpoints\": null, \"ports\": null)" \
	wait_for "emptied slice" 50 frontends_are "${expected/\"10.244.0.11:8080\"/}"
check "no object skipped with a warning (headless and ExternalName are not errors)" \
	test "$(grep -c 'msg="object skipped"' "$AGENT_LOG")" -eq 0
finish
