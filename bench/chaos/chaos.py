"""Seeded, bounded chaos against the HA cluster; see run.sh. Exit 0 only when the job's checksum
is exact, every fault was recovered from, and no container holds a zombie."""
import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request

WORKERS = ["spark-worker-1", "spark-worker-2"]
MASTERS = ["spark-master-1", "spark-master-2"]

JOB = r"""
import sys, time
from pyspark.sql import SparkSession
parts, per, nap = int(sys.argv[1]), 20000, float(sys.argv[2])
spark = (SparkSession.builder.appName("sparkvisor-chaos")
         .master("spark://spark-master-1:7077,spark-master-2:7077")
         .config("spark.executor.memory", "480m")
         .config("spark.decommission.enabled", "true")
         .config("spark.storage.decommission.enabled", "true")
         .config("spark.task.maxFailures", "16")
         .getOrCreate())
def slow(part):
    time.sleep(nap)
    return part
rdd = spark.sparkContext.parallelize(range(parts * per), parts)
total = rdd.mapPartitions(slow).map(lambda x: (x % 101, x * x % 1000003)).reduceByKey(lambda a, b: a + b).values().sum()
print("CHECKSUM", total, flush=True)
spark.stop()
"""


def sh(*args, check=True, capture=True):
    r = subprocess.run(args, capture_output=capture, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{args}: {r.stderr}")
    return r.stdout.strip() if capture else ""


class Cluster:
    def __init__(self, image, zk_image, project):
        self.project = project or f"chaos{os.getpid()}"
        self.env = dict(os.environ, SPARKVISOR_IMAGE=image, SPARKVISOR_ZK_IMAGE=zk_image)
        self.compose = (["docker", "compose"] if subprocess.run(
            ["docker", "compose", "version"], capture_output=True).returncode == 0
            else ["docker-compose", "--compatibility"])
        self.compose += ["-p", self.project, "-f", "docker/compose.ha.yaml"]

    def run(self, *args):
        return subprocess.run(self.compose + list(args), env=self.env, capture_output=True,
                              text=True, check=True).stdout.strip()

    def container(self, service):
        return self.run("ps", "-q", service)

    def ip(self, container):
        return sh("docker", "inspect", "--format",
                  "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container).split()[0]

    def master_json(self, service):
        try:
            with urllib.request.urlopen(f"http://{self.ip(self.container(service))}:8080/json/",
                                        timeout=5) as r:
                return json.load(r)
        except Exception:  # a master that is down or restarting
            return None

    def leader(self):
        """(service, alive workers) of the ALIVE master, or (None, 0)."""
        for m in MASTERS:
            j = self.master_json(m)
            if j and j.get("status") == "ALIVE":
                return m, sum(1 for w in j.get("workers", []) if w.get("state") == "ALIVE")
        return None, 0

    def restarts(self, service, name):
        """The agent's restart count of service `name` in the container of `service`."""
        try:
            status = json.loads(sh("docker", "exec", self.container(service), "sparkvisor",
                                   "status", "--json"))
        except (RuntimeError, ValueError):
            return None
        return next((s.get("restarts") for s in status.get("services", [])
                     if s.get("name") == name), None)

    def executors(self, service):
        """Executors the worker in `service` runs (its /json/), 0 when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://{self.ip(self.container(service))}:8081/json/",
                                        timeout=5) as r:
                return len(json.load(r).get("executors", []))
        except Exception:
            return 0

    def wait_recovered(self, timeout=300):
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            m, n = self.leader()
            if m and n == len(WORKERS):
                return m, time.monotonic() - start
            time.sleep(0.5)
        raise RuntimeError(f"not recovered within {timeout} s: leader {self.leader()}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    p.add_argument("--zk-image", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--faults", type=int, default=4)
    p.add_argument("--partitions", type=int, default=48)
    p.add_argument("--task-seconds", type=float, default=2.0)
    p.add_argument("--project", help="compose project name (default chaosPID)")
    a = p.parse_args()
    rng = random.Random(a.seed)
    c = Cluster(a.image, a.zk_image, a.project)
    per = 20000
    expected = sum(x * x % 1000003 for x in range(a.partitions * per))
    c.run("up", "-d")
    ok = False
    try:
        leader, took = c.wait_recovered()
        print(f"chaos: seed {a.seed}, cluster up, leader {leader} ({took:.1f} s)", flush=True)
        network = f"{c.project}_default"
        job = subprocess.Popen(
            ["docker", "run", "--rm", "--network", network, "--hostname", f"{c.project}-driver",
             "--name", f"{c.project}-driver", "--entrypoint", "python3", "-u", "spark",
             a.image, "-c", JOB, str(a.partitions), str(a.task_seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = {}
        readers = [
            threading.Thread(target=lambda: out.update(stdout=job.stdout.read()), daemon=True),
            threading.Thread(target=lambda: out.update(stderr=job.stderr.read()), daemon=True)]
        for r in readers:
            r.start()
        # Faults start once the job runs on both workers.
        start = time.monotonic()
        while not all(c.executors(w) for w in WORKERS):
            if job.poll() is not None or time.monotonic() - start > 300:
                raise RuntimeError("the job never got an executor on both workers")
            time.sleep(0.5)
        print(f"chaos: job running on both workers after {time.monotonic() - start:.1f} s",
              flush=True)
        injected, unrestarted = 0, []
        kinds = ["kill -9 worker JVM", "docker stop/start worker", "docker kill active master"]
        for i in range(a.faults):
            if job.poll() is not None:
                break
            kind = rng.choice(kinds)
            worker = rng.choice(WORKERS)
            t = time.monotonic()
            if kind == "kill -9 worker JVM":
                what = f"{kind} in {worker}"
                before = c.restarts(worker, "spark-worker")
                sh("docker", "exec", c.container(worker), "pkill", "-9", "-f",
                   "org.apache.spark.deploy.worker.Worker")
            elif kind == "docker stop/start worker":
                what = f"{kind} {worker}"
                sh("docker", "stop", "-t", "30", c.container(worker))
                sh("docker", "start", c.container(worker))
            else:
                leader, _ = c.leader()
                what = f"{kind} ({leader})"
                cid = c.container(leader)
                sh("docker", "kill", cid)
                sh("docker", "start", cid)  # it comes back as the standby
            leader, took = c.wait_recovered()
            injected += 1
            restarted = ""
            if kind == "kill -9 worker JVM":
                after = c.restarts(worker, "spark-worker")
                restarted = f", agent restarts {before} -> {after}"
                if before is None or after is None or after <= before:
                    unrestarted.append(what)
            print(f"chaos: fault {i + 1}: {what}: recovered in {time.monotonic() - t:.1f} s "
                  f"(leader {leader}{restarted})", flush=True)
            time.sleep(rng.uniform(5, 15))
        job.wait(timeout=900)
        for r in readers:
            r.join(timeout=30)
        print(f"chaos: {injected} of {a.faults} faults injected while the job ran", flush=True)
        lines = out.get("stdout", "").splitlines()
        got = next((int(l.split()[1]) for l in lines if l.startswith("CHECKSUM")), None)
        print(f"chaos: checksum {got}, expected {expected}", flush=True)
        zombies = {}
        for s in WORKERS + MASTERS + ["zookeeper"]:
            cid = c.container(s)
            states = sh("docker", "exec", cid, "ps", "-eo", "stat=", check=False)
            zombies[s] = sum(1 for st in states.split() if st.startswith("Z"))
        print(f"chaos: zombies per container {zombies}", flush=True)
        if unrestarted:
            print(f"chaos: the agent did not restart: {unrestarted}", flush=True)
        ok = (job.returncode == 0 and got == expected and not any(zombies.values())
              and not unrestarted and injected == a.faults)
        if not ok:
            print(out.get("stderr", "")[-4000:], file=sys.stderr)
    finally:
        subprocess.run(["docker", "rm", "-f", f"{c.project}-driver"], capture_output=True)
        c.run("down", "-v", "-t", "30")
    print("chaos: PASS" if ok else "chaos: FAIL", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
