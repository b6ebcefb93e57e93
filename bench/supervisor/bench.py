#!/usr/bin/env python3
"""sparkvisor's supervisor against supervisord, measured in the same run on this machine.

Figures (targets from issue 5):
  rss        the agent's RSS supervising four `sleep` services (target < 6 MiB; supervisord ~31 MB)
  first-exec time from launching the agent to the first service's exec (target < 5 ms); tini -s -- date alongside
  respawn    crash-to-respawn latency without backoff, median (target < 2 ms)
  idle       context switches of all the agent's threads over an idle period (target 0)
  output     service output forwarded to the container's stdout, MB/s (DESIGN target >= 500)

Usage: bench/supervisor/bench.py [--quick] [--throughput-only] [--bin PATH]   (default: the static musl build
target/x86_64-unknown-linux-musl/release/sparkvisor when it exists — the build to ship, see docs/building.md
"Building a static binary" — else target/release/sparkvisor, built when missing). Needs supervisord (`apt-get install supervisor`).
Prints a table with ratios supervisord / sparkvisor. Never asserts anything.
"""
import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ctx_switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def wait_for(cond, limit=20.0):
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.002)


def children(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
        except FileNotFoundError:
            pass
    return out


# ---------------------------------------------------------------------------------------------
# sparkvisor


class Sparkvisor:
    name = "sparkvisor"

    def __init__(self, binary):
        self.binary = binary

    def start(self, tmp, services, out_path):
        roles = os.path.join(tmp, "roles")
        os.makedirs(roles, exist_ok=True)
        os.makedirs(os.path.join(tmp, "templates"), exist_ok=True)
        lines = ["services:"]
        for name, argv, restart_fast in services:
            lines.append(f"  {name}:")
            lines.append("    command: [" + ", ".join(f'"{a}"' for a in argv) + "]")
            lines.append("    critical: false")
            if restart_fast:
                lines.append("    backoff: { initial: 0s, max_failures: 0 }")
        with open(os.path.join(roles, "bench.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        env = dict(os.environ)
        env.update(
            SPARKVISOR_ROLES=roles,
            SPARKVISOR_TEMPLATES=os.path.join(tmp, "templates"),
            SPARKVISOR_SOCKET=os.path.join(tmp, "sv.sock"),
            SPARKVISOR_LOG="warn",
            SPARKVISOR_LOG_FORMAT="plain",
        )
        out = open(out_path, "w")
        t0 = time.time_ns()
        proc = subprocess.Popen([self.binary, "run", "--role", "bench"], env=env, stdout=out,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return proc, t0

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


# ---------------------------------------------------------------------------------------------
# supervisord


class Supervisord:
    name = "supervisord"

    def start(self, tmp, services, out_path):
        conf = os.path.join(tmp, "supervisord.conf")
        lines = [
            "[supervisord]", "nodaemon=true", f"logfile={tmp}/supervisord.log",
            f"pidfile={tmp}/supervisord.pid", "loglevel=warn",
            "[unix_http_server]", f"file={tmp}/supervisor.sock",
        ]
        for name, argv, restart_fast in services:
            lines += [
                f"[program:{name}]",
                "command=" + " ".join(a.replace("%", "%%") for a in argv),
                "autorestart=true", "startsecs=0", "startretries=1000000",
                f"stdout_logfile={out_path}", "stdout_logfile_maxbytes=0",
                "redirect_stderr=true",
            ]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        t0 = time.time_ns()
        proc = subprocess.Popen(["supervisord", "-c", conf], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return proc, t0

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


# ---------------------------------------------------------------------------------------------


def four_sleeps():
    return [(f"s{i}", ["sleep", "100000"], False) for i in range(4)]


def measure_rss_and_idle(tool, idle_secs):
    with tempfile.TemporaryDirectory() as tmp:
        proc, _ = tool.start(tmp, four_sleeps(), os.path.join(tmp, "out"))
        try:
            wait_for(lambda: len(children(proc.pid)) >= 4)
            time.sleep(0.5)  # let start-up settle before the idle window (not synchronisation)
            rss = rss_kib(proc.pid)
            before = ctx_switches(proc.pid)
            time.sleep(idle_secs)
            idle = ctx_switches(proc.pid) - before
        finally:
            tool.stop(proc)
    return rss, idle


def first_lines(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip().isdigit()]
    except FileNotFoundError:
        return []


def measure_first_exec(tool):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        services = [("first", ["/bin/date", "+%s%N"], False)] + [
            (f"s{i}", ["sleep", "100000"], False) for i in range(3)]
        proc, t0 = tool.start(tmp, services, out)
        try:
            wait_for(lambda: len(first_lines(out)) >= 1)
            first = int(first_lines(out)[0])
        finally:
            tool.stop(proc)
    return (first - t0) / 1e6


def measure_tini_first_exec():
    """tini's launch -> exec of the same child (`tini -s -- /bin/date +%s%N`): the floor any init pays."""
    t0 = time.time_ns()
    out = subprocess.run(["tini", "-s", "--", "/bin/date", "+%s%N"], check=True, capture_output=True,
                         text=True).stdout
    return (int(out.strip()) - t0) / 1e6


def measure_respawn(tool, runs):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        proc, _ = tool.start(tmp, [("crasher", ["/bin/date", "+%s%N"], True)], out)
        try:
            wait_for(lambda: len(first_lines(out)) >= runs, limit=120)
            stamps = [int(x) for x in first_lines(out)[:runs]]
        finally:
            tool.stop(proc)
    gaps = [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:])]
    return statistics.median(gaps)


def measure_throughput(tool, megabytes):
    """MB/s of service output forwarded (100-byte lines) with the container's stdout on /dev/null."""
    line = "0123456789" * 9 + "012345678"
    with tempfile.TemporaryDirectory() as tmp:
        done = os.path.join(tmp, "done")
        cmd = f"yes {line} | head -c {megabytes * 1000000}; touch {done}"
        # supervisord cannot log to /dev/null ("Illegal seek"): it gets a file in the temp dir.
        out = "/dev/null" if tool.name == "sparkvisor" else os.path.join(tmp, "out")
        t0 = time.monotonic()
        proc, _ = tool.start(tmp, [("flood", ["sh", "-c", cmd], False)], out)
        try:
            wait_for(lambda: os.path.exists(done), limit=60)
            elapsed = time.monotonic() - t0
        finally:
            tool.stop(proc)
    return megabytes / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--throughput-only", action="store_true",
                    help="measure only output forwarding (still against supervisord)")
    musl = os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "sparkvisor")
    glibc = os.path.join(ROOT, "target", "release", "sparkvisor")
    ap.add_argument("--bin", default=musl if os.path.exists(musl) else glibc)
    args = ap.parse_args()
    print(f"sparkvisor binary: {os.path.relpath(args.bin, ROOT)}")
    if not os.path.exists(args.bin):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    tools = [Sparkvisor(args.bin)]
    if shutil.which("supervisord"):
        tools.append(Supervisord())
    else:
        print("supervisord not found (apt-get install supervisor): measuring sparkvisor only")
    idle_secs = 3 if args.quick else 10
    repeats = 3 if args.quick else 7
    respawns = 20 if args.quick else 50
    results = {}
    nan = float("nan")
    for tool in tools:
        rss, idle, first, respawn = nan, 0, nan, nan
        if not args.throughput_only:
            rss, idle = measure_rss_and_idle(tool, idle_secs)
            first = statistics.median(measure_first_exec(tool) for _ in range(repeats))
            try:
                respawn = measure_respawn(tool, respawns if tool.name == "sparkvisor" else 5)
            except TimeoutError:
                respawn = nan
        mb = 200 if args.quick else 1000
        try:
            throughput = measure_throughput(tool, mb if tool.name == "sparkvisor" else mb // 10)
        except TimeoutError:
            throughput = float("nan")
        results[tool.name] = dict(rss=rss / 1024, idle=idle, first=first, respawn=respawn,
                                  throughput=throughput)
    rows = [] if args.throughput_only else [
        ("RSS, 4 services (MiB)", "rss", "{:.2f}"),
        (f"wakeups idle {idle_secs}s (ctx switches)", "idle", "{:d}"),
        ("launch -> first service exec (ms)", "first", "{:.2f}"),
        ("crash -> respawn, no backoff (ms, median)", "respawn", "{:.2f}"),
    ]
    rows += [
        ("output forwarded, 100-byte lines (MB/s)", "throughput", "{:.0f}"),
    ]
    tini_first = nan
    if shutil.which("tini") and not args.throughput_only:
        firsts = [measure_tini_first_exec() for _ in range(repeats)]
        tini_first = statistics.median(firsts)
    names = [t.name for t in tools]
    print(f"{'figure':44}" + "".join(f"{n:>14}" for n in names) + ("   ratio" if len(names) > 1 else ""))
    for label, key, fmt in rows:
        cells = "".join(f"{fmt.format(results[n][key]):>14}" for n in names)
        ratio = ""
        if len(names) > 1:
            a, b = results["sparkvisor"][key], results["supervisord"][key]
            if key == "throughput":
                a, b = b, a  # higher is better
            ratio = f"   {b / a:.1f}x" if a else ("   (sparkvisor: 0)" if key == "idle" else "")
        print(f"{label:44}{cells}{ratio}")
    if not math.isnan(tini_first):
        print(f"launch -> exec of /bin/date, tini -s (ms, median of {repeats}): {tini_first:.2f}; "
              f"sparkvisor's first service exec / tini's: {results['sparkvisor']['first'] / tini_first:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
