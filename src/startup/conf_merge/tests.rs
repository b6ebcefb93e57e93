//! `merge_files` over real directories: the user's files read, the merged files and the report.

use std::collections::BTreeMap;

use super::*;
use crate::config::model::NodeIdentity;
use crate::config::{Source, Sourced};

fn config() -> ResolvedConfig {
    let sourced = |v: &str, s: Source| Sourced::new(v.to_string(), s);
    ResolvedConfig {
        role: sourced("master", Source::Default),
        node: NodeIdentity {
            hostname: sourced("n1", Source::Default),
            fqdn: sourced("n1", Source::Default),
        },
        peers: BTreeMap::new(),
        settings: BTreeMap::new(),
        spark_conf: [
            (
                "spark.eventLog.enabled".to_string(),
                sourced(
                    "true",
                    Source::Derived {
                        from: "env SPARK_EVENT_LOG_ENABLED".into(),
                    },
                ),
            ),
            (
                "spark.master".to_string(),
                sourced(
                    "spark://m:7077",
                    Source::Env {
                        name: "SPARKVISOR_SPARK_CONF".into(),
                    },
                ),
            ),
        ]
        .into(),
        secrets: BTreeMap::new(),
    }
}

fn rendered(path: &Path, contents: &str, merge: Option<MergeMode>) -> RenderedFile {
    RenderedFile {
        path: path.to_path_buf(),
        mode: 0o644,
        owner: None,
        contents: contents.into(),
        secret: false,
        template: format!(
            "spark/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
        merge,
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    conf: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let conf = tmp.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        Dirs { _tmp: tmp, conf }
    }
    fn placement(&self) -> Placement {
        Placement {
            dir: self.conf.clone(),
            user_dir: self.conf.clone(),
            defaults_dir: None,
            overlay: None,
        }
    }
    fn rendered(&self, name: &str, contents: &str, merge: MergeMode) -> RenderedFile {
        rendered(&self.conf.join(name), contents, Some(merge))
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.conf.join(name), text).unwrap();
    }
}

const DEFAULTS: &str = "spark.master spark://m:7077\nspark.eventLog.enabled true\nspark.metrics.conf.*.sink.prometheusServlet.path /metrics/prometheus\n";
const LOG4J: &str = "rootLogger.level = info\n";

