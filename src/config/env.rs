//! The environment variables sparkvisor honours (docs/configuration.md), as tables.

/// Variables that set one setting each, in the order they are applied (a later row wins, so a
/// legacy name is listed before the name that replaces it).
pub const SETTING_VARS: &[(&str, &str)] = &[
    ("SPARK_HOME", "spark.home"),
    ("SPARK_CONF_DIR", "spark.conf_dir"),
    ("SPARK_DAEMON_USER", "spark.user"),
    ("SPARK_MASTER_IP", "spark.master_host"),
    ("SPARK_MASTER_HOST", "spark.master_host"),
    ("SPARK_MASTER_PORT", "spark.master_port"),
    ("SPARK_MASTER_WEBUI_PORT", "spark.master_webui_port"),
    ("SPARK_WORKER_PORT", "spark.worker_port"),
    ("SPARK_WORKER_WEBUI_PORT", "spark.worker_webui_port"),
    ("SPARK_MASTER", "spark.master_url"),
    ("SPARK_MASTER_URL", "spark.master_url"),
    ("SPARK_PUBLIC_DNS", "spark.public_dns"),
    ("SPARK_LOCAL_HOSTNAME", "spark.local_hostname"),
    ("SPARK_LOCAL_IP", "spark.local_ip"),
    ("SPARK_WORKER_DIR", "spark.work_dir"),
    ("SPARK_LOCAL_DIRS", "spark.local_dirs"),
    ("SPARK_LOG_DIR", "spark.log_dir"),
    ("SPARK_WORKER_CORES", "spark.worker_cores"),
    ("SPARK_WORKER_MEMORY", "spark.worker_memory"),
    ("SPARK_DAEMON_MEMORY", "spark.daemon_memory"),
    ("SPARKVISOR_CPU_OVERCOMMIT", "sizing_policy.cpu_overcommit"),
    // Merged after sparkvisor's own JVM options in spark-env.sh (a later -D/-XX wins).
    ("SPARK_DAEMON_JAVA_OPTS", "spark.daemon_java_opts"),
    ("SPARKVISOR_DAEMON_JIT", "spark.daemon_jit"),
    ("SPARK_METRICS_ENABLED", "spark.metrics_enabled"),
    ("SPARK_EVENT_LOG_ENABLED", "spark.event_log_enabled"),
    ("SPARK_EVENT_LOG_DIR", "spark.event_log_dir"),
    ("SPARK_CONNECT_PORT", "connect.port"),
    ("SPARK_THRIFT_PORT", "thrift.port"),
    ("SPARKVISOR_INIT_DIR", "init.dir"),
    ("SPARKVISOR_ADVERTISE", "spark.advertise"),
    // Access into the node (docs/access.md): the ssh and ldap add-on roles.
    ("SPARKVISOR_SSH", "access.ssh"),
    ("SPARKVISOR_SSH_PORT", "ssh.port"),
    ("SPARKVISOR_SSH_AUTHORIZED_KEYS", "ssh.authorized_keys"),
    ("SPARKVISOR_SSH_PASSWORD_AUTH", "ssh.password_auth"),
    ("SPARKVISOR_LDAP_URI", "ldap.uri"),
    ("SPARKVISOR_LDAP_BASE", "ldap.base"),
    ("SPARKVISOR_LDAP_BIND_DN", "ldap.binddn"),
    ("SPARKVISOR_LDAP_TLS_CA", "ldap.tls_cacert"),
    ("SPARKVISOR_LDAP_SCHEMA", "ldap.schema"),
    ("SPARKVISOR_LDAP_USER_FILTER", "ldap.user_filter"),
    ("SPARKVISOR_LDAP_SSH_KEY_ATTR", "ldap.ssh_key_attr"),
];

/// Role variables, lowest precedence first.
pub const ROLE_VARS: &[&str] = &["SPARK_MODE", "SPARKVISOR_ROLE"];

