#!/usr/bin/env python3
"""Cluster start-up benchmark: container start -> all workers ALIVE in the master's /json/.

Two images measured in the same run, alternating rounds:
  sparkvisor  the sparkvisor Spark image (agent as PID 1: config resolution, cgroup sizing, rendering,
              privilege drop, then the role's one Spark daemon)
  shell       the same image with a bitnami-style bash entrypoint running spark-class (no agent)
Each round: a private network; the master container is started and, once its /json/ says ALIVE, the
two workers (1.5 CPU/2 GiB and 1 CPU/1 GiB); the clock starts before the master's `docker run` and
stops when the master lists 2 ALIVE workers (the master's own time is printed too). For sparkvisor it also reports the agent's share of start time: from Docker's StartedAt (the
agent has been exec'd) to the agent's "started, pid N" log line (Docker's timestamp), per container.

Usage: bench/cluster/run.sh [ROUNDS]   (prints figures and ratios; never asserts)
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
IMAGES = {"sparkvisor": sys.argv[1], "shell": sys.argv[2]}
WORKERS = [("w1", "1.5", "2g"), ("w2", "1", "1g")]


def docker(*args, check=True):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True).stdout.strip()


def ip_of(name):
    return docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)


def alive(master_ip):
    try:
        with urllib.request.urlopen(f"http://{master_ip}:8080/json/", timeout=2) as r:
            j = json.load(r)
        return sum(1 for w in j.get("workers", []) if w.get("state") == "ALIVE")
    except Exception:
        return 0


def parse_ts(text):
    """RFC 3339 with nanoseconds (Docker's format) -> seconds since the epoch (µs precision)."""
    text = text.strip().rstrip("Z")
    base, _, frac = text.partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + float("0." + (frac or "0")[:6])


def agent_share(container):
    """Seconds from the container's start (Docker's StartedAt: the agent has been exec'd) to the
    agent's log line saying it forked the service (Docker's receive timestamp of that line)."""
    started = parse_ts(docker("inspect", "--format", "{{.State.StartedAt}}", container))
    logs = subprocess.run(["docker", "logs", "-t", container], capture_output=True, text=True)
    for line in (logs.stdout + logs.stderr).splitlines():
        if ": started, pid" in line:
            return parse_ts(line.split(" ", 1)[0]) - started
    return None


def master_alive(master_ip):
    try:
        with urllib.request.urlopen(f"http://{master_ip}:8080/json/", timeout=2) as r:
            return json.load(r).get("status") == "ALIVE"
    except Exception:
        return False


def round_once(kind, n):
    tag = f"svbench{os.getpid()}{kind}{n}"
    net = tag + "net"
    docker("network", "create", net)
    names = []
    try:
        t0 = time.monotonic()
        image = IMAGES[kind]
        extra = [] if kind == "sparkvisor" else ["--entrypoint", "/bench/entrypoint.sh", "-v",
                                                  f"{HERE}/bitnami-style-entrypoint.sh:/bench/entrypoint.sh:ro"]
        docker("run", "-d", "--name", tag + "m", "--hostname", "spark-master", "--network", net,
               "--network-alias", "spark-master", "--cpus", "1", "--memory", "1g",
               "-e", "SPARK_MODE=master", *extra, image)
        names.append(tag + "m")
        master_ip = ip_of(tag + "m")
        # Phase 1: the master alone, so that the workers' first registration finds it (a worker that
        # starts first retries after a random 5-15 s, which would swamp what is measured here).
        while not master_alive(master_ip):
            if time.monotonic() > t0 + 300:
                raise RuntimeError(f"{kind}: master not ALIVE within 300 s")
            time.sleep(0.05)
        t_master = time.monotonic() - t0
        for w, cpus, mem in WORKERS:
            docker("run", "-d", "--name", tag + w, "--hostname", w, "--network", net, "--cpus", cpus,
                   "--memory", mem, "-e", "SPARK_MODE=worker",
                   "-e", "SPARK_MASTER_URL=spark://spark-master:7077", *extra, image)
            names.append(tag + w)
        deadline = t0 + 300
        while alive(master_ip) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind}: workers not ALIVE within 300 s")
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        share = None
        if kind == "sparkvisor":
            shares = [agent_share(name) for name in names]
            shares = [s for s in shares if s is not None]
            share = max(shares) if shares else None
        cores = []
        with urllib.request.urlopen(f"http://{master_ip}:8080/json/", timeout=2) as r:
            for w in json.load(r)["workers"]:
                if w["state"] == "ALIVE":
                    cores.append(f'{w["cores"]}c/{w["memory"]}M')
        return elapsed, t_master, share, sorted(cores)
    finally:
        for name in names:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", net, check=False)


HERE = os.path.dirname(os.path.abspath(__file__))
results = {k: [] for k in IMAGES}
masters = {k: [] for k in IMAGES}
shares = []
for n in range(ROUNDS):
    for kind in ("sparkvisor", "shell") if n % 2 == 0 else ("shell", "sparkvisor"):
        elapsed, t_master, share, sizes = round_once(kind, n)
        results[kind].append(elapsed)
        masters[kind].append(t_master)
        if share is not None:
            shares.append(share)
        print(f"round {n + 1} {kind:<10} master ALIVE {t_master:6.2f} s, all workers ALIVE {elapsed:6.2f} s"
              f"   workers {sizes}"
              + (f"   agent: container start -> service forked {share * 1000:.1f} ms" if share is not None
                 else ""),
              flush=True)

print()
print(f"{'image':<12}{'master med s':>13}{'all ALIVE med s':>16}{'min s':>8}{'max s':>8}")
for kind, v in results.items():
    print(f"{kind:<12}{statistics.median(masters[kind]):>13.2f}{statistics.median(v):>16.2f}"
          f"{min(v):>8.2f}{max(v):>8.2f}")
ratio = statistics.median(results["sparkvisor"]) / statistics.median(results["shell"])
print(f"ratio sparkvisor/shell (median start -> all workers ALIVE): {ratio:.2f}x")
if shares:
    med = statistics.median(shares)
    print(f"agent's share: container start -> service forked, median of the slowest node per round "
          f"{med * 1000:.1f} ms = {100 * med / statistics.median(results['sparkvisor']):.2f} % of the start time "
          f"(config, cgroups, rendering, privilege drop, fork; measured from Docker's StartedAt to the "
          f"timestamp Docker gives the agent's 'started' log line)")
