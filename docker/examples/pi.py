"""Estimate pi on the cluster: spark-submit --master spark://spark-master:7077 pi.py [PARTITIONS]."""
import random
import sys

from pyspark.sql import SparkSession

partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 8
n = 100_000 * partitions
spark = SparkSession.builder.appName("sparkvisor-pi").getOrCreate()


def inside(_):
    x, y = random.random(), random.random()
    return x * x + y * y <= 1


count = spark.sparkContext.parallelize(range(n), partitions).filter(inside).count()
print(f"Pi is roughly {4.0 * count / n:.5f} (master {spark.sparkContext.master})")
spark.stop()
