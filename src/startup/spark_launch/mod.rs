//! Direct JVM launch of Spark daemons: the `java` command line `bin/spark-class` would exec, built
//! in the agent (see `docs/spark-launch.md`).
//!
//! `spark-class` sources `spark-env.sh`, then runs a first JVM (`org.apache.spark.launcher.Main`,
//! 0.2-0.45 s here) only to print the real command, and execs it from a bash whose process
//! substitution child is left as a `<defunct>` zombie under the daemon for its whole life (its
//! parent is now the JVM, which never waits for it). Building the same command here removes the
//! launcher JVM from every start and restart and leaves no zombie.
//!
//! Exactness is the contract: the command is what the launcher of the installed Spark prints for
//! the same environment (a test compares them). The parts that depend on the Spark version (the
//! JDK module options, classpath quirks) are known per `major.minor`; for any other version, or a
//! `spark-env.sh` with shell logic, or a class this module does not know, the service starts
//! through `spark-class` as written (the caller logs why).

mod shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use shell::{parse_env_file, parse_option_string};

/// The command and environment that replace a `spark-class` service's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectLaunch {
    /// `java ... CLASS ARGS` as Spark's launcher builds it.
    pub command: Vec<String>,
    /// Variables `spark-class` would have exported before exec (`spark-env.sh`'s assignments,
    /// `SPARK_ENV_LOADED`, `SPARK_CONF_DIR`, `SPARK_SCALA_VERSION`): they win over the service's.
    pub environment: BTreeMap<String, String>,
}

/// Why a service is not launched directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDirect {
    /// The command is not `.../spark-class CLASS ...`: nothing to do.
    NotSparkClass,
    /// `spark-class` can run it but this module cannot reproduce its command exactly (the reason).
    Fallback(String),
    /// The launcher would refuse this configuration (the message it would give, plus the variable).
    Invalid(String),
}

/// The JDK module options (`JavaModuleOptions.defaultModuleOptions()`) of each Spark release line
/// this module reproduces, read from the launcher jars of 4.0.1 and 4.3.0.
fn module_options(major_minor: &str) -> Option<Vec<&'static str>> {
    const OPENS: [&str; 17] = [
        "-XX:+IgnoreUnrecognizedVMOptions",
        "--add-modules=jdk.incubator.vector",
        "--add-opens=java.base/java.lang=ALL-UNNAMED",
        "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
        "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
        "--add-opens=java.base/java.io=ALL-UNNAMED",
        "--add-opens=java.base/java.net=ALL-UNNAMED",
        "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "--add-opens=java.base/java.util=ALL-UNNAMED",
        "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
        "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
        "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
        "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
        "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
        "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
        "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    ];
    const V4_0: [&str; 2] = [
        "-Djdk.reflect.useDirectMethodHandle=false",
        "-Dio.netty.tryReflectionSetAccessible=true",
    ];
    const V4_3: [&str; 5] = [
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dio.netty.allocator.type=pooled",
        "-Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE",
        "--sun-misc-unsafe-memory-access=allow",
        "--enable-native-access=ALL-UNNAMED",
    ];
    let tail: &[&str] = match major_minor {
        "4.0" => &V4_0,
        "4.3" => &V4_3,
        _ => return None,
    };
    Some(OPENS.iter().chain(tail).copied().collect())
}

/// The daemon classes `SparkClassCommandBuilder` gives `SPARK_DAEMON_*` settings, with the
/// class-specific options variable of each.
fn daemon_opts_var(class: &str) -> Option<&'static str> {
    match class {
        "org.apache.spark.deploy.master.Master" => Some("SPARK_MASTER_OPTS"),
        "org.apache.spark.deploy.worker.Worker" => Some("SPARK_WORKER_OPTS"),
        "org.apache.spark.deploy.history.HistoryServer" => Some("SPARK_HISTORY_OPTS"),
        "org.apache.spark.deploy.ExternalShuffleService" => Some("SPARK_SHUFFLE_OPTS"),
        _ => None,
    }
}

/// Whether `program` is Spark's `spark-class` script (by file name).
pub fn is_spark_class(program: &str) -> bool {
    Path::new(program)
        .file_name()
        .is_some_and(|n| n == "spark-class")
}

/// The direct launch for `command` (`spark-class CLASS ARGS...`) started with environment `env`
/// (the container's plus the service's `environment`), where `spark_env` is the text of the
/// `spark-env.sh` that `spark-class` would source (None: no such file).
pub fn plan(
    command: &[String],
    env: &BTreeMap<String, String>,
    spark_env: Option<&str>,
) -> Result<DirectLaunch, NotDirect> {
    plan_with_dirs(command, env, spark_env, &[])
}

