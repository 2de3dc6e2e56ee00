#!/usr/bin/env python3
"""Turn bench.sh's results.csv into results.md (tables, targets) and PNG plots (gnuplot).

usage: report.py RESULTS_CSV OUTDIR
"""
import csv
import os
import subprocess
import sys

MODES = ["iptables", "nftables", "bpfsvc"]

ROWS = [
    ("Programming", [
        ("load_s", "full load (s)"),
        ("load_wall_s", "  bpfsvc: start to programmed, incl. listing (s)"),
        ("load_rss_kb", "peak RSS of the loader (KiB)"),
        ("kmem_kb", "kernel memory charged to the loader's memory cgroup (KiB)"),
        ("bpf_memlock_kb", "  bpfsvc: BPF map memory (KiB)"),
        ("change_p50_ms", "one endpoint change, p50 (ms)"),
        ("change_p99_ms", "one endpoint change, p99 (ms)"),
        ("change_runs", "  changes measured"),
    ]),
    ("TCP connect() latency (µs)", [
        ("conn_first_p50_us", "first service VIP, p50"),
        ("conn_first_p99_us", "first service VIP, p99"),
        ("conn_last_p50_us", "last service VIP, p50"),
        ("conn_last_p99_us", "last service VIP, p99"),
        ("conn_direct_p50_us", "pod IP directly, p50"),
        ("conn_direct_p99_us", "pod IP directly, p99"),
    ]),
    ("UDP request/reply latency, new socket per request (µs)", [
        ("udp_first_p50_us", "first service VIP, p50"),
        ("udp_first_p99_us", "first service VIP, p99"),
        ("udp_last_p50_us", "last service VIP, p50"),
        ("udp_last_p99_us", "last service VIP, p99"),
        ("udp_direct_p50_us", "pod IP directly, p50"),
        ("udp_direct_p99_us", "pod IP directly, p99"),
    ]),
    ("Short connections (connect, 16 B request/response, close), one client thread", [
        ("rps_last", "requests/s through the last VIP"),
        ("rps_direct", "requests/s to the pod IP"),
    ]),
]


def load(path):
    header, data = [], {}
    with open(path) as f:
        lines = [l for l in f if not (l.startswith("#") and header.append(l[1:].strip()) is None)]
    for r in csv.DictReader(lines):
        data[(r["mode"], int(r["n"]), r["metric"])] = r["value"]
    return header, data


def num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def fmt(v):
    f = num(v)
    if f is None:
        return v if v else "–"
    if f == int(f) and abs(f) >= 100:
        return "{:,}".format(int(f))
    return "%.3g" % f if abs(f) < 100 else "%.0f" % f


def status(data, mode, n):
    return data.get((mode, n, "status"), "not run")


def tables(header, data, sizes):
    out = ["# bpfsvc vs kube-proxy (iptables, nftables)", ""]
    out += ["- " + h for h in header] + [""]
    for n in sizes:
        m = next((data.get((mo, n, "m")) for mo in MODES if (mo, n, "m") in data), None)
        out.append("## %s services" % "{:,}".format(n))
        out.append("")
        out.append("| | " + " | ".join(MODES) + " |")
        out.append("|---|" + "---:|" * len(MODES))
        out.append("| status | " + " | ".join(status(data, mo, n).replace("_", " ") for mo in MODES) + " |")
        for title, rows in ROWS:
            out.append("| **%s** | | | |" % title)
            for key, label in rows:
                vals = [data.get((mo, n, key)) for mo in MODES]
                if key.startswith("change_p"):
                    vals = ["> budget" if data.get((mo, n, "change_status")) == "over_budget"
                            else v for mo, v in zip(MODES, vals)]
                if all(v is None for v in vals):
                    continue
                out.append("| %s | %s |" % (label, " | ".join(fmt(v) for v in vals)))
        out.append("")
    return out


def ratio(data, n, a, b):
    x, y = num(data.get(("bpfsvc", n, a))), num(data.get(("bpfsvc", n, b)))
    return x / y if x is not None and y else None


