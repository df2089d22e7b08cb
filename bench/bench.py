#!/usr/bin/env python3
"""The benchmark suite of xen-guest-agent (see bench/README.md).

Run through bench/run.sh, which builds the release binaries first. Every
agent runs in a network namespace this script creates (and deletes), with a
sysfs mounted for that namespace, so that nothing of the host's network is
touched or seen. Python 3.11 standard library only; needs root, iproute2,
nsenter, and perf or strace for the syscall counts.
"""

import argparse
import ctypes
import datetime
import fcntl
import ipaddress
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
AGENT = os.path.join(TARGET, "release", "xen-guest-agent")
XSD = os.path.join(TARGET, "release", "examples", "bench_server")
# The portable binary (packaging/portable.sh) and the static glibc
# candidate it was chosen against (bench/run.sh builds both).
PORTABLE = os.path.join(TARGET, "x86_64-unknown-linux-musl", "release", "xen-guest-agent")
GLIBC_STATIC = os.path.join(TARGET, "x86_64-unknown-linux-gnu", "release", "xen-guest-agent")
MIB = 1024 * 1024

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
F_SETPIPE_SZ = 1031


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def now():
    return time.monotonic_ns()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# --------------------------------------------------------------------------
# Network namespaces


class Netns:
    """A network namespace of our own, with lo up and a sysfs mounted for it
    (the agent reads /sys/class/net/<if> to identify VIFs and bridges)."""

    count = 0

    def __init__(self, tag):
        Netns.count += 1
        self.name = f"xgabench-{os.getpid()}-{Netns.count}-{tag}"
        run(["ip", "netns", "add", self.name])
        self.path = f"/run/netns/{self.name}"
        self.fd = os.open(self.path, os.O_RDONLY)
        self.sysfs = tempfile.mkdtemp(prefix="xgabench-sys-")
        # nsenter --net only: the mount lands in our mount namespace, and a
        # sysfs mount shows the network namespace of the one who mounts it.
        run(["nsenter", f"--net={self.path}", "mount", "-t", "sysfs", "sysfs", self.sysfs])
        self.ip("link", "set", "lo", "up")

    def ip(self, *args, **kw):
        return run(["ip", "-n", self.name, *args], **kw)

    def batch(self, lines):
        """Run many ip commands in one process (-force: go on after errors)."""
        if lines:
            run(["ip", "-n", self.name, "-force", "-batch", "-"],
                input="\n".join(lines) + "\n", text=True)

    def addrs(self):
        """The kernel's view: {index: name}, {(index, address, prefix)}."""
        out = run(["ip", "-n", self.name, "-j", "addr"], capture_output=True, text=True).stdout
        links, addrs = {}, set()
        for i in json.loads(out):
            links[i["ifindex"]] = i["ifname"]
            for a in i.get("addr_info", []):
                addrs.add((i["ifindex"], a["local"], a["prefixlen"]))
        return links, addrs

    def index(self, name):
        out = run(["ip", "-n", self.name, "-j", "link", "show", name],
                  capture_output=True, text=True).stdout
        return json.loads(out)[0]["ifindex"]

    def close(self):
        subprocess.run(["umount", self.sysfs], check=False)
        os.rmdir(self.sysfs)
        os.close(self.fd)
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def with_veth_pair(ns, a="eth0", b="peer0", mac=None):
    """lo + one veth pair, up: 3 interfaces."""
    ns.ip("link", "add", a, "type", "veth", "peer", "name", b)
    if mac:
        ns.ip("link", "set", a, "address", mac)
    ns.ip("link", "set", a, "up")
    ns.ip("link", "set", b, "up")
    ns.ip("addr", "add", "192.0.2.1/24", "dev", a)


def fake_vif_sysfs(names_to_vif):
    """A sysfs tree in which the named interfaces are netfront VIFs (devtype
    vif, nodename device/vif/<id>), for the xenstore publisher's std schema,
    which only publishes the addresses of VIFs."""
    root = tempfile.mkdtemp(prefix="xgabench-fakesys-")
    for name, vif in names_to_vif.items():
        d = os.path.join(root, "class", "net", name, "device")
        os.makedirs(d)
        with open(os.path.join(d, "devtype"), "w") as f:
            f.write("vif\n")
        with open(os.path.join(d, "nodename"), "w") as f:
            f.write(f"device/vif/{vif}\n")
    return root


# --------------------------------------------------------------------------
# Netlink: changes made by this process, timestamped just before the request

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR = 16, 17, 20, 21
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND = 3, 18, 1


def nlattr(kind, data):
    a = struct.pack("HH", 4 + len(data), kind) + data
    return a + b"\0" * ((4 - len(a) % 4) % 4)


