"""Turns the records of bench/run.sh into a table, JSON and the swarm plot.

usage: report.py RECORDS_TSV OUT_DIR

RECORDS_TSV lines are "=\tKEY\tVALUE" (a value) or "+\tKEY\tVALUE" (one more
element of the list KEY). Writes OUT_DIR/latest.json and OUT_DIR/swarm.svg
(matplotlib when installed, a hand-written SVG otherwise), prints the table
and the paths.
"""
import json
import os
import re
import statistics
import sys

MIB = 1 << 20
# EZIO 2.0.29, 1-on-1 over loopback on a 2-core machine of this kind
# (~954 MiB image on loop devices, 2.6-3.1 s): the reference point.
EZIO_REFERENCE_MIB_S = 330.0


def num(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def load(path):
    rec = {}
    with open(path) as f:
        for line in f:
            kind, key, value = line.rstrip("\n").split("\t", 2)
            if kind == "+":
                rec.setdefault(key, []).append(num(value))
            else:
                rec[key] = num(value)
    return rec


def med(xs):
    return statistics.median(xs) if xs else None


def rate_bits(text):
    """tc rate ("100mbit", "1gbit", "512kbit", "1000000bit") in bit/s."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)bit", str(text).lower())
    if not m:
        raise SystemExit("cannot read the rate %r (use [k|m|g]bit)" % text)
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]


def fmt(x, spec="%.1f", none="-"):
    return none if x is None else spec % x


def build(rec):
    out = {"meta": {k[5:]: v for k, v in rec.items() if k.startswith("meta.")}}

    if "ref.sha1_mib_s" in rec:
        tcp_gbit = med(rec["ref.tcp_loopback_gbit"])
        sha1 = med(rec["ref.sha1_mib_s"])
        tcp_mib = tcp_gbit * 1e9 / 8 / MIB
        limit = min(tcp_mib, sha1)
        out["reference"] = {
            "tcp_loopback_gbit": rec["ref.tcp_loopback_gbit"],
            "tcp_loopback_gbit_median": tcp_gbit,
            "tcp_loopback_mib_s": tcp_mib,
            "sha1_mib_s": rec["ref.sha1_mib_s"],
            "sha1_mib_s_median": sha1,
            "sha1_ezio_one_mib_s": rec.get("ref.sha1_ezio_one_mib_s"),
            "sha1_ezio_lanes_mib_s": rec.get("ref.sha1_ezio_lanes_mib_s"),
            "sha1_ezio_lanes_mib_s_median": med(rec.get("ref.sha1_ezio_lanes_mib_s", [])),
            "limit_mib_s": limit,
            "limit_verified_mib_s": 1 / (1 / limit + 1 / sha1),
            "model": "limit = min(TCP loopback, SHA-1 one core); verified: "
                     "1/(1/limit + 1/SHA-1), the re-read pass being sequential",
            "ezio_2_0_29_mib_s": EZIO_REFERENCE_MIB_S,
        }
    one = {}
    for label in ("tmpfs", "disk"):
        p = "1on1.%s." % label
        if p + "image_bytes" not in rec:
            continue
        mib = rec[p + "image_bytes"] / MIB
        r = {"backing": rec[p + "backing"], "image_bytes": rec[p + "image_bytes"],
             "pieces": rec[p + "pieces"], "piece_bytes": rec[p + "piece_bytes"],
             "seeder_peak_rss_kib": rec[p + "seeder_hwm_kib"],
             "receiver_peak_rss_kib": rec[p + "receiver_hwm_kib"],
             "checked": rec.get(p + "checked"), "warmup_s": rec.get(p + "warmup_s")}
        for v in ("plain", "verify"):
            runs = rec.get(p + "deploy_%s_s" % v, [])
            s = med(runs)
            r[v] = {"seconds": runs, "median_s": s, "mib_s": mib / s if s else None}
            if "reference" in out and s:
                lim = out["reference"]["limit_mib_s" if v == "plain" else "limit_verified_mib_s"]
                r[v]["ratio_to_limit"] = mib / s / lim
                r[v]["ratio_to_ezio_2_0_29"] = mib / s / EZIO_REFERENCE_MIB_S
        one[label] = r
    if one:
        out["one_on_one"] = one
    if "rss.idle_seconds" in rec:
        out["rss"] = {k[4:]: v for k, v in rec.items() if k.startswith("rss.")}
    if "maketorrent.image_bytes" in rec:
        mib = rec["maketorrent.image_bytes"] / MIB
        e, m = min(rec["maketorrent.ezio_s"]), min(rec["maketorrent.mktorrent_s"])
        out["maketorrent"] = {
            "image_bytes": rec["maketorrent.image_bytes"],
            "piece_bytes": rec["maketorrent.piece_bytes"], "threads": rec["maketorrent.threads"],
            "ezio_s": rec["maketorrent.ezio_s"], "mktorrent_s": rec["maketorrent.mktorrent_s"],
            "ezio_best_s": e, "mktorrent_best_s": m,
            "ezio_mib_s": mib / e, "mktorrent_mib_s": mib / m, "speedup": m / e}
    if "swarm.image_bytes" in rec:
        f = rec["swarm.image_bytes"]
        cap = rate_bits(rec["swarm.rate"]) / 8  # bytes/s, every host up and down
        unicast = rec.get("swarm.unicast_each", [])
        ns = sorted({int(k.split(".")[2]) for k in rec if k.startswith("swarm.ezio.")})
        rows = []
        for n in ns:
            # Fluid bound with seeder upload u_s, receivers' upload u_i and
            # download d_i all equal to the cap.
            tmin = max(f / cap, f / cap, n * f / (cap + n * cap))
            ez = med(rec["swarm.ezio.%d" % n])
            ezv = med(rec.get("swarm.ezio_verify.%d" % n, []))
            udp = med(rec.get("swarm.udpcast.%d" % n, []))
            uni = sum(unicast[:n]) if len(unicast) >= n else None
            rows.append({
                "n": n, "tmin_s": tmin, "ezio_s": ez, "ezio_runs": rec["swarm.ezio.%d" % n],
                "ezio_each_s": rec.get("swarm.ezio_each.%d" % n, []),
                "ezio_cpu_s": rec.get("swarm.ezio_cpu_s.%d" % n, []),
                "seeder_sent_images": rec.get("swarm.ezio_seeder_sent_images.%d" % n, []),
                "ezio_verify_s": ezv, "ezio_verify_runs": rec.get("swarm.ezio_verify.%d" % n, []),
                "ezio_verify_each_s": rec.get("swarm.ezio_verify_each.%d" % n, []),
                "ezio_verify_cpu_s": rec.get("swarm.ezio_verify_cpu_s.%d" % n, []),
                "udpcast_s": udp, "unicast_s": uni,
                "ezio_over_tmin": ez / tmin, "udpcast_over_tmin": udp / tmin if udp else None,
                "ezio_verify_over_tmin": ezv / tmin if ezv else None,
                "ezio_over_udpcast": ez / udp if udp else None})
        out["swarm"] = {
            "image_bytes": f, "payload_bytes": rec.get("swarm.payload_bytes"),
            "pieces": rec["swarm.pieces"], "piece_bytes": rec["swarm.piece_bytes"],
            "rate": rec["swarm.rate"], "cap_bytes_s": cap,
            "link_tcp_mbit": rec.get("swarm.link_tcp_mbit"),
            "seeder_peak_rss_kib": rec.get("swarm.seeder_hwm_kib"),
            "receiver_peak_rss_kib_max": rec.get("swarm.receiver_hwm_kib_max"),
            "peers_given": rec["swarm.peers_given"],
            "unicast_each_s": unicast, "unicast_tool": "netcat (nc -N), one receiver after another",
            "udpcast": "udp-sender --min-receivers N --nokbd, udp-receiver --nokbd to tmpfs",
            "ezio": "ezioctl deploy --wait --seed-after forever, all receivers at once (every "
                    "piece SHA-1-checked as it arrives); with --verify: also read back",
            "rows": rows}
    return out


def table(res):
    lines = []
    m = res["meta"]
    lines.append("ezio benchmark  %s  %s  %s cores  %s GiB  kernel %s  git %s  (%s)" % (
        m.get("date"), m.get("cpu"), m.get("cores"), m.get("mem_gib"), m.get("kernel"),
        m.get("git"), m.get("build_type")))
    lines.append("load average at start %s, at end %s; %s s in all%s" % (
        m.get("loadavg_start"), m.get("loadavg_end"), m.get("seconds"),
        "; QUICK run" if m.get("quick") else ""))
    ref = res.get("reference")
    if ref:
        lines.append("")
        lines.append("References (medians of 3):  loopback TCP %.1f Gbit/s = %.0f MiB/s;  "
                     "SHA-1 %.0f MiB/s on one core (sha_ni: %s, avx512: %s)" % (
                         ref["tcp_loopback_gbit_median"], ref["tcp_loopback_mib_s"],
                         ref["sha1_mib_s_median"], m.get("sha_ni"), m.get("avx512")))
        lines.append("Limit estimate  min(TCP, SHA-1) = %.0f MiB/s;  with the verify pass "
                     "%.0f MiB/s" % (ref["limit_mib_s"], ref["limit_verified_mib_s"]))
        if ref.get("sha1_ezio_lanes_mib_s_median"):
            lines.append("ezio's SHA-1, 16 pieces side by side: %.0f MiB/s on one core (runs: %s; "
                         "one at a time: %s): receivers of small pieces hash faster than the "
                         "estimate's SHA-1 term" % (
                             ref["sha1_ezio_lanes_mib_s_median"],
                             " ".join("%.0f" % x for x in ref["sha1_ezio_lanes_mib_s"]),
                             " ".join("%.0f" % x for x in ref["sha1_ezio_one_mib_s"])))
    for label, r in res.get("one_on_one", {}).items():
        lines.append("")
        lines.append("1-on-1 over loopback, loop devices on %s (%s), image %.0f MiB in %d "
                     "pieces of %g MiB; median of %d" % (
                         "tmpfs" if label == "tmpfs" else "disk", r["backing"],
                         r["image_bytes"] / MIB, r["pieces"], r["piece_bytes"] / MIB,
                         len(r["plain"]["seconds"])))
        lines.append("  %-22s %8s %9s %9s %11s   %s" % (
            "", "seconds", "MiB/s", "of limit", "vs EZIO 330", "runs (s)"))
        for v, name in (("plain", "deploy --wait"), ("verify", "deploy --wait --verify")):
            x = r[v]
            lines.append("  %-22s %8s %9s %9s %11s   %s" % (
                name, fmt(x["median_s"], "%.2f"), fmt(x["mib_s"], "%.0f"),
                fmt(x.get("ratio_to_limit"), "%.2f"),
                fmt(x.get("ratio_to_ezio_2_0_29"), "%.2fx"),
                " ".join("%.2f" % s for s in x["seconds"])))
        lines.append("  first (warm-up) deploy, not in the median: %.2f s" % r["warmup_s"])
        lines.append("  peak RSS: seeder %.1f MiB, receiver %.1f MiB (VmHWM)" % (
            r["seeder_peak_rss_kib"] / 1024, r["receiver_peak_rss_kib"] / 1024))
        rss = res.get("rss")
        if rss and label == "tmpfs":
            lines.append("  idle for %s s: receiver (no job) %.2f%% CPU, %.1f MiB RSS; seeder "
                         "(seeding, no peers) %.2f%% CPU, %.1f MiB RSS" % (
                             rss["idle_seconds"], rss["idle_receiver_cpu_pct"],
                             rss["idle_receiver_rss_kib"] / 1024, rss["idle_seeder_cpu_pct"],
                             rss["idle_seeder_rss_kib"] / 1024))
    mt = res.get("maketorrent")
    if mt:
        lines.append("")
        lines.append("make-torrent, %.0f MiB image file in tmpfs, %d MiB pieces, %d threads, "
                     "best of %d" % (mt["image_bytes"] / MIB, mt["piece_bytes"] // MIB,
                                     mt["threads"], len(mt["ezio_s"])))
        lines.append("  ezioctl make-torrent %6.2f s %6.0f MiB/s" % (
            mt["ezio_best_s"], mt["ezio_mib_s"]))
        lines.append("  mktorrent -t %d       %6.2f s %6.0f MiB/s   (ezio %.2fx as fast)" % (
            mt["threads"], mt["mktorrent_best_s"], mt["mktorrent_mib_s"], mt["speedup"]))
    sw = res.get("swarm")
    if sw:
        lines.append("")
        lines.append("Swarm: image %.1f MiB (%d pieces of %g MiB), every host capped at %s up "
                     "and down (one TCP stream: %s Mbit/s); peers given: %s" % (
                         sw["image_bytes"] / MIB, sw["pieces"], sw["piece_bytes"] / MIB,
                         sw["rate"], sw["link_tcp_mbit"], sw["peers_given"]))
        lines.append("  %3s %8s %8s %9s %9s %10s %9s %8s %10s %9s" % (
            "N", "T_min s", "ezio s", "+verify s", "udpcast s", "unicast s", "ezio/Tmin",
            "ezio/udp", "seed sent", "eziod CPU"))
        for r in sw["rows"]:
            lines.append("  %3d %8.1f %8.1f %9s %9s %10s %9.2f %8s %10s %9s" % (
                r["n"], r["tmin_s"], r["ezio_s"], fmt(r["ezio_verify_s"]), fmt(r["udpcast_s"]),
                fmt(r["unicast_s"]), r["ezio_over_tmin"], fmt(r["ezio_over_udpcast"], "%.2f"),
                fmt(med(r["seeder_sent_images"]), "%.2fx F"),
                fmt(med(r["ezio_cpu_s"]), "%.1f s")))
        lines.append("  seed sent: image copies the seeder uploaded (the fluid optimum sends one); "
                     "eziod CPU: CPU seconds all eziod used in the run (2 cores x ezio s "
                     "available, shared with the kernel's network work)")
        if sw["seeder_peak_rss_kib"]:
            lines.append("  peak RSS in the swarm: seeder %.1f MiB, largest receiver %.1f MiB" % (
                sw["seeder_peak_rss_kib"] / 1024, sw["receiver_peak_rss_kib_max"] / 1024))
        lines.append("  ezio: %s; udpcast: %s; unicast: %s (sum of the first N transfers)" % (
            sw["ezio"], sw["udpcast"], sw["unicast_tool"]))
    return "\n".join(lines)


def plot(res, path):
    sw = res["swarm"]
    rows = sw["rows"]
    ns = [r["n"] for r in rows]
    series = [("ezio", [r["ezio_s"] for r in rows], "#1f77b4", "o"),
              ("ezio --verify", [r.get("ezio_verify_s") for r in rows], "#9467bd", "D"),
              ("udpcast multicast", [r["udpcast_s"] for r in rows], "#d62728", "s"),
              ("sequential unicast (netcat)", [r["unicast_s"] for r in rows], "#7f7f7f", "^"),
              ("fluid lower bound", [r["tmin_s"] for r in rows], "#2ca02c", None)]
    title = "Deploy %.0f MiB to N receivers, every host %s up/down" % (
        sw["image_bytes"] / MIB, sw["rate"])
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return plot_by_hand(ns, series, title, path)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, ys, color, marker in series:
        pts = [(n, y) for n, y in zip(ns, ys) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, color=color,
                    marker=marker, linestyle="--" if marker is None else "-")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    from matplotlib.ticker import FixedLocator, NullFormatter
    lo = min(y for _, ys, _, _ in series for y in ys if y)
    hi = max(y for _, ys, _, _ in series for y in ys if y)
    ticks = [t for e in range(-1, 4) for t in (10 ** e, 2 * 10 ** e, 5 * 10 ** e)
             if lo / 1.5 <= t <= hi * 1.5]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.set_yticklabels(["%g" % t for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("receivers N")
    ax.set_ylabel("time until every receiver is done (s, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def plot_by_hand(ns, series, title, path):
    import math
    w, h, l, r, t, b = 640, 400, 60, 20, 40, 50
    ys = [y for _, s, _, _ in series for y in s if y]
    lo, hi = math.log10(min(ys) * 0.8), math.log10(max(ys) * 1.2)
    xs = [math.log2(n) for n in ns]
    xmax = max(xs) or 1

    def px(n):
        return l + (math.log2(n) / xmax) * (w - l - r)

    def py(y):
        return t + (1 - (math.log10(y) - lo) / (hi - lo)) * (h - t - b)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="13">%s</text>' % (l, title)]
    for n in ns:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (
            px(n), t, px(n), h - b))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(n), h - b + 15, n))
    for e in range(int(math.floor(lo)), int(math.ceil(hi)) + 1):
        for k in (1, 2, 5):
            y = k * 10 ** e
            if lo <= math.log10(y) <= hi:
                out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (
                    l, py(y), w - r, py(y)))
                out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (
                    l - 4, py(y) + 4, y))
    out.append('<text x="%d" y="%d" text-anchor="middle">receivers N</text>' % (
        (w + l) // 2, h - 12))
    out.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">'
               'seconds (log scale)</text>' % ((h) // 2, (h) // 2))
    for i, (name, s, color, marker) in enumerate(series):
        pts = [(px(n), py(y)) for n, y in zip(ns, s) if y]
        if pts:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>' % (
                color, ' stroke-dasharray="6 4"' if marker is None else "",
                " ".join("%.1f,%.1f" % p for p in pts)))
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (l + 10, t + 14 + 14 * i, color,
                                                                name))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(argv):
    rec_path, out_dir = argv
    res = build(load(rec_path))
    print(table(res))
    os.makedirs(out_dir, exist_ok=True)
    jpath = os.path.join(out_dir, "latest.json")
    with open(jpath, "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
        f.write("\n")
    print("")
    print("results: %s" % jpath)
    if "swarm" in res:
        ppath = os.path.join(out_dir, "swarm.svg")
        plot(res, ppath)
        print("plot:    %s" % ppath)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
