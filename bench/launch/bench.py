#!/usr/bin/env python3
"""Spark daemon start -> ready and restart -> ready: direct JVM launch vs spark-class, one run.

Variants (same image, alternating per round):
  direct       the built-in roles (launch: java): the agent execs the daemon's JVM itself
  spark-class  the same roles with `launch: spark-class` mounted over /etc/sparkvisor/roles
Per round and variant, on a private network: the master container is started (1 CPU, 1 GiB) and
timed from `docker run` to ALIVE in its /json/; then a worker (1 CPU, 1 GiB) from `docker run` to
registered ALIVE; then `sparkvisor restart spark-master` inside the master container, timed until the
master answers ALIVE again (having been seen down). Zombies in each container are counted once
both daemons run. Prints figures and ratios; never asserts.

With --cds the variants are instead
  direct       as above
  direct+cds   the same with an AppCDS archive per daemon (-XX:SharedArchiveFile in
               SPARK_DAEMON_JAVA_OPTS): dynamic archives dumped first, in the same image, by a master
               and a worker run with -XX:ArchiveClassesAtExit (stopped with SIGTERM once ALIVE), and
               mounted read-only at /cds.

With --jit they are
  direct       as above (the master's and worker's default spark.daemon_jit=c1: C1 compiler only)
  direct+full  the same with SPARKVISOR_DAEMON_JIT=full (the JVM's default tiered compilation)

Usage: bench/launch/run.sh [--cds | --jit] [ROUNDS]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CDS = "--cds" in sys.argv
JIT = "--jit" in sys.argv
ARGS = [a for a in sys.argv[1:] if a not in ("--cds", "--jit")]
IMAGE, ROLES, ROUNDS = ARGS[0], ARGS[1], int(ARGS[2]) if len(ARGS) > 2 else 5
VARIANTS = ("direct", "direct+cds") if CDS else ("direct", "direct+full") if JIT else ("direct", "spark-class")
CDS_DIR = None
POLL = 0.02


def docker(*args, check=True):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True).stdout.strip()


def master_json(ip):
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/json/", timeout=1) as r:
            return json.load(r)
    except Exception:
        return None


def wait(what, cond, limit=300):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > limit:
            raise RuntimeError(f"{what}: not within {limit} s")
        time.sleep(POLL)


def zombies(container):
    out = docker("exec", container, "sh", "-c",
                 "for s in /proc/[0-9]*/stat; do cat $s 2>/dev/null; echo; done")
    return sum(1 for line in out.splitlines() if line.strip() and line.rsplit(")", 1)[-1].split()[0] == "Z")


def variant_args(variant, role):
    """The `docker run` arguments that make a container of this variant (role: master or worker)."""
    if variant == "spark-class":
        return ["-v", f"{ROLES}:/etc/sparkvisor/roles:ro"]
    if variant == "direct+full":
        return ["-e", "SPARKVISOR_DAEMON_JIT=full"]
    if variant == "direct+cds" and role:
        return ["-v", f"{CDS_DIR}:/cds:ro", "-e", f"SPARK_DAEMON_JAVA_OPTS=-XX:SharedArchiveFile=/cds/{role}.jsa"]
    return []


def dump_archives(workdir):
    """Dumps /cds/master.jsa and /cds/worker.jsa: each daemon started once with
    -XX:ArchiveClassesAtExit, stopped with SIGTERM once ALIVE (the JVM writes the archive as it
    exits; the agent then restarts it, and the restarted JVM is killed with its container)."""
    os.chmod(workdir, 0o777)
    tag = f"perfbenchcds{os.getpid()}"
    net = tag + "net"
    docker("network", "create", net)
    names = []
    try:
        for role in ("master", "worker"):
            env = ["-e", f"SPARK_MODE={role}", "-e",
                   f"SPARK_DAEMON_JAVA_OPTS=-XX:ArchiveClassesAtExit=/cds/{role}.jsa"]
            if role == "worker":
                env += ["-e", "SPARK_MASTER_URL=spark://spark-master:7077"]
            docker("run", "-d", "--name", tag + role, "--hostname", "spark-" + role, "--network", net,
                   "--network-alias", "spark-" + role, "--cpus", "1", "--memory", "1g",
                   "-v", f"{workdir}:/cds", *env, IMAGE)
            names.append(tag + role)
        ip = docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", tag + "master")
        next_log_check = [0.0]

        def dumped_daemons_alive():
            # A JVM that refuses the archive option exits at start and is restarted forever: say why
            # (the logs are read every 2 s, not at every poll: `docker logs` takes CPU from the JVMs).
            if time.monotonic() >= next_log_check[0]:
                next_log_check[0] = time.monotonic() + 2
                for name in names:
                    out = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
                    log = out.stdout + out.stderr
                    if "Error occurred during initialization of VM" in log:
                        why = [line for line in log.splitlines() if "[cds]" in line or "Cannot" in line]
                        raise RuntimeError(f"{name}: the JVM refused -XX:ArchiveClassesAtExit: " + " | ".join(why[-3:]))
            return sum(1 for w in (master_json(ip) or {}).get("workers", []) if w.get("state") == "ALIVE") == 1
        wait("master and worker ALIVE (dump run)", limit=900, cond=dumped_daemons_alive)
        for role, cls in (("worker", "[d]eploy.worker.Worker"), ("master", "[d]eploy.master.Master")):
            pid = docker("exec", tag + role, "pgrep", "-f", cls)
            docker("exec", tag + role, "kill", "-TERM", pid)
            path = os.path.join(workdir, f"{role}.jsa")
            # The archive is complete once the JVM that writes it has gone.
            wait(f"{role}.jsa written", lambda: os.path.exists(path) and pid not in docker(
                "exec", tag + role, "pgrep", "-f", cls, check=False).split(), limit=300)
            last = -1
            while os.path.getsize(path) != last:
                last = os.path.getsize(path)
                time.sleep(1)
            print(f"cds: {role}.jsa {last / 1e6:.1f} MB", flush=True)
    finally:
        for name in names:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", net, check=False)


def round_once(variant, n):
    tag = f"perfbench{os.getpid()}{''.join(c for c in variant if c.isalnum())}{n}"
    net = tag + "net"
    docker("network", "create", net)
    names = []
    try:
        t0 = time.monotonic()
        docker("run", "-d", "--name", tag + "m", "--hostname", "spark-master", "--network", net,
               "--network-alias", "spark-master", "--cpus", "1", "--memory", "1g",
               "-e", "SPARK_MODE=master", *variant_args(variant, "master"), IMAGE)
        names.append(tag + "m")
        ip = docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", tag + "m")
        wait("master ALIVE", lambda: (master_json(ip) or {}).get("status") == "ALIVE")
        master_s = time.monotonic() - t0

        t0 = time.monotonic()
        docker("run", "-d", "--name", tag + "w", "--hostname", "w1", "--network", net, "--cpus", "1",
               "--memory", "1g", "-e", "SPARK_MODE=worker", "-e", "SPARK_MASTER_URL=spark://spark-master:7077",
               *variant_args(variant, "worker"), IMAGE)
        names.append(tag + "w")

        def one_alive():
            j = master_json(ip) or {}
            return sum(1 for w in j.get("workers", []) if w.get("state") == "ALIVE") == 1
        wait("worker ALIVE", one_alive)
        worker_s = time.monotonic() - t0
        z = zombies(tag + "m") + zombies(tag + "w")

        t0 = time.monotonic()
        subprocess.Popen(["docker", "exec", tag + "m", "sparkvisor", "restart", "spark-master"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait("master down", lambda: master_json(ip) is None)
        wait("master ALIVE again", lambda: (master_json(ip) or {}).get("status") == "ALIVE")
        restart_s = time.monotonic() - t0
        return master_s, worker_s, restart_s, z
    finally:
        for name in names:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", net, check=False)


def main():
    global CDS_DIR
    if CDS:
        CDS_DIR = tempfile.mkdtemp(prefix="perf-bench-cds.")
        dump_archives(CDS_DIR)
    results = {v: {"master": [], "worker": [], "restart": [], "zombies": []} for v in VARIANTS}
    load = os.getloadavg()
    for n in range(ROUNDS):
        for variant in VARIANTS if n % 2 == 0 else reversed(VARIANTS):
            m, w, r, z = round_once(variant, n)
            for key, val in (("master", m), ("worker", w), ("restart", r), ("zombies", z)):
                results[variant][key].append(val)
            print(f"round {n + 1} {variant:<12} master start->ALIVE {m:6.2f} s   worker start->ALIVE "
                  f"{w:6.2f} s   master restart->ALIVE {r:6.2f} s   zombies {z}", flush=True)
    print()
    print(f"load average at start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {ROUNDS} rounds; "
          f"median s (min-max)")
    print(f"{'variant':<12}{'master start->ready':>24}{'worker start->ready':>24}{'restart->ready':>24}{'zombies':>9}")
    for v in VARIANTS:
        cells = []
        for key in ("master", "worker", "restart"):
            xs = results[v][key]
            cells.append(f"{statistics.median(xs):6.2f} ({min(xs):.2f}-{max(xs):.2f})")
        print(f"{v:<12}{cells[0]:>24}{cells[1]:>24}{cells[2]:>24}{max(results[v]['zombies']):>9}")
    peer = VARIANTS[1]
    ratio = {k: statistics.median(results[peer][k]) / statistics.median(results["direct"][k]) if CDS
             else statistics.median(results["direct"][k]) / statistics.median(results[peer][k])
             for k in ("master", "worker", "restart")}
    label = "direct+cds/direct" if CDS else "direct/direct+full" if JIT else "direct/spark-class"
    print(f"launch: {label} start->ready master {ratio['master']:.2f}, worker "
          f"{ratio['worker']:.2f}, restart->ready {ratio['restart']:.2f}")


if __name__ == "__main__":
    main()
