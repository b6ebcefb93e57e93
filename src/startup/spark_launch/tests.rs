#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

/// A fake Spark home: `jars/` holding a launcher jar of `version` (and slf4j), `conf/`.
struct Home(PathBuf);
impl Home {
    fn new(tag: &str, version: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("sv-launch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("jars")).unwrap();
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        for jar in [
            format!("spark-launcher_2.13-{version}.jar"),
            "slf4j-api-2.0.17.jar".into(),
        ] {
            std::fs::write(dir.join("jars").join(jar), "").unwrap();
        }
        Home(dir)
    }
    fn path(&self) -> String {
        self.0.display().to_string()
    }
    fn env(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("SPARK_HOME", self.path()),
            ("JAVA_HOME", "/jdk".to_string()),
            ("PATH", "/usr/bin:/bin".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }
    fn command(&self, class: &str, args: &[&str]) -> Vec<String> {
        let mut c = vec![
            format!("{}/bin/spark-class", self.path()),
            class.to_string(),
        ];
        c.extend(args.iter().map(|a| a.to_string()));
        c
    }
}
impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const WORKER: &str = "org.apache.spark.deploy.worker.Worker";

#[test]
fn worker_command_is_the_launchers() {
    let home = Home::new("worker", "4.0.1");
    let h = home.path();
    let env = home.env(&[
        ("SPARK_WORKER_OPTS", "-Dw=1"),
        ("SPARK_DAEMON_CLASSPATH", "/x.jar:/tmp"),
    ]);
    let spark_env =
        "SPARK_DAEMON_MEMORY='300m'\nSPARK_DAEMON_JAVA_OPTS='-Da=1 '\\''-Db=x y'\\'''\n";
    let got = plan(
        &home.command(WORKER, &["spark://m:7077"]),
        &env,
        Some(spark_env),
    )
    .unwrap();
    let mut want: Vec<String> = [
        "/jdk/bin/java".to_string(),
        "-cp".into(),
        format!("/x.jar:/tmp/:{h}/conf/:{h}/jars/slf4j-api-2.0.17.jar:{h}/jars/*"),
        "-Da=1".into(),
        "-Db=x y".into(),
        "-Dw=1".into(),
        "-Xmx300m".into(),
    ]
    .into();
    want.extend(module_options("4.0").unwrap().iter().map(|s| s.to_string()));
    want.extend([WORKER.to_string(), "spark://m:7077".into()]);
    assert_eq!(got.command, want);
    assert_eq!(got.environment["SPARK_DAEMON_MEMORY"], "300m");
    assert_eq!(got.environment["SPARK_ENV_LOADED"], "1");
    assert_eq!(got.environment["SPARK_SCALA_VERSION"], "2.13");
    assert_eq!(got.environment["SPARK_CONF_DIR"], format!("{h}/conf"));
}

#[test]
fn spark_4_3_puts_slf4j_first_and_defaults_memory() {
    let home = Home::new("43", "4.3.0");
    let h = home.path();
    let got = plan(
        &home.command("org.apache.spark.deploy.master.Master", &["--host", "m"]),
        &home.env(&[]),
        None,
    )
    .unwrap();
    assert_eq!(
        got.command[2],
        format!("{h}/conf/:{h}/jars/slf4j-api-2.0.17.jar:{h}/jars/*")
    );
    assert!(got.command.contains(&"-Xmx1g".to_string()));
    assert!(got
        .command
        .contains(&"--enable-native-access=ALL-UNNAMED".to_string()));
    assert_eq!(got.command.last().unwrap(), "m");
}

#[test]
fn heap_in_the_options_is_refused_as_the_launcher_does() {
    let home = Home::new("xmx", "4.0.1");
    let env = home.env(&[("SPARK_DAEMON_JAVA_OPTS", "-Xmx2g")]);
    match plan(&home.command(WORKER, &[]), &env, None) {
        Err(NotDirect::Invalid(m)) => assert!(m.contains("SPARK_DAEMON_JAVA_OPTS"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
#[allow(clippy::type_complexity)]
fn what_cannot_be_reproduced_falls_back() {
    let home = Home::new("fallback", "4.0.1");
    let cases: Vec<(Vec<String>, BTreeMap<String, String>, Option<&str>, &str)> = vec![
        (
            home.command(WORKER, &[]),
            home.env(&[]),
            Some("A=$(id)\n"),
            "spark-env.sh",
        ),
        (
            home.command("com.example.Tool", &[]),
            home.env(&[]),
            None,
            "com.example.Tool",
        ),
        (
            home.command(WORKER, &[]),
            home.env(&[("SPARK_TESTING", "1")]),
            None,
            "SPARK_TESTING",
        ),
    ];
    for (command, env, spark_env, why) in cases {
        match plan(&command, &env, spark_env) {
            Err(NotDirect::Fallback(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    let old = Home::new("old", "3.5.1");
    match plan(&old.command(WORKER, &[]), &old.env(&[]), None) {
        Err(NotDirect::Fallback(m)) => assert!(m.contains("3.5"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan(&["/usr/bin/java".into(), "X".into()], &home.env(&[]), None),
        Err(NotDirect::NotSparkClass)
    );
}