#[test]
fn users_files_are_merged_attributed_and_stable_across_starts() {
    let d = Dirs::new();
    d.write(
        "spark-defaults.conf",
        "spark.eventLog.enabled false\nspark.jars.ivy /tmp/ivy\n",
    );
    d.write(
        "spark-env.sh",
        "export JAVA_TOOL_OPTIONS=-javaagent:/a.jar\n",
    );
    d.write(
        "metrics.properties",
        "*.sink.prometheusServlet.path=/mine\n",
    );
    d.write("hive-site.xml", "<configuration><property><name>hive.metastore.uris</name><value>thrift://h:9083</value></property></configuration>");
    d.write("fairscheduler.xml", "<allocations/>\n");
    d.write(
        "core-site.xml",
        "<configuration><property>\n</configuration>\n",
    );
    let files = vec![
        d.rendered("spark-defaults.conf", DEFAULTS, MergeMode::Keys),
        d.rendered(
            "spark-env.sh",
            "SPARK_WORKER_CORES='2'\n",
            MergeMode::Append,
        ),
        d.rendered("log4j2.properties", LOG4J, MergeMode::None),
    ];
    let (out, work) = merge_files(files.clone(), &d.placement(), &config()).unwrap();
    assert_eq!(out.len(), 3);
    let defaults = &out[0].contents;
    let entries = properties::parse(defaults).unwrap();
    let value = |k: &str| {
        entries
            .iter()
            .filter(|e| e.key == k)
            .map(|e| e.value.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(value("spark.eventLog.enabled"), ["false"]);
    assert_eq!(value("spark.master"), ["spark://m:7077"]);
    // The user's metrics.properties key replaces the agent's spark.metrics.conf.* property.
    assert!(value("spark.metrics.conf.*.sink.prometheusServlet.path").is_empty());
    assert!(out[1]
        .contents
        .ends_with("export JAVA_TOOL_OPTIONS=-javaagent:/a.jar\n"));

    let report = &work.report;
    let file = |n: &str| report.files.iter().find(|f| f.name == n).unwrap();
    let defaults_report = file("spark-defaults.conf");
    assert_eq!(defaults_report.outcome, Outcome::Merged);
    let row = |f: &FileReport, k: &str| f.values.iter().find(|v| v.key == k).unwrap().clone();
    assert_eq!(
        row(defaults_report, "spark.eventLog.enabled").from,
        ValueFrom::Yours {
            file: d.conf.join("spark-defaults.conf"),
            line: 6,
            replaces: Some("derived env SPARK_EVENT_LOG_ENABLED".into())
        }
    );
    assert_eq!(
        row(defaults_report, "spark.master").from,
        ValueFrom::Sparkvisor {
            source: "env SPARKVISOR_SPARK_CONF".into()
        }
    );
    assert!(
        defaults_report.notes.is_empty(),
        "{:?}",
        defaults_report.notes
    );
    assert_eq!(file("log4j2.properties").outcome, Outcome::Sparkvisor);
    assert_eq!(file("hive-site.xml").outcome, Outcome::UsedAsIs);
    assert_eq!(
        row(file("hive-site.xml"), "hive.metastore.uris").value,
        "thrift://h:9083"
    );
    assert_eq!(file("metrics.properties").outcome, Outcome::UsedAsIs);
    // Another XML format is listed without properties or complaint; a broken one is told.
    let fair = file("fairscheduler.xml");
    assert!(fair.values.is_empty() && fair.notes.is_empty(), "{fair:?}");
    assert!(
        file("core-site.xml").notes[0].starts_with("Spark may not read it: line 2"),
        "{:?}",
        file("core-site.xml")
    );
    assert!(work.links.is_empty() && work.seeds.is_empty());

    // The next start reads what this one wrote: the same files again (no growth, no loss).
    for f in &out {
        std::fs::write(&f.path, &f.contents).unwrap();
    }
    let (again, _) = merge_files(files, &d.placement(), &config()).unwrap();
    assert_eq!(again, out);
}

#[test]
fn the_history_server_carries_the_users_spark_defaults() {
    let d = Dirs::new();
    d.write(
        "spark-defaults.conf",
        "spark.history.fs.logDirectory file:/mine\n",
    );
    let history = "spark.master spark://m:7077\nspark.history.fs.logDirectory file:/derived\n";
    let files = vec![
        d.rendered("spark-defaults.conf", DEFAULTS, MergeMode::Keys),
        d.rendered("history-server.properties", history, MergeMode::Keys),
    ];
    let (out, work) = merge_files(files.clone(), &d.placement(), &config()).unwrap();
    let dirs: Vec<String> = properties::parse(&out[1].contents)
        .unwrap()
        .into_iter()
        .filter(|e| e.key == "spark.history.fs.logDirectory")
        .map(|e| e.value)
        .collect();
    assert_eq!(dirs, ["file:/mine"], "{}", out[1].contents);
    let row = work.report.files[1]
        .values
        .iter()
        .find(|v| v.key == "spark.history.fs.logDirectory")
        .unwrap();
    assert!(
        matches!(&row.from, ValueFrom::Yours { file, line: 6, .. } if file.ends_with("spark-defaults.conf")),
        "{row:?}"
    );
    for f in &out {
        std::fs::write(&f.path, &f.contents).unwrap();
    }
    assert_eq!(
        merge_files(files, &d.placement(), &config()).unwrap().0,
        out
    );
}

#[test]
fn a_users_file_overriding_an_explicit_input_is_said() {
    let d = Dirs::new();
    d.write("spark-defaults.conf", "spark.master local[2]\n");
    let files = vec![d.rendered("spark-defaults.conf", DEFAULTS, MergeMode::Keys)];
    let (_, work) = merge_files(files, &d.placement(), &config()).unwrap();
    assert_eq!(
        work.report.files[0].notes,
        ["spark.master: the value in your file is used, not the one from env SPARKVISOR_SPARK_CONF"]
    );
}

#[test]
fn a_users_whole_file_is_not_written_and_edits_are_told() {
    let d = Dirs::new();
    d.write("log4j2.properties", "rootLogger.level = warn\n");
    let files = vec![d.rendered("log4j2.properties", LOG4J, MergeMode::None)];
    let (out, work) = merge_files(files, &d.placement(), &config()).unwrap();
    assert!(out.is_empty());
    let report = &work.report.files[0];
    assert_eq!(report.outcome, Outcome::Yours);
    assert_eq!(report.values[0].value, "warn");
    let text = work.report.to_string();
    assert!(
        text.contains("whole: sparkvisor's spark/log4j2.properties is not written"),
        "{text}"
    );
}

#[test]
fn what_cannot_be_merged_is_refused_naming_the_file_and_line() {
    let d = Dirs::new();
    d.write("spark-defaults.conf", "a=1\nb=\\uZZZZ\n");
    d.write(
        "core-site.xml",
        "<configuration>\n<property>\n</configuration>\n",
    );
    std::fs::write(d.conf.join("spark-env.sh"), [0xff_u8, 0xfe]).unwrap();
    let files = vec![
        d.rendered("spark-defaults.conf", DEFAULTS, MergeMode::Keys),
        d.rendered("core-site.xml", "<configuration/>", MergeMode::Keys),
        d.rendered("spark-env.sh", "A='1'\n", MergeMode::Append),
    ];
    let errors = merge_files(files, &d.placement(), &config()).unwrap_err();
    let shown: Vec<String> = errors.iter().map(|e| e.diagnostic().to_string()).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown[0].starts_with(&format!(
            "{}:2:1: ",
            d.conf.join("spark-defaults.conf").display()
        )),
        "{shown:?}"
    );
    assert!(
        shown[1].contains("core-site.xml:3:") && shown[1].contains("not well-formed XML"),
        "{shown:?}"
    );
    assert!(shown[2].contains("not UTF-8"), "{shown:?}");
    // Nothing of the user's was changed.
    assert_eq!(
        std::fs::read_to_string(d.conf.join("spark-defaults.conf")).unwrap(),
        "a=1\nb=\\uZZZZ\n"
    );
}

#[test]
fn an_overlay_merges_the_users_file_and_links_the_rest() {
    let d = Dirs::new();
    let overlay = d.conf.parent().unwrap().join("overlay");
    d.write("spark-defaults.conf", "spark.eventLog.enabled false\n");
    d.write("hive-site.xml", "<configuration/>");
    let placement = Placement {
        dir: overlay.clone(),
        user_dir: d.conf.clone(),
        defaults_dir: None,
        overlay: Some("mounted".into()),
    };
    let files = vec![rendered(
        &overlay.join("spark-defaults.conf"),
        DEFAULTS,
        Some(MergeMode::Keys),
    )];
    let (out, work) = merge_files(files, &placement, &config()).unwrap();
    assert!(out[0].contents.ends_with("spark.eventLog.enabled false\n"));
    assert_eq!(
        work.links,
        [Link {
            path: overlay.join("hive-site.xml"),
            target: d.conf.join("hive-site.xml")
        }]
    );
    assert_eq!(
        work.report.files[0].user_file.as_deref(),
        Some(d.conf.join("spark-defaults.conf").as_path())
    );
}
