#!/usr/bin/env python3
"""Generate one benchmark size: N services with M endpoints each, as

  iptables.rules        kube-proxy's iptables-mode nat table (iptables-restore input)
  iptables-change.rules the same with one endpoint of service 0 changed (a full resync)
  nft.rules             kube-proxy's nftables-mode table (nft -f input)
  nft-change.rules      one transaction changing that endpoint
  objects.json          the Services and EndpointSlices (a kubectl-style List)
  change-a.json / change-b.json   service 0's EndpointSlice with endpoint 0 changed / back

Layout follows kube-proxy (pkg/proxy/iptables and pkg/proxy/nftables): chain names are
hashes of the service port name and protocol (and the endpoint), KUBE-SERVICES has one rule
per service port, KUBE-SVC chains pick an endpoint with statistic/random probabilities,
KUBE-SEP chains mark hairpin traffic and DNAT; nftables uses a service-ips verdict map keyed
by address . protocol . port, per-service chains with numgen random mod M, per-endpoint
DNAT chains.

Addresses: service i has VIP 10.96.0.0 + i + 1 (TCP 80 -> 8080); services 0 and N-1 also
have UDP 53 -> 5353. Every service's endpoints are the M pod addresses 10.244.0.10.. (the
benchmark's backend namespace has them all); the changed endpoint is 10.244.1.10.

usage: gen.py N M OUTDIR
"""
import base64
import hashlib
import json
import os
import sys

CLUSTER_CIDR = "10.244.0.0/16"
NS = "bench"
CHANGED_IP = "10.244.1.10"


