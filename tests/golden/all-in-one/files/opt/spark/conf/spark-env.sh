# sparkvisor's settings for role 'all-in-one', derived from the node's config at every start.
SPARK_HOME='/opt/spark'
SPARK_CONF_DIR='/opt/spark/conf'
SPARK_MASTER_HOST='master-1.example'
SPARK_MASTER_PORT='7077'
SPARK_MASTER_WEBUI_PORT='8080'
SPARK_WORKER_WEBUI_PORT='8081'
SPARK_LOCAL_HOSTNAME='node-1.example'
SPARK_PUBLIC_DNS='node-1.example'
SPARK_WORKER_DIR='/data/work'
SPARK_LOCAL_DIRS='/data/local'
SPARK_LOG_DIR='/opt/spark/logs'
SPARK_WORKER_CORES=2
SPARK_WORKER_MEMORY=2560m
SPARK_DAEMON_MEMORY=512m
SPARK_DAEMON_JAVA_OPTS='-XX:ActiveProcessorCount=2 -XX:TieredStopAtLevel=1'
SPARK_NO_DAEMONIZE=1
