//! Parsing the value formats settings use: Spark memory sizes, core counts, booleans, factors.
//! Each parser returns a message (lowercase, no trailing period) fit for a [`crate::error::Diagnostic`].

/// Parses a Spark memory size (`512m`, `2g`, `1024k`, `1t`, optionally with a trailing `b`, any case)
/// into MiB. A bare number is rejected: Spark would read it as bytes, which is never what is meant.
pub fn parse_memory_mb(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "invalid memory size {text:?}: expected a number with a unit, e.g. 512m or 2g"
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid memory size {text:?}: number too large"))?;
    let mb = match unit {
        "k" => n / 1024,
        "m" => n,
        "g" => n.saturating_mul(1024),
        "t" => n.saturating_mul(1024 * 1024),
        "" => {
            return Err(format!(
                "invalid memory size {text:?}: add a unit (k, m, g or t), e.g. {n}m"
            ))
        }
        _ => {
            return Err(format!(
                "invalid memory size {text:?}: unknown unit {unit:?} (use k, m, g or t)"
            ))
        }
    };
    // Spark keeps MiB in an Int.
    if mb == 0 || mb > i32::MAX as u64 {
        return Err(format!(
            "invalid memory size {text:?}: must be between 1m and {}m",
            i32::MAX
        ));
    }
    Ok(mb)
}

/// Parses a core count: an integer from 1 to 65535 (Spark reads `SPARK_WORKER_CORES` with `.toInt`).
pub fn parse_cores(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=65_535).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid core count {text:?}: expected a whole number from 1 to 65535"
        )),
    }
}

/// Parses `yes`/`no`/`true`/`false`/`1`/`0`/`on`/`off` (any case), as the bitnami image accepts.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Ok(true),
        "no" | "false" | "0" | "off" | "" => Ok(false),
        _ => Err(format!(
            "invalid boolean {text:?}: expected yes, no, true or false"
        )),
    }
}

/// Parses a positive factor such as `1`, `1.5`, `4` (at most 64).
pub fn parse_factor(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 64.0 => Ok(f),
        _ => Err(format!(
            "invalid factor {text:?}: expected a number above 0 and at most 64, e.g. 1.5"
        )),
    }
}

/// Parses a whole number of MiB (`1024`) or a memory size with a unit (`1g`).
pub fn parse_mib(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n <= i32::MAX as u64 => Ok(n),
        Ok(_) => Err(format!("invalid size {text:?}: too large")),
        Err(_) => parse_memory_mb(text),
    }
}

/// Parses a TCP port, 1..=65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "invalid port {text:?}: expected a number from 1 to 65535"
        )),
    }
}

/// Parses a percentage from 0 to 50 (the JVM-overhead reserve; capped so that worker memory
/// grows with the container).
pub fn parse_percent(text: &str) -> Result<u64, String> {
    match text.trim().trim_end_matches('%').parse::<u64>() {
        Ok(p) if p <= 50 => Ok(p),
        _ => Err(format!(
            "invalid percentage {text:?}: expected a whole number from 0 to 50"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_mb("512m"), Ok(512));
        assert_eq!(parse_memory_mb("2g"), Ok(2048));
        assert_eq!(parse_memory_mb("2G"), Ok(2048));
        assert_eq!(parse_memory_mb("1gb"), Ok(1024));
        assert_eq!(parse_memory_mb("2048k"), Ok(2));
        assert!(parse_memory_mb("1000").is_err());
        assert!(parse_memory_mb("-1g").is_err());
        assert!(parse_memory_mb("0m").is_err());
        assert!(parse_memory_mb("1.5g").is_err());
        assert!(parse_memory_mb("99999999999t").is_err());
        assert!(parse_memory_mb("").is_err());
    }

    #[test]
    fn cores_bools_factors() {
        assert_eq!(parse_cores("2"), Ok(2));
        assert!(parse_cores("1.5").is_err());
        assert!(parse_cores("0").is_err());
        assert!(parse_cores("-1").is_err());
        assert_eq!(parse_bool("YES"), Ok(true));
        assert_eq!(parse_bool("no"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_factor("1.5"), Ok(1.5));
        assert!(parse_factor("0").is_err());
        assert!(parse_factor("NaN").is_err());
        assert_eq!(parse_mib("1g"), Ok(1024));
        assert_eq!(parse_mib("300"), Ok(300));
        assert!(parse_port("0").is_err());
        assert_eq!(parse_percent("10%"), Ok(10));
    }
}
