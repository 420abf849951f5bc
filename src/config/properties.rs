//! Reading `server.properties` files (Java properties syntax, the subset Kafka
//! configuration files use) and `--set key=value` overrides.

use super::ConfigError;

/// Parses properties text: `key=value`, `key: value` or `key value` per logical line;
/// `#` and `!` start comments; a trailing backslash continues the line; `\t`, `\n`,
/// `\\`, `\=`, `\:` and `\uXXXX` escapes are decoded. Later keys override earlier ones.
pub fn parse_properties(text: &str, source: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut entries = Vec::new();
    let mut logical = String::new();
    let mut first_line = 0;
    for (number, line) in text.lines().enumerate() {
        let line = if logical.is_empty() {
            first_line = number + 1;
            line.trim_start()
        } else {
            line.trim_start()
        };
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        entries.push(split_entry(&logical, source, first_line)?);
        logical.clear();
    }
    if !logical.is_empty() {
        entries.push(split_entry(&logical, source, first_line)?);
    }
    Ok(entries)
}

fn split_entry(
    line: &str,
    source: &str,
    line_number: usize,
) -> Result<(String, String), ConfigError> {
    let mut key_end = line.len();
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' => {
                key_end = i;
                break;
            }
            _ => {}
        }
    }
    let key = unescape(&line[..key_end], source, line_number)?;
    let mut rest = line[key_end..].trim_start_matches([' ', '\t']);
    if let Some(stripped) = rest.strip_prefix(['=', ':']) {
        rest = stripped.trim_start_matches([' ', '\t']);
    }
    let value = unescape(rest, source, line_number)?;
    if key.is_empty() {
        return Err(ConfigError::new(
            "",
            line,
            format!("{source} line {line_number} has a value but no key"),
        ));
    }
    Ok((key, value))
}

fn unescape(text: &str, source: &str, line_number: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let decoded = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                match decoded {
                    Some(ch) if hex.len() == 4 => out.push(ch),
                    _ => {
                        return Err(ConfigError::new(
                            "",
                            text,
                            format!("{source} line {line_number} has a malformed \\u escape"),
                        ));
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// Parses a `--set key=value` argument.
pub fn parse_override(arg: &str) -> Result<(String, String), ConfigError> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(ConfigError::new(
            "",
            arg,
            "a --set argument must look like key=value".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String)> {
        parse_properties(text, "test").unwrap()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn reads_the_separators_comments_and_continuations_kafka_files_use() {
        let text = "# comment\n! also\n\nlog.dirs=/a,/b\nnum.partitions : 3\nnode.id 7\n\
                    listeners = PLAINTEXT://:9092,\\\n    CONTROLLER://:9093\nempty=\n";
        assert_eq!(
            parse(text),
            vec![
                kv("log.dirs", "/a,/b"),
                kv("num.partitions", "3"),
                kv("node.id", "7"),
                kv("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                kv("empty", ""),
            ]
        );
    }

    #[test]
    fn decodes_escapes_in_keys_and_values() {
        assert_eq!(parse("a\\=b=c\\td\\u0041"), vec![kv("a=b", "c\tdA")]);
    }

    #[test]
    fn overrides_need_an_equals_sign_and_a_key() {
        assert_eq!(parse_override("a.b= 1 ").unwrap(), kv("a.b", "1"));
        assert!(parse_override("a.b").is_err());
        assert!(parse_override("=1").is_err());
    }
}