class Netlink:
    """An rtnetlink socket in a namespace (created there with setns, then
    this thread goes back home)."""

    def __init__(self, ns):
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        if libc.setns(ns.fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        finally:
            libc.setns(home, CLONE_NEWNET)
            os.close(home)
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
        self.seq = 0
        self.packing = None

    def packed(self, requests, per_datagram=64):
        """Send requests (callables making them) several per datagram: the
        kernel processes them back to back, as fast as it can."""
        self.packing = []
        for r in requests:
            r()
        msgs, self.packing = self.packing, None
        for i in range(0, len(msgs), per_datagram):
            self.sock.send(b"".join(msgs[i:i + per_datagram]))

    def _send(self, kind, flags, body, ack):
        self.seq += 1
        f = NLM_F_REQUEST | flags | (NLM_F_ACK if ack else 0)
        msg = struct.pack("IHHII", 16 + len(body), kind, f, self.seq, 0) + body
        if self.packing is not None:
            self.packing.append(msg)
            return None, None
        t0 = now()
        self.sock.send(msg)
        if not ack:
            return t0, None
        while True:
            data = self.sock.recv(65536)
            _, t, _, seq, _ = struct.unpack_from("IHHII", data)
            if t == NLMSG_ERROR and seq == self.seq:
                err = struct.unpack_from("i", data, 16)[0]
                if err:
                    raise OSError(-err, os.strerror(-err))
                return t0, now()

    def addr(self, add, index, address, ack=True):
        """Add or remove an address `a.b.c.d/len` or `x::y/len` (IPv6: no
        duplicate address detection, so that it is final at once)."""
        iface = ipaddress.ip_interface(address)
        fam = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        packed = iface.ip.packed
        body = struct.pack("BBBBI", fam, iface.network.prefixlen,
                           IFA_F_NODAD if fam == socket.AF_INET6 else 0, 0, index)
        if fam == socket.AF_INET:
            body += nlattr(IFA_LOCAL, packed)
        body += nlattr(IFA_ADDRESS, packed)
        if add:
            return self._send(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, ack)
        return self._send(RTM_DELADDR, 0, body, ack)

    def bridge_add(self, name, ack=True):
        body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
        body += nlattr(IFLA_IFNAME, name.encode() + b"\0")
        body += nlattr(IFLA_LINKINFO, nlattr(IFLA_INFO_KIND, b"bridge"))
        return self._send(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, ack)

    def link_del(self, index, ack=True):
        body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)
        return self._send(RTM_DELLINK, 0, body, ack)

    def errors(self):
        """Drain the error replies of requests sent without ACK."""
        n = 0
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65536)
                off = 0
                while off + 16 <= len(data):
                    ln, t = struct.unpack_from("IH", data, off)
                    if t == NLMSG_ERROR and struct.unpack_from("i", data, off + 16)[0]:
                        n += 1
                    off += (ln + 3) & ~3 if ln else len(data)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return n

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# The agent under test


def task_stats(pid):
    """Process figures from /proc: memory, threads, CPU (schedstat: ns, live
    threads; stat: ticks, whole group including dead threads), context
    switches summed over live threads."""
    st = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmData"):
                st[k + "_kib"] = int(v.split()[0])
            elif k == "Threads":
                st["threads"] = int(v)
    vol = invol = cpu_ns = 0
    st["tasks"] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            t = {}
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                t["comm"] = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        t["vol"] = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        t["invol"] = int(line.split()[1])
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                t["cpu_ns"] = int(f.read().split()[0])
            st["tasks"][int(tid)] = t
            vol += t["vol"]
            invol += t["invol"]
            cpu_ns += t["cpu_ns"]
        except FileNotFoundError:
            pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    st["cpu_stat_ms"] = (int(fields[11]) + int(fields[12])) * 1000 // tick
    st["cpu_ns"] = cpu_ns
    st["ctxt_voluntary"] = vol
    st["ctxt_nonvoluntary"] = invol
    return st


