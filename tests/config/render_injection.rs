#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Injection corpus: hostile values in settings, spark_conf keys/values and secrets must stay literal
//! in every rendered format (sourced shell, XML, JSON, Java properties) or be refused with a reason.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{has_command, has_java, repo, require};
use sparkvisor::config::role::{load_role, LoadedRole};
use sparkvisor::config::{ResolvedConfig, Secret, Source, Sourced};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, render_role, RenderedFile};

const CORPUS: &[&str] = &[
    "$(touch pwned)",
    "`touch pwned`",
    "it's",
    "say \"hi\"",
    "a;touch pwned",
    "a && touch pwned || true",
    "line1\nline2\ntouch pwned",
    "${IFS}touch${IFS}pwned",
    "$HOME $0 $1",
    "<x>&amp;</x>",
    "]]><!-- x -->",
    "héllo wörld ✓ 日本 😀",
    "back\\slash\\",
    " leading and trailing ",
    "#not-a-comment",
    "!bang",
    "key=value:colon",
    "'; touch pwned; echo '",
    "\"}, \"evil\": {\"x\": \"",
    "{{ spark.home }}",
    "tab\there\r\nCRLF",
    "",
];

fn role(name: &str) -> LoadedRole {
    load_role(&repo().join("roles"), name).unwrap()
}

fn env_val(v: &str) -> Sourced<String> {
    Sourced::new(
        v.to_string(),
        Source::Env {
            name: "TEST".into(),
        },
    )
}

/// The sample config with `value` injected wherever a user can put a value.
fn hostile_config(role: &LoadedRole, value: &str) -> ResolvedConfig {
    let mut c = sample_config(role);
    for key in [
        "spark.public_dns",
        "spark.local_hostname",
        "spark.master_url",
        "spark.work_dir",
        "spark.daemon_java_opts",
        "notebook.root_dir",
        "zeppelin.notebook_dir",
        "spark.log_level",
    ] {
        c.settings.insert(key.into(), env_val(value));
    }
    c.spark_conf.insert("spark.injected".into(), env_val(value));
    c.spark_conf
        .insert(format!("spark.key {value}"), env_val(value));
    c.secrets.insert(
        "spark.authenticate.secret".into(),
        Secret::new(value.to_string(), Source::Default),
    );
    c
}

fn render(role_name: &str, value: &str) -> Vec<RenderedFile> {
    let r = role(role_name);
    let config = hostile_config(&r, value);
    let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
    render_role(&r, &ctx, &repo().join("templates"))
        .unwrap_or_else(|e| panic!("{role_name} with {value:?}: {e}"))
}

fn file<'a>(files: &'a [RenderedFile], suffix: &str) -> &'a RenderedFile {
    files
        .iter()
        .find(|f| f.path.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix}"))
}

