#!/usr/bin/env python3
"""The status socket under load while the agent supervises, against supervisord's XML-RPC socket,
measured in the same run on this machine.

  sparkvisor  `sparkvisor run` supervising four `sleep` services and one service printing a line
              every 10 ms; N client processes, one keep-alive connection each, send GET requests
              back to back (/v1/health, /v1/services/NAME, /v1/status, /metrics)
  supervisord the same services; the same clients call supervisor.getAllProcessInfo over its
              unix_http_server socket (what `supervisorctl status` does)

Prints requests/s and p50/p99 latency per endpoint, the ratio against supervisord, and the agent's
RSS and thread count after the load. Target: >= 10,000 req/s. Never asserts anything.

Usage: bench/status/bench.py [--seconds S] [--connections N] [--bin PATH]
(default binary target/release/sparkvisor, built with `cargo build --release` when missing).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import run_load  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = 4


def wait_for(cond, limit=20.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def status_field(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split()[1]
    except OSError:
        return None
    return None


def get_request(path):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode()


def xmlrpc_request(method):
    body = ("<?xml version='1.0'?><methodCall><methodName>%s</methodName><params></params>"
            "</methodCall>" % method).encode()
    return ("POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
            "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def start_agent(binary, tmp):
    roles = os.path.join(tmp, "roles")
    os.makedirs(roles)
    os.makedirs(os.path.join(tmp, "templates"))
    lines = ["services:"]
    for i in range(SERVICES):
        lines.append("  sleeper%d:\n    command: [sleep, '100000']" % i)
    lines.append("  chatty:\n    command: [sh, -c, 'while :; do echo chatty line; sleep 0.01; done']")
    with open(os.path.join(roles, "bench.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    sock = os.path.join(tmp, "agent.sock")
    env = dict(os.environ, SPARKVISOR_ROLES=roles, SPARKVISOR_TEMPLATES=os.path.join(tmp, "templates"),
               SPARKVISOR_SOCKET=sock, SPARKVISOR_LOG="warn", SPARK_HOME=os.path.join(tmp, "spark"))
    for k in ("SPARKVISOR_ROLE", "SPARK_MODE", "SPARKVISOR_CONFIG", "SPARKVISOR_METRICS_ADDR"):
        env.pop(k, None)
    out = open(os.path.join(tmp, "agent.log"), "w")
    proc = subprocess.Popen([binary, "run", "--role", "bench"], env=env, stdout=out, stderr=out,
                            stdin=subprocess.DEVNULL)
    if not wait_for(lambda: os.path.exists(sock)):
        proc.kill()
        sys.exit("the agent did not open its socket; see %s/agent.log" % tmp)
    return proc, sock


def start_supervisord(tmp):
    exe = shutil.which("supervisord")
    if exe is None:
        return None, None
    sock = os.path.join(tmp, "supervisor.sock")
    conf = os.path.join(tmp, "supervisord.conf")
    with open(conf, "w") as f:
        f.write("[unix_http_server]\nfile=%s\n\n[supervisord]\nnodaemon=true\nlogfile=%s/sd.log\n"
                "pidfile=%s/sd.pid\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                "supervisor.rpcinterface:make_main_rpcinterface\n\n" % (sock, tmp, tmp))
        for i in range(SERVICES):
            f.write("[program:sleeper%d]\ncommand=sleep 100000\n\n" % i)
        f.write("[program:chatty]\ncommand=sh -c 'while :; do echo chatty line; sleep 0.01; done'\n")
    proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for(lambda: os.path.exists(sock)):
        proc.kill()
        return None, None
    time.sleep(0.5)  # let it start its programs (bench only; never in tests)
    return proc, sock


def fmt(r):
    return "%8d req/s  p50 %6.3f ms  p99 %6.3f ms  errors %d" % (
        r["req_per_s"], r["p50_ms"] or 0, r["p99_ms"] or 0, r["errors"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "sparkvisor"))
    args = p.parse_args()
    if not os.path.exists(args.bin):
        subprocess.check_call(["cargo", "build", "--release"], cwd=ROOT)

    tmp = tempfile.mkdtemp(prefix="sv-bench-status-")
    agent, sock = start_agent(args.bin, tmp)
    results = {}
    try:
        print("sparkvisor status socket, %d connections, %.0f s each, while supervising %d services"
              % (args.connections, args.seconds, SERVICES + 1))
        for path in ("/v1/health", "/v1/services/sleeper0", "/v1/status", "/metrics"):
            r = run_load(sock, get_request(path), args.connections, args.seconds)
            results[path] = r
            print("  GET %-24s %s" % (path, fmt(r)))
        rss = status_field(agent.pid, "VmRSS")
        threads = status_field(agent.pid, "Threads")
        print("  agent after the load: RSS %s kB, %s threads, still running: %s"
              % (rss, threads, agent.poll() is None))
    finally:
        agent.terminate()
        agent.wait(timeout=30)

    sd, sd_sock = start_supervisord(tmp)
    if sd is None:
        print("supervisord: not installed, no comparison")
        return
    try:
        r = run_load(sd_sock, xmlrpc_request("supervisor.getAllProcessInfo"), args.connections,
                     args.seconds)
        print("supervisord XML-RPC getAllProcessInfo  %s" % fmt(r))
        ours = results["/v1/status"]
        if r["req_per_s"]:
            print("ratio sparkvisor /v1/status : supervisord getAllProcessInfo = %.1fx req/s, "
                  "p99 %.1fx lower" % (ours["req_per_s"] / r["req_per_s"],
                                       (r["p99_ms"] or 0) / max(ours["p99_ms"] or 1e-9, 1e-9)))
    finally:
        sd.terminate()
        sd.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
