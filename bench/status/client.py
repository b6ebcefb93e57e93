#!/usr/bin/env python3
"""Load generator for an HTTP server on a Unix socket: N processes, each with one keep-alive
connection, send the same request back to back for a fixed time. Prints requests/s and latency
percentiles as one JSON object. Reconnects when the server closes (e.g. `Connection: close`).

    client.py --socket /run/sparkvisor/sparkvisor.sock --connections 4 --seconds 5 --path /v1/status
    client.py --socket /tmp/supervisor.sock --xmlrpc supervisor.getAllProcessInfo ...
"""
import argparse
import json
import multiprocessing as mp
import socket
import time


def build_request(args):
    if args.xmlrpc:
        body = ("<?xml version='1.0'?><methodCall><methodName>%s</methodName><params></params>"
                "</methodCall>" % args.xmlrpc).encode()
        head = ("POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
                "Content-Length: %d\r\n\r\n" % len(body)).encode()
        return head + body
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % args.path).encode()


def read_response(sock, buf):
    """Reads one response; returns (status, close, leftover). Raises on EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    if length is None:  # read to EOF
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return status, True, b""
            rest += chunk
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        rest += chunk
    return status, close, rest[length:]


def worker(path, request, seconds, start_at, out):
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.perf_counter() + seconds
    latencies = []
    errors = 0
    sock = None
    buf = b""
    while time.perf_counter() < deadline:
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            buf = b""
        t0 = time.perf_counter_ns()
        try:
            sock.sendall(request)
            status, close, buf = read_response(sock, buf)
        except (EOFError, OSError):
            errors += 1
            sock.close()
            sock = None
            continue
        latencies.append(time.perf_counter_ns() - t0)
        if status != 200:
            errors += 1
        if close:
            sock.close()
            sock = None
    out.put((latencies, errors))


def run_load(path, request, connections, seconds):
    """Runs `connections` processes for `seconds`; returns the figures as a dict."""
    out = mp.Queue()
    start_at = time.time() + 0.5
    procs = [mp.Process(target=worker, args=(path, request, seconds, start_at, out))
             for _ in range(connections)]
    for pr in procs:
        pr.start()
    latencies, errors = [], 0
    for _ in procs:
        lat, err = out.get()
        latencies += lat
        errors += err
    for pr in procs:
        pr.join()
    latencies.sort()

    def pct(q):
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1e6

    return {
        "requests": len(latencies),
        "errors": errors,
        "req_per_s": round(len(latencies) / seconds),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "connections": connections,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--path", default="/v1/status")
    p.add_argument("--xmlrpc", help="call this XML-RPC method on /RPC2 (supervisord)")
    args = p.parse_args()
    print(json.dumps(run_load(args.socket, build_request(args), args.connections, args.seconds)))


if __name__ == "__main__":
    main()
