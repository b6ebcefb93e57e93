{#- zeppelin.sh sources this file (without `set -a`), so every variable is exported. #}# Rendered by sparkvisor for role {{ role }} on every start: edit the role's settings, not this file.
export ZEPPELIN_ADDR={{ zeppelin.addr }}
export ZEPPELIN_PORT={{ zeppelin.port }}
export ZEPPELIN_CONF_DIR={{ zeppelin.conf_dir }}
export ZEPPELIN_LOG_DIR={{ zeppelin.log_dir }}
export ZEPPELIN_PID_DIR={{ zeppelin.log_dir }}
export ZEPPELIN_NOTEBOOK_DIR={{ zeppelin.notebook_dir }}
export SPARK_HOME={{ spark.home }}
export SPARK_CONF_DIR={{ spark.conf_dir }}
export SPARK_MASTER={{ spark.master_url }}
export MASTER={{ spark.master_url }}
{%- if sizing %}
{%- set heap = "-Xms" ~ sizing.daemon_memory_mb ~ "m -Xmx" ~ sizing.daemon_memory_mb ~ "m" %}
{%- set jvm_opts = "-XX:ActiveProcessorCount=" ~ sizing.cpus %}
export ZEPPELIN_MEM={{ heap }}
export ZEPPELIN_JAVA_OPTS={{ jvm_opts }}
{%- endif %}
