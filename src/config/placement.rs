//! The placement file (`placement.file`): rules that say which shards carry which
//! partitions. The format is described, with examples, in `tuning/PLACEMENT.md`.
//!
//! Read and checked at start-up on the main thread like every other setting (a bad line
//! stops start-up, naming the file and the line), and again when an operator asks for a
//! reload. The controller (shard 0) consults the rules when it places a new partition and
//! when a reload asks where every partition should be.
//!
//! Invariants: the first rule that matches a partition decides; a choice is always one
//! of the broker's shards (a rule naming a shard the broker does not run is refused by
//! `check_shards` before any rule is used).

use crate::model::TopicPartition;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the partitions a rule matches go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Over every shard that no `isolate` rule reserves, fewest partitions first.
    Spread,
    /// Over these shards, fewest partitions first.
    On(Vec<usize>),
    /// Over these shards, which also take no partition that `Spread` places.
    Isolate(Vec<usize>),
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// A topic name pattern: `*` matches any run of characters, `?` any one.
    pub topic: String,
    /// The partitions of matching topics the rule takes (`None`: all of them).
    pub partitions: Option<(i32, i32)>,
    pub placement: Placement,
    /// The line it came from (1-based), for messages.
    pub line: usize,
}

/// The rules of a placement file, in file order; empty without a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementRules {
    pub path: Option<PathBuf>,
    pub rules: Vec<Rule>,
}

/// A line the file cannot hold, or a file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementError {
    pub path: PathBuf,
    /// 0 when the file as a whole is at fault.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "placement file {}: {}", self.path.display(), self.reason)
        } else {
            write!(
                f,
                "placement file {} line {}: {}",
                self.path.display(),
                self.line,
                self.reason
            )
        }
    }
}

impl std::error::Error for PlacementError {}

impl PlacementRules {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<PlacementRules, PlacementError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlacementError {
            path: path.to_path_buf(),
            line: 0,
            reason: format!("cannot be read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a placement file (`path` only names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<PlacementRules, PlacementError> {
        let mut rules = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let rule = parse_rule(content, line).map_err(|reason| PlacementError {
                path: path.to_path_buf(),
                line,
                reason,
            })?;
            rules.push(rule);
        }
        Ok(PlacementRules {
            path: Some(path.to_path_buf()),
            rules,
        })
    }

    /// Refuses rules that name a shard the broker does not run.
    pub fn check_shards(&self, shards: usize) -> Result<(), PlacementError> {
        for rule in &self.rules {
            let named = match &rule.placement {
                Placement::Spread => continue,
                Placement::On(s) | Placement::Isolate(s) => s,
            };
            if let Some(bad) = named.iter().find(|s| **s >= shards) {
                return Err(PlacementError {
                    path: self.path.clone().unwrap_or_default(),
                    line: rule.line,
                    reason: format!(
                        "shard {bad} does not exist: the broker runs {shards} shard{} (0-{})",
                        if shards == 1 { "" } else { "s" },
                        shards - 1
                    ),
                });
            }
        }
        Ok(())
    }

    /// The rule that decides for `tp`: the first that matches.
    pub fn rule_for(&self, tp: &TopicPartition) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(tp))
    }

    /// Shards reserved by `isolate` rules.
    fn isolated(&self, shards: usize) -> Vec<bool> {
        let mut isolated = vec![false; shards];
        for rule in &self.rules {
            if let Placement::Isolate(s) = &rule.placement {
                for shard in s {
                    isolated[*shard] = true;
                }
            }
        }
        isolated
    }

    /// The shards `tp` may live on under these rules, given `shards` shards.
    pub fn allowed(&self, tp: &TopicPartition, shards: usize) -> Vec<usize> {
        match self.rule_for(tp).map(|r| &r.placement) {
            Some(Placement::On(s)) | Some(Placement::Isolate(s)) => s.clone(),
            Some(Placement::Spread) | None => {
                let isolated = self.isolated(shards);
                let open: Vec<usize> = (0..shards).filter(|s| !isolated[*s]).collect();
                if open.is_empty() {
                    (0..shards).collect()
                } else {
                    open
                }
            }
        }
    }

    /// Where a new partition goes: the allowed shard carrying the fewest partitions
    /// (`counts`, one per shard), the lowest-numbered on a tie.
    pub fn choose(&self, tp: &TopicPartition, counts: &[usize]) -> usize {
        let allowed = self.allowed(tp, counts.len());
        *allowed
            .iter()
            .min_by_key(|s| (counts[**s], **s))
            .expect("a rule names at least one shard")
    }
}

impl Rule {
    pub fn matches(&self, tp: &TopicPartition) -> bool {
        glob(self.topic.as_bytes(), tp.topic.as_bytes())
            && self
                .partitions
                .is_none_or(|(lo, hi)| (lo..=hi).contains(&tp.partition))
    }
}