/// [`plan`], where `new_dirs` are directories that do not exist yet but will when the service
/// starts (those of the files rendered for this start): the launcher, which runs at start, sees
/// them as directories (classpath entries get their trailing `/`).
pub fn plan_with_dirs(
    command: &[String],
    env: &BTreeMap<String, String>,
    spark_env: Option<&str>,
    new_dirs: &[PathBuf],
) -> Result<DirectLaunch, NotDirect> {
    let (class, args) = match command {
        [program, class, args @ ..] if is_spark_class(program) => (class, args),
        _ => return Err(NotDirect::NotSparkClass),
    };
    let fallback = |why: String| Err(NotDirect::Fallback(why));
    let Some(opts_var) = daemon_opts_var(class) else {
        return fallback(format!(
            "{class} is not a Spark daemon class this agent launches"
        ));
    };
    // load-spark-env.sh: SPARK_HOME is needed (find-spark-home would run Python), SPARK_CONF_DIR
    // defaults under it, spark-env.sh is sourced with `set -a`, SPARK_SCALA_VERSION is fixed.
    let Some(home) = non_empty(env, "SPARK_HOME") else {
        return fallback("SPARK_HOME is not set".into());
    };
    let conf_dir =
        non_empty(env, "SPARK_CONF_DIR").map_or_else(|| format!("{home}/conf"), str::to_string);
    let mut exported = BTreeMap::new();
    exported.insert("SPARK_ENV_LOADED".to_string(), "1".to_string());
    exported.insert("SPARK_CONF_DIR".to_string(), conf_dir.clone());
    if let Some(text) = spark_env {
        match parse_env_file(text) {
            Ok(vars) => exported.extend(vars),
            Err(e) => return fallback(format!("{conf_dir}/spark-env.sh: {e}")),
        }
    }
    exported.insert("SPARK_SCALA_VERSION".to_string(), "2.13".to_string());
    let mut full = env.clone();
    full.extend(exported.iter().map(|(k, v)| (k.clone(), v.clone())));
    if exported.get("SPARK_HOME").is_some_and(|h| h != home) {
        return fallback("spark-env.sh changes SPARK_HOME".into());
    }
    let conf_dir = non_empty(&full, "SPARK_CONF_DIR")
        .unwrap_or(&conf_dir)
        .to_string();
    for var in [
        "SPARK_PREPEND_CLASSES",
        "SPARK_TESTING",
        "SPARK_SQL_TESTING",
        "SPARK_REMOTE",
    ] {
        if non_empty(&full, var).is_some() {
            return fallback(format!("{var} is set (a development or Connect launch)"));
        }
    }

    let jars = PathBuf::from(home).join("jars");
    let version = match spark_version(&jars) {
        Some(v) => v,
        None => return fallback(format!("no spark-launcher jar in {}", jars.display())),
    };
    let Some(modules) = module_options(&version) else {
        return fallback(format!(
            "Spark {version}: its launcher's command line is not known to this agent"
        ));
    };
    let Some(java) = java_binary(&full) else {
        return fallback("JAVA_HOME is not set and no java on PATH".into());
    };

    let mut cmd = vec![java];
    let java_opts = Path::new(&conf_dir).join("java-opts");
    if java_opts.is_file() {
        let text = std::fs::read_to_string(&java_opts)
            .map_err(|e| NotDirect::Fallback(format!("{}: {e}", java_opts.display())))?;
        for line in text.lines() {
            cmd.extend(
                parse_option_string(line)
                    .map_err(|e| NotDirect::Invalid(format!("{}: {e}", java_opts.display())))?,
            );
        }
    }
    cmd.push("-cp".into());
    cmd.push(class_path(&full, &conf_dir, &jars, new_dirs).join(":"));
    for var in ["SPARK_DAEMON_JAVA_OPTS", opts_var] {
        let Some(value) = non_empty(&full, var) else {
            continue;
        };
        if value.contains("Xmx") {
            return Err(NotDirect::Invalid(format!(
                "{var} is not allowed to specify max heap(Xmx) memory settings (was {value}). \
                 Use the corresponding configuration instead (SPARK_DAEMON_MEMORY)."
            )));
        }
        cmd.extend(
            parse_option_string(value).map_err(|e| NotDirect::Invalid(format!("{var}: {e}")))?,
        );
    }
    let memory = non_empty(&full, "SPARK_DAEMON_MEMORY").unwrap_or("1g");
    cmd.push(format!("-Xmx{memory}"));
    cmd.extend(modules.iter().map(|s| s.to_string()));
    cmd.push(class.clone());
    cmd.extend(args.iter().cloned());
    Ok(DirectLaunch {
        command: cmd,
        environment: exported,
    })
}

