//! The two small text formats a direct Spark launch has to read exactly as Spark does:
//! - option strings (`SPARK_DAEMON_JAVA_OPTS`, `conf/java-opts` lines), split by the rules of the
//!   launcher's `CommandBuilderUtils.parseOptionString`;
//! - `spark-env.sh` when it is plain assignments (what sparkvisor renders: `NAME='value'`), read
//!   as `bash` would source it with `set -a`. Anything a shell would have to run (expansions,
//!   commands, conditionals) is refused, so that the caller falls back to `spark-class`.

/// Splits `s` into options as Spark's launcher does: whitespace separates options; single quotes
/// keep everything literally; double quotes keep whitespace and single quotes; a backslash outside
/// single quotes takes the next character literally; `''` and `""` give an empty option.
pub fn parse_option_string(s: &str) -> Result<Vec<String>, String> {
    let mut opts = Vec::new();
    let mut opt = String::new();
    let (mut in_opt, mut single, mut double, mut escape, mut has_data) =
        (false, false, false, false, false);
    for c in s.chars() {
        if escape {
            opt.push(c);
            escape = false;
        } else if in_opt {
            match c {
                '\\' if single => opt.push(c),
                '\\' => escape = true,
                '\'' if double => opt.push(c),
                '\'' => single = !single,
                '"' if single => opt.push(c),
                '"' => double = !double,
                c if !is_java_whitespace(c) || single || double => opt.push(c),
                _ => {
                    opts.push(std::mem::take(&mut opt));
                    in_opt = false;
                    has_data = false;
                }
            }
        } else {
            match c {
                '\'' => (single, in_opt, has_data) = (true, true, true),
                '"' => (double, in_opt, has_data) = (true, true, true),
                '\\' => (escape, in_opt, has_data) = (true, true, true),
                c if !is_java_whitespace(c) => {
                    (in_opt, has_data) = (true, true);
                    opt.push(c);
                }
                _ => {}
            }
        }
    }
    if single || double || escape {
        return Err(format!("invalid option string: {s:?}"));
    }
    if has_data {
        opts.push(opt);
    }
    Ok(opts)
}

/// `Character.isWhitespace` for the characters an option string can hold.
fn is_java_whitespace(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{a0}' | '\u{2007}' | '\u{202f}')
}

/// The assignments of a `spark-env.sh` made only of `NAME=WORD` / `export NAME=WORD` lines,
/// comments and blank lines, in file order; WORD is unquoted safe characters, `'...'` and `\c`.
/// Any other line is an error naming it (the caller then lets `spark-class` source the file).
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let bad = || format!("line {}: not a plain assignment: {raw:?}", n + 1);
        let (name, word) = line.split_once('=').ok_or_else(bad)?;
        let name_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(bad());
        }
        out.push((name.to_string(), parse_word(word).ok_or_else(bad)?));
    }
    Ok(out)
}

/// One shell word without expansions: `None` when it holds anything a shell would interpret.
fn parse_word(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '\\' => out.push(chars.next()?),
            c if c.is_ascii_alphanumeric() || "_./:,=@%+-^".contains(c) => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn option_strings_split_as_spark_does() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("  -Da=1   -Db=2 ", &["-Da=1", "-Db=2"]),
            ("-Da='x y' \"-Db=p q\"", &["-Da=x y", "-Db=p q"]),
            ("'-Dc=it\"s'", &["-Dc=it\"s"]),
            ("\"-Dd=it's\"", &["-Dd=it's"]),
            ("-De=a\\ b", &["-De=a b"]),
            ("'' x", &["", "x"]),
            ("'-Df=a\\b'", &["-Df=a\\b"]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_option_string(input).unwrap(), *want, "{input:?}");
        }
        assert!(parse_option_string("'open").is_err());
        assert!(parse_option_string("tail\\").is_err());
    }

    #[test]
    fn plain_env_files_are_read() {
        let text = "# comment\n\nSPARK_HOME='/opt/spark'\nexport A=plain\nB='it'\\''s'\nC=''\n";
        let vars = parse_env_file(text).unwrap();
        assert_eq!(
            vars,
            [
                ("SPARK_HOME".into(), "/opt/spark".into()),
                ("A".into(), "plain".into()),
                ("B".into(), "it's".into()),
                ("C".into(), String::new()),
            ]
        );
    }

    #[test]
    fn shell_logic_is_refused() {
        for text in [
            "A=$HOME\n",
            "A=\"x\"\n",
            "A=`id`\n",
            "if true; then A=1; fi\n",
            "A='open\n",
            "1A=x\n",
            "A=x; B=y\n",
            ". other.sh\n",
        ] {
            let err = parse_env_file(text).unwrap_err();
            assert!(err.contains("line 1"), "{text:?}: {err}");
        }
    }
}
