#!/bin/sh
# Seeds corpus/TARGET for the four targets from a few requests and the repository's own fixtures
# and roles: without seeds, `request` stays in the HTTP request line for millions of executions.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/request corpus/config corpus/roles corpus/context
printf 'GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n' > corpus/request/seed-status
printf 'POST /v1/services/a/restart HTTP/1.1\r\nContent-Length: 0\r\n\r\n' > corpus/request/seed-restart
printf 'GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\nGET /v1/health HTTP/1.1\r\n\r\n' > corpus/request/seed-pipelined
printf 'GET /v1/logs?service=a&n=2 HTTP/1.1\r\n\r\nPOST /v1/services/b%%20c/signal HTTP/1.1\r\nContent-Length: 14\r\n\r\n{"signal":"HUP"}' > corpus/request/seed-logs-signal
cp ../tests/fixtures/config/* corpus/config/
for r in notebook master worker all-in-one zeppelin; do
  { echo 'X={{ spark.master_url }}{% if secrets["notebook.token"] %}t{% endif %}'; cat "../roles/$r.yaml"; } > "corpus/roles/seed-$r"
done
# context: value, 0x01, spark_conf key, 0x01, notebook.authentication
printf 'value\001spark.fuzz\001none' > corpus/context/seed-none
printf '$(id)\001spark.x.y\001token' > corpus/context/seed-shell
printf '"<&>\047\n\001a.b\001off' > corpus/context/seed-quotes