class Agent:
    """The release agent in a namespace, with readiness on a datagram socket
    and its JSON lines (stdout publisher) read as they come."""

    def __init__(self, ns, publisher="stdout", xenstored=None, sysfs=None, wrap=None,
                 extra=(), binary=None):
        self.dir = tempfile.mkdtemp(prefix="xgabench-agent-")
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        env.pop("RUST_LOG", None)
        args = [binary or AGENT, "-s", "--publisher", publisher, "--sysfs", sysfs or ns.sysfs, *extra]
        if publisher == "stdout":
            args += ["--format", "json"]
        if xenstored:
            env["XENSTORED_PATH"] = xenstored
        if wrap:
            args = wrap + args
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        r, w = os.pipe()
        nsfd = ns.fd

        def enter():
            # In the child, between fork and exec: join the namespace, then
            # record the time, as close to the exec as Python allows.
            if libc.setns(nsfd, CLONE_NEWNET) != 0:
                os._exit(97)
            os.write(w, b"%d" % time.monotonic_ns())

        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self.stderr, env=env, preexec_fn=enter)
        os.close(w)
        self.t_exec = int(os.read(r, 64))
        os.close(r)
        self.pid = self.p.pid
        self.wrapped = bool(wrap)
        self.out = self.p.stdout.fileno()
        try:
            fcntl.fcntl(self.out, F_SETPIPE_SZ, MIB)
        except OSError:
            pass
        os.set_blocking(self.out, False)
        self.buf = b""
        self.lines = []  # (arrival ns, parsed line), consumed by the caller
        self.t_ready = None

    def _read(self, timeout):
        """Wait up to timeout for output or readiness; True if anything came."""
        fds = [self.out] + ([self.notify] if self.t_ready is None else [])
        r, _, _ = select.select(fds, [], [], max(0.0, timeout))
        t = now()
        if self.notify in r:
            msg = self.notify.recv(4096)
            if b"READY=1" in msg.split(b"\n"):
                self.t_ready = t
        if self.out in r:
            try:
                chunk = os.read(self.out, 4 * MIB)
            except BlockingIOError:
                chunk = b""
            if not chunk and self.p.poll() is not None:
                raise RuntimeError(f"the agent exited ({self.p.returncode}): {self.errors()}")
            self.buf += chunk
            *full, self.buf = self.buf.split(b"\n")
            for line in full:
                if line:
                    self.lines.append((t, json.loads(line)))
        return bool(r)

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while self.t_ready is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no READY=1 within {timeout}s: {self.errors()}")
            self._read(deadline - time.monotonic())
        return (self.t_ready - self.t_exec) / 1e6

    def wait_line(self, pred, timeout=10.0):
        """The first line (arrival ns, object) matching pred; earlier lines
        are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            while self.lines:
                t, obj = self.lines.pop(0)
                if pred(obj):
                    return t, obj
            if time.monotonic() > deadline:
                raise RuntimeError("expected line did not come")
            self._read(deadline - time.monotonic())

    def drain(self, quiet=0.3, timeout=60.0):
        """Read until nothing came for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(quiet):
            pass

    def errors(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    def stats(self):
        return task_stats(self.pid)

    def stop(self):
        if self.p.poll() is None and self.wrapped:
            # Under strace: stop the agent itself (strace, stopped, would
            # detach and leave it running), then strace ends with it.
            try:
                with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                    for child in f.read().split():
                        os.kill(int(child), signal.SIGTERM)
                self.p.wait(10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()
        self.notify.close()
        log_text = self.errors()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return log_text


class Xenstored:
    """The test xenstored (crate tests/xenstored, example bench_server),
    driven through its standard input."""

    def __init__(self, domid=5):
        self.dir = tempfile.mkdtemp(prefix="xgabench-xs-")
        self.socket = os.path.join(self.dir, "guest.sock")
        self.domid = domid
        self.home = f"/local/domain/{domid}"
        self.p = subprocess.Popen([XSD, "--socket", self.socket, "--domid", str(domid)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError("bench_server did not start")

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def counts(self):
        return json.loads(self.cmd("counts"))

    def close(self):
        try:
            self.cmd("quit")
        except (BrokenPipeError, OSError):
            pass
        self.p.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Measurements


def measure_binary_sizes(args):
    """Stripped size of the release binary for each feature set CI builds."""
    sets = [
        ("default", []),
        ("xenstore,net_pnet", ["--no-default-features", "-F", "xenstore,net_pnet"]),
        ("none", ["--no-default-features"]),
        ("static", ["-F", "static"]),
    ]
    out = {}
    tdir = os.path.join(TARGET, "bench-sizes")
    for name, flags in sets:
        log(f"size: building {name}")
        r = subprocess.run(["nice", "cargo", "build", "--release", "--bin", "xen-guest-agent",
                            "--target-dir", tdir, *flags], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            out[name] = {"error": r.stderr[-500:]}
            continue
        binary = os.path.join(tdir, "release", "xen-guest-agent")
        stripped = os.path.join(tdir, f"xen-guest-agent.{name}.stripped")
        run(["strip", "-o", stripped, binary])
        out[name] = {"bytes": os.path.getsize(stripped), "flags": " ".join(flags)}
        log(f"size: {name}: {out[name]['bytes']} bytes")
    return out


def measure_idle(args):
    """Both publishers, in parallel, each as two instances: one observed
    through /proc and perf (no ptrace), one under `strace -c -f` for the
    syscall names."""
    minutes = args.idle_minutes
    res = {"minutes": minutes}
    nss, agents, xss, tracers = [], {}, [], []
    try:
        for pub in ("stdout", "xenstore"):
            for mode in ("plain", "strace"):
                ns = Netns(f"idle{pub[0]}{mode[0]}")
                nss.append(ns)
                with_veth_pair(ns)
                xs = None
                if pub == "xenstore":
                    xs = Xenstored()
                    xss.append(xs)
                a = Agent(ns, pub, xenstored=xs.socket if xs else None)
                a.wait_ready()
                a.xs = xs
                agents[(pub, mode)] = a
        time.sleep(2)  # let start-up settle (tokio blocking threads etc.)
        perf = shutil.which("perf")
        for (pub, mode), a in agents.items():
            a.drain(0.05, 1)
            a.before = a.stats()
            a.seen = {tid: {"first": t, "last": t} for tid, t in a.before["tasks"].items()}
            if a.xs:
                a.xs.cmd("reset")
            if mode == "strace":
                out = os.path.join(a.dir, "strace")
                a.tracer = subprocess.Popen(["strace", "-c", "-f", "-q", "-o", out, "-p", str(a.pid)])
                a.trace_out = out
            elif perf:
                out = os.path.join(a.dir, "perf")
                a.tracer = subprocess.Popen(
                    [perf, "stat", "-x", ",", "-o", out, "-e",
                     "raw_syscalls:sys_enter,context-switches,task-clock", "-p", str(a.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                a.trace_out = out
            else:
                a.tracer = None
        log(f"idle: {minutes} minute(s)")
        end = time.monotonic() + minutes * 60
        peak = {}
        zero = {"vol": 0, "invol": 0, "cpu_ns": 0}
        while time.monotonic() < end:
            for key, a in agents.items():
                a.drain(0.01, 0.02)  # keep the pipe empty (memory lines)
                s = a.stats()
                peak[key] = max(peak.get(key, 0), s["threads"])
                # Threads come and go (tokio's blocking pool): follow each
                # one, so that the counts of those that ended are kept.
                for tid, t in s["tasks"].items():
                    a.seen.setdefault(tid, {"first": dict(zero, comm=t["comm"])})["last"] = t
            time.sleep(min(1, max(0, end - time.monotonic())))
        for (pub, mode), a in agents.items():
            after = a.stats()
            for tid, t in after["tasks"].items():
                a.seen.setdefault(tid, {"first": dict(zero, comm=t["comm"])})["last"] = t
            delta = lambda k: sum(v["last"][k] - v["first"][k] for v in a.seen.values())
            r = {
                "VmRSS_kib": after["VmRSS_kib"], "VmHWM_kib": after["VmHWM_kib"],
                "RssAnon_kib": after.get("RssAnon_kib"), "RssFile_kib": after.get("RssFile_kib"),
                "threads": after["threads"], "threads_max_seen": peak[(pub, mode)],
                "cpu_ms": after["cpu_stat_ms"] - a.before["cpu_stat_ms"],
                "cpu_threads_ms": round(delta("cpu_ns") / 1e6, 3),
                "ctxt_voluntary": delta("vol"),
                "ctxt_nonvoluntary": delta("invol"),
                "thread_names": sorted(t["comm"] for t in after["tasks"].values()),
                "threads_created_during_idle": sum(1 for tid in a.seen if tid not in a.before["tasks"]),
            }
            if a.tracer:
                a.tracer.send_signal(signal.SIGINT)
                a.tracer.wait(30)
                text = open(a.trace_out).read()
                if mode == "strace":
                    r["strace"] = parse_strace_c(text)
                    r["syscalls"] = r["strace"].get("total", 0)
                else:
                    for line in text.splitlines():
                        parts = line.split(",")
                        if len(parts) > 3 and parts[2] == "raw_syscalls:sys_enter":
                            r["syscalls"] = int(float(parts[0]))
                        elif len(parts) > 3 and parts[2] == "context-switches":
                            r["perf_context_switches"] = int(float(parts[0]))
            if a.xs:
                r["xenstore_requests"] = a.xs.counts()
            r["per_minute"] = {k: round(r[k] / minutes, 1) for k in
                               ("ctxt_voluntary", "ctxt_nonvoluntary", "syscalls")
                               if r.get(k) is not None}
            res[f"{pub}/{mode}"] = r
            log(f"idle {pub}/{mode}: {json.dumps(r)}")
    finally:
        for a in agents.values():
            a.stop()
        for xs in xss:
            xs.close()
        for ns in nss:
            ns.close()
    return res


def parse_strace_c(text):
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and re.match(r"^[\d.]+$", parts[0]) and parts[-1] != "total":
            # % time, seconds, usecs/call, calls, [errors], syscall
            calls[parts[-1]] = int(parts[3])
        elif parts and parts[-1] == "total" and len(parts) >= 4:
            calls["total"] = int(parts[2]) if not re.match(r"^[\d.]+$", parts[1]) else int(parts[3])
    return calls


def measure_startup(args):
    """Exec to READY=1 with 3 interfaces (lo, a veth pair), both
    publishers; then one traced run for the processes spawned."""
    res = {}
    ns = Netns("start")
    try:
        with_veth_pair(ns)
        for pub, runs in (("stdout", args.startup_runs), ("xenstore", max(10, args.startup_runs // 2))):
            times, rss, threads = [], [], []
            for _ in range(runs):
                xs = Xenstored() if pub == "xenstore" else None
                a = Agent(ns, pub, xenstored=xs.socket if xs else None)
                try:
                    times.append(a.wait_ready())
                    s = a.stats()
                    rss.append(s["VmRSS_kib"])
                    threads.append(s["threads"])
                    names = sorted(t["comm"] for t in s["tasks"].values())
                finally:
                    a.stop()
                    if xs:
                        xs.close()
            res[pub] = {"runs": runs, "median_ms": round(statistics.median(times), 3),
                        "min_ms": round(min(times), 3), "p90_ms": round(pct(times, 90), 3),
                        "max_ms": round(max(times), 3), "rss_at_ready_kib": int(statistics.median(rss)),
                        "threads_at_ready": max(threads), "thread_names": names}
            log(f"startup {pub}: {res[pub]}")
        # Children: trace process creation (threads are clone with CLONE_THREAD).
        for pub in ("stdout", "xenstore"):
            out = os.path.join(tempfile.gettempdir(), f"xgabench-strace-{os.getpid()}")
            xs = Xenstored() if pub == "xenstore" else None
            a = Agent(ns, pub, xenstored=xs.socket if xs else None,
                      wrap=["strace", "-f", "-qq", "-o", out, "-e",
                            "trace=clone,clone3,fork,vfork,execve,execveat"])
            try:
                a.wait_ready()
                a.drain(0.3, 2)
            finally:
                a.stop()
                if xs:
                    xs.close()
            text = open(out).read()
            os.unlink(out)
            execs = len(re.findall(r"\bexecve(at)?\(", text))
            clones = re.findall(r"\b(clone3?|fork|vfork)\((.*)", text)
            thread_clones = sum(1 for _, rest in clones if "CLONE_THREAD" in rest)
            res[pub]["execve"] = execs
            res[pub]["processes_spawned"] = len(clones) - thread_clones + max(0, execs - 1)
            res[pub]["threads_spawned"] = thread_clones
            log(f"startup {pub} children: execve={execs} clones={len(clones)} threads={thread_clones}")
    finally:
        ns.close()
    return res


def match(kind, **fields):
    return lambda o: o.get("change") == kind and all(o.get(k) == v for k, v in fields.items())


def measure_latency(args):
    """Change (netlink request sent) → its JSON line read from the agent's
    stdout, for each kind of change, one change at a time."""
    n = args.latency_changes
    ns = Netns("lat")
    res = {"changes_per_kind": n}
    a = nl = None
    try:
        with_veth_pair(ns)
        idx = ns.index("eth0")
        a = Agent(ns, "stdout")
        a.wait_ready()
        a.drain(0.3)
        nl = Netlink(ns)
        kinds = {k: ([], []) for k in ("ipv4-add", "ipv4-remove", "ipv6-add", "ipv6-remove",
                                        "link-add", "link-remove")}

        def one(kind, send, pred):
            t0, tack = send()
            t, obj = a.wait_line(pred)
            kinds[kind][0].append((t - t0) / 1000)
            kinds[kind][1].append((t - tack) / 1000)
            return obj

        for i in range(n):
            v4 = f"10.{i // 250}.{i % 250}.9"
            one("ipv4-add", lambda: nl.addr(True, idx, v4 + "/32"), match("address-added", address=v4))
            one("ipv4-remove", lambda: nl.addr(False, idx, v4 + "/32"),
                match("address-removed", address=v4))
            v6 = f"2001:db8:9::{i + 1:x}"
            one("ipv6-add", lambda: nl.addr(True, idx, v6 + "/128"), match("address-added", address=v6))
            one("ipv6-remove", lambda: nl.addr(False, idx, v6 + "/128"),
                match("address-removed", address=v6))
            name = f"xbr{i}"
            obj = one("link-add", lambda: nl.bridge_add(name), match("link-added", name=name))
            one("link-remove", lambda: nl.link_del(obj["index"]), match("link-removed", name=name))
        for k, (lat, after_ack) in kinds.items():
            res[k] = {"p50_us": round(pct(lat, 50), 1), "p99_us": round(pct(lat, 99), 1),
                      "max_us": round(max(lat), 1), "ack_to_line_p50_us": round(pct(after_ack, 50), 1),
                      "ack_to_line_p99_us": round(pct(after_ack, 99), 1)}
            log(f"latency {k}: {res[k]}")
        res["cpu_per_change_us"] = None
    finally:
        if nl:
            nl.close()
        if a:
            a.stop()
        ns.close()
    return res


class Model:
    """The agent's view rebuilt from its JSON lines."""

    def __init__(self):
        self.links, self.addrs = {}, set()

    def apply(self, o):
        c = o["change"]
        if c in ("link-added", "link-changed"):
            self.links[o["index"]] = o["name"]
        elif c == "link-removed":
            self.links.pop(o["index"], None)
            self.addrs = {x for x in self.addrs if x[0] != o["index"]}
        elif c in ("address-added", "address-changed"):
            self.addrs.add((o["index"], o["address"], o["prefix"]))
        elif c == "address-removed":
            self.addrs.discard((o["index"], o["address"], o["prefix"]))


def measure_scale(args):
    """1,000 interfaces (500 veth pairs, down, 1 IPv4 + 2 IPv6 each), then a
    burst of 10,000 address additions, then a forced overflow."""
    res = {}
    n_if = args.interfaces
    ns = Netns("scale")
    a = nl = None
    try:
        log(f"scale: creating {n_if} interfaces")
        t = time.monotonic()
        ns.batch([f"link add v{i}a type veth peer name v{i}b" for i in range(n_if // 2)])
        names = [f"v{i}{s}" for i in range(n_if // 2) for s in "ab"]
        lines = []
        for i, name in enumerate(names):
            lines += [f"addr add 10.{100 + i // 250}.{i % 250}.1/24 dev {name}",
                      f"addr add fd00:{i:x}::1/64 dev {name} nodad",
                      f"addr add fd01:{i:x}::1/64 dev {name} nodad"]
        ns.batch(lines)
        links, addrs = ns.addrs()
        log(f"scale: {len(links)} links, {len(addrs)} addresses in {time.monotonic() - t:.1f}s")
        res["links"], res["addresses"] = len(links), len(addrs)
        index = {name: i for i, name in links.items()}

        # Start-up with 1,000 interfaces.
        times, rss = [], []
        for r in range(args.scale_runs):
            a = Agent(ns, "stdout")
            times.append(a.wait_ready())
            a.drain(0.2)
            rss.append(a.stats())
            if r < args.scale_runs - 1:
                a.stop()
        res["startup_median_ms"] = round(statistics.median(times), 2)
        res["startup_min_ms"] = round(min(times), 2)
        res["startup_max_ms"] = round(max(times), 2)
        res["rss_after_start_kib"] = int(statistics.median(s["VmRSS_kib"] for s in rss))
        res["hwm_after_start_kib"] = int(statistics.median(s["VmHWM_kib"] for s in rss))
        log(f"scale start-up: {times} ms, rss {res['rss_after_start_kib']} KiB")
        model = Model()
        for _, o in a.lines:
            model.apply(o)
        a.lines.clear()
        res["initial_state_exact"] = (model.links, model.addrs) == (links, addrs)

        # Diagnostic: the same start-up when the sysfs lookups that identify
        # each interface fail at once (an empty directory as --sysfs).
        empty = tempfile.mkdtemp(prefix="xgabench-empty-")
        t_empty = []
        for _ in range(args.scale_runs):
            b = Agent(ns, "stdout", sysfs=empty)
            t_empty.append(b.wait_ready())
            b.drain(0.1)
            b.stop()
        os.rmdir(empty)
        res["startup_without_sysfs_median_ms"] = round(statistics.median(t_empty), 2)
        log(f"scale start-up without sysfs: {t_empty}")

        # Burst: 10,000 address additions, 10 per interface, as fast as
        # netlink takes them (no ack wait: errors come back anyway).
        nl = Netlink(ns)
        burst = []
        for k in range(args.burst // len(names) + 1):
            for i, name in enumerate(names):
                if len(burst) < args.burst:
                    burst.append((index[name], f"10.{200 + k}.{i // 250}.{i % 250}"))
        want = {addr for _, addr in burst}

        def one_burst(add, packed):
            before = a.stats()
            warnings = a.errors().count("WARN")
            kind = "address-added" if add else "address-removed"
            t0 = now()
            if packed:
                nl.packed([lambda i=ifi, ad=addr: nl.addr(add, i, ad + "/32", ack=False)
                           for ifi, addr in burst])
            else:
                for ifi, addr in burst:
                    nl.addr(add, ifi, addr + "/32", ack=False)
            t_sent = now()
            errors = nl.errors()
            seen, t_last = set(), None
            deadline = time.monotonic() + 60
            while len(seen) < len(want) and time.monotonic() < deadline:
                a._read(1.0)
                for t, o in a.lines:
                    model.apply(o)
                    if o["change"] == kind and o["address"] in want:
                        seen.add(o["address"])
                        t_last = t
                a.lines.clear()
            a.drain(0.3)
            for _, o in a.lines:
                model.apply(o)
            a.lines.clear()
            after = a.stats()
            cpu_ns = after["cpu_ns"] - before["cpu_ns"]
            r = {
                "changes": len(burst), "kind": kind,
                "sent": "64 requests per datagram" if packed else "one request per datagram",
                "netlink_errors": errors, "published": len(seen),
                "send_ms": round((t_sent - t0) / 1e6, 1),
                "converge_ms": round((t_last - t0) / 1e6, 1) if t_last else None,
                "cpu_ms": round(cpu_ns / 1e6, 1),
                "cpu_per_event_us": round(cpu_ns / 1000 / len(burst), 2),
                "cpu_stat_ms": after["cpu_stat_ms"] - before["cpu_stat_ms"],
                "VmHWM_kib": after["VmHWM_kib"], "VmRSS_kib": after["VmRSS_kib"],
                "agent_warnings": a.errors().count("WARN") - warnings,
            }
            log(f"burst: {r}")
            return r

        # Paced: additions one request per datagram, about as fast as `ip
        # -batch` makes them; packed: their removal, as fast as the kernel
        # goes (the agent then receives several notifications per wakeup).
        res["burst"] = one_burst(True, False)
        res["burst_packed"] = one_burst(False, True)
        res["burst_state_exact"] = (model.links, model.addrs) == ns.addrs()

        # Forced overflow: the agent stopped while 5,000 changes happen.
        os.kill(a.pid, signal.SIGSTOP)
        time.sleep(0.1)
        pairs = 50
        dels = [(ifi, addr) for ifi, addr in burst][: args.overflow - pairs]
        for ifi, addr in dels:
            nl.addr(True, ifi, addr + "/32", ack=False)
        gone = set()
        for i in range(pairs):
            nl.link_del(index[f"v{i}a"], ack=False)
            gone |= {index[f"v{i}a"], index[f"v{i}b"]}
        errors = nl.errors()
        klinks, kaddrs = ns.addrs()
        before = a.stats()
        t0 = now()
        os.kill(a.pid, signal.SIGCONT)
        t_equal = None
        removed_links = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            a._read(0.5)
            for t, o in a.lines:
                model.apply(o)
                if o["change"] == "link-removed":
                    removed_links.add(o["index"])
            if a.lines:
                equal = model.links == klinks and model.addrs == kaddrs
                if equal and t_equal is None:
                    t_equal = a.lines[-1][0]
                elif not equal:
                    t_equal = None
                a.lines.clear()
            elif t_equal is not None and now() - t_equal > 1e9:
                break
        a.drain(0.5)
        for _, o in a.lines:
            model.apply(o)
        a.lines.clear()
        after = a.stats()
        final = model.links == klinks and model.addrs == kaddrs
        res["overflow"] = {
            "changes": len(dels) + pairs, "address_additions": len(dels),
            "link_removals_requested": len(gone), "netlink_errors": errors,
            "link_removals_published": len(gone & removed_links),
            "converge_ms": round((t_equal - t0) / 1e6, 1) if t_equal else None,
            "final_state_exact": final,
            "missing_addresses": len(kaddrs - model.addrs), "extra_addresses": len(model.addrs - kaddrs),
            "cpu_ms": round((after["cpu_ns"] - before["cpu_ns"]) / 1e6, 1),
            "VmHWM_kib": after["VmHWM_kib"], "VmRSS_kib": after["VmRSS_kib"],
            "agent_log": [l for l in a.errors().splitlines() if "WARN" in l or "ERROR" in l][-5:],
        }
        log(f"overflow: {res['overflow']}")
    finally:
        if nl:
            nl.close()
        if a:
            a.stop()
        ns.close()
    return res


def measure_xenstore_ops(args):
    """Requests the agent makes at the test xenstored per change, on a VIF:
    IPv4 and IPv6 additions and removals, one at a time, each waited for in
    xenstore (which also gives the change → xenstore latency)."""
    n = args.xs_changes
    ns = Netns("xsops")
    xs = Xenstored()
    sysfs = fake_vif_sysfs({"eth0": 0})
    a = nl = None
    res = {"changes_per_kind": n}
    try:
        with_veth_pair(ns, mac="00:16:3e:5e:00:01")
        ns.ip("addr", "flush", "dev", "eth0")  # no IPv4: the added one takes slot 0
        ns.ip("link", "set", "eth0", "down")  # no link-local IPv6 either
        idx = ns.index("eth0")
        a = Agent(ns, "xenstore", xenstored=xs.socket, sysfs=sysfs)
        res["startup_ms"] = round(a.wait_ready(), 2)
        res["first_publication"] = xs.counts()
        time.sleep(1)
        xs.cmd("reset")
        nl = Netlink(ns)
        lat = {k: [] for k in ("ipv4-add", "ipv4-remove", "ipv6-add", "ipv6-remove")}
        home = xs.home
        for i in range(n):
            for fam, addr, plen in (("ipv4", f"10.1.{i // 250}.{i % 250 + 1}", 32),
                                    ("ipv6", f"2001:db8:7::{i + 1:x}", 128)):
                node = f"{home}/attr/vif/0/{fam}/0"
                t0, _ = nl.addr(True, idx, f"{addr}/{plen}")
                ok = xs.cmd(f"wait-value {node} {addr} 10")
                t1 = now()
                if ok != "true":
                    raise RuntimeError(f"{node} != {addr}: {xs.cmd('tree ' + home + '/attr/vif')}")
                lat[f"{fam}-add"].append((t1 - t0) / 1000)
                t0, _ = nl.addr(False, idx, f"{addr}/{plen}")
                ok = xs.cmd(f"wait-absent {node} 10")
                t1 = now()
                if ok != "true":
                    raise RuntimeError(f"{node} still there")
                lat[f"{fam}-remove"].append((t1 - t0) / 1000)
        time.sleep(0.5)
        c = xs.counts()
        changes = 4 * n
        res["requests"] = c
        res["changes"] = changes
        res["requests_per_change"] = round(c["total"] / changes, 2)
        res["per_change"] = {k: round(v / changes, 2) for k, v in c["kinds"].items()}
        res["latency"] = {k: {"p50_us": round(pct(v, 50), 1), "p99_us": round(pct(v, 99), 1)}
                          for k, v in lat.items()}
        log(f"xenstore ops: {res}")
    finally:
        if nl:
            nl.close()
        if a:
            a.stop()
        xs.close()
        shutil.rmtree(sysfs, ignore_errors=True)
        ns.close()
    return res


# --------------------------------------------------------------------------
# Backends (native client, libxenstore) and the portable binary

# The calls a xenstore connection is served with (both backends).
XS_CALLS = "read,write,readv,writev,recvfrom,sendto,recvmsg,sendmsg"
WRITES = ("write", "writev", "sendto", "sendmsg")


def backend_agents():
    """(name, binary, extra arguments) of each xenstore backend measured:
    the default build with each backend, and the portable binary (which
    has the native one only)."""
    return [("native", AGENT, ["--xenstore-backend", "native"]),
            ("libxenstore", AGENT, ["--xenstore-backend", "libxenstore"]),
            ("portable", PORTABLE, [])]


def smaps_rollup(pid):
    """Rss, Pss and their parts (KiB) of a process."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Private_Dirty", "Private_Clean"):
                out[k + "_kib"] = int(v.split()[0])
    return out


def xs_traffic(text):
    """Syscalls and round trips on the unix stream sockets (the xenstore
    connections) in an `strace -f -yy` log: a round trip is a reply read
    after requests were written on the same socket."""
    last, pending = {}, {}
    calls = trips = 0
    for line in text.splitlines():
        # (strace pads the pid to 5 columns: "123  call(...)".)
        pid, _, rest = line.partition(" ")
        rest = rest.lstrip()
        # -yy names a unix socket UNIX-STREAM:[...], or socket:[inode] when
        # its details cannot be had (only unix sockets are streams here).
        m = re.match(r"(\w+)\((\d+)<(?:UNIX-STREAM|socket):", rest)
        if m:
            call, fd = m.groups()
            if "<unfinished" in rest:
                pending[pid] = (call, fd)
                continue
        else:
            m = re.match(r"<\.\.\. (\w+) resumed>", rest)
            if not m or pid not in pending:
                continue
            call, fd = pending.pop(pid)
        ok = re.search(r"= (\d+)\s*$", rest)
        if not ok or int(ok.group(1)) == 0:
            continue  # EAGAIN, or the end of the connection
        calls += 1
        kind = "w" if call in WRITES else "r"
        if kind == "r" and last.get(fd) == "w":
            trips += 1
        last[fd] = kind
    return calls, trips


def traced_backend_run(ns, sysfs, binary, extra, changes, idx):
    """One run under strace: the first publication, then `changes` IPv4
    additions and removals on VIF 0 (one change set each, waited for in
    xenstore); the traffic on the xenstore sockets, and the requests of
    the change sets counted at the server."""
    out = os.path.join(tempfile.gettempdir(), f"xgabench-xs-{os.getpid()}")
    xs = Xenstored()
    a = Agent(ns, "xenstore", xenstored=xs.socket, sysfs=sysfs, extra=extra, binary=binary,
              wrap=["strace", "-f", "-yy", "-qq", "-o", out, "-e", "trace=" + XS_CALLS])
    nl = None
    try:
        a.wait_ready()
        counts = None
        if changes:
            if xs.cmd(f"wait-exists {xs.home}/data/updated 10") != "true":
                raise RuntimeError("no first publication")
            xs.cmd("reset")
            nl = Netlink(ns)
            node = f"{xs.home}/attr/vif/0/ipv4/1"
            for i in range(changes // 2):
                addr = f"10.9.{i // 250}.{i % 250 + 1}"
                nl.addr(True, idx, addr + "/32")
                if xs.cmd(f"wait-value {node} {addr} 10") != "true":
                    raise RuntimeError(f"{node} != {addr}")
                nl.addr(False, idx, addr + "/32")
                if xs.cmd(f"wait-absent {node} 10") != "true":
                    raise RuntimeError(f"{node} still there")
            counts = xs.counts()
    finally:
        if nl:
            nl.close()
        a.stop()
        xs.close()
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    return xs_traffic(text), counts


def measure_backends(args):
    """For each xenstore backend, and the portable binary: start-up to the
    first complete publication (3 interfaces: lo, a veth pair whose eth0 is
    VIF 0), its requests and round trips; requests and round trips per
    change set; then idle memory, threads, syscalls and requests."""
    res = {}
    sysfs = fake_vif_sysfs({"eth0": 0})
    ns = Netns("backends")
    try:
        with_veth_pair(ns, mac="00:16:3e:5e:00:01")
        idx = ns.index("eth0")
        for name, binary, extra in backend_agents():
            if not os.path.exists(binary):
                res[name] = {"error": f"{binary} is missing: run bench/run.sh"}
                continue
            times, first = [], None
            for _ in range(args.backend_runs):
                xs = Xenstored()
                a = Agent(ns, "xenstore", xenstored=xs.socket, sysfs=sysfs, extra=extra, binary=binary)
                try:
                    times.append(a.wait_ready())
                    first = xs.counts()
                finally:
                    a.stop()
                    xs.close()
            (calls0, trips0), _ = traced_backend_run(ns, sysfs, binary, extra, 0, idx)
            n = args.xs_changes
            (calls, trips), counts = traced_backend_run(ns, sysfs, binary, extra, n, idx)
            res[name] = {
                "flags": " ".join(extra), "runs": len(times),
                "startup_median_ms": round(statistics.median(times), 3),
                "startup_min_ms": round(min(times), 3), "startup_p90_ms": round(pct(times, 90), 3),
                "first_publication": {"requests": first["total"], "kinds": first["kinds"],
                                      "round_trips": trips0, "socket_syscalls": calls0},
                "change_sets": n,
                "per_change_set": {"requests": round(counts["total"] / n, 2),
                                   "kinds": {k: round(v / n, 2) for k, v in counts["kinds"].items()},
                                   "round_trips": round((trips - trips0) / n, 2),
                                   "socket_syscalls": round((calls - calls0) / n, 2)},
            }
            log(f"backend {name}: {res[name]}")
        res["idle"] = idle_backends(args, sysfs)
    finally:
        shutil.rmtree(sysfs, ignore_errors=True)
        ns.close()
    return res


def idle_backends(args, sysfs):
    """The backends side by side, idle for the idle part's minutes (perf
    stat for the syscalls, no ptrace), and one native agent under `strace
    -c -f` for the syscalls by name."""
    minutes = args.idle_minutes
    res = {"minutes": minutes}
    runs = [(n, b, e, "plain") for n, b, e in backend_agents() if os.path.exists(b)]
    runs.append(("native", AGENT, ["--xenstore-backend", "native"], "strace"))
    live, nss, xss = [], [], []
    try:
        for name, binary, extra, mode in runs:
            ns = Netns(f"bidle{len(nss)}")
            nss.append(ns)
            with_veth_pair(ns, mac="00:16:3e:5e:00:01")
            xs = Xenstored()
            xss.append(xs)
            a = Agent(ns, "xenstore", xenstored=xs.socket, sysfs=sysfs, extra=extra, binary=binary)
            a.wait_ready()
            live.append((name, mode, a, xs))
        time.sleep(2)  # start-up settles
        perf = shutil.which("perf")
        for name, mode, a, xs in live:
            xs.cmd("reset")
            a.before = a.stats()
            a.max_threads = a.before["threads"]
            a.trace_out = os.path.join(a.dir, mode)
            if mode == "strace":
                cmd = ["strace", "-c", "-f", "-q", "-o", a.trace_out, "-p", str(a.pid)]
            elif perf:
                cmd = [perf, "stat", "-x", ",", "-o", a.trace_out, "-e", "raw_syscalls:sys_enter",
                       "-p", str(a.pid)]
            else:
                cmd = None
            a.tracer = cmd and subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log(f"idle backends: {minutes} minute(s)")
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            for _, _, a, _ in live:
                a.max_threads = max(a.max_threads, a.stats()["threads"])
            time.sleep(min(1, max(0, end - time.monotonic())))
        for name, mode, a, xs in live:
            after = a.stats()
            r = {"VmRSS_kib": after["VmRSS_kib"], **smaps_rollup(a.pid),
                 "threads": after["threads"], "threads_max_seen": a.max_threads,
                 "thread_names": sorted(t["comm"] for t in after["tasks"].values()),
                 "threads_created": len(set(after["tasks"]) - set(a.before["tasks"])),
                 "xenstore_requests": xs.counts()["total"]}
            if a.tracer:
                a.tracer.send_signal(signal.SIGINT)
                a.tracer.wait(30)
                text = open(a.trace_out).read()
                if mode == "strace":
                    r["strace"] = parse_strace_c(text)
                    r["syscalls"] = r["strace"].get("total", 0)
                else:
                    for line in text.splitlines():
                        parts = line.split(",")
                        if len(parts) > 3 and parts[2] == "raw_syscalls:sys_enter":
                            r["syscalls"] = int(float(parts[0]))
            r["per_minute"] = {k: round(r[k] / minutes, 1) for k in ("syscalls", "xenstore_requests")
                               if r.get(k) is not None}
            res[f"{name}/{mode}"] = r
            log(f"idle backend {name}/{mode}: {json.dumps(r)}")
    finally:
        for _, _, a, _ in live:
            a.stop()
        for xs in xss:
            xs.close()
        for ns in nss:
            ns.close()
    return res


def elf_deps(binary):
    """NEEDED libraries and the program interpreter of an ELF file."""
    d = subprocess.run(["readelf", "-dW", binary], capture_output=True, text=True).stdout
    l = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", d)
    interp = re.search(r"Requesting program interpreter: ([^\]]+)\]", l)
    return needed, interp.group(1) if interp else None


def measure_portable(args):
    """The portable binary (musl) against the static glibc candidate and
    the default build, with the stdout publisher: size, dynamic
    dependencies, start-up (exec to READY=1, 3 interfaces), and memory
    (Rss, Pss) a second after READY."""
    res = {}
    ns = Netns("portable")
    try:
        with_veth_pair(ns)
        for name, binary in (("default", AGENT), ("musl", PORTABLE), ("glibc-static", GLIBC_STATIC)):
            if not os.path.exists(binary):
                res[name] = {"error": f"{binary} is missing: run bench/run.sh"}
                continue
            needed, interp = elf_deps(binary)
            times, mem = [], []
            for i in range(args.startup_runs):
                a = Agent(ns, "stdout", binary=binary)
                try:
                    times.append(a.wait_ready())
                    if i < 5:
                        a.drain(0.2, 1)
                        time.sleep(1)
                        mem.append({**smaps_rollup(a.pid), **a.stats()})
                finally:
                    a.stop()
            med = lambda k: int(statistics.median(m[k] for m in mem))
            res[name] = {"bytes": os.path.getsize(binary), "needed": needed, "interp": interp,
                         "runs": len(times), "startup_median_ms": round(statistics.median(times), 3),
                         "startup_min_ms": round(min(times), 3), "startup_p90_ms": round(pct(times, 90), 3),
                         "Rss_kib": med("Rss_kib"), "Pss_kib": med("Pss_kib"),
                         "RssAnon_kib": med("RssAnon_kib"), "RssFile_kib": med("RssFile_kib"),
                         "Private_Dirty_kib": med("Private_Dirty_kib")}
            log(f"portable {name}: {res[name]}")
    finally:
        ns.close()
    return res

# --------------------------------------------------------------------------
# Report


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu,
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 idle minute, fewer runs (development)")
    ap.add_argument("--only", default="sizes,idle,startup,latency,scale,xenstore,backends,portable",
                    help="comma-separated parts to run")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"), help="where results.{json,md} go")
    ap.add_argument("--merge", action="store_true",
                    help="replace only the parts run (--only) in the existing results.json, "
                         "recording the rerun (e.g. after a disturbed measurement)")
    ap.add_argument("--command", default=" ".join(sys.argv))
    args = ap.parse_args()
    args.idle_minutes = 1 if args.quick else 10
    args.startup_runs = 20 if args.quick else 50
    args.latency_changes = 200
    args.interfaces = 1000
    args.scale_runs = 3 if args.quick else 10
    args.burst = 10000
    args.overflow = 5000
    args.xs_changes = 25 if args.quick else 50
    args.backend_runs = 10 if args.quick else 25
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespaces)")
    for b in (AGENT, XSD):
        if not os.path.exists(b):
            sys.exit(f"bench: {b} missing: run bench/run.sh, which builds it")

    results = {"command": args.command, "quick": args.quick, "machine": machine(),
               "agent_bytes": os.path.getsize(AGENT)}
    parts = args.only.split(",")
    if args.merge:
        with open(os.path.join(args.out, "results.json")) as f:
            earlier = json.load(f)
        earlier.setdefault("reruns", []).append(
            {"parts": parts, "command": args.command, "machine": results["machine"]})
        results = earlier
    steps = [("sizes", measure_binary_sizes), ("startup", measure_startup),
             ("latency", measure_latency), ("scale", measure_scale),
             ("xenstore", measure_xenstore_ops), ("backends", measure_backends),
             ("portable", measure_portable), ("idle", measure_idle)]
    for name, fn in steps:
        if name in parts:
            log(f"== {name}")
            try:
                results[name] = fn(args)
            except Exception as e:  # one broken part must not lose the others
                import traceback
                traceback.print_exc()
                results[name] = {"error": f"{type(e).__name__}: {e}"}
    if not args.merge:
        results["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    results["scale_runs"] = args.scale_runs
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(report.render(results))
    log(f"wrote {args.out}/results.json and results.md")


if __name__ == "__main__":
    main()