def targets(data, sizes):
    out = ["## Targets (ratios measured side by side in this run)", ""]
    out.append("| target | N | measured | verdict |")
    out.append("|---|---:|---:|---|")
    for n in sizes:
        for proto, pre in (("TCP connect", "conn"), ("UDP request/reply", "udp")):
            for which in ("first", "last"):
                r = ratio(data, n, "%s_%s_p50_us" % (pre, which), "%s_direct_p50_us" % pre)
                if r is None:
                    continue
                out.append("| bpfsvc %s p50 to the %s VIP ≤ 1.03 × direct | %s | %.3f × | %s |"
                           % (proto, which, "{:,}".format(n), r, "met" if r <= 1.03 else "**missed**"))
    big = max(sizes)
    load_s = num(data.get(("bpfsvc", big, "load_s")))
    chg = num(data.get(("bpfsvc", big, "change_p99_ms")))
    if big >= 100000:
        out.append("| bpfsvc full load of 100k services ≤ 1 s | %s | %s | %s |" % (
            "{:,}".format(big), "%.3f s" % load_s if load_s is not None else "not measured",
            "–" if load_s is None else ("met" if load_s <= 1 else "**missed**")))
        out.append("| bpfsvc one change ≤ 1 ms p99 at 100k | %s | %s | %s |" % (
            "{:,}".format(big), "%.3f ms" % chg if chg is not None else "not measured",
            "–" if chg is None else ("met" if chg <= 1 else "**missed**")))
    else:
        out.append("| bpfsvc full load / one change at 100k services | – | not in this run (use make bench-full) | – |")
    out.append("")
    return out


def plots(data, sizes, outdir):
    specs = [
        ("connect_last_p50", "TCP connect() p50 to the last service VIP (µs)",
         [(mo, "conn_last_p50_us") for mo in MODES] + [("bpfsvc", "conn_direct_p50_us", "direct pod IP")], False),
        ("connect_direct_p50", "TCP connect() p50 to a pod IP, not a service (µs)",
         [(mo, "conn_direct_p50_us") for mo in MODES], False),
        ("udp_last_p50", "UDP request/reply p50 via the last VIP (µs)",
         [(mo, "udp_last_p50_us") for mo in MODES], False),
        ("load_time", "full load of N services (s)", [(mo, "load_s") for mo in MODES], True),
        ("change_time", "one endpoint change at N services, p50 (ms)",
         [(mo, "change_p50_ms") for mo in MODES], True),
    ]
    made = []
    for name, title, series, logy in specs:
        if all(num(data.get((s[0], n, s[1]))) is None for s in series for n in sizes):
            continue  # nothing measured (every step over budget): no plot
        dat = os.path.join(outdir, name + ".dat")
        cols = []
        with open(dat, "w") as f:
            for n in sizes:
                vals = []
                for s in series:
                    v = num(data.get((s[0], n, s[1])))
                    vals.append("NaN" if v is None else repr(v))
                f.write("%d %s\n" % (n, " ".join(vals)))
        for i, s in enumerate(series):
            label = s[2] if len(s) > 2 else s[0]
            cols.append("'%s' using 1:%d with linespoints lw 2 title '%s'" % (dat, i + 2, label))
        script = "\n".join([
            "set terminal pngcairo size 800,500",
            "set output '%s'" % os.path.join(outdir, name + ".png"),
            "set title \"%s\"" % title.replace('"', "'"),
            "set xlabel 'services (N)'",
            "set logscale x",
            "set logscale y" if logy else "set yrange [0:*]",
            "set key top left",
            "set grid",
            "set datafile missing 'NaN'",
            "plot " + ", ".join(cols),
        ])
        try:
            subprocess.run(["gnuplot"], input=script.encode(), check=True)
            made.append(name + ".png")
        except (OSError, subprocess.CalledProcessError) as e:
            print("report: gnuplot failed for %s: %s" % (name, e), file=sys.stderr)
    return made


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py RESULTS_CSV OUTDIR")
    header, data = load(sys.argv[1])
    outdir = sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    sizes = sorted({n for (_m, n, _k) in data})
    md = tables(header, data, sizes) + targets(data, sizes)
    made = plots(data, sizes, outdir)
    md += ["## Plots", ""] + ["![%s](%s)" % (p[:-4], p) for p in made] + [""]
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