/// Sources `script` with `shell` in an empty directory and prints `$var`; asserts nothing was created.
fn source_and_print(shell: &str, script: &str, var: &str, set_a: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.sh");
    std::fs::write(&path, script).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let prefix = if set_a { "set -a; " } else { "" };
    let out = Command::new(shell)
        .arg("-c")
        .arg(format!("{prefix}. \"$1\"; printf %s \"${var}\""))
        .arg(shell)
        .arg(&path)
        .current_dir(&work)
        .env("HOME", &work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{shell} failed on:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(
        created.is_empty(),
        "sourcing created files: {created:?}\n{script}"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn shell_files_keep_values_literal() {
    for value in CORPUS {
        let files = render("all-in-one", value);
        let env = &file(&files, "spark-env.sh").contents;
        for shell in ["bash", "dash"] {
            for var in [
                "SPARK_PUBLIC_DNS",
                "SPARK_LOCAL_HOSTNAME",
                "SPARK_WORKER_DIR",
            ] {
                assert_eq!(
                    source_and_print(shell, env, var, true),
                    *value,
                    "{shell} {var}"
                );
            }
            let opts = source_and_print(shell, env, "SPARK_DAEMON_JAVA_OPTS", true);
            // An empty value is unset (conditions test raw values): no stray separator.
            // all-in-one includes the master and worker roles: their daemons get C1 only.
            let ours = "-XX:ActiveProcessorCount=2 -XX:TieredStopAtLevel=1";
            let expected = if value.is_empty() {
                ours.to_string()
            } else {
                format!("{ours} {value}")
            };
            assert_eq!(opts, expected);
        }
        let zeppelin = render("zeppelin", value);
        let zenv = &file(&zeppelin, "zeppelin-env.sh").contents;
        for shell in ["bash", "dash"] {
            assert_eq!(
                source_and_print(shell, zenv, "ZEPPELIN_NOTEBOOK_DIR", false),
                *value
            );
        }
    }
}

fn python_xml_value(xml: &str, name: &str) -> String {
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
for p in root.findall('property'):
    if p.findtext('name') == sys.argv[1]:
        sys.stdout.buffer.write((p.findtext('value') or '').encode('utf-8'))
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(name)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "XML does not parse:\n{xml}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn xml_stays_well_formed() {
    if !require(has_command("python3"), "python3 not found") {
        return;
    }
    for value in CORPUS {
        let files = render("zeppelin", value);
        let xml = &file(&files, "zeppelin-site.xml").contents;
        assert_eq!(python_xml_value(xml, "zeppelin.notebook.dir"), *value);
        assert_eq!(python_xml_value(xml, "zeppelin.server.port"), "8090");
    }
}

#[test]
fn json_parses_and_keeps_values() {
    for value in CORPUS {
        let nb = render("notebook", value);
        let server: serde_json::Value =
            serde_json::from_str(&file(&nb, "jupyter_server_config.json").contents).unwrap();
        assert_eq!(server["ServerApp"]["root_dir"], *value);
        assert_eq!(server["ServerApp"]["port"], 8888);
        let kernel: serde_json::Value =
            serde_json::from_str(&file(&nb, "kernel.json").contents).unwrap();
        assert_eq!(
            kernel["env"]["PYSPARK_SUBMIT_ARGS"],
            format!("--master {value} pyspark-shell")
        );
        let zeppelin = render("zeppelin", value);
        let interp: serde_json::Value =
            serde_json::from_str(&file(&zeppelin, "interpreter.json").contents).unwrap();
        assert_eq!(
            interp["interpreterSettings"]["spark"]["properties"]["spark.master"]["value"],
            *value
        );
        // The hostile key did not add keys of its own.
        assert_eq!(server.as_object().unwrap().len(), 1);
    }
}

/// `java.util.Properties.load` semantics, enough to check round trips (logical lines, comments,
/// separators, escapes).
fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.split('\n').peekable();
    while let Some(first) = lines.next() {
        let mut logical = first.trim_start_matches([' ', '\t', '\u{c}']).to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        // Continuation: an odd number of trailing backslashes.
        while logical.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1 {
            logical.pop();
            let next = lines.next().unwrap_or("");
            logical.push_str(next.trim_start_matches([' ', '\t', '\u{c}']));
        }
        let chars: Vec<char> = logical.chars().collect();
        let mut i = 0;
        let mut key_end = chars.len();
        while i < chars.len() {
            match chars[i] {
                '\\' => i += 2,
                '=' | ':' | ' ' | '\t' | '\u{c}' => {
                    key_end = i;
                    break;
                }
                _ => i += 1,
            }
        }
        let key_raw: String = chars[..key_end.min(chars.len())].iter().collect();
        let mut j = key_end;
        while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
            j += 1;
        }
        if j < chars.len() && matches!(chars[j], '=' | ':') {
            j += 1;
        }
        while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
            j += 1;
        }
        let value_raw: String = chars[j.min(chars.len())..].iter().collect();
        map.insert(unescape(&key_raw), unescape(&value_raw));
    }
    map
}

fn unescape(s: &str) -> String {
    let mut units: Vec<u16> = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            i += 2;
            match n {
                't' => units.push(9),
                'n' => units.push(10),
                'r' => units.push(13),
                'f' => units.push(12),
                'u' => {
                    let hex: String = chars[i..i + 4].iter().collect();
                    units.push(u16::from_str_radix(&hex, 16).unwrap());
                    i += 4;
                }
                other => {
                    let mut b = [0u16; 2];
                    units.extend_from_slice(other.encode_utf16(&mut b));
                }
            }
        } else {
            let mut b = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut b));
            i += 1;
        }
    }
    String::from_utf16(&units).unwrap()
}