/// A variable's value when set and not empty (the launcher's `firstNonEmpty`/`isEmpty`).
fn non_empty<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// `major.minor` of the Spark whose jars are in `jars` (from `spark-launcher_SCALA-VERSION.jar`).
fn spark_version(jars: &Path) -> Option<String> {
    std::fs::read_dir(jars).ok()?.flatten().find_map(|entry| {
        let name = entry.file_name().into_string().ok()?;
        let rest = name.strip_prefix("spark-launcher_")?.strip_suffix(".jar")?;
        let version = rest.split_once('-')?.1;
        let mut parts = version.split('.');
        Some(format!("{}.{}", parts.next()?, parts.next()?))
    })
}

/// `$JAVA_HOME/bin/java`, else the home of the `java` found on PATH (the launcher JVM's
/// `java.home`: the real directory behind /usr/bin/java's links) plus `/bin/java`.
fn java_binary(env: &BTreeMap<String, String>) -> Option<String> {
    if let Some(home) = non_empty(env, "JAVA_HOME") {
        return Some(format!("{home}/bin/java"));
    }
    let path = env.get("PATH")?;
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("java"))
        .find(|p| p.is_file())?;
    let real = std::fs::canonicalize(found).ok()?;
    let home = real.parent()?.parent()?;
    Some(format!("{}/bin/java", home.display()))
}

/// The launcher's `buildClassPath` for a daemon: `SPARK_DAEMON_CLASSPATH`, the conf dir, the
/// `slf4j-api` jar (listed ahead of the jars dir by the 4.x launchers), the jars dir, `HADOOP_CONF_DIR`, `YARN_CONF_DIR`, `SPARK_DIST_CLASSPATH`;
/// existing directories get a trailing `/`; the first of duplicate entries is kept.
fn class_path(
    env: &BTreeMap<String, String>,
    conf_dir: &str,
    jars: &Path,
    new_dirs: &[PathBuf],
) -> Vec<String> {
    let mut cp: Vec<String> = Vec::new();
    let mut add = |entries: &str| {
        for entry in entries.split(':').filter(|e| !e.is_empty()) {
            let mut entry = entry.to_string();
            let is_dir = || {
                let path = Path::new(&entry);
                path.is_dir() || new_dirs.iter().any(|d| d == path)
            };
            if !entry.ends_with('/') && is_dir() {
                entry.push('/');
            }
            if !cp.contains(&entry) {
                cp.push(entry);
            }
        }
    };
    add(non_empty(env, "SPARK_DAEMON_CLASSPATH").unwrap_or(""));
    add(conf_dir);
    let mut slf4j: Vec<String> = std::fs::read_dir(jars)
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("slf4j-api-"))
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    slf4j.sort();
    for jar in slf4j {
        add(&jar);
    }
    add(&format!("{}/*", jars.display()));
    for var in ["HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_DIST_CLASSPATH"] {
        add(non_empty(env, var).unwrap_or(""));
    }
    cp
}

#[cfg(test)]
mod tests;

/// Replaces, in place, the command and environment of every service whose command is
/// `spark-class` and whose `launch` is `java` with the direct launch; `base_env` is what every
/// service starts from and `files` the files rendered for this start (the `spark-env.sh` among
/// them is read from there, else from disk). Services that cannot be launched directly keep
/// `spark-class` (logged); a configuration the launcher would refuse is an error naming the
/// service.
pub fn apply(
    services: &mut BTreeMap<String, crate::config::ServiceSpec>,
    base_env: &BTreeMap<String, String>,
    files: &[crate::render::RenderedFile],
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let new_dirs: Vec<PathBuf> = files
        .iter()
        .flat_map(|f| f.path.ancestors().skip(1).map(Path::to_path_buf))
        .collect();
    for (name, spec) in services.iter_mut() {
        if spec.launch != crate::config::role::Launch::Java {
            continue;
        }
        let mut env = base_env.clone();
        env.extend(spec.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        let conf_dir = match (
            non_empty(&env, "SPARK_CONF_DIR"),
            non_empty(&env, "SPARK_HOME"),
        ) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, Some(home)) => Path::new(home).join("conf"),
            (None, None) => PathBuf::from("conf"),
        };
        let env_file = conf_dir.join("spark-env.sh");
        let text = match files.iter().find(|f| f.path == env_file) {
            Some(f) => Some(f.contents.clone()),
            None => std::fs::read_to_string(&env_file).ok(),
        };
        match plan_with_dirs(&spec.command, &env, text.as_deref(), &new_dirs) {
            Ok(direct) => {
                log::debug!("{name}: direct JVM launch: {}", direct.command.join(" "));
                spec.command = direct.command;
                spec.environment.extend(direct.environment);
            }
            Err(NotDirect::NotSparkClass) => {}
            Err(NotDirect::Fallback(why)) => {
                log::info!("{name}: starting through spark-class ({why})");
            }
            Err(NotDirect::Invalid(why)) => problems.push(format!("service {name}: {why}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