/// YAML/JSON mapping of settings (same shape as the cluster file's `settings:`).
pub const SETTINGS_VAR: &str = "SPARKVISOR_SETTINGS";
/// YAML/JSON mapping of spark-defaults.conf properties.
pub const SPARK_CONF_VAR: &str = "SPARKVISOR_SPARK_CONF";
/// YAML/JSON mapping role → list of FQDNs.
pub const PEERS_VAR: &str = "SPARKVISOR_PEERS";
/// `kd-role=role,...` extra KubeDirector role mappings.
pub const ROLE_MAP_VAR: &str = "SPARKVISOR_ROLE_MAP";
/// This node's hostname / FQDN, overriding the system's and configmeta's.
pub const HOSTNAME_VAR: &str = "SPARKVISOR_HOSTNAME";
/// See [`HOSTNAME_VAR`].
pub const FQDN_VAR: &str = "SPARKVISOR_FQDN";
/// The cluster file.
pub const CONFIG_VAR: &str = "SPARKVISOR_CONFIG";
/// configmeta.json's path.
pub const CONFIGMETA_VAR: &str = "SPARKVISOR_CONFIGMETA";
/// How long to wait for configmeta.json to appear.
pub const CONFIGMETA_WAIT_VAR: &str = "SPARKVISOR_CONFIGMETA_WAIT";
/// Where Spark is installed when `SPARK_HOME` (setting `spark.home`) says nothing: the official
/// and bitnami images' place. The one spelling of it for the resolver, the drop-in entrypoint and
/// the Kubernetes pod commands.
pub const DEFAULT_SPARK_HOME: &str = "/opt/spark";
/// Where KubeDirector writes configmeta.json.
pub const DEFAULT_CONFIGMETA: &str = "/etc/guestconfig/configmeta.json";

/// bitnami-compatible booleans: variable → spark-defaults.conf property set to `true` when enabled.
pub const BOOL_CONF_VARS: &[(&str, &str)] = &[
    ("SPARK_RPC_AUTHENTICATION_ENABLED", "spark.authenticate"),
    (
        "SPARK_RPC_ENCRYPTION_ENABLED",
        "spark.network.crypto.enabled",
    ),
    (
        "SPARK_LOCAL_STORAGE_ENCRYPTION_ENABLED",
        "spark.io.encryption.enabled",
    ),
    ("SPARK_SSL_ENABLED", "spark.ssl.enabled"),
    ("SPARK_SSL_NEED_CLIENT_AUTH", "spark.ssl.needClientAuth"),
];

/// bitnami-compatible plain properties: variable → spark-defaults.conf property.
pub const CONF_VARS: &[(&str, &str)] = &[
    ("SPARK_SSL_KEYSTORE_FILE", "spark.ssl.keyStore"),
    ("SPARK_SSL_TRUSTSTORE_FILE", "spark.ssl.trustStore"),
    ("SPARK_SSL_PROTOCOL", "spark.ssl.protocol"),
    ("SPARK_WEBUI_SSL_PORT", "spark.ssl.standalone.port"),
];

/// bitnami-compatible secrets: variable → secret name.
pub const SECRET_VARS: &[(&str, &str)] = &[
    (
        "SPARK_RPC_AUTHENTICATION_SECRET",
        "spark.authenticate.secret",
    ),
    ("SPARK_SSL_KEY_PASSWORD", "spark.ssl.keyPassword"),
    ("SPARKVISOR_LDAP_BIND_PASSWORD", "ldap.bindpw"),
    ("SPARK_SSL_KEYSTORE_PASSWORD", "spark.ssl.keyStorePassword"),
    (
        "SPARK_SSL_TRUSTSTORE_PASSWORD",
        "spark.ssl.trustStorePassword",
    ),
];

/// Every variable NAME for which `NAME_FILE` is read (the Docker secrets pattern). Note
/// `SPARK_SSL_KEYSTORE_FILE` is itself a NAME (the keystore's path), not a `_FILE` of anything.
pub fn file_capable_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    names.extend(SETTING_VARS.iter().map(|(v, _)| *v));
    names.extend(ROLE_VARS);
    names.extend(BOOL_CONF_VARS.iter().map(|(v, _)| *v));
    names.extend(CONF_VARS.iter().map(|(v, _)| *v));
    names.extend(SECRET_VARS.iter().map(|(v, _)| *v));
    names.extend([
        SETTINGS_VAR,
        SPARK_CONF_VAR,
        PEERS_VAR,
        ROLE_MAP_VAR,
        HOSTNAME_VAR,
        FQDN_VAR,
    ]);
    names
}

/// True for a variable sparkvisor reads: a `SPARKVISOR_*` name, a name of the tables above, or
/// its `_FILE` form. Only these must be UTF-8; other variables are passed on untouched.
pub fn is_read(name: &str) -> bool {
    if name.starts_with("SPARKVISOR_") {
        return true;
    }
    let names = file_capable_names();
    names.contains(&name)
        || name
            .strip_suffix("_FILE")
            .is_some_and(|base| names.contains(&base))
}

/// The variables sparkvisor reads whose value (or name) is not UTF-8, by name. Such a value used
/// to be dropped silently (a worker given a non-UTF-8 SPARK_MASTER_URL pointed at itself).
pub fn non_utf8(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<String> {
    vars.filter_map(|(k, v)| {
        let name = k.to_string_lossy().into_owned();
        (is_read(&name) && (k.to_str().is_none() || v.to_str().is_none())).then_some(name)
    })
    .collect()
}