fn parse_rule(content: &str, line: usize) -> Result<Rule, String> {
    let mut words = content.split_whitespace();
    let pattern = words.next().expect("the line is not empty");
    let rest: Vec<&str> = words.collect();
    let (topic, partitions) = match pattern.rsplit_once(':') {
        Some((topic, range)) => {
            let (lo, hi) = parse_range(range)
                .ok_or_else(|| format!("'{range}' is not a partition or a range like 0-3"))?;
            if lo < 0 || lo > hi || i32::try_from(hi).is_err() {
                return Err(format!(
                    "'{range}' is not a partition range (low-high, low <= high)"
                ));
            }
            (topic, Some((lo as i32, hi as i32)))
        }
        None => (pattern, None),
    };
    if topic.is_empty()
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-*?".contains(&b))
    {
        return Err(format!(
            "'{topic}' is not a topic pattern (letters, digits, '.', '_', '-', and the wildcards '*' and '?')"
        ));
    }
    let placement = match rest.as_slice() {
        [] => {
            return Err(format!(
                "'{pattern}' says nothing about where it goes: add a shard list, 'spread' or 'isolate SHARDS'"
            ));
        }
        ["spread"] => Placement::Spread,
        ["isolate", shards] => Placement::Isolate(parse_shards(shards)?),
        ["isolate"] => {
            return Err(
                "'isolate' is not a placement without shards: isolate 1, isolate 2-3".into(),
            );
        }
        [shards] => Placement::On(parse_shards(shards)?),
        _ => {
            return Err(format!(
                "'{}' is not a placement: expected a shard list (0 or 0,2 or 0-3), 'spread' or 'isolate SHARDS'",
                rest.join(" ")
            ));
        }
    };
    Ok(Rule {
        topic: topic.to_string(),
        partitions,
        placement,
        line,
    })
}

/// `N` or `N-M`.
fn parse_range(text: &str) -> Option<(i64, i64)> {
    match text.split_once('-') {
        Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
        None => {
            let n = text.parse().ok()?;
            Some((n, n))
        }
    }
}

/// A comma-separated list of shards and ranges: `0`, `0,2`, `1-3`.
fn parse_shards(text: &str) -> Result<Vec<usize>, String> {
    let mut shards = Vec::new();
    for item in text.split(',') {
        let (lo, hi) = parse_range(item)
            .filter(|(lo, hi)| *lo >= 0 && lo <= hi && *hi < 4096)
            .ok_or_else(|| {
                format!("'{item}' is not a shard or a shard range (like 0, or 0-3) in '{text}'")
            })?;
        for shard in lo..=hi {
            if !shards.contains(&(shard as usize)) {
                shards.push(shard as usize);
            }
        }
    }
    Ok(shards)
}

/// Shell-style matching of `name` against `pattern` (`*` any run, `?` any one byte).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> PlacementRules {
        PlacementRules::parse(Path::new("p"), text).unwrap()
    }

    fn error(text: &str) -> String {
        PlacementRules::parse(Path::new("p"), text)
            .unwrap_err()
            .to_string()
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic.to_string(), partition)
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"orders-*", b"orders-eu"));
        assert!(!glob(b"orders-*", b"orders"));
        assert!(glob(b"a?c", b"abc"));
        assert!(glob(b"*x*y", b"axbxy"));
        assert!(!glob(b"*x*y", b"axbx"));
        assert!(glob(b"exact", b"exact"));
        assert!(!glob(b"exact", b"exactly"));
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let r = rules(
            "# comment\n\
             hot:0-1   1     # the hot partitions\n\
             hot       0,1\n\
             audit     isolate 2\n\
             *         spread\n",
        );
        assert_eq!(r.rules.len(), 4);
        assert_eq!(r.allowed(&tp("hot", 0), 3), vec![1]);
        assert_eq!(r.allowed(&tp("hot", 2), 3), vec![0, 1]);
        assert_eq!(r.allowed(&tp("audit", 5), 3), vec![2]);
        // Spread leaves the isolated shard out.
        assert_eq!(r.allowed(&tp("other", 0), 3), vec![0, 1]);
        assert_eq!(r.choose(&tp("other", 0), &[5, 3, 0]), 1);
        assert_eq!(r.choose(&tp("hot", 2), &[2, 2, 0]), 0);
    }

    #[test]
    fn no_file_spreads_over_every_shard() {
        let r = PlacementRules::default();
        assert_eq!(r.allowed(&tp("t", 0), 2), vec![0, 1]);
        assert_eq!(r.choose(&tp("t", 0), &[1, 0]), 1);
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        assert_eq!(
            error("ok 0\nbad\n"),
            "placement file p line 2: 'bad' says nothing about where it goes: add a shard list, 'spread' or 'isolate SHARDS'"
        );
        assert!(error("t x").contains("line 1: 'x' is not a shard"));
        assert!(error("t:3-1 0").contains("not a partition range"));
        assert!(error("t:a 0").contains("'a' is not a partition"));
        assert!(error("t/x 0").contains("not a topic pattern"));
        assert!(error("t 0 1").contains("'0 1' is not a placement"));
        assert!(error("t isolate").contains("is not a placement"));
    }

    #[test]
    fn a_rule_naming_a_missing_shard_is_refused() {
        let r = rules("a 0\nb 0-2\n");
        assert_eq!(r.check_shards(3), Ok(()));
        assert_eq!(
            r.check_shards(2).unwrap_err().to_string(),
            "placement file p line 2: shard 2 does not exist: the broker runs 2 shards (0-1)"
        );
    }
}
