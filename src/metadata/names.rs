//! Kafka's rules for topic names.

/// Longest legal topic name: the partition directory `<topic>-<partition>` plus the
/// suffix Kafka uses when deleting must fit a 255-byte file name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why a name is not a legal topic name, or `None` when it is.
pub fn topic_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a topic name cannot be empty".to_string());
    }
    if name == "." || name == ".." {
        return Some(format!("'{name}' is not allowed as a topic name"));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Some(format!(
            "topic name is {} characters long; the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "topic name '{name}' contains '{bad}'; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    None
}

/// Kafka's internal topics: group and transaction state, written by coordinators only.
pub fn is_internal_topic(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

/// Kafka treats '.' and '_' alike in metric names, so two topics whose names differ
/// only there collide.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_and_illegal_names() {
        assert_eq!(topic_name_problem("orders.v1_EU-2"), None);
        assert!(topic_name_problem("").is_some());
        assert!(topic_name_problem("..").is_some());
        assert!(topic_name_problem("a b").unwrap().contains("' '"));
        assert!(
            topic_name_problem(&"x".repeat(250))
                .unwrap()
                .contains("250")
        );
        assert_eq!(topic_name_problem(&"x".repeat(249)), None);
        assert_eq!(collision_key("a.b"), collision_key("a_b"));
    }
}
