{#- Spark sources this file with `set -a`, AFTER the container's environment: every line here wins
    over a variable the user set. So it holds only what sparkvisor resolved (an explicit user value is
    already in the resolved config, with source env; the user's SPARK_DAEMON_JAVA_OPTS is the setting
    spark.daemon_java_opts, appended after ours so the user's flags win). Every value is
    single-quoted by the renderer. #}# sparkvisor's settings for role {{ role }}, derived from the node's config at every start.
SPARK_HOME={{ spark.home }}
SPARK_CONF_DIR={{ spark.conf_dir }}
SPARK_MASTER_HOST={{ spark.master_host }}
SPARK_MASTER_PORT={{ spark.master_port }}
SPARK_MASTER_WEBUI_PORT={{ spark.master_webui_port }}
SPARK_WORKER_WEBUI_PORT={{ spark.worker_webui_port }}
SPARK_LOCAL_HOSTNAME={{ spark.local_hostname }}
SPARK_PUBLIC_DNS={{ spark.public_dns }}
SPARK_WORKER_DIR={{ spark.work_dir }}
SPARK_LOCAL_DIRS={{ spark.local_dirs }}
SPARK_LOG_DIR={{ spark.log_dir }}
{%- if sizing %}
SPARK_WORKER_CORES={{ sizing.worker_cores }}
SPARK_WORKER_MEMORY={{ sizing.worker_memory_mb }}m
{%- if settings["spark.daemon_is_driver"] and not settings["spark.daemon_memory"] %}
{#- spark-submit gives the Connect and Thrift servers (drivers) SPARK_DAEMON_MEMORY as their heap,
    not --driver-memory: theirs is the heap sizing leaves for work, not a daemon's small one. #}
SPARK_DAEMON_MEMORY={{ sizing.worker_memory_mb }}m
{%- else %}
SPARK_DAEMON_MEMORY={{ sizing.daemon_memory_mb }}m
{%- endif %}
{%- endif %}
{#- Ours first, the user's spark.daemon_java_opts last (a repeated -XX flag: the last one wins).
    spark.daemon_jit=c1 (the master's and worker's default, docs/spark-launch.md): HotSpot's C1
    compiler only; their start -> ALIVE took 0.6x the time with about half the CPU, and these
    control-plane JVMs run no task code (executors are JVMs of their own, with their own options). #}
{%- set jvm_opts = [] %}
{%- if sizing %}{% set jvm_opts = jvm_opts | concat(with="-XX:ActiveProcessorCount=" ~ sizing.cpus) %}{% endif %}
{%- if settings["spark.daemon_jit"] and settings["spark.daemon_jit"] == "c1" %}{% set jvm_opts = jvm_opts | concat(with="-XX:TieredStopAtLevel=1") %}{% endif %}
{%- if settings["spark.daemon_java_opts"] %}{% set jvm_opts = jvm_opts | concat(with=settings["spark.daemon_java_opts"]) %}{% endif %}
{%- if jvm_opts %}
SPARK_DAEMON_JAVA_OPTS={{ jvm_opts | join(sep=" ") }}
{%- endif %}
{%- if settings["spark.worker_port"] %}
SPARK_WORKER_PORT={{ settings["spark.worker_port"] }}
{%- endif %}
{%- if settings["spark.local_ip"] %}
SPARK_LOCAL_IP={{ settings["spark.local_ip"] }}
{%- endif %}
SPARK_NO_DAEMONIZE=1
