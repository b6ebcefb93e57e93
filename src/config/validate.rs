//! The rules values must follow wherever they come from: role names, setting names (and the
//! template context's reserved roots), well-known setting values, host names, paths, master URLs.
//! Each check returns a message (lowercase, no trailing period) for a positioned Diagnostic.

use crate::config::units;

/// A role name: 1 to 63 characters, lowercase letters, digits, `-` and `_`, starting with a letter
/// or digit (it names a file in the roles directory and appears in peers and templates).
pub fn check_role_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the role is empty".into());
    }
    let ok = name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid role name {name:?}: use 1-63 lowercase letters, digits, '-' or '_' (e.g. master, worker)"
        ))
    }
}

/// Names no setting may start with: the template context's own top-level names (the context
/// builder, `render::context`, uses this list too).
pub const RESERVED_ROOTS: &[&str] = &[
    "node",
    "role",
    "peers",
    "resources",
    "sizing",
    "spark_conf",
    "secrets",
    "settings",
    "env",
];

/// A setting key: dot-separated segments of ASCII letters, digits and `_`, each starting with a
/// letter or `_` (so templates reach it as `{{ a.b }}`), whose first segment is not reserved.
pub fn check_setting_key(key: &str) -> Result<(), String> {
    let segment_ok = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if key.is_empty() || !key.split('.').all(segment_ok) {
        return Err(format!(
            "invalid setting name {key:?}: use dot-separated names of letters, digits and '_' (e.g. spark.master_port)"
        ));
    }
    let root = key.split('.').next().unwrap_or(key);
    if RESERVED_ROOTS.contains(&root) {
        return Err(format!(
            "setting {key:?} uses the reserved name {root:?} (reserved: {})",
            RESERVED_ROOTS.join(", ")
        ));
    }
    Ok(())
}

/// A spark-defaults.conf property or secret name: letters, digits, `.`, `_`, `-`.
pub fn check_property_key(key: &str) -> Result<(), String> {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid property name {key:?}: use letters, digits, '.', '_' and '-'"
        ))
    }
}

/// A host name or IP address as Spark and DNS accept it.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
}

/// [`valid_host`] with a message.
pub fn check_host(host: &str) -> Result<(), String> {
    if valid_host(host) {
        Ok(())
    } else {
        Err(format!(
            "invalid host name {host:?}: use letters, digits, '.', '-' (at most 253 characters)"
        ))
    }
}

/// An absolute, one-line path.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') && !path.contains(['\n', '\r', '\0']) {
        Ok(())
    } else {
        Err(format!("invalid path {path:?}: must be absolute, one line"))
    }
}

/// Checks the value of a well-known setting (docs/configuration.md "Environment variables"); others are free text.
pub fn check_setting_value(key: &str, value: &str) -> Result<(), String> {
    use crate::config::sizing as knobs;
    match key {
        "spark.worker_cores" => units::parse_cores(value).map(drop),
        "spark.worker_memory" | "spark.daemon_memory" => units::parse_memory_mb(value).map(drop),
        "spark.master_port"
        | "spark.master_webui_port"
        | "spark.worker_webui_port"
        | "spark.worker_port"
        | "connect.port"
        | "thrift.port" => units::parse_port(value).map(drop),
        "spark.metrics_enabled" | "spark.event_log_enabled" => units::parse_bool(value).map(drop),
        "spark.master_host" | "spark.public_dns" | "spark.local_hostname" | "spark.local_ip" => {
            check_host(value)
        }
        "spark.master_url" | "spark.app_master" => check_master_url(value),
        "spark.recovery_mode" => crate::config::recovery::check_mode(value),
        "spark.daemon_jit" => match value {
            "c1" | "full" => Ok(()),
            _ => Err(format!(
                "invalid daemon JIT {value:?}: expected c1 (HotSpot's C1 compiler only) or full"
            )),
        },
        "spark.home"
        | "spark.conf_dir"
        | "spark.work_dir"
        | "spark.log_dir"
        | "spark.event_log_dir"
        | "spark.warehouse_dir"
        | "spark.metastore_dir"
        | "init.dir" => check_path(value),
        "spark.advertise" => crate::config::advertise::Advertise::parse(value).map(drop),
        "spark.local_dirs" => value.split(',').try_for_each(check_path),
        "spark.user" => {
            if !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
            {
                Ok(())
            } else {
                Err(format!(
                    "invalid user {value:?}: expected a name or uid[:gid]"
                ))
            }
        }
        knobs::CPU_OVERCOMMIT => units::parse_factor(value).map(drop),
        knobs::DAEMON_MEMORY_MAX_MB
        | knobs::DAEMON_MEMORY_MIN_MB
        | knobs::OVERHEAD_MB
        | knobs::MIN_WORKER_MEMORY_MB => units::parse_mib(value).map(drop),
        knobs::OVERHEAD_PERCENT => units::parse_percent(value).map(drop),
        knobs::REQUIRE_WORKER_MEMORY => units::parse_bool(value).map(drop),
        _ => Ok(()),
    }
}

