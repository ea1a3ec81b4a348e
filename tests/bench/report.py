#!/usr/bin/env python3
"""Summarizes bench.sh's trials: medians over the measured runs (run >= 1;
run 0 is the warm-up), xturn/coturn ratios, results.txt, results.json and a
gnuplot script for pps.png. Usage: report.py OUT_DIR SKIPPED_RUNS SECONDS"""
import json
import os
import statistics
import sys

SERVERS = ["xdp", "tc", "noxdp", "coturn"]
LABEL = {"xdp": "xturnd XDP", "tc": "xturnd TC", "noxdp": "xturnd --no-xdp",
         "coturn": "coturn"}


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def load_key(load):
    size, allocs, chans = (int(x) for x in load.split(":"))
    return size, allocs * chans, allocs, chans


def main():
    out, skipped, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    res = {}
    for srv, run, load, limit, maxd, *r in rows(os.path.join(out, "results.tsv")):
        r = " ".join(r).split()
        if int(run) < 1:
            continue
        sent, offered, pps, loss, proc, sirq, xfrac = (float(x) for x in r)
        res.setdefault((srv, load), []).append(dict(
            limit=limit, max_pps=float(maxd), pps=pps, loss=loss, proc=proc,
            softirq=sirq, xdp_frac=xfrac, offered=offered,
            ns_per_pkt=(proc + sirq) / 100 * 1e9 / pps if pps else None))
    lat, allocs = {}, {}
    for srv, run, p50, p99, _ in rows(os.path.join(out, "latency.tsv")):
        if int(run) >= 1:
            lat.setdefault(srv, []).append((num(p50), num(p99)))
    for srv, run, aps in rows(os.path.join(out, "allocs.tsv")):
        if int(run) >= 1:
            allocs.setdefault(srv, []).append(num(aps))

    loads = sorted({load for _, load in res}, key=load_key)
    summary = {"runs": max((len(v) for v in res.values()), default=0),
               "skipped_runs": skipped, "seconds": secs, "loads": [], "servers": {}}
    lines = []
    w = lines.append
    w("xturn bench: delivered pps at >= 99.9 %% delivery (median of %d run(s)%s), "
      "client->peer ChannelData" % (summary["runs"],
                                    ", %d skipped for time" % skipped if skipped else ""))
    w("limit: relay = paced step passed; gen = generator's unpaced rate lost <= 0.1 %; "
      "none = no step passed")
    w("cpu: % of one CPU during the trial; relay = relay process, sirq = whole machine's "
      "softirq (XDP runs there); ns/pkt = (relay+sirq)/pps")
    w("")
    hdr = "%-14s %-16s %10s %6s %10s %7s %6s %7s %6s" % (
        "load", "server", "pps", "limit", "unpaced", "relay%", "sirq%", "ns/pkt", "xdp%")
    w(hdr)
    w("-" * len(hdr))
    for load in loads:
        size, nch, a, c = load_key(load)
        name = "%dB %dch" % (size, nch)
        entry = {"payload": size, "channels": nch, "allocations": a,
                 "channels_per_allocation": c, "servers": {}}
        for srv in SERVERS:
            t = res.get((srv, load))
            if not t:
                continue
            m = {k: med([x[k] for x in t]) for k in
                 ("pps", "max_pps", "proc", "softirq", "ns_per_pkt", "xdp_frac")}
            limits = sorted({x["limit"] for x in t})
            m["limit"] = "/".join(limits)
            m["runs"] = [x["pps"] for x in t]
            entry["servers"][srv] = m
            w("%-14s %-16s %10.0f %6s %10.0f %7.1f %6.1f %7s %6s" % (
                name, LABEL[srv], m["pps"], m["limit"], m["max_pps"], m["proc"],
                m["softirq"], "%.0f" % m["ns_per_pkt"] if m["ns_per_pkt"] else "-",
                "%.0f" % (100 * m["xdp_frac"]) if srv in ("xdp", "tc") else "-"))
        co = entry["servers"].get("coturn", {}).get("pps")
        for srv in ("xdp", "tc", "noxdp"):
            p = entry["servers"].get(srv, {}).get("pps")
            if co and p is not None:
                entry["servers"][srv]["ratio_vs_coturn"] = p / co
        w("%-14s ratio xturn/coturn: XDP %s, TC %s, no-xdp %s" % ("", *(
            "%.2fx" % entry["servers"][s]["ratio_vs_coturn"]
            if "ratio_vs_coturn" in entry["servers"].get(s, {}) else "-"
            for s in ("xdp", "tc", "noxdp"))))
        summary["loads"].append(entry)
    w("")
    w("%-16s %12s %12s %14s" % ("server", "rtt p50 us", "rtt p99 us", "allocations/s"))
    for srv in SERVERS:
        p50 = med([x[0] for x in lat.get(srv, [])])
        p99 = med([x[1] for x in lat.get(srv, [])])
        aps = med(allocs.get(srv, []))
        summary["servers"][srv] = {"rtt_p50_us": p50, "rtt_p99_us": p99,
                                   "allocs_per_s": aps}
        w("%-16s %12s %12s %14s" % (LABEL[srv], *(
            "%.1f" % v if v is not None else "-" for v in (p50, p99, aps))))
    co = summary["servers"]["coturn"]
    for srv in ("xdp", "tc", "noxdp"):
        s = summary["servers"][srv]
        w("ratio %s/coturn: rtt p50 %s, p99 %s, allocations/s %s" % (LABEL[srv], *(
            "%.2fx" % (s[k] / co[k]) if s[k] and co[k] else "-"
            for k in ("rtt_p50_us", "rtt_p99_us", "allocs_per_s"))))
    w("")
    w("latency: 20 kpps, 10x10 channels, 200 B, echo peer; bench took %d s" % secs)
    summary["scale"] = scale(out, w)
    summary["tls"] = tls(out, w)
    summary["multi_queue"] = multi_queue(out, w)
    summary["fp_cost"] = fp_cost(out, w)
    with open(os.path.join(out, "results.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    write_plot(out, summary)


def tls(out, w):
    """tls.tsv (clients to the sink) and tls-echo.tsv (both ways through an
    echoing peer): messages relayed for TLS clients, medians per server."""
    res = {}
    for name, path, head, note in (
            ("to_peer", "tls.tsv", "TLS clients", "10 TLS connections, one channel each, "
             "200 B, unpaced: TCP paces the clients; pps = delivered to the peer in a "
             "steady-state window"),
            ("both_ways", "tls-echo.tsv", "TLS both ways", "the same to an echoing peer; "
             "pps = 2 x the echoes back at the clients (each crossed the relay twice), "
             "in a steady-state window")):
        by = {}
        for srv, run, pps, _a, _b, cpu in rows(os.path.join(out, path)):
            if int(run) >= 1:
                by.setdefault(srv, []).append((num(pps), num(cpu)))
        if not by:
            continue
        part = res[name] = {}
        w("")
        w("%-16s %12s %8s %8s" % (head, "pps", "relay%", "ns/msg"))
        for srv in SERVERS:
            if srv not in by:
                continue
            t = by[srv]
            m = {"pps": med([x[0] for x in t]), "relay_cpu_pct": med([x[1] for x in t]),
                 "relay_ns_per_msg": med([x[1] / 100 * 1e9 / x[0] if x[0] else None
                                          for x in t])}
            part[srv] = m
            w("%-16s %12s %8s %8s" % (LABEL[srv], *(
                "%.0f" % v if v is not None else "-" for v in (
                    m["pps"], m["relay_cpu_pct"], m["relay_ns_per_msg"]))))
        c = part.get("coturn", {})
        for srv in ("xdp", "noxdp"):
            x = part.get(srv, {})
            if x.get("pps") and c.get("pps"):
                x["ratio_vs_coturn"] = x["pps"] / c["pps"]
                w("ratio %s/coturn: %.2fx pps, %s CPU a message" % (
                    LABEL[srv], x["ratio_vs_coturn"], "%.2fx" % (
                        x["relay_ns_per_msg"] / c["relay_ns_per_msg"])
                    if x.get("relay_ns_per_msg") and c.get("relay_ns_per_msg") else "-"))
        w("(%s; ns/msg = relay process CPU / pps)" % note)
    return res


def multi_queue(out, w):
    """mq.tsv: the XDP path from one and from two generator threads."""
    by = {}
    for srv, run, threads, *r in rows(os.path.join(out, "mq.tsv")):
        if int(run) < 1 or len(r) < 6:
            continue
        sent, offered, pps, loss, proc, sirq = (float(x) for x in r[:6])
        by.setdefault(int(threads), []).append(
            (pps, loss, (proc + sirq) / 100 * 1e9 / pps if pps else None))
    if not by:
        return {}
    res = {}
    w("")
    w("%-16s %8s %12s %8s %8s" % ("multi-queue XDP", "threads", "pps", "loss%", "ns/pkt"))
    for t in sorted(by):
        m = {"pps": med([x[0] for x in by[t]]), "loss_pct": med([x[1] for x in by[t]]),
             "ns_per_pkt": med([x[2] for x in by[t]])}
        res[t] = m
        w("%-16s %8d %12.0f %8.3f %8s" % ("", t, m["pps"], m["loss_pct"],
                                         "%.0f" % m["ns_per_pkt"] if m["ns_per_pkt"] else "-"))
    one, two = res.get(1, {}), res.get(2, {})
    if one.get("pps") and two.get("pps") and one.get("ns_per_pkt") and two.get("ns_per_pkt"):
        w("two threads/one: pps %.2fx, ns/pkt %.2fx" % (
            two["pps"] / one["pps"], two["ns_per_pkt"] / one["ns_per_pkt"]))
    w("(unpaced 200 B, 10x10 channels, socket sends onto a 2-queue veth; ns/pkt = "
      "(relay process + the machine's softirq: relay XDP and sink) / delivered pps)")
    return {str(k): v for k, v in res.items()}


def scale(out, w):
    """scale.tsv: the large control-plane run, medians per server."""
    by = {}
    for srv, run, n, aps, bpa in rows(os.path.join(out, "scale.tsv")):
        if int(run) >= 1:
            by.setdefault(srv, []).append((int(n), num(aps), num(bpa)))
    if not by:
        return {}
    res = {}
    w("")
    w("%-16s %12s %14s %16s" % ("scale", "allocations", "allocations/s", "bytes/allocation"))
    for srv in SERVERS:
        if srv not in by:
            continue
        t = by[srv]
        m = {"allocations": t[0][0], "allocs_per_s": med([x[1] for x in t]),
             "bytes_per_alloc": med([x[2] for x in t])}
        res[srv] = m
        w("%-16s %12d %14s %16s" % (LABEL[srv], m["allocations"], *(
            "%.0f" % v if v is not None else "-" for v in (m["allocs_per_s"],
                                                           m["bytes_per_alloc"]))))
    x, c = res.get("xdp", {}), res.get("coturn", {})
    if x.get("allocs_per_s") and c.get("allocs_per_s"):
        w("ratio xturnd/coturn: allocations/s %.2fx, bytes/allocation %s" % (
            x["allocs_per_s"] / c["allocs_per_s"],
            "%.2fx" % (x["bytes_per_alloc"] / c["bytes_per_alloc"])
            if x.get("bytes_per_alloc") and c.get("bytes_per_alloc") else "-"))
    w("(each with a permission and a channel, from 4 client addresses, then released; "
      "bytes = peak RSS growth / allocations)")
    return res


FP_COLS = [("xturn", "c2p", "one"), ("xturn", "c2p", "spread"), ("xturn", "p2c", "one"),
           ("xturn", "p2c", "spread"), ("ceiling", "c2p", "one")]


def fp_cost(out, w):
    """fpcost.tsv: the XDP program's ns per packet by bindings; a table and
    fpcost.dat for the plot. Returns the JSON rows."""
    by_n = {}
    for r in rows(os.path.join(out, "fpcost.tsv"))[1:]:
        prog, n, d, pat, mean, p50 = r
        by_n.setdefault(int(n), {})["%s_%s_%s" % (prog, d, pat)] = float(mean)
    if not by_n:
        return []
    w("")
    w("XDP program per packet, ns (BPF_PROG_TEST_RUN, mean of 20 000 frames of 200 B; "
      "one = one binding, spread = a random one per frame; ceiling = strip and redirect)")
    hdr = "%-9s %8s %10s %8s %10s %8s %14s" % (
        "bindings", "c2p one", "c2p spread", "p2c one", "p2c spread", "ceiling",
        "ceiling/c2p one")
    w(hdr)
    w("-" * len(hdr))
    res = []
    with open(os.path.join(out, "fpcost.dat"), "w") as f:
        f.write("# bindings %s\n" % " ".join("_".join(c) for c in FP_COLS))
        for n in sorted(by_n):
            v = [by_n[n].get("_".join(c)) for c in FP_COLS]
            ratio = v[4] / v[0] if v[0] and v[4] else None
            w("%-9d %8s %10s %8s %10s %8s %14s" % (n, *(
                "%.0f" % x if x else "-" for x in v), "%.2f" % ratio if ratio else "-"))
            f.write("%d %s\n" % (n, " ".join("%.1f" % x if x else "NaN" for x in v)))
            res.append(dict(bindings=n, ceiling_ratio=ratio, **by_n[n]))
    return res


def panel(sel, cmd):
    """A plot command's arguments, or an empty panel for loads BENCH_LOADS
    left out (gnuplot stops at a plot without points, and the plots after)."""
    return cmd if sel else "[1:10] [0:1] NaN notitle"


def write_plot(out, summary):
    """pps vs payload (loads with 100 channels) and vs channels (200 B)."""
    by_size = [e for e in summary["loads"] if e["channels"] == 100]
    by_chan = [e for e in summary["loads"] if e["payload"] == 200]
    for name, sel, key in (("size", by_size, "payload"), ("chan", by_chan, "channels")):
        with open(os.path.join(out, "plot-%s.dat" % name), "w") as f:
            f.write("# %s %s\n" % (key, " ".join(SERVERS)))
            for e in sorted(sel, key=lambda e: e[key]):
                f.write("%d %s\n" % (e[key], " ".join(
                    "%.0f" % e["servers"][s]["pps"] if s in e["servers"] else "NaN"
                    for s in SERVERS)))
    cols = " ,\\\n  ".join("'%%s' u 1:%d w lp lw 2 pt 7 t '%s'" % (i + 2, LABEL[s])
                           for i, s in enumerate(SERVERS))
    gp = """set terminal pngcairo size 1200,480 noenhanced
set output '{out}/pps.png'
set multiplot layout 1,2 title 'delivered pps at >= 99.9 % delivery (median)'
set grid
set yrange [0:*]
set key top right
set ylabel 'packets/s'
set format y '%.1s%c'
set xlabel 'payload bytes (100 channels)'
set logscale x
plot {size}
set xlabel 'channels (200 B payload)'
plot {chan}
unset multiplot
""".format(out=out, size=panel(by_size, cols.replace("%s", out + "/plot-size.dat")),
           chan=panel(by_chan, cols.replace("%s", out + "/plot-chan.dat")))
    if summary["fp_cost"]:
        gp += """set terminal pngcairo size 720,480 noenhanced
set output '{out}/fpcost.png'
set title 'XDP program ns per packet (BPF_PROG_TEST_RUN)'
set grid
set logscale x
set yrange [0:*]
set format y '%g'
set xlabel 'bindings'
set ylabel 'ns per packet'
set key top left
plot {cols}
""".format(out=out, cols=", ".join(
            "'%s/fpcost.dat' u 1:%d w lp lw 2 pt 7 t '%s'" % (out, i + 2, " ".join(c))
            for i, c in enumerate(FP_COLS)))
    gp += tls_mq_plot(out, summary)
    with open(os.path.join(out, "plot.gp"), "w") as f:
        f.write(gp)


def tls_mq_plot(out, summary):
    """tls-mq.png: TLS messages/s and CPU per message by server, both
    directions; the multi-queue pps and ns per packet by thread count. Only
    the panels with data (gnuplot stops at a plot without points)."""
    tls, mq = summary["tls"], summary["multi_queue"]
    panels = []
    if tls:
        with open(os.path.join(out, "plot-tls.dat"), "w") as f:
            f.write("# server to_peer_pps both_ways_pps to_peer_ns both_ways_ns\n")
            for srv in SERVERS:
                vals = [tls.get(k, {}).get(srv, {}).get(m)
                        for m in ("pps", "relay_ns_per_msg") for k in ("to_peer", "both_ways")]
                if any(v is not None for v in vals):
                    f.write('"%s" %s\n' % (LABEL[srv], " ".join(
                        "%.0f" % v if v is not None else "NaN" for v in vals)))
        panels += ["""set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set xtics rotate by -20
set xlabel ''
set key top right
set format y '%.1s%c'
set title 'TURN over TLS: messages relayed/s (median)'
set ylabel 'messages/s'
plot '{out}/plot-tls.dat' u 2:xtic(1) t 'to the peer', '' u 3 t 'both ways'
""", """set key top left
set format y '%g'
set title 'TURN over TLS: relay CPU per message'
set ylabel 'ns'
plot '{out}/plot-tls.dat' u 4:xtic(1) t 'to the peer', '' u 5 t 'both ways'
"""]
    if mq:
        with open(os.path.join(out, "plot-mq.dat"), "w") as f:
            f.write("# threads pps ns_per_pkt\n")
            for t in sorted(mq, key=int):
                f.write("%s %s %s\n" % (t, *("%.0f" % mq[t][k] if mq[t][k] is not None
                                              else "NaN" for k in ("pps", "ns_per_pkt"))))
        panels.append("""set style data linespoints
set xtics norotate 1
set xrange [0.5:2.5]
set key bottom right
set title 'XDP from one and two generator threads'
set xlabel 'generator threads (2-queue veth)'
set ylabel 'packets/s'
set format y '%.1s%c'
set y2label 'ns per packet'
set y2tics
set y2range [0:*]
plot '{out}/plot-mq.dat' u 1:2 lw 2 pt 7 t 'pps', '' u 1:3 axes x1y2 lw 2 pt 5 t 'ns/pkt'
""")
    if not panels:
        return ""
    return ("""set terminal pngcairo size {w},480 noenhanced
set output '{out}/tls-mq.png'
set multiplot layout 1,{n}
unset logscale
set grid
set yrange [0:*]
""" + "".join(panels) + "unset multiplot\n").format(out=out, n=len(panels),
                                                       w=500 * len(panels))

main()
