#!/usr/bin/env python3
"""Orchestrates bench/terasort (see run.sh): brings up each cluster, runs terasort.py with the
driver on the host, collects the job's JSON line, the workers' peak memory and OOM kills, tears
the cluster down. Never asserts; prints figures and ratios.
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

STOCK_JOB = "--stock-job" in sys.argv
ARGS = [a for a in sys.argv[1:] if a != "--stock-job"]
IMAGE, VENV, RECORDS, ROUNDS = ARGS[0], ARGS[1], int(ARGS[2]), int(ARGS[3])
HERE = os.path.dirname(os.path.abspath(__file__))
SPARK_HOME = subprocess.run([f"{VENV}/bin/python", "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
                            check=True, capture_output=True, text=True).stdout.strip()
PARTS = 8
LOG_DIR = os.path.join(HERE, "..", "..", "target", "bench", "terasort-logs")
# name, cpus, memory limit, the cores/memory sparkvisor derives for it (used for bare metal too)
WORKERS = [("w1", "1.5", "2g", 2, "1408m"), ("w2", "1", "1g", 1, "512m")]
# --stock-job: the job as a user submits it without sizing its executors (Spark's defaults: 1g, and
# every core a worker offers), to show what each setup's worker offers does under the limits.
EXECUTOR_CONF = [] if STOCK_JOB else ["--conf", "spark.executor.memory=512m", "--conf", "spark.executor.cores=1"]
JOB_CONF = [*EXECUTOR_CONF, "--conf", "spark.ui.showConsoleProgress=false", "--conf", "spark.driver.memory=1g",
            "--conf", "spark.executor.processTreeMetrics.enabled=true"]


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True).stdout.strip()


def image_python():
    """The image's PYSPARK_PYTHON (its venv's interpreter), read from the image's environment."""
    env = json.loads(sh("docker", "image", "inspect", "--format", "{{json .Config.Env}}", IMAGE))
    return next(e.split("=", 1)[1] for e in env if e.startswith("PYSPARK_PYTHON="))


def master_alive_workers(host):
    try:
        with urllib.request.urlopen(f"http://{host}:8080/json/", timeout=2) as r:
            j = json.load(r)
        return sum(1 for w in j.get("workers", []) if w.get("state") == "ALIVE")
    except Exception:
        return -1


def wait_workers(host, n=2, limit=300):
    t0 = time.monotonic()
    while master_alive_workers(host) < n:
        if time.monotonic() - t0 > limit:
            raise RuntimeError(f"{n} workers not ALIVE at {host} within {limit} s")
        time.sleep(0.2)


def submit(master_url, driver_host, executor_python=sys.executable):
    """The job, its driver on the host (this venv's Python); the executors' Python workers run
    `executor_python`, which must exist where the executors run (the image's venv in a container)."""
    out = subprocess.run([f"{SPARK_HOME}/bin/spark-submit", "--master", master_url,
                          "--conf", f"spark.driver.host={driver_host}", "--conf", "spark.driver.bindAddress=0.0.0.0",
                          *JOB_CONF, f"{HERE}/terasort.py", master_url, str(RECORDS), str(PARTS)],
                         capture_output=True, text=True, env={**os.environ, "SPARK_HOME": SPARK_HOME,
                                                              "PYSPARK_DRIVER_PYTHON": sys.executable,
                                                              "PYSPARK_PYTHON": executor_python})
    for line in out.stdout.splitlines():
        if line.startswith("TERASORT "):
            return json.loads(line[len("TERASORT "):])
    return {"seconds": None, "failed": out.stderr[-2000:], "stderr": out.stderr}