def vip(i):
    n = i + 1
    return "10.%d.%d.%d" % (96 + n // 65536, (n // 256) % 256, n % 256)


def pods(m):
    return ["10.244.%d.%d" % (j // 240, 10 + j % 240) for j in range(m)]


def ports(i, n):
    p = [("http", "tcp", 80, 8080)]
    if i == 0 or i == n - 1:
        p.append(("dns", "udp", 53, 5353))
    return p


def b32(s, n):
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:n]


# ---- iptables (kube-proxy iptables mode) ----

def svc_chain(spn, proto):
    return "KUBE-SVC-" + b32(spn + proto, 16)


def sep_chain(spn, proto, ep):
    return "KUBE-SEP-" + b32(spn + proto + ep, 16)


def iptables(n, m, change, out):
    eps0 = pods(m)
    chains, rules = [], []
    chains += ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"]
    rules += [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    svc_rules, body = [], []
    for i in range(n):
        name = "svc-%d" % i
        eps = list(eps0)
        if change and i == 0:
            eps[0] = CHANGED_IP
        for pname, proto, port, target in ports(i, n):
            spn = "%s/%s:%s" % (NS, name, pname)
            sc = svc_chain(spn, proto)
            chains.append(sc)
            svc_rules.append(
                '-A KUBE-SERVICES -d %s/32 -p %s -m comment --comment "%s cluster IP" '
                "-m %s --dport %d -j %s" % (vip(i), proto, spn, proto, port, sc))
            body.append(
                '-A %s ! -s %s -d %s/32 -p %s -m comment --comment "%s cluster IP" -m %s '
                "--dport %d -j KUBE-MARK-MASQ" % (sc, CLUSTER_CIDR, vip(i), proto, spn, proto, port))
            for k, ip in enumerate(eps):
                ep = "%s:%d" % (ip, target)
                sep = sep_chain(spn, proto, ep)
                chains.append(sep)
                left = len(eps) - k
                if left > 1:
                    body.append('-A %s -m comment --comment "%s -> %s" -m statistic --mode random '
                                "--probability %0.10f -j %s" % (sc, spn, ep, 1.0 / left, sep))
                else:
                    body.append('-A %s -m comment --comment "%s -> %s" -j %s' % (sc, spn, ep, sep))
                body.append('-A %s -s %s/32 -m comment --comment "%s" -j KUBE-MARK-MASQ'
                            % (sep, ip, spn))
                body.append('-A %s -p %s -m comment --comment "%s" -m %s -j DNAT '
                            "--to-destination %s" % (sep, proto, spn, proto, ep))
    with open(out, "w") as f:
        f.write("*nat\n")
        for c in chains:
            f.write(":%s - [0:0]\n" % c)
        f.write("\n".join(rules + svc_rules) + "\n")
        f.write('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
                'must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n')
        f.write("\n".join(body) + "\n")
        f.write("COMMIT\n")


# ---- nftables (kube-proxy nftables mode) ----

T = "ip kube-proxy"


def nft_svc_chain(name, proto, pname):
    base = "%s/%s/%s/%s" % (NS, name, proto, pname)
    return "service-%s-%s" % (b32(base, 8), base)


def nft_ep_chain(name, proto, pname, ip, target):
    base = "%s/%s/%s/%s__%s/%d" % (NS, name, proto, pname, ip, target)
    return "endpoint-%s-%s" % (b32(base, 8), base)


def nft_service(f, i, n, eps, pname, proto, port, target):
    name = "svc-%d" % i
    sc = nft_svc_chain(name, proto, pname)
    f.write("add chain %s %s\n" % (T, sc))
    f.write("add rule %s %s ip daddr %s %s dport %d ip saddr != %s jump mark-for-masquerade\n"
            % (T, sc, vip(i), proto, port, CLUSTER_CIDR))
    vmap = ", ".join("%d : goto %s" % (k, nft_ep_chain(name, proto, pname, ip, target))
                     for k, ip in enumerate(eps))
    f.write("add rule %s %s numgen random mod %d vmap { %s }\n" % (T, sc, len(eps), vmap))
    return sc


def nft_endpoint(f, name, proto, pname, ip, target):
    ec = nft_ep_chain(name, proto, pname, ip, target)
    f.write("add chain %s %s\n" % (T, ec))
    f.write("add rule %s %s ip saddr %s jump mark-for-masquerade\n" % (T, ec, ip))
    f.write("add rule %s %s meta l4proto %s dnat to %s:%d\n" % (T, ec, proto, ip, target))


def nft(n, m, out):
    eps = pods(m)
    with open(out, "w") as f:
        f.write("add table %s { comment \"rules for kube-proxy\" ; }\n" % T)
        f.write("add chain %s mark-for-masquerade\n" % T)
        f.write("add rule %s mark-for-masquerade mark set mark or 0x4000\n" % T)
        f.write("add chain %s masquerading\n" % T)
        f.write("add rule %s masquerading mark and 0x4000 == 0 return\n" % T)
        f.write("add rule %s masquerading mark set mark xor 0x4000\n" % T)
        f.write("add rule %s masquerading masquerade fully-random\n" % T)
        f.write("add chain %s services\n" % T)
        f.write("add chain %s nat-output { type nat hook output priority -100 ; }\n" % T)
        f.write("add rule %s nat-output jump services\n" % T)
        f.write("add chain %s nat-prerouting { type nat hook prerouting priority -100 ; }\n" % T)
        f.write("add rule %s nat-prerouting jump services\n" % T)
        f.write("add chain %s nat-postrouting { type nat hook postrouting priority 100 ; }\n" % T)
        f.write("add rule %s nat-postrouting jump masquerading\n" % T)
        f.write("add map %s service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; "
                "comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }\n" % T)
        f.write("add rule %s services ip daddr . meta l4proto . th dport vmap @service-ips\n" % T)
        for i in range(n):
            name = "svc-%d" % i
            for pname, proto, port, target in ports(i, n):
                for ip in eps:
                    nft_endpoint(f, name, proto, pname, ip, target)
                sc = nft_service(f, i, n, eps, pname, proto, port, target)
                f.write("add element %s service-ips { %s . %s . %d : goto %s }\n"
                        % (T, vip(i), proto, port, sc))


def nft_change(n, m, out, back):
    """One transaction: service 0's endpoint 0 moves to CHANGED_IP (or back)."""
    eps = pods(m)
    old, new = (eps[0], CHANGED_IP) if not back else (CHANGED_IP, eps[0])
    now = [new] + eps[1:]
    name, (pname, proto, port, target) = "svc-0", ports(0, n)[0]
    with open(out, "w") as f:
        nft_endpoint(f, name, proto, pname, new, target)
        sc = nft_svc_chain(name, proto, pname)
        f.write("flush chain %s %s\n" % (T, sc))
        f.write("add rule %s %s ip daddr %s %s dport %d ip saddr != %s jump mark-for-masquerade\n"
                % (T, sc, vip(0), proto, port, CLUSTER_CIDR))
        vmap = ", ".join("%d : goto %s" % (k, nft_ep_chain(name, proto, pname, ip, target))
                         for k, ip in enumerate(now))
        f.write("add rule %s %s numgen random mod %d vmap { %s }\n" % (T, sc, len(now), vmap))
        f.write("delete chain %s %s\n" % (T, nft_ep_chain(name, proto, pname, old, target)))


# ---- Kubernetes objects (bpfsvc) ----

def service(i, n):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": NS, "name": "svc-%d" % i},
            "spec": {"type": "ClusterIP", "clusterIP": vip(i), "clusterIPs": [vip(i)],
                     "ports": [{"name": pn, "protocol": pr.upper(), "port": p, "targetPort": t}
                               for pn, pr, p, t in ports(i, n)]}}


def slice_(i, n, eps):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": NS, "name": "svc-%d-abcde" % i,
                         "labels": {"kubernetes.io/service-name": "svc-%d" % i}},
            "addressType": "IPv4",
            "ports": [{"name": pn, "protocol": pr.upper(), "port": t}
                      for pn, pr, p, t in ports(i, n)],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in eps]}


def objects(n, m, out):
    eps = pods(m)
    with open(out, "w") as f:
        f.write('{"apiVersion":"v1","kind":"List","items":[')
        for i in range(n):
            f.write("," if i else "")
            f.write(json.dumps(service(i, n), separators=(",", ":")))
            f.write(",")
            f.write(json.dumps(slice_(i, n, eps), separators=(",", ":")))
        f.write("]}\n")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    n, m, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    iptables(n, m, False, os.path.join(out, "iptables.rules"))
    iptables(n, m, True, os.path.join(out, "iptables-change.rules"))
    nft(n, m, os.path.join(out, "nft.rules"))
    nft_change(n, m, os.path.join(out, "nft-change.rules"), False)
    nft_change(n, m, os.path.join(out, "nft-change-back.rules"), True)
    objects(n, m, os.path.join(out, "objects.json"))
    eps = pods(m)
    for tag, e in (("a", [CHANGED_IP] + eps[1:]), ("b", eps)):
        with open(os.path.join(out, "change-%s.json" % tag), "w") as f:
            json.dump(slice_(0, n, e), f)


if __name__ == "__main__":
    main()
