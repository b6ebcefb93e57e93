#!/usr/bin/env python3
"""Cluster start-up benchmark: container start -> all workers ALIVE in the master's /json/.

Two images measured in the same run, alternating rounds:
  sparkvisor  the sparkvisor Spark image (agent as PID 1: config resolution, cgroup sizing, rendering,
              privilege drop, then the role's one Spark daemon)
  shell       the same image with a bitnami-style bash entrypoint running spark-class (no agent)
Each round: a private network, one master and two workers (1.5 CPU/2 GiB and 1 CPU/1 GiB) started
together; the clock starts before the first `docker run` and stops when the master lists 2 ALIVE
workers. For sparkvisor it also reports the agent's share of start time: from the agent's process start
to the fork of the service it supervises (both from /proc/<pid>/stat, clock ticks), per container.

Usage: bench/cluster/run.sh [ROUNDS]   (prints figures and ratios; never asserts)
"""
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
TICK = os.sysconf("SC_CLK_TCK")


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


def starttime_ticks(container, pid):
    stat = docker("exec", container, "cat", f"/proc/{pid}/stat")
    return int(stat.rsplit(")", 1)[1].split()[19])


def agent_share(container, pattern):
    """Ticks from the agent (PID 1) start to the start of the service process."""
    pids = docker("exec", container, "pgrep", "-f", pattern, check=False).split()
    if not pids:
        return None
    return (starttime_ticks(container, pids[0]) - starttime_ticks(container, 1)) / TICK


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
        for w, cpus, mem in WORKERS:
            docker("run", "-d", "--name", tag + w, "--hostname", w, "--network", net, "--cpus", cpus,
                   "--memory", mem, "-e", "SPARK_MODE=worker",
                   "-e", "SPARK_MASTER_URL=spark://spark-master:7077", *extra, image)
            names.append(tag + w)
        master_ip = ip_of(tag + "m")
        deadline = t0 + 300
        while alive(master_ip) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind}: workers not ALIVE within 300 s")
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        share = None
        if kind == "sparkvisor":
            shares = [agent_share(tag + "m", "deploy.master.Master")]
            shares += [agent_share(tag + w, "deploy.worker.Worker") for w, _, _ in WORKERS]
            shares = [s for s in shares if s is not None]
            share = max(shares) if shares else None
        cores = []
        with urllib.request.urlopen(f"http://{master_ip}:8080/json/", timeout=2) as r:
            for w in json.load(r)["workers"]:
                if w["state"] == "ALIVE":
                    cores.append(f'{w["cores"]}c/{w["memory"]}M')
        return elapsed, share, sorted(cores)
    finally:
        for name in names:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", net, check=False)


HERE = os.path.dirname(os.path.abspath(__file__))
results = {k: [] for k in IMAGES}
shares = []
for n in range(ROUNDS):
    for kind in ("sparkvisor", "shell") if n % 2 == 0 else ("shell", "sparkvisor"):
        elapsed, share, sizes = round_once(kind, n)
        results[kind].append(elapsed)
        if share is not None:
            shares.append(share)
        print(f"round {n + 1} {kind:<10} all workers ALIVE after {elapsed:6.2f} s   workers {sizes}"
              + (f"   agent start->service fork {share * 1000:.0f} ms" if share is not None else ""),
              flush=True)

print()
print(f"{'image':<12}{'median s':>10}{'min s':>8}{'max s':>8}")
for kind, v in results.items():
    print(f"{kind:<12}{statistics.median(v):>10.2f}{min(v):>8.2f}{max(v):>8.2f}")
ratio = statistics.median(results["sparkvisor"]) / statistics.median(results["shell"])
print(f"ratio sparkvisor/shell (median start -> all workers ALIVE): {ratio:.2f}x")
if shares:
    med = statistics.median(shares)
    print(f"agent's share: start -> service fork median {med * 1000:.0f} ms (clock-tick resolution "
          f"{1000 / TICK:.0f} ms) = {100 * med / statistics.median(results['sparkvisor']):.1f} % of start time")
