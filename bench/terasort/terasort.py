#!/usr/bin/env python3
"""A TeraSort-style PySpark job: generate N random 100-byte records (10-byte key, 90-byte value),
sort them by key with Spark's range partitioner (orderBy), validate that the output is globally
sorted and complete (same count and same order-independent checksum as the input), and print one
JSON line with the job time and the executors' peak JVM memory (from the driver's REST API).

Usage: spark-submit terasort.py MASTER_URL RECORDS PARTITIONS   (the driver runs where it is started)
"""
import json
import sys
import time
import urllib.request

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

master, records, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spark = SparkSession.builder.master(master).appName("terasort").getOrCreate()
sc = spark.sparkContext
t0 = time.monotonic()
# Input: deterministic pseudo-random keys (the first 10 bytes of SHA-256 of the id), 90-byte values.
data = (spark.range(0, records, numPartitions=parts)
        .select(F.unhex(F.substring(F.sha2(F.col("id").cast("string"), 256), 1, 20)).alias("key"),
                F.rpad(F.col("id").cast("string"), 90, "x").cast("binary").alias("value")))
checksum = F.sum(F.crc32(F.concat("key", "value")).cast("decimal(38,0)"))
want = data.agg(F.count("*").alias("n"), checksum.alias("c")).collect()[0]
# The sort: a range partitioner over sampled keys, then a sort within each partition.
ordered = data.orderBy("key").cache()
got = ordered.agg(F.count("*").alias("n"), checksum.alias("c")).collect()[0]
# Sortedness: every partition sorted, and each partition's first key not below the last key of the
# partition before it (partitions come back in order).
def partition_stats(rows):
    first = last = None
    ok, n = True, 0
    for row in rows:
        k = bytes(row[0])
        if last is not None and k < last:
            ok = False
        first = k if first is None else first
        last, n = k, n + 1
    yield ok, first, last, n


stats = [s for s in ordered.select("key").rdd.mapPartitions(partition_stats).collect() if s[3]]
ordered_ok = all(s[0] for s in stats) and all(a[2] <= b[1] for a, b in zip(stats, stats[1:]))
elapsed = time.monotonic() - t0

peaks = []
try:
    ui = sc.uiWebUrl
    with urllib.request.urlopen(f"{ui}/api/v1/applications/{sc.applicationId}/allexecutors", timeout=60) as r:
        for e in json.load(r):
            if e["id"] == "driver":
                continue
            m = e.get("peakMemoryMetrics") or {}
            peaks.append({"id": e["id"], "host": e["hostPort"],
                          "max_memory": e.get("maxMemory"),
                          "peak_jvm_mb": round((m.get("JVMHeapMemory", 0) + m.get("JVMOffHeapMemory", 0)) / 2**20),
                          "peak_rss_mb": round(m.get("ProcessTreeJVMRSSMemory", 0) / 2**20)})
except Exception as e:  # the figures are extra: the job's result stands without them
    peaks.append({"error": str(e)})
print("TERASORT " + json.dumps({
    "seconds": round(elapsed, 2), "records": records, "count_ok": want["n"] == got["n"] == records,
    "checksum_ok": want["c"] == got["c"], "sorted_ok": ordered_ok, "executors": peaks}), flush=True)
spark.stop()
