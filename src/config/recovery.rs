//! Master recovery (HA) from the injected config: which `spark.deploy.recoveryMode` the master runs
//! with, derived like every other setting (an explicit user value wins; docs/ha.md).
//!
//! - `zookeeper` peers injected (cluster file, configmeta or `SPARKVISOR_PEERS`): `ZOOKEEPER`, with
//!   `spark.zookeeper_url` listing them (`zk1:2181,zk2:2181`). Masters elect a leader through it; the
//!   others are `STANDBY` and take over when the leader dies.
//! - else, `/data` is a mount point (a volume that outlives the container): `FILESYSTEM`, with the
//!   state in `spark.recovery_dir` (`/data/spark-recovery`): a restarted master recovers its
//!   workers and applications.
//! - else `NONE`.

/// The accepted values of `spark.recovery_mode`.
pub const MODES: [&str; 3] = ["ZOOKEEPER", "FILESYSTEM", "NONE"];

/// Where FILESYSTEM recovery keeps the master's state (a direct child of `/data`: Spark creates
/// only the last path component).
pub const RECOVERY_DIR: &str = "/data/spark-recovery";

/// `(key, value, derived from)` for the recovery settings.
pub fn derive(
    zookeepers: &[String],
    client_port: &str,
    data_mounted: bool,
) -> Vec<(&'static str, String, &'static str)> {
    if !zookeepers.is_empty() {
        let url = zookeepers
            .iter()
            .map(|z| {
                if z.contains(':') && !z.starts_with('[') {
                    z.clone()
                } else {
                    format!("{z}:{client_port}")
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        return vec![
            ("spark.recovery_mode", "ZOOKEEPER".into(), "peers.zookeeper"),
            (
                "spark.zookeeper_url",
                url,
                "peers.zookeeper, zookeeper.client_port",
            ),
        ];
    }
    if data_mounted {
        return vec![
            (
                "spark.recovery_mode",
                "FILESYSTEM".into(),
                "/data is a mount point",
            ),
            (
                "spark.recovery_dir",
                RECOVERY_DIR.into(),
                "/data is a mount point",
            ),
        ];
    }
    vec![(
        "spark.recovery_mode",
        "NONE".into(),
        "no zookeeper peers, no /data",
    )]
}

/// Checks a `spark.recovery_mode` value.
pub fn check_mode(value: &str) -> Result<(), String> {
    if MODES.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "invalid recovery mode {value:?}: expected one of {}",
            MODES.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn zookeeper_peers_win_then_the_data_volume() {
        let zk = derive(&["zk1".into(), "zk2:2182".into()], "2181", true);
        assert_eq!(zk[0].1, "ZOOKEEPER");
        assert_eq!(
            zk[1],
            ("spark.zookeeper_url", "zk1:2181,zk2:2182".into(), zk[1].2)
        );
        let fs = derive(&[], "2181", true);
        assert_eq!(fs[0].1, "FILESYSTEM");
        assert_eq!(fs[1].1, RECOVERY_DIR);
        assert_eq!(derive(&[], "2181", false)[0].1, "NONE");
        assert!(check_mode("ZOOKEEPER").is_ok());
        assert!(check_mode("zookeeper").is_err());
    }
}
