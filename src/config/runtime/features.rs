//! Settings that switch on a Spark feature as a whole: they expand into the several
//! spark-defaults.conf properties the feature needs (docs/configuration.md "Environment variables",
//! docs/services.md). A property the user set explicitly always wins over these.

use super::{Layers, Origin, Props};
use crate::config::units;
use crate::config::Source;

/// `spark.metrics_enabled` (bitnami's `SPARK_METRICS_ENABLED`): Spark's Prometheus servlet on every
/// UI — master `/metrics/master/prometheus` and `/metrics/applications/prometheus`, worker and
/// driver `/metrics/prometheus`, executors through the driver's `/metrics/executors/prometheus` —
/// plus the JVM source. As `spark.metrics.conf.*` properties (not a metrics.properties file) so
/// they reach the daemons through spark-defaults.conf and the executors through the driver's conf.
const METRICS: &[(&str, &str)] = &[
    (
        "spark.metrics.conf.*.sink.prometheusServlet.class",
        "org.apache.spark.metrics.sink.PrometheusServlet",
    ),
    (
        "spark.metrics.conf.*.sink.prometheusServlet.path",
        "/metrics/prometheus",
    ),
    (
        "spark.metrics.conf.master.sink.prometheusServlet.path",
        "/metrics/master/prometheus",
    ),
    (
        "spark.metrics.conf.applications.sink.prometheusServlet.path",
        "/metrics/applications/prometheus",
    ),
    (
        "spark.metrics.conf.*.source.jvm.class",
        "org.apache.spark.metrics.source.JvmSource",
    ),
    ("spark.ui.prometheus.enabled", "true"),
];

/// Derived settings: `spark.event_log_dir` = `{base}/events`, `spark.warehouse_dir` =
/// `{base}/warehouse` and `spark.metastore_dir` = `{base}/metastore_db` (the SQL warehouse and the
/// embedded Derby metastore of the `thriftserver` role; base is `/data/spark` when `/data` is a
/// mount point, else `/tmp/spark`), and the history server's `history.log_dir` =
/// `file:{spark.event_log_dir}`, so drivers and the history server agree without configuration.
///
/// And `spark.app_master`, the master of the applications the `connect` and `thriftserver` roles
/// run: `spark.master_url` when a master was configured (a master host, URL or peer given in any
/// source); unset otherwise, and those roles then run `local[N]` with N the container's CPUs.
pub(super) fn derive(layers: &mut Layers, base: &str, source: Source) {
    let derived_from = |key: &str| match layers.values.get(key).map(|(_, o)| &o.source) {
        Some(Source::Derived { from }) => Some(from.clone()),
        _ => None,
    };
    let own_host_only = derived_from("spark.master_url").is_some()
        && derived_from("spark.master_host").as_deref() == Some("node.fqdn");
    if !own_host_only {
        if let Some(url) = layers.get("spark.master_url").map(str::to_string) {
            layers.fill(
                "spark.app_master",
                url,
                Source::Derived {
                    from: "spark.master_url (a master is configured)".into(),
                },
            );
        }
    }
    layers.fill(
        "spark.event_log_dir",
        format!("{base}/events"),
        source.clone(),
    );
    layers.fill(
        "spark.warehouse_dir",
        format!("{base}/warehouse"),
        source.clone(),
    );
    layers.fill(
        "spark.metastore_dir",
        format!("{base}/metastore_db"),
        source,
    );
    if let Some(dir) = layers.get("spark.event_log_dir").map(str::to_string) {
        layers.fill(
            "history.log_dir",
            format!("file:{dir}"),
            Source::Derived {
                from: "spark.event_log_dir".into(),
            },
        );
    }
}

/// Adds the properties of every feature switched on in `layers` to `conf` (explicit ones win).
pub(super) fn expand(conf: &mut Props, layers: &Layers) {
    let enabled = |key: &str| {
        layers
            .values
            .get(key)
            .filter(|(v, _)| units::parse_bool(v) == Ok(true))
            .map(|(_, origin)| origin.source.clone())
    };
    let mut add = |key: &str, value: String, from: &Source| {
        conf.entry(key.to_string()).or_insert_with(|| {
            (
                value,
                Origin::of(Source::Derived {
                    from: super::source_location(from),
                }),
            )
        });
    };
    if let Some(from) = enabled("spark.metrics_enabled") {
        for (key, value) in METRICS {
            add(key, (*value).to_string(), &from);
        }
    }
    if let Some(from) = enabled("spark.event_log_enabled") {
        add("spark.eventLog.enabled", "true".into(), &from);
        if let Some(dir) = layers.get("spark.event_log_dir") {
            add("spark.eventLog.dir", format!("file:{dir}"), &from);
        }
    }
}