def bare():
    tmp = tempfile.mkdtemp(prefix="perf-terasort-bare-")
    procs = []
    env = {**os.environ, "SPARK_HOME": SPARK_HOME, "SPARK_NO_DAEMONIZE": "1", "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOCAL_HOSTNAME": "127.0.0.1", "SPARK_CONF_DIR": tmp}
    port = 17077 + random.randrange(1000)
    try:
        procs.append(subprocess.Popen([f"{SPARK_HOME}/bin/spark-class", "org.apache.spark.deploy.master.Master",
                                       "--host", "127.0.0.1", "--port", str(port), "--webui-port", "8080"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for i, (name, _, _, cores, mem) in enumerate(WORKERS):
            procs.append(subprocess.Popen(
                [f"{SPARK_HOME}/bin/spark-class", "org.apache.spark.deploy.worker.Worker", "--webui-port", str(18081 + i),
                 "--cores", str(cores), "--memory", mem, "--work-dir", f"{tmp}/{name}", f"spark://127.0.0.1:{port}"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_workers("127.0.0.1")
        return submit(f"spark://127.0.0.1:{port}", "127.0.0.1"), {}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def containers(kind):
    tag = f"perfterasort{os.getpid()}{kind.replace('-', '')}{random.randrange(10**6)}"
    net, names = tag + "net", []
    sh("docker", "network", "create", net)
    # The driver (on the host) cannot resolve the containers' names: sparkvisor's workers advertise
    # their IP address (the bitnami-style ones do by default, Spark's own fallback).
    extra = ["-e", "SPARKVISOR_ADVERTISE=address"] if kind == "sparkvisor" else ["--entrypoint", "/bench/entrypoint.sh", "-v",
                                              f"{HERE}/../cluster/bitnami-style-entrypoint.sh:/bench/entrypoint.sh:ro"]
    try:
        names.append(tag + "m")
        sh("docker", "run", "-d", "--name", tag + "m", "--hostname", "spark-master", "--network", net,
           "--network-alias", "spark-master", "--cpus", "1", "--memory", "1g", "-e", "SPARK_MODE=master", *extra, IMAGE)
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.Gateway}}{{end}}"
        master_ip, gateway = sh("docker", "inspect", "--format", fmt, tag + "m").split()
        for name, cpus, mem, _, _ in WORKERS:
            names.append(tag + name)
            sh("docker", "run", "-d", "--name", tag + name, "--hostname", name, "--network", net, "--network-alias", name, "--cpus", cpus,
               "--memory", mem, "--memory-swap", mem, "-e", "SPARK_MODE=worker",
               "-e", "SPARK_MASTER_URL=spark://spark-master:7077", *extra, IMAGE)
        wait_workers(master_ip, limit=400)
        result = submit(f"spark://{master_ip}:7077", gateway, image_python())
        mem = {}
        for name, _, limit, _, _ in WORKERS:
            peak = sh("docker", "exec", tag + name, "cat", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes", check=False)
            # memory.oom_control has oom_kill_disable and oom_kill lines: the count is the latter.
            oom = sh("docker", "exec", tag + name, "sh", "-c",
                     "sed -n 's/^oom_kill //p' /sys/fs/cgroup/memory/memory.oom_control", check=False)
            mem[name] = {"peak_mb": int(peak) // 2**20 if peak.isdigit() else None, "limit": limit,
                         "oom_kills": int(oom) if oom.isdigit() else None}
        if result.get("failed"):
            # Kept for the post-mortem: the driver's whole output and every container's log.
            logs = os.path.join(LOG_DIR, tag)
            os.makedirs(logs, exist_ok=True)
            with open(os.path.join(logs, "driver.log"), "w") as f:
                f.write(result.pop("stderr", ""))
            for name in names:
                with open(os.path.join(logs, name[len(tag):] + ".log"), "w") as f:
                    subprocess.run(["docker", "logs", name], stdout=f, stderr=subprocess.STDOUT, check=False)
            result["failed"] += f"\n(driver and container logs in {logs})"
        return result, mem
    finally:
        for name in names:
            sh("docker", "rm", "-f", name, check=False)
        sh("docker", "network", "rm", net, check=False)


def main():
    kinds = ("sparkvisor", "bitnami-style") if STOCK_JOB else ("bare", "sparkvisor", "bitnami-style")
    times = {k: [] for k in kinds}
    load = os.getloadavg()
    for n in range(ROUNDS):
        for kind in kinds if n % 2 == 0 else tuple(reversed(kinds)):
            result, mem = bare() if kind == "bare" else containers(kind)
            ok = result.get("count_ok") and result.get("checksum_ok") and result.get("sorted_ok")
            if result.get("seconds") is not None and ok:
                times[kind].append(result["seconds"])
            execs = [f"{e.get('host', '?')} jvm {e.get('peak_jvm_mb')} MiB rss {e.get('peak_rss_mb')} MiB"
                     for e in result.get("executors", []) if "error" not in e]
            print(f"round {n + 1} {kind:<14} job {result.get('seconds')} s  valid {bool(ok)}  "
                  f"executors: {'; '.join(execs) or '-'}", flush=True)
            for name, m in mem.items():
                print(f"    {name}: container peak {m['peak_mb']} MiB of {m['limit']}, OOM kills {m['oom_kills']}",
                      flush=True)
            if result.get("failed"):
                print("    job failed: " + result["failed"].strip().splitlines()[-1][:300], flush=True)
    print()
    print(f"load average at start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {RECORDS} records "
          f"({RECORDS * 100 / 1e6:.0f} MB), {PARTS} partitions, {ROUNDS} round(s)")
    med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
    for k in kinds:
        print(f"{k:<14} median job s {med[k]:8.2f}   valid runs {len(times[k])}/{ROUNDS}")
    if STOCK_JOB:
        print(f"terasort (stock job settings): ours/bitnami-style {med['sparkvisor'] / med['bitnami-style']:.2f}")
    else:
        print(f"terasort: containers/bare {med['sparkvisor'] / med['bare']:.2f}, "
              f"ours/bitnami-style {med['sparkvisor'] / med['bitnami-style']:.2f}")


if __name__ == "__main__":
    main()
