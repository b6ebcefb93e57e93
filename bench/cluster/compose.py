#!/usr/bin/env python3
"""Cluster up with Compose: `compose up` of a master and two workers (with CPU/memory limits) all at
once -> both workers ALIVE in the master's /json/, for three entrypoints on the same image, one run,
alternating per round:
  sparkvisor     the image as built (agent as PID 1: sizing, rendering, privilege drop, direct JVM)
  bitnami-style  bash as PID 1 running spark-class without exec (bench/cluster/bitnami-style-entrypoint.sh)
  official-style tini -s -- spark-class ... as the official apache/spark image's entrypoint.sh
                 ends (`tini` here is sparkvisor's drop-in tini mode, the image has no other tini)
Services as in docker/compose.yaml: spark-master (1 CPU, 1 GiB), spark-worker-1 (1.5 CPU, 2 GiB),
spark-worker-2 (1 CPU, 1 GiB), workers `depends_on: [spark-master]` (container start order only).
The clock starts before `compose up` and stops when the master lists 2 ALIVE workers.

Usage: bench/cluster/run.sh --compose [ROUNDS]   (prints figures and ratios; never asserts)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

IMAGE = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ("sparkvisor", "bitnami-style", "official-style")
LIMITS = {"spark-master": ("1", "1g"), "spark-worker-1": ("1.5", "2g"), "spark-worker-2": ("1", "1g")}
MASTER = ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.master.Master",
          "--host", "spark-master", "--port", "7077", "--webui-port", "8080"]
WORKER = ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.worker.Worker",
          "--webui-port", "8081", "spark://spark-master:7077"]


def compose_cmd():
    ok = lambda *a: subprocess.run(list(a), capture_output=True).returncode == 0
    if ok("docker", "compose", "version"):
        return ["docker", "compose"]
    if ok("docker-compose", "version"):
        return ["docker-compose", "--compatibility"]
    sys.exit("needs docker compose (v2) or docker-compose (v1)")


def compose_file(variant):
    services = {}
    for name, (cpus, mem) in LIMITS.items():
        master = name == "spark-master"
        svc = {
            "image": IMAGE,
            "hostname": name,
            "environment": {"SPARK_MODE": "master" if master else "worker"},
            "deploy": {"resources": {"limits": {"cpus": cpus, "memory": mem}}},
        }
        if not master:
            svc["depends_on"] = ["spark-master"]
            svc["environment"]["SPARK_MASTER_URL"] = "spark://spark-master:7077"
        if variant == "bitnami-style":
            svc["entrypoint"] = ["/bench/entrypoint.sh"]
            svc["volumes"] = [f"{HERE}/bitnami-style-entrypoint.sh:/bench/entrypoint.sh:ro"]
        elif variant == "official-style":
            svc["entrypoint"] = ["/usr/local/bin/tini", "-s", "--"]
            svc["command"] = MASTER if master else WORKER
        services[name] = svc
    return {"version": "3.8", "services": services}


def alive(ip):
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/json/", timeout=1) as r:
            j = json.load(r)
        return sum(1 for w in j.get("workers", []) if w.get("state") == "ALIVE")
    except Exception:
        return 0


def round_once(cmd, variant, n, tmp):
    project = f"perfcompose{os.getpid()}{variant.replace('-', '')}{n}"
    path = os.path.join(tmp, f"{project}.yaml")
    with open(path, "w") as f:
        json.dump(compose_file(variant), f)  # JSON is YAML
    base = cmd + ["-p", project, "-f", path]
    try:
        t0 = time.monotonic()
        subprocess.run(base + ["up", "-d"], check=True, capture_output=True)
        cid = subprocess.run(base + ["ps", "-q", "spark-master"], check=True, capture_output=True,
                             text=True).stdout.strip()
        ip = subprocess.run(["docker", "inspect", "--format",
                             "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid],
                            check=True, capture_output=True, text=True).stdout.strip()
        while alive(ip) < 2:
            if time.monotonic() - t0 > 300:
                raise RuntimeError(f"{variant}: 2 workers not ALIVE within 300 s")
            time.sleep(0.05)
        return time.monotonic() - t0
    finally:
        subprocess.run(base + ["down", "-v", "-t", "2"], capture_output=True)


def main():
    cmd = compose_cmd()
    results = {v: [] for v in VARIANTS}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="perf-compose-") as tmp:
        for n in range(ROUNDS):
            order = VARIANTS[n % 3:] + VARIANTS[:n % 3]
            for v in order:
                s = round_once(cmd, v, n, tmp)
                results[v].append(s)
                print(f"round {n + 1} {v:<15} compose up -> 2 workers ALIVE {s:6.2f} s", flush=True)
    print()
    print(f"load average at start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {ROUNDS} rounds")
    print(f"{'entrypoint':<16}{'median s':>10}{'min s':>8}{'max s':>8}")
    for v in VARIANTS:
        xs = results[v]
        print(f"{v:<16}{statistics.median(xs):>10.2f}{min(xs):>8.2f}{max(xs):>8.2f}")
    med = {v: statistics.median(results[v]) for v in VARIANTS}
    print(f"cluster up (compose): sparkvisor/bitnami-style {med['sparkvisor'] / med['bitnami-style']:.2f}, "
          f"sparkvisor/official-style {med['sparkvisor'] / med['official-style']:.2f}")


if __name__ == "__main__":
    main()