#[test]
fn properties_round_trip() {
    for value in CORPUS {
        let files = render("history-server", value);
        for name in ["spark-defaults.conf", "history-server.properties"] {
            let props = parse_properties(&file(&files, name).contents);
            assert_eq!(props["spark.injected"], *value, "{name}");
            assert_eq!(props[&format!("spark.key {value}")], *value, "{name}");
            // An empty secret is unset: not rendered at all.
            assert_eq!(
                props.get("spark.authenticate.secret").map(String::as_str),
                (!value.is_empty()).then_some(*value),
                "{name}"
            );
            assert_eq!(props["spark.master"], *value, "{name}");
        }
        let log4j = parse_properties(&file(&files, "log4j2.properties").contents);
        assert_eq!(log4j["rootLogger.level"], *value);
    }
}

/// The real reader: java.util.Properties (Java 17 runs a single source file directly).
#[test]
fn java_properties_agree() {
    if !require(has_java(), "java not found") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = role("master");
    let mut config = sample_config(&r);
    for (i, v) in CORPUS.iter().enumerate() {
        config
            .spark_conf
            .insert(format!("spark.inj{i:02}"), env_val(v));
        config
            .spark_conf
            .insert(format!("spark.key{i:02} {v}"), env_val("k"));
    }
    let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
    let files = render_role(&r, &ctx, &repo().join("templates")).unwrap();
    let conf = dir.path().join("spark-defaults.conf");
    std::fs::write(&conf, &file(&files, "spark-defaults.conf").contents).unwrap();
    let src = dir.path().join("Dump.java");
    std::fs::write(
        &src,
        r#"
import java.io.*; import java.nio.charset.StandardCharsets; import java.util.*;
public class Dump { public static void main(String[] a) throws Exception {
  Properties p = new Properties();
  try (Reader r = new InputStreamReader(new FileInputStream(a[0]), StandardCharsets.UTF_8)) { p.load(r); }
  for (String k : new TreeSet<>(p.stringPropertyNames())) {
    System.out.println(HexFormat.of().formatHex(k.getBytes(StandardCharsets.UTF_8)) + " "
      + HexFormat.of().formatHex(p.getProperty(k).getBytes(StandardCharsets.UTF_8)));
  }
}}
"#,
    )
    .unwrap();
    let out = Command::new("java").arg(&src).arg(&conf).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for (i, v) in CORPUS.iter().enumerate() {
        let want = format!("{} {}", hex(&format!("spark.inj{i:02}")), hex(v));
        assert!(
            lines.contains(&want),
            "java read spark.inj{i:02} differently ({v:?})"
        );
        let want_key = format!("{} {}", hex(&format!("spark.key{i:02} {v}")), hex("k"));
        assert!(
            lines.contains(&want_key),
            "java read key {i} differently ({v:?})"
        );
    }
}

#[test]
fn unrepresentable_values_are_refused_with_a_reason() {
    let r = role("zeppelin");
    for value in ["nul\0byte", "bell\u{7}"] {
        let config = hostile_config(&r, value);
        let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
        let err = render_role(&r, &ctx, &repo().join("templates")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("refused"), "{text}");
        assert!(text.contains("zeppelin-site.xml"), "{text}");
    }
    // A NUL cannot live in a shell variable either.
    let r = role("master");
    let config = hostile_config(&r, "nul\0byte");
    let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
    let text = render_role(&r, &ctx, &repo().join("templates"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("spark-env.sh") && text.contains("refused"),
        "{text}"
    );
}

#[test]
fn a_non_numeric_port_is_an_error_not_zero() {
    let r = role("notebook");
    let mut config = sample_config(&r);
    config
        .settings
        .insert("notebook.port".into(), env_val("8888; rm -rf /"));
    let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
    let text = render_role(&r, &ctx, &repo().join("templates"))
        .unwrap_err()
        .to_string();
    assert!(text.contains("jupyter_server_config.json"), "{text}");
    assert!(text.contains("not an integer"), "{text}");
}