/// A master URL as `spark-submit --master` takes it: `spark://host:port[,host:port...]` (checked
/// strictly: workers and drivers connect to it), `local`, `local[N]`, `local[*]`, `local[N,F]`,
/// `local[*,F]`, `local-cluster[N,C,M]`, `yarn`, `k8s://URL` (Zeppelin's `SPARK_MASTER` and the
/// `connect` role take these).
pub fn check_master_url(url: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "invalid master URL {url:?}: expected spark://HOST:PORT[,HOST2:PORT2], local, local[N], local[*], local[N,F], local-cluster[N,C,M], yarn or k8s://URL"
        )
    };
    let Some(rest) = url.strip_prefix("spark://") else {
        return if other_master_ok(url) {
            Ok(())
        } else {
            Err(bad())
        };
    };
    for hostport in rest.split(',') {
        let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
        if !valid_host(host) || units::parse_port(port).is_err() {
            return Err(bad());
        }
    }
    Ok(())
}

/// The non-standalone master forms Spark accepts (see [`check_master_url`]).
fn other_master_ok(url: &str) -> bool {
    let count_or_star = |s: &str| s == "*" || s.parse::<u32>().is_ok_and(|n| n >= 1);
    let bracketed = |prefix: &str| {
        url.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
    };
    if url == "local" || url == "yarn" {
        return true;
    }
    if let Some(inner) = bracketed("local") {
        let mut parts = inner.split(',');
        let threads = parts.next().is_some_and(count_or_star);
        let failures = parts.next().is_none_or(|f| f.parse::<u32>().is_ok());
        return threads && failures && parts.next().is_none();
    }
    if let Some(inner) = bracketed("local-cluster") {
        let parts: Vec<&str> = inner.split(',').collect();
        return parts.len() == 3 && parts.iter().all(|p| p.trim().parse::<u32>().is_ok());
    }
    url.strip_prefix("k8s://").is_some_and(|r| {
        !r.is_empty() && !r.contains(|c: char| c.is_whitespace() || c.is_control())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_keys() {
        assert!(check_setting_key("spark.master_port").is_ok());
        assert!(check_setting_key("sizing.cpus").is_err());
        assert!(check_setting_key("env").is_err());
        assert!(check_setting_key("a..b").is_err());
        assert!(check_setting_key("a.1b").is_err());
        assert!(check_setting_key("").is_err());
    }

    #[test]
    fn master_urls() {
        assert!(check_master_url("spark://m1:7077,m2:7077").is_ok());
        assert!(check_master_url("spark://[::1]:7077").is_ok());
        assert!(check_master_url("spark://m1").is_err());
        assert!(check_master_url("http://m1:7077").is_err());
        assert!(check_master_url("spark://m 1:7077").is_err());
        for ok in [
            "local",
            "local[*]",
            "local[4]",
            "local[2,3]",
            "local[*,2]",
            "yarn",
            "local-cluster[2,1,1024]",
            "k8s://https://api:6443",
        ] {
            assert!(check_master_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "local[]",
            "local[0]",
            "local[x]",
            "local[2",
            "local[1,2,3]",
            "k8s://",
            "mesos",
            "local[*] x",
        ] {
            assert!(check_master_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn role_names() {
        assert!(check_role_name("worker").is_ok());
        assert!(check_role_name("").is_err());
        assert!(check_role_name("Worker").is_err());
        assert!(check_role_name("a b").is_err());
        assert!(check_role_name("$(id)").is_err());
    }
}
