"""Renders bench/results.md from the raw results (bench/results.json).

Each target gets a verdict: met, or missed by how much. The reasons for the
misses, found by profiling, are in bench/ANALYSIS.md (written by hand: they
are findings, not measurements).
"""

import datetime
import json
import os
import sys

MIB = 1024


def g(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def verdict(value, limit, unit, lower_is_better=True, fmt="{:.3g}"):
    if value is None:
        return "not measured", ""
    ok = value <= limit if lower_is_better else value >= limit
    shown = fmt.format(value) + f" {unit}".rstrip()
    if ok:
        return "**met**", shown
    if limit:
        over = f"missed by {fmt.format(value - limit)} {unit} ({(value / limit - 1) * 100:.0f}% over)"
    else:
        over = f"missed ({shown})"
    return f"**{over}**", shown


def render(r):
    m = r["machine"]
    out = []
    w = out.append
    w("# xen-guest-agent benchmark results\n")
    if r.get("quick"):
        w("> **QUICK RUN** (`--quick`: 1 idle minute, fewer start-up runs): figures for "
          "development, not the committed full run.\n")
    w(f"- command: `{r['command']}`")
    w(f"- date: {m['date']}")
    w(f"- commit: `{m['commit']}` (branch `{m['branch']}`{', with uncommitted changes' if m['dirty'] else ''})")
    w(f"- machine: {m['nproc']} CPUs ({m['cpu']}), kernel {m['kernel']}, "
      f"load average at start {' '.join(m['loadavg_at_start'])}"
      + (f", at end {' '.join(r['loadavg_at_end'])}" if r.get("loadavg_at_end") else ""))
    w("- agent: release build (`cargo build --release`), "
      f"{r['agent_bytes']} bytes; each agent runs in a network namespace of its own "
      "(veth pairs, bridges), with a sysfs mounted for that namespace")
    for rr in r.get("reruns", []):
        w(f"- parts **{', '.join(rr['parts'])}** measured again by `{rr['command']}` on "
          f"{rr['machine']['date']} (commit `{rr['machine']['commit']}`, load average "
          f"{' '.join(rr['machine']['loadavg_at_start'])}): "
          + rr.get("note", "the first run of these parts was disturbed by other work on the machine"))
    w("- raw figures: `bench/results.json`; how each is taken: `bench/README.md`; "
      "why the misses: `bench/ANALYSIS.md`\n")
    w("This machine is shared by several engineers building at the same time on 2 cores: "
      "timings (start-up, latency, converge) vary with their load; CPU times and counts "
      "much less.\n")

    # Targets
    w("## Targets\n")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    rows = []
    idle_s = g(r, "idle", "stdout/plain")
    idle_x = g(r, "idle", "xenstore/plain")
    if idle_s:
        v, s = verdict(idle_s["VmRSS_kib"] / MIB, 2, "MiB")
        rows.append(("idle RSS <= 2 MiB (stdout publisher)",
                     f"{s} (anonymous {idle_s['RssAnon_kib']} KiB, file-backed {idle_s['RssFile_kib']} KiB), "
                     f"peak {idle_s['VmHWM_kib'] / MIB:.3g} MiB", v))
    if idle_x:
        v, s = verdict(idle_x["VmRSS_kib"] / MIB, 2, "MiB")
        rows.append(("idle RSS <= 2 MiB (xenstore publisher)",
                     f"{s} (anonymous {idle_x['RssAnon_kib']} KiB, file-backed {idle_x['RssFile_kib']} KiB)", v))
    for name, d, allowed in (("stdout", idle_s, 1), ("xenstore", idle_x, 2)):
        if d:
            v, s = verdict(d["threads_max_seen"], allowed, "")
            rows.append((f"threads ({name}): one for the agent's work"
                         + (" + at most one for blocking xenstore calls" if allowed == 2 else ""),
                         f"{d['threads']} at the end ({', '.join(d['thread_names'])}), at most "
                         f"{d['threads_max_seen']} seen; {d['threads_created_during_idle']} created while idle", v))
    for name, d in (("stdout", idle_s), ("xenstore", idle_x)):
        if d:
            mins = r["idle"]["minutes"]
            wake = d["ctxt_voluntary"] / mins
            # The memory timer: one wakeup a minute (default --memory-interval 60).
            v, s = verdict(wake, 1.0, "per minute", fmt="{:.2g}")
            rows.append((f"idle wakeups ({name}): none but the memory timer (1/minute)",
                         f"{s} voluntary context switches, "
                         f"{d['ctxt_nonvoluntary'] / mins:.2g}/min involuntary, "
                         f"{g(d, 'per_minute', 'syscalls', default='?')} syscalls/min", v))
    st = g(r, "startup", "stdout")
    if st and "median_ms" in st:
        v, s = verdict(st["median_ms"], 3, "ms")
        rows.append(("start-up <= 3 ms with 3 interfaces (stdout)",
                     f"median {s} over {st['runs']} runs (min {st['min_ms']}, p90 {st['p90_ms']})", v))
        v, s = verdict(st.get("processes_spawned"), 0, "")
        rows.append(("no child process (stdout)", f"{st.get('processes_spawned')} processes, "
                     f"{st.get('threads_spawned')} threads, {st.get('execve')} execve (its own)", v))
    stx = g(r, "startup", "xenstore")
    if stx and "median_ms" in stx:
        v, s = verdict(stx["median_ms"], 3, "ms")
        rows.append(("start-up <= 3 ms with 3 interfaces (xenstore, test xenstored)",
                     f"median {s} over {stx['runs']} runs", v))
        v, s = verdict(stx.get("processes_spawned"), 0, "")
        rows.append(("no child process (xenstore)", f"{stx.get('processes_spawned')} processes, "
                     f"{stx.get('threads_spawned')} threads", v))
    sc = r.get("scale", {})
    if "rss_after_start_kib" in sc:
        v, s = verdict(sc["rss_after_start_kib"] / MIB, 8, "MiB")
        rows.append(("1,000 interfaces: RSS <= 8 MiB", f"{s} after start-up "
                     f"(peak {sc['hwm_after_start_kib'] / MIB:.3g} MiB)", v))
        v, s = verdict(sc["startup_median_ms"], 50, "ms")
        rows.append(("1,000 interfaces: start-up <= 50 ms", f"median {s} over {r.get('scale_runs', '')} runs "
                     f"(min {sc['startup_min_ms']}, max {sc['startup_max_ms']})", v))
    if "burst" in sc:
        b = sc["burst"]
        v, s = verdict(b["cpu_per_event_us"], 10, "µs")
        rows.append(("<= 10 µs CPU per netlink event (burst of 10,000, one request per datagram)",
                     f"{s} ({b['cpu_ms']} ms for {b['changes']})", v))
        bp = sc.get("burst_packed")
        if bp:
            v, s = verdict(bp["cpu_per_event_us"], 10, "µs")
            rows.append(("<= 10 µs CPU per netlink event (10,000, 64 requests per datagram)",
                         f"{s} ({bp['cpu_ms']} ms for {bp['changes']})", v))
    lat = r.get("latency", {})
    for k in ("ipv4-add", "ipv6-add", "link-add", "link-remove", "ipv4-remove", "ipv6-remove"):
        if k in lat:
            v, s = verdict(lat[k]["p99_us"], 500, "µs", fmt="{:.0f}")
            rows.append((f"p99 latency <= 500 µs, change → stdout line: {k}",
                         f"p99 {s}, p50 {lat[k]['p50_us']:.0f} µs (after the kernel's ack: p99 "
                         f"{lat[k]['ack_to_line_p99_us']:.0f} µs, p50 {lat[k]['ack_to_line_p50_us']:.0f} µs)", v))
    for k in ("ipv4-add", "ipv6-add", "link-add", "link-remove"):
        if k in lat:
            v, s = verdict(lat[k]["ack_to_line_p99_us"], 500, "µs", fmt="{:.0f}")
            rows.append((f"(agent's part) p99 <= 500 µs, kernel's ack → stdout line: {k}", f"p99 {s}", v))
    if "overflow" in sc:
        o = sc["overflow"]
        ok = o["final_state_exact"] and o["converge_ms"] is not None
        v, s = verdict(o["converge_ms"] / 1000 if ok else None, 1, "s")
        rows.append(("after overflow, exact state within 1 s of resuming",
                     f"{o['converge_ms']} ms; published state equals `ip -j addr`: {o['final_state_exact']}",
                     v if ok else "**missed**"))
        both = o["link_removals_published"] == o["link_removals_requested"]
        rows.append(("link removals always published",
                     f"{o['link_removals_published']} of {o['link_removals_requested']} removed links "
                     f"reported after the overflow; {lat.get('changes_per_kind', '?')} of "
                     f"{lat.get('changes_per_kind', '?')} one by one" if "link-remove" in lat else "",
                     "**met**" if both else "**missed**"))
    xo = r.get("xenstore", {})
    if "requests" in xo:
        u = xo["requests"]["unchanged_writes"]
        rows.append(("xenstore: writes of changed nodes only (0 unchanged writes)",
                     f"{u} unchanged writes in {xo['changes']} changes "
                     f"({', '.join(sorted(set(xo['requests']['unchanged'])))})" if u else
                     f"0 in {xo['changes']} changes", "**met**" if u == 0 else f"**missed: {u} unchanged writes**"))
    sz = r.get("sizes", {})
    if "default" in sz and "bytes" in sz["default"]:
        v, s = verdict(sz["default"]["bytes"] / MIB / 1024, 2, "MiB")
        rows.append(("stripped binary <= 2 MiB (default features)", s, v))
    rows.extend(backend_target_rows(r))
    for name, value, v in rows:
        w(f"| {name} | {value} | {v} |")
    w("")

    # Details
    if "sizes" in r:
        w("## Binary size (stripped, release)\n")
        w("| features | bytes | MiB |")
        w("|---|---|---|")
        for k, d in sz.items():
            if "bytes" in d:
                w(f"| `{d['flags'] or '(default)'}` | {d['bytes']} | {d['bytes'] / MIB / 1024:.2f} |")
            else:
                w(f"| {k} | build failed: {d.get('error', '')[-200:]!r} | |")
        w("")
    if "idle" in r:
        w(f"## Idle ({r['idle']['minutes']} minutes, 3 interfaces)\n")
        w("Two instances per publisher ran at the same time: *plain* is observed through /proc and "
          "`perf stat` (no ptrace), *strace* under `strace -c -f` for the syscall names. "
          "Context switches are summed over every thread seen (threads that ended included).\n")
        w("| instance | VmRSS KiB | VmHWM KiB | anon KiB | threads | CPU ms | voluntary cs | involuntary cs | syscalls | xenstore requests |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for k, d in r["idle"].items():
            if isinstance(d, dict) and "VmRSS_kib" in d:
                w(f"| {k} | {d['VmRSS_kib']} | {d['VmHWM_kib']} | {d['RssAnon_kib']} | {d['threads']} "
                  f"(max {d['threads_max_seen']}) | {d['cpu_threads_ms']} | {d['ctxt_voluntary']} | "
                  f"{d['ctxt_nonvoluntary']} | {d.get('syscalls', '?')} | "
                  f"{g(d, 'xenstore_requests', 'total', default='-')} |")
        for k, d in r["idle"].items():
            if isinstance(d, dict) and d.get("strace"):
                calls = ", ".join(f"{n} {c}" for n, c in sorted(d["strace"].items(), key=lambda x: -x[1])
                                  if n != "total")
                w(f"\n- syscalls of {k}: {calls}")
            if isinstance(d, dict) and d.get("xenstore_requests", {}).get("kinds"):
                w(f"- xenstore requests of {k}: {d['xenstore_requests']['kinds']}")
        w("")
    if "startup" in r:
        w("## Start-up (3 interfaces: lo and a veth pair)\n")
        w("From the exec (timestamped in the child just before it) to `READY=1` on `NOTIFY_SOCKET`, "
          "which the agent sends after its first complete publication.\n")
        w("| publisher | runs | median ms | min | p90 | max | RSS at ready KiB | threads at ready | processes spawned |")
        w("|---|---|---|---|---|---|---|---|---|")
        for k, d in r["startup"].items():
            if "median_ms" in d:
                w(f"| {k} | {d['runs']} | {d['median_ms']} | {d['min_ms']} | {d['p90_ms']} | {d['max_ms']} | "
                  f"{d['rss_at_ready_kib']} | {d['threads_at_ready']} ({', '.join(d.get('thread_names', []))}) "
                  f"| {d.get('processes_spawned')} |")
        w("")
    if lat and "error" not in lat:
        w(f"## Latency (stdout publisher, {lat['changes_per_kind']} changes of each kind)\n")
        w("*change → line*: from just before the rtnetlink request is sent (by this script's own "
          "netlink socket) to the arrival of the agent's JSON line on its stdout pipe; it includes "
          "the kernel's handling of the request. *ack → line*: from the kernel's acknowledgement of "
          "the request; for a link removal the kernel sends its notification only at the end "
          "of the removal (after an RCU grace period), so this is the agent's part.\n")
        w("| change | p50 µs | p99 µs | max µs | ack → line p50 | ack → line p99 |")
        w("|---|---|---|---|---|---|")
        for k, d in lat.items():
            if isinstance(d, dict) and "p50_us" in d:
                w(f"| {k} | {d['p50_us']} | {d['p99_us']} | {d['max_us']} | {d['ack_to_line_p50_us']} | "
                  f"{d['ack_to_line_p99_us']} |")
        w("")
    if sc and "error" not in sc:
        w(f"## Scale ({sc.get('links')} links, {sc.get('addresses')} addresses: 500 veth pairs, "
          "down, 1 IPv4 + 2 IPv6 each, and lo)\n")
        w(f"- start-up: median {sc.get('startup_median_ms')} ms (min {sc.get('startup_min_ms')}, "
          f"max {sc.get('startup_max_ms')}); RSS {sc.get('rss_after_start_kib')} KiB, peak "
          f"{sc.get('hwm_after_start_kib')} KiB; first publication equals the kernel's state: "
          f"{sc.get('initial_state_exact')}")
        w(f"- the same start-up with `--sysfs` an empty directory (the per-interface sysfs lookups fail "
          f"at once): median {sc.get('startup_without_sysfs_median_ms')} ms")
        for key in ("burst", "burst_packed"):
            b = sc.get(key)
            if b:
                w(f"- burst of {b['changes']} ({b['kind']}, {b['sent']}): sent in {b['send_ms']} ms, "
                  f"all published after {b['converge_ms']} ms; agent CPU {b['cpu_ms']} ms = "
                  f"**{b['cpu_per_event_us']} µs per event**; RSS {b['VmRSS_kib']} KiB, peak {b['VmHWM_kib']} KiB; "
                  f"agent warnings {b['agent_warnings']}")
        w(f"- state after both bursts equals `ip -j addr`: {sc.get('burst_state_exact')}")
        o = sc.get("overflow")
        if o:
            w(f"- forced overflow: agent stopped (SIGSTOP) during {o['changes']} changes "
              f"({o['address_additions']} address additions, {o['link_removals_requested'] // 2} veth pair "
              f"deletions = {o['link_removals_requested']} links); after SIGCONT the published state "
              f"equalled `ip -j addr` after **{o['converge_ms']} ms** and stayed so "
              f"(exact: {o['final_state_exact']}, missing {o['missing_addresses']}, extra "
              f"{o['extra_addresses']}); {o['link_removals_published']}/{o['link_removals_requested']} "
              f"link removals published; CPU {o['cpu_ms']} ms; peak RSS {o['VmHWM_kib']} KiB")
            for line in o.get("agent_log", []):
                w(f"  - agent: `{line}`")
        w("")
    if xo and "error" not in xo:
        w("## xenstore requests per change (test xenstored, std schema)\n")
        w(f"A veth named eth0 with the MAC of VIF 0, made a VIF by a fake sysfs (`--sysfs`); "
          f"{xo['changes_per_kind']} IPv4 and IPv6 additions and removals, one at a time, each "
          f"waited for in xenstore. Counted at the server, guest requests only.\n")
        w(f"- first publication: {xo['first_publication']['total']} requests {xo['first_publication']['kinds']}, "
          f"unchanged writes {xo['first_publication']['unchanged_writes']}")
        w(f"- {xo['changes']} changes: {xo['requests']['total']} requests = **{xo['requests_per_change']} per change** "
          f"({', '.join(f'{k} {v}' for k, v in xo['per_change'].items())} per change); "
          f"unchanged writes: **{xo['requests']['unchanged_writes']}**")
        w("- change → node in xenstore: " + "; ".join(
            f"{k} p50 {v['p50_us']} µs, p99 {v['p99_us']} µs" for k, v in xo["latency"].items()))
        w("")
    out.extend(backends_section(r))
    for k in ("sizes", "idle", "startup", "latency", "scale", "xenstore", "backends", "portable"):
        if isinstance(r.get(k), dict) and "error" in r[k]:
            w(f"- **{k} failed**: {r[k]['error']}")
    out.extend(soak_section())
    out.extend(vm_section())
    return "\n".join(out) + "\n"


def backend_target_rows(r):
    """The Targets table's rows for the xenstore backends (issue 10): one
    thread, at most 10 syscalls a minute idle, start-up within 3 ms."""
    rows = []
    b = r.get("backends", {})
    idle = b.get("idle", {})
    label = {"native": "native backend", "portable": "portable binary (native backend)"}
    for name in ("native", "portable"):
        d = idle.get(f"{name}/plain")
        if d:
            v, s = verdict(d["threads_max_seen"], 1, "")
            rows.append((f"threads, {label[name]} (idle, xenstore): exactly 1",
                         f"{d['threads']} at the end ({', '.join(d['thread_names'])}), at most "
                         f"{d['threads_max_seen']} seen; {d['threads_created']} created while idle", v))
            v, s = verdict(g(d, "per_minute", "syscalls"), 10, "per minute", fmt="{:.3g}")
            rows.append((f"idle syscalls, {label[name]}: <= 10 a minute",
                         f"{s}; {g(d, 'per_minute', 'xenstore_requests')} xenstore requests a minute", v))
    for name in ("native", "portable"):
        d = b.get(name)
        if d and "startup_median_ms" in d:
            v, s = verdict(d["startup_median_ms"], 3, "ms")
            rows.append((f"start-up <= 3 ms to the first complete publication, {label[name]} "
                         "(3 interfaces, test xenstored)",
                         f"median {s} over {d['runs']} runs (min {d['startup_min_ms']}, p90 {d['startup_p90_ms']})", v))
    p = g(r, "portable", "musl")
    if p and "Rss_kib" in p:
        v, s = verdict(p["Rss_kib"] / MIB, 1.5e6 / 1024 / 1024, "MiB")
        rows.append(("portable binary: RSS below xe-guest-utilities' 1.5 MB (here, stdout publisher)",
                     f"{p['Rss_kib']} KiB = {p['Rss_kib'] * 1024 / 1e6:.2f} MB (Pss {p['Pss_kib']} KiB)", v))
        rows.append(("portable binary: no shared library, no interpreter",
                     f"NEEDED: {p['needed'] or 'none'}; interpreter: {p['interp'] or 'none'}",
                     "**met**" if not p["needed"] and not p["interp"] else "**missed**"))
    return rows


def backends_section(r):
    """The per-backend figures, and the portable binary's candidates."""
    out = []
    b = r.get("backends")
    if b and "error" not in b:
        out.append("## xenstore backends (test xenstored, std schema, 3 interfaces)\n")
        out.append("The default build with `--xenstore-backend native` and `--xenstore-backend libxenstore` "
                   "(libxenstore.so.4 of this machine, watches on the native connection), and the "
                   "portable binary (native only). Start-up: exec → `READY=1` (sent after the first "
                   "complete publication). Round trips: replies read after requests were written on "
                   "one of the xenstore sockets, counted in an `strace -f -yy` of the reads and writes; "
                   "per change set: an IPv4 address added to or removed from VIF 0, one at a time, "
                   "each waited for in xenstore (a traced run less one without changes).\n")
        out.append("| backend | start-up median ms (min, p90) | first publication: requests | round trips "
                   "| socket syscalls | per change set: requests | round trips | socket syscalls |")
        out.append("|---|---|---|---|---|---|---|---|")
        for name in ("native", "libxenstore", "portable"):
            d = b.get(name)
            if d and "startup_median_ms" in d:
                f, c = d["first_publication"], d["per_change_set"]
                out.append(f"| {name} | {d['startup_median_ms']} ({d['startup_min_ms']}, {d['startup_p90_ms']}) | "
                           f"{f['requests']} | {f['round_trips']} | {f['socket_syscalls']} | {c['requests']} | "
                           f"{c['round_trips']} | {c['socket_syscalls']} |")
            elif d:
                out.append(f"| {name} | {d.get('error', '?')} | | | | | | |")
        for name in ("native", "libxenstore"):
            d = b.get(name)
            if d and "per_change_set" in d:
                out.append(f"\n- requests per change set, {name}: {d['per_change_set']['kinds']}")
        idle = b.get("idle", {})
        if idle:
            out.append(f"\n### Idle ({idle['minutes']} minutes, side by side)\n")
            out.append("| instance | VmRSS KiB | Pss KiB (anon, file) | private dirty KiB | threads (max seen, created) | syscalls/min | xenstore requests/min |")
            out.append("|---|---|---|---|---|---|---|")
            for k, d in idle.items():
                if isinstance(d, dict) and "VmRSS_kib" in d:
                    out.append(f"| {k} | {d['VmRSS_kib']} | {d.get('Pss_kib')} ({d.get('Pss_Anon_kib')}, "
                               f"{d.get('Pss_File_kib')}) | {d.get('Private_Dirty_kib')} | {d['threads']} "
                               f"({d['threads_max_seen']}, {d['threads_created']}) | "
                               f"{g(d, 'per_minute', 'syscalls', default='?')} | "
                               f"{g(d, 'per_minute', 'xenstore_requests', default='?')} |")
            for k, d in idle.items():
                if isinstance(d, dict) and d.get("strace"):
                    calls = ", ".join(f"{n} {c}" for n, c in sorted(d["strace"].items(), key=lambda x: -x[1])
                                      if n != "total")
                    out.append(f"\n- syscalls of {k} in {idle['minutes']} minutes: {calls}")
        out.append("")
    p = r.get("portable")
    if p and "error" not in p:
        out.append("## The portable binary and its candidates (stdout publisher, 3 interfaces)\n")
        out.append("`default`: the default build (glibc, dynamic); `musl`: `packaging/portable.sh` "
                   "(x86_64-unknown-linux-musl, static-pie, the one packaged); `glibc-static`: the same "
                   "features built `-C target-feature=+crt-static` for x86_64-unknown-linux-gnu. "
                   "Memory: median of 5 runs, a second after `READY=1`.\n")
        out.append("| build | bytes | NEEDED | interpreter | start-up median ms (min, p90) | Rss KiB | Pss KiB | anon KiB | file KiB |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for name, d in p.items():
            if "bytes" in d:
                out.append(f"| {name} | {d['bytes']} | {', '.join(d['needed']) or 'none'} | {d['interp'] or 'none'} | "
                           f"{d['startup_median_ms']} ({d['startup_min_ms']}, {d['startup_p90_ms']}) | "
                           f"{d['Rss_kib']} | {d['Pss_kib']} | {d['RssAnon_kib']} | {d['RssFile_kib']} |")
            else:
                out.append(f"| {name} | {d.get('error')} | | | | | | | |")
        out.append("")
    return out


SOAK_HEADING = "## Chaos soak (tests/soak)"


def soak_file():
    """Where bench/soak.sh left the soak's figures."""
    return os.environ.get("XGA_SOAK_JSON", os.path.join(os.path.dirname(os.path.abspath(__file__)), "soak.json"))


def soak_section():
    """The chaos soak's figures (bench/soak.json, written by bench/soak.sh)."""
    path = soak_file()
    out = [SOAK_HEADING + "\n"]
    try:
        soak = json.load(open(path))
    except (OSError, ValueError):
        out.append(f"No figures: `{path}` does not exist. Run `sudo bench/soak.sh` first.\n")
        return out
    m = soak.get("machine", {})
    out.append(f"`{soak.get('command', 'bench/soak.sh')}` on {m.get('date', '?')}, commit "
               f"`{m.get('commit', '?')}`{' (with uncommitted changes)' if m.get('dirty') else ''}, "
               f"load average at start {' '.join(m.get('loadavg_at_start', []))}. The release agent "
               "against the test xenstored, in a network namespace with a fake VIF sysfs, under every "
               "action and fault at once (tests/soak/README.md); after each quiet period the tree is "
               "compared with what the contract derives from the kernel's state, the op log and the slot "
               "rules are checked, and RSS, descriptors and threads must not grow after warm-up.\n")
    out.append("| run | minutes | checks passed / failed | actions | faults | network changes | "
               "slowest convergence | agent RSS / fds / threads, start → end | agent starts | crashes | "
               "stale / missing / wrong nodes, slot and op-log violations |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    res = lambda r: f"{r['rss_kib'] / 1024:.2f} MiB / {r['fds']} / {r['threads']}" if r else "?"
    for r in soak.get("runs", []):
        run, agent, checks = r["run"], r["agent"], r["checks"]
        bad = (f"{r['stale_nodes']} / {r['missing_nodes']} / {r['wrong_nodes']}, "
               f"{r['slot_violations']}, {r['oplog']['violations']}")
        out.append(f"| seed {run['seed']}, {run['schema']}, {run['toolstack']} | {run['duration_s'] / 60:.1f} | "
                   f"{checks['passed']} / {checks['failed']} | {r['actions_total']} | {r['faults_total']} | "
                   f"{r['network_changes']} | {r['convergence_ms']['slowest']} ms (median "
                   f"{r['convergence_ms']['median']}) | {res(agent['start'])} → {res(agent['end'])} | "
                   f"{agent['starts']} | {agent['crashes']} | {bad} |")
    out.append("")
    for r in soak.get("runs", []):
        run = r["run"]
        verdict = ("**passed**" if run.get("passed") else
                   f"**failed** ({len(r.get('failures', []))} failed checks; first: "
                   f"{(r.get('failures') or [{}])[0].get('what', '?')})")
        out.append(f"- seed {run['seed']}, {run['schema']}: {verdict}; crashes {r['agent']['crashes']} "
                   f"(must be 0), stale or missing nodes {r['stale_nodes'] + r['missing_nodes']} (must be 0)")
        out.append("  - actions: " + ", ".join(f"{k} {v}" for k, v in sorted(r["actions"].items())))
        out.append("  - faults: " + ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())))
    out.append("")
    return out


def replace_soak_section(md_path):
    """Put the soak's section into an existing results.md, the rest untouched."""
    text = open(md_path).read()
    section = "\n".join(soak_section()) + "\n"
    start = text.find(SOAK_HEADING)
    if start < 0:
        # Before the real-guest section, as render() orders them.
        start = text.find("## Real Xen guest")
        end = start
        if start < 0:
            start = end = len(text)
    else:
        nxt = text.find("\n## ", start + len(SOAK_HEADING))
        end = len(text) if nxt < 0 else nxt + 1
    open(md_path, "w").write(text[:start] + section + text[end:])


def vm_bench_file():
    """Where the VM tier (tests/vm/run.sh) left its XGA-BENCH lines."""
    if os.environ.get("XGA_VM_BENCH_FILE"):
        return os.environ["XGA_VM_BENCH_FILE"]
    cache = os.environ.get("XGA_CACHE_DIR",
                           os.path.expanduser("~/.cache/xen-guest-agent-tests"))
    return os.path.join(cache, "vm", "bench.txt")


def vm_section():
    """The idle figures measured inside a real Xen guest by the VM tier."""
    path = vm_bench_file()
    out = ["## Real Xen guest (VM tier)\n"]
    try:
        lines = open(path).read().splitlines()
        when = datetime.datetime.fromtimestamp(
            os.path.getmtime(path), datetime.timezone.utc).isoformat(timespec="seconds")
    except OSError:
        out.append(f"No figures: `{path}` does not exist. Run `sudo tests/vm/run.sh bench` "
                   "(or the README's test command) first.\n")
        return out
    last = {}
    for line in lines:
        fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        key = (fields.get("boot"), fields.get("scenario"), fields.get("phase"))
        merged = dict(last.get(key, ({}, ""))[0])
        merged.update(fields)
        last[key] = (merged, line)
    # The systemd guest's figures (sd-bench: the package under its unit)
    # when the run has them, else the busybox guest's (bench).
    src = ("deb12", "sd-bench") if ("deb12", "sd-bench", "idle") in last else ("pv", "bench")
    start = last.get(src + ("start",), ({}, ""))[0]
    idle = last.get(src + ("idle",), ({}, ""))[0]
    strace = last.get(src + ("strace",), ({}, ""))[0] or idle
    by_call = last.get(src + ("strace-by-call",), ({}, ""))[1]
    lat = last.get(src + ("latency",), ({}, ""))[0]
    rss_mib = lambda k: f"{int(k) / 1024:.2f} MiB" if k else "?"
    where = ("the package installed with apt in a Debian 12 PV guest booted from its Xen PV disk, "
             "started by systemd under its unit (`tests/vm/run.sh deb12 sd-bench`; the CPU and "
             "wake-up figures are taken with `strace -c` attached, which inflates them)"
             if src[0] == "deb12" else
             "the release agent from the .deb, started as its unit starts it, in a busybox "
             "PV guest (`tests/vm/run.sh bench`)")
    out.append(f"Measured by the VM tier (figures in `{path}`, written {when}): {where}; a Debian "
               "6.1 kernel on Xen 4.17 under QEMU TCG (no KVM: CPU times and latencies are "
               "inflated), publishing to the real xenstored through /dev/xen/xenbus. The other "
               "agents' figures are the earlier measurements quoted in the issue.\n")
    out.append("| agent | RSS after start | RSS after an idle minute | threads | CPU, idle minute | "
               "wakeups (voluntary cs), idle minute | syscalls per idle minute |")
    out.append("|---|---|---|---|---|---|---|")
    out.append(f"| xen-guest-agent (this) | {rss_mib(start.get('rss_kib'))} | "
               f"{rss_mib(idle.get('rss_kib'))} | {idle.get('threads', '?')} "
               f"({idle.get('thread_names', '')}) | {idle.get('cpu_ms', '?')} ms | "
               f"{idle.get('vcsw_delta', '?')} | {strace.get('syscalls', '?')} |")
    out.append("| xe-guest-utilities | 1.5 MB (2.8 MB after 15 min) | | 8 | | | 616 (with its children) |")
    out.append("| earlier Rust agent | 4.0 MB | | 2 | | | 36 |")
    out.append("")
    rss = int(idle.get("rss_kib", 0) or 0)
    if rss:
        verdict = ("**met**" if rss * 1024 < 1_500_000 else
                   f"**missed by {(rss * 1024 - 1_500_000) / 1e6:.2f} MB**: the RSS is mostly shared, "
                   "file-backed pages of libc and of the binary (see ANALYSIS.md, idle RSS)")
        out.append(f"- target: idle RSS below xe-guest-utilities' 1.5 MB in the real guest: {verdict}")
    if by_call:
        out.append(f"- syscalls of the idle minute by call: `{by_call.split('strace-by-call ', 1)[-1]}`")
    if lat:
        out.append(f"- `ip addr add` in the guest → node in dom0 (includes starting `ip` under TCG "
                   f"and dom0's check): median/max {lat.get('add_ms_median/max', '?')} ms; "
                   f"`ip addr del` → node gone: {lat.get('del_ms_median/max', '?')} ms")
    for (boot, scen, phase), (fields, _) in sorted(last.items(), key=lambda kv: str(kv[0])):
        if boot not in SYSTEMD_BOOTS:
            for k in ("start_to_updated_s", "restore_to_updated_s", "restore_to_complete_s"):
                if k in fields:
                    out.append(f"- {k.replace('_', ' ')} ({boot} boot, {scen}): {fields[k]} s")
    out.append("")
    out.extend(vm_systemd_section(last))
    return out


# The VM tier's systemd guests (booted from a Debian root on a Xen PV disk,
# the package installed with apt): boot name -> what it is.
SYSTEMD_BOOTS = {"deb12": "Debian 12, PV", "deb12-pvh": "Debian 12, PVH", "deb11": "Debian 11, PV"}


def vm_systemd_section(last):
    """The figures under the unit in the VM tier's systemd guests."""
    get = lambda boot, scen, phase=None: last.get((boot, scen, phase), ({}, ""))[0]
    idle = get("deb12", "sd-bench", "idle")
    if not any(b in SYSTEMD_BOOTS for b, _, _ in last):
        return ["No figures from the systemd guests (`sudo tests/vm/run.sh deb12 sd-bench`).\n"]
    out = ["### Under the unit, in systemd guests\n",
           "The package (`apt install ./xen-guest-agent_*.deb`, its dependency `libxenstore4` from "
           "Debian) started by its maintainer scripts under its hardened unit, in a Debian root "
           "booted from a Xen PV disk with systemd as PID 1 (`tests/vm/run.sh deb12 sd-bench`). "
           "Idle figures over one window with `strace -c -f` attached (the syscall count); "
           "xenstore requests counted by dom0's xenstored (its trace), the guest's less the "
           "harness's own.\n"]
    xs = get("deb12", "sd-bench", "xenstore")
    if idle:
        w = float(idle.get("window_s", 60) or 60)
        per_min = lambda n: f"{float(n) * 60 / w:.1f}" if n not in (None, "") else "?"
        kib = lambda k: f"{int(k) / 1024:.2f} MiB" if k else "?"
        out.append("| figure (Debian 12 PV guest, idle) | value |")
        out.append("|---|---|")
        out.append(f"| RSS | {kib(idle.get('rss_kib'))} (anonymous {idle.get('rss_anon_kib', '?')} KiB, "
                   f"file-backed {idle.get('rss_file_kib', '?')} KiB; peak {kib(idle.get('hwm_kib'))}) |")
        out.append(f"| PSS | {kib(idle.get('pss_kib'))} |")
        out.append(f"| threads | {idle.get('threads', '?')} ({idle.get('thread_names', '')}) |")
        out.append(f"| syscalls a minute | {per_min(idle.get('syscalls'))} ({idle.get('syscalls', '?')} in "
                   f"{idle.get('window_s', '?')} s) |")
        out.append(f"| xenstore requests a minute | {xs.get('xs_requests_per_min', 'not measured')}"
                   f"{' (' + xs['kinds'] + ')' if xs.get('kinds') else ''} |")
        out.append("")
    out.append("")
    out.append("| boot | boot to READY=1 (guest clock) | new domain to `data/updated` (dom0) | "
               "install to `data/updated` | restore to complete tree | `systemd-analyze security` |")
    out.append("|---|---|---|---|---|---|")
    for boot, what in SYSTEMD_BOOTS.items():
        f = {}
        for (b, _scen, _phase), (fields, _) in last.items():
            if b == boot:
                f.update({k: v for k, v in fields.items() if k not in ("boot", "scenario", "phase")})
        if f:
            s = lambda k: f"{f[k]} s" if k in f else "-"
            out.append(f"| {boot} ({what}) | {s('boot_to_ready_s')} | {s('reboot_domain_to_updated_s')} | "
                       f"{s('install_to_updated_s')} | {s('restore_to_complete_s')} | "
                       f"{f.get('exposure', '-').replace('_', ' ')} |")
    out.append("")
    out.append("Boot to READY=1: `ActiveEnterTimestampMonotonic` of the unit after `xl reboot`, on the "
               "guest's CLOCK_MONOTONIC (from its kernel's start; READY=1 follows the first complete "
               "publication); new domain to `data/updated`: from dom0 seeing the rebooted domain to "
               "the node (includes the domain build). Under TCG, 10x or more what hardware takes.")
    soak_sr = get("deb12", "soak", "soak-save-restore")
    soak_net = get("deb12", "soak", "soak-network")
    after = get("deb12", "soak", "after-soak")
    if soak_sr or soak_net:
        out.append(f"- soak (issue 14, real Xen): {soak_sr.get('cycles', '?')} `xl save` + `xl restore` "
                   f"cycles in {soak_sr.get('seconds', '?')} s and {soak_net.get('cycles', '?')} "
                   f"`xl network-attach` + `network-detach` cycles in {soak_net.get('seconds', '?')} s, "
                   "with address churn, the whole tree checked after each step; the agent then: RSS "
                   f"{after.get('rss_kib', '?')} KiB (idle before: {idle.get('rss_kib', '?')} KiB), "
                   f"threads {after.get('threads', '?')}")
    out.append("")
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--soak-section":
        replace_soak_section(sys.argv[2])
    else:
        print(render(json.load(open(sys.argv[1]))))
