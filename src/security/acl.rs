//! ACL bindings, filters and the matcher, in Kafka's vocabulary and numeric codes.
//!
//! The matcher decides as Kafka's `StandardAuthorizer` does: super users are always
//! allowed; otherwise the ACLs whose resource pattern matches the resource (a LITERAL
//! name, the LITERAL wildcard `*`, or a PREFIXED name the resource starts with) are
//! consulted: a DENY for the principal (or `User:*`) and host (or `*`) of the operation
//! (or ALL) wins; else an ALLOW of the operation (or ALL, or one that implies it: READ,
//! WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS)
//! allows; a resource no ACL matches at all is allowed only with
//! `allow.everyone.if.no.acl.found=true`.

use std::fmt;

macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// Kafka's code of the value.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code),*
                }
            }

            /// The value of a wire code, `None` for a code Kafka does not define.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The value of a wire code, UNKNOWN for a code Kafka does not define (as
            /// Kafka's `fromCode` reads it).
            pub fn from_code_or_unknown(code: i8) -> $name {
                $name::from_code(code).unwrap_or($name::Unknown)
            }

            /// Kafka's name of the value (`TRANSACTIONAL_ID`).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

codes! {
    /// Kafka's `ResourceType`.
    ResourceType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
}

codes! {
    /// Kafka's `PatternType`: LITERAL and PREFIXED in bindings; ANY and MATCH in filters.
    PatternType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Match = 2 => "MATCH",
        Literal = 3 => "LITERAL",
        Prefixed = 4 => "PREFIXED",
    }
}

codes! {
    /// Kafka's `AclOperation`.
    AclOperation {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
}

codes! {
    /// Kafka's `AclPermissionType`.
    PermissionType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
}

/// The only name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The wildcard: a LITERAL resource name, a host, or the name of `User:*`.
pub const WILDCARD: &str = "*";

/// The operations Kafka reports as authorized on a topic (KIP-430).
pub const TOPIC_OPERATIONS: &[AclOperation] = &[
    AclOperation::Read,
    AclOperation::Write,
    AclOperation::Create,
    AclOperation::Delete,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
];

/// The operations Kafka reports as authorized on the cluster.
pub const CLUSTER_OPERATIONS: &[AclOperation] = &[
    AclOperation::Create,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
];

/// The operations Kafka reports as authorized on a group.
pub const GROUP_OPERATIONS: &[AclOperation] = &[
    AclOperation::Read,
    AclOperation::Delete,
    AclOperation::Describe,
];

/// `operations` as KIP-430's bit field (bit n set: the operation of code n).
pub fn operation_bits(operations: &[AclOperation]) -> i32 {
    operations
        .iter()
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// One ACL: who may (or may not) do what on which resources, from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: PermissionType,
}

/// Kafka's check of a principal's form (`SecurityUtils.parseKafkaPrincipal`): a type
/// and a name separated by ':'.
pub fn principal_problem(principal: &str) -> Option<String> {
    if principal.split_once(':').is_none() {
        return Some(format!(
            "expected a string in format principalType:principalName but got {principal}"
        ));
    }
    None
}

impl AclBinding {
    /// Kafka's checks of a binding to create (the broker's and the controller's), with
    /// its message; the error code is INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), String> {
        if matches!(
            self.resource_type,
            ResourceType::Unknown | ResourceType::Any
        ) {
            return Err(format!("Invalid resourceType {}", self.resource_type));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!("Invalid patternType {}", self.pattern_type));
        }
        if matches!(self.operation, AclOperation::Unknown | AclOperation::Any) {
            return Err(format!("Invalid operation {}", self.operation));
        }
        if !matches!(
            self.permission,
            PermissionType::Deny | PermissionType::Allow
        ) {
            return Err(format!("Invalid permissionType {}", self.permission));
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if self.name.is_empty() {
            return Err("Invalid empty resource name".to_string());
        }
        if let Some(problem) = principal_problem(&self.principal) {
            return Err(problem);
        }
        Ok(())
    }

    /// Whether this binding's resource pattern covers the resource `name` (of its type).
    fn covers(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.name == name || self.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&self.name),
            _ => false,
        }
    }
}

/// What DescribeAcls and DeleteAcls select: `None` and ANY match every value; MATCH
/// selects the bindings that would apply to the named resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: PermissionType,
}

impl AclFilter {
    /// Kafka's check of a filter (the controller's), with its message; the error code
    /// is INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
        {
            return Err("Unknown patternFilter.".to_string());
        }
        if self.operation == AclOperation::Unknown || self.permission == PermissionType::Unknown {
            return Err("Unknown entryFilter.".to_string());
        }
        Ok(())
    }

    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == binding.pattern_type {
            return *name == binding.name;
        }
        // MATCH: the bindings that apply to the resource `name`.
        binding.covers(name)
    }

    fn matches_entry(&self, binding: &AclBinding) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && (self.operation == AclOperation::Any || self.operation == binding.operation)
            && (self.permission == PermissionType::Any || self.permission == binding.permission)
    }
}

/// The static authorizer settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `authorizer.class.name` names `StandardAuthorizer`.
    pub enabled: bool,
    /// `super.users`: principals allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
}

/// The `authorizer.class.name` corelog accepts.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

impl AuthorizerConfig {
    /// The settings of `authorizer.class.name` and `super.users` values as given (an
    /// empty class name: no authorizer).
    pub fn parse(
        class_name: &str,
        super_users: &str,
        allow_everyone_if_no_acl_found: bool,
    ) -> Result<AuthorizerConfig, String> {
        let enabled = match class_name.trim() {
            "" => false,
            STANDARD_AUTHORIZER => true,
            other => {
                return Err(format!(
                    "authorizer {other} is not supported: corelog accepts only \
                     {STANDARD_AUTHORIZER} (or an empty value for no authorizer)"
                ));
            }
        };
        let mut users = Vec::new();
        for user in super_users
            .split(';')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            if let Some(problem) = principal_problem(user) {
                return Err(problem);
            }
            users.push(user.to_string());
        }
        Ok(AuthorizerConfig {
            enabled,
            super_users: users,
            allow_everyone_if_no_acl_found,
        })
    }
}

/// The matcher over one shard's ACLs.
#[derive(Debug, Clone, Copy)]
pub struct Authorizer<'a> {
    pub config: &'a AuthorizerConfig,
    pub acls: &'a [AclBinding],
}

/// Whether an ALLOW of `granted` allows `wanted`.
fn allow_implies(granted: AclOperation, wanted: AclOperation) -> bool {
    granted == AclOperation::All
        || granted == wanted
        || (wanted == AclOperation::Describe
            && matches!(
                granted,
                AclOperation::Read
                    | AclOperation::Write
                    | AclOperation::Delete
                    | AclOperation::Alter
            ))
        || (wanted == AclOperation::DescribeConfigs && granted == AclOperation::AlterConfigs)
}

fn principal_matches(acl: &str, principal: &str) -> bool {
    acl == principal || (acl == "User:*" && principal.starts_with("User:"))
}

impl Authorizer<'_> {
    /// Whether `principal` connected from `host` may do `operation` on the resource.
    /// Always true without an authorizer.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.config.enabled || self.config.super_users.iter().any(|u| u == principal) {
            return true;
        }
        let mut resource_has_acls = false;
        let mut allowed = false;
        for acl in self
            .acls
            .iter()
            .filter(|acl| acl.resource_type == resource_type && acl.covers(name))
        {
            resource_has_acls = true;
            if !principal_matches(&acl.principal, principal)
                || !(acl.host == WILDCARD || acl.host == host)
            {
                continue;
            }
            match acl.permission {
                PermissionType::Deny
                    if acl.operation == AclOperation::All || acl.operation == operation =>
                {
                    return false;
                }
                PermissionType::Allow => allowed |= allow_implies(acl.operation, operation),
                _ => {}
            }
        }
        allowed || (!resource_has_acls && self.config.allow_everyone_if_no_acl_found)
    }

    /// Whether `principal` may do `operation` on some resource of `resource_type`
    /// (Kafka's `authorizeByResourceType`, which InitProducerId uses for idempotent
    /// producers): not when a DENY covers every name (LITERAL `*`); yes when an ALLOW
    /// of the operation applies to some resource, or when no ACL names a resource of the
    /// type and `allow.everyone.if.no.acl.found` is set.
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.config.enabled || self.config.super_users.iter().any(|u| u == principal) {
            return true;
        }
        let applies = |acl: &&AclBinding| {
            acl.resource_type == resource_type
                && principal_matches(&acl.principal, principal)
                && (acl.host == WILDCARD || acl.host == host)
                && (acl.operation == AclOperation::All || acl.operation == operation)
        };
        let of_type = || {
            self.acls
                .iter()
                .filter(|a| a.resource_type == resource_type)
        };
        if of_type().filter(applies).any(|acl| {
            acl.permission == PermissionType::Deny
                && acl.pattern_type == PatternType::Literal
                && acl.name == WILDCARD
        }) {
            return false;
        }
        if of_type()
            .filter(applies)
            .any(|acl| acl.permission == PermissionType::Allow)
        {
            return true;
        }
        of_type().next().is_none() && self.config.allow_everyone_if_no_acl_found
    }

    /// The operations of `candidates` that `authorize` allows, as KIP-430's bit field.
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: &str,
        resource_type: ResourceType,
        name: &str,
        candidates: &[AclOperation],
    ) -> i32 {
        candidates
            .iter()
            .filter(|op| self.authorize(principal, host, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AclOperation::*;
    use PatternType::{Literal, Prefixed};
    use PermissionType::{Allow, Deny};
    use ResourceType::{Cluster, Group, Topic};

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        host: &str,
        operation: AclOperation,
        permission: PermissionType,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        }
    }

    const ME: &str = "User:ANONYMOUS";
    const HOST: &str = "127.0.0.1";

    #[test]
    fn the_matcher_decides_as_kafkas_standard_authorizer() {
        let on = |allow_everyone: bool, super_users: &[&str]| AuthorizerConfig {
            enabled: true,
            super_users: super_users.iter().map(|s| s.to_string()).collect(),
            allow_everyone_if_no_acl_found: allow_everyone,
        };
        // (case, config, acls, operation, resource, expected)
        type Case = (
            &'static str,
            AuthorizerConfig,
            Vec<AclBinding>,
            AclOperation,
            (ResourceType, &'static str),
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "no authorizer allows everything",
                AuthorizerConfig::default(),
                vec![acl(Topic, "t", Literal, ME, "*", Write, Deny)],
                Write,
                (Topic, "t"),
                true,
            ),
            (
                "no ACL and no allow-everyone denies",
                on(false, &[]),
                vec![],
                Read,
                (Topic, "t"),
                false,
            ),
            (
                "no ACL with allow-everyone allows",
                on(true, &[]),
                vec![],
                Read,
                (Topic, "t"),
                true,
            ),
            (
                "an ACL of another principal on the resource: allow-everyone no longer applies",
                on(true, &[]),
                vec![acl(Topic, "t", Literal, "User:bob", "*", Read, Allow)],
                Read,
                (Topic, "t"),
                false,
            ),
            (
                "ACLs of other resources leave allow-everyone in force",
                on(true, &[]),
                vec![acl(Topic, "other", Literal, ME, "*", Read, Deny)],
                Read,
                (Topic, "t"),
                true,
            ),
            (
                "deny wins over allow",
                on(false, &[]),
                vec![
                    acl(Topic, "t", Literal, ME, "*", Write, Allow),
                    acl(Topic, "t", Literal, "User:*", "*", Write, Deny),
                ],
                Write,
                (Topic, "t"),
                false,
            ),
            (
                "deny of ALL denies every operation",
                on(false, &[]),
                vec![
                    acl(Topic, "t", Literal, ME, "*", All, Allow),
                    acl(Topic, "t", Literal, ME, "*", All, Deny),
                ],
                Describe,
                (Topic, "t"),
                false,
            ),
            (
                "deny of WRITE does not deny READ",
                on(false, &[]),
                vec![
                    acl(Topic, "t", Literal, ME, "*", Read, Allow),
                    acl(Topic, "t", Literal, ME, "*", Write, Deny),
                ],
                Read,
                (Topic, "t"),
                true,
            ),
            (
                "allow READ implies DESCRIBE",
                on(false, &[]),
                vec![acl(Topic, "t", Literal, ME, "*", Read, Allow)],
                Describe,
                (Topic, "t"),
                true,
            ),
            (
                "allow ALTER implies DESCRIBE",
                on(false, &[]),
                vec![acl(Topic, "t", Literal, ME, "*", Alter, Allow)],
                Describe,
                (Topic, "t"),
                true,
            ),
            (
                "allow DESCRIBE does not imply READ",
                on(false, &[]),
                vec![acl(Topic, "t", Literal, ME, "*", Describe, Allow)],
                Read,
                (Topic, "t"),
                false,
            ),
            (
                "allow ALTER_CONFIGS implies DESCRIBE_CONFIGS",
                on(false, &[]),
                vec![acl(Topic, "t", Literal, ME, "*", AlterConfigs, Allow)],
                DescribeConfigs,
                (Topic, "t"),
                true,
            ),
            (
                "deny of READ does not deny the DESCRIBE an allow implies",
                on(false, &[]),
                vec![
                    acl(Topic, "t", Literal, ME, "*", Write, Allow),
                    acl(Topic, "t", Literal, ME, "*", Read, Deny),
                ],
                Describe,
                (Topic, "t"),
                true,
            ),
            (
                "a prefixed ACL covers names starting with it",
                on(false, &[]),
                vec![acl(Topic, "orders-", Prefixed, ME, "*", Write, Allow)],
                Write,
                (Topic, "orders-eu"),
                true,
            ),
            (
                "a prefixed ACL does not cover other names",
                on(false, &[]),
                vec![acl(Topic, "orders-", Prefixed, ME, "*", Write, Allow)],
                Write,
                (Topic, "order"),
                false,
            ),
            (
                "a literal ACL does not cover a longer name",
                on(false, &[]),
                vec![acl(Topic, "orders", Literal, ME, "*", Write, Allow)],
                Write,
                (Topic, "orders-eu"),
                false,
            ),
            (
                "the literal wildcard resource covers every name",
                on(false, &[]),
                vec![acl(Topic, "*", Literal, ME, "*", Read, Allow)],
                Read,
                (Topic, "anything"),
                true,
            ),
            (
                "the wildcard principal covers every user",
                on(false, &[]),
                vec![acl(Group, "g", Literal, "User:*", "*", Read, Allow)],
                Read,
                (Group, "g"),
                true,
            ),
            (
                "another host's ACL does not apply",
                on(false, &[]),
                vec![acl(Topic, "t", Literal, ME, "10.0.0.1", Read, Allow)],
                Read,
                (Topic, "t"),
                false,
            ),
            (
                "the peer's own host applies",
                on(false, &[]),
                vec![acl(Topic, "t", Literal, ME, HOST, Read, Allow)],
                Read,
                (Topic, "t"),
                true,
            ),
            (
                "a deny for another host does not deny",
                on(true, &[]),
                vec![
                    acl(Topic, "t", Literal, ME, "*", Read, Allow),
                    acl(Topic, "t", Literal, ME, "10.0.0.1", Read, Deny),
                ],
                Read,
                (Topic, "t"),
                true,
            ),
            (
                "resource types are distinct",
                on(false, &[]),
                vec![acl(Group, "t", Literal, ME, "*", Read, Allow)],
                Read,
                (Topic, "t"),
                false,
            ),
            (
                "super users are allowed despite a deny",
                on(false, &["User:admin", ME]),
                vec![acl(Cluster, CLUSTER_NAME, Literal, ME, "*", All, Deny)],
                Alter,
                (Cluster, CLUSTER_NAME),
                true,
            ),
        ];
        for (case, config, acls, operation, (resource_type, name), expected) in cases {
            let authorizer = Authorizer {
                config: &config,
                acls: &acls,
            };
            assert_eq!(
                authorizer.authorize(ME, HOST, operation, resource_type, name),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn authorize_any_looks_for_an_allow_on_some_resource_of_the_type() {
        let config = AuthorizerConfig {
            enabled: true,
            super_users: vec![],
            allow_everyone_if_no_acl_found: false,
        };
        let check = |acls: Vec<AclBinding>| {
            Authorizer {
                config: &config,
                acls: &acls,
            }
            .authorize_any(ME, HOST, Write, Topic)
        };
        assert!(!check(vec![]));
        assert!(check(vec![acl(Topic, "t", Literal, ME, "*", Write, Allow)]));
        assert!(check(vec![acl(Topic, "t-", Prefixed, ME, "*", All, Allow)]));
        assert!(!check(vec![acl(Topic, "t", Literal, ME, "*", Read, Allow)]));
        assert!(!check(vec![
            acl(Topic, "t", Literal, ME, "*", Write, Allow),
            acl(Topic, "*", Literal, ME, "*", Write, Deny),
        ]));
    }

    #[test]
    fn authorized_operations_are_a_bit_field_of_the_allowed_ones() {
        let config = AuthorizerConfig {
            enabled: true,
            super_users: vec![],
            allow_everyone_if_no_acl_found: false,
        };
        let acls = vec![acl(Topic, "t", Literal, ME, "*", Read, Allow)];
        let authorizer = Authorizer {
            config: &config,
            acls: &acls,
        };
        assert_eq!(
            authorizer.authorized_operations(ME, HOST, Topic, "t", TOPIC_OPERATIONS),
            (1 << 3) | (1 << 8)
        );
        assert_eq!(
            operation_bits(CLUSTER_OPERATIONS),
            (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
        );
    }

    #[test]
    fn bindings_and_filters_are_validated_in_kafkas_words() {
        let good = acl(Topic, "t", Literal, "User:a", "*", Read, Allow);
        assert_eq!(good.validate(), Ok(()));
        let bad = |f: fn(&mut AclBinding)| {
            let mut b = good.clone();
            f(&mut b);
            b.validate().unwrap_err()
        };
        assert_eq!(
            bad(|b| b.resource_type = ResourceType::Any),
            "Invalid resourceType ANY"
        );
        assert_eq!(
            bad(|b| b.pattern_type = PatternType::Match),
            "Invalid patternType MATCH"
        );
        assert_eq!(bad(|b| b.operation = Any), "Invalid operation ANY");
        assert_eq!(
            bad(|b| b.permission = PermissionType::Unknown),
            "Invalid permissionType UNKNOWN"
        );
        assert_eq!(
            bad(|b| {
                b.resource_type = Cluster;
                b.name = "c".into()
            }),
            "The only valid name for the CLUSTER resource is kafka-cluster"
        );
        assert_eq!(bad(|b| b.name.clear()), "Invalid empty resource name");
        assert_eq!(
            bad(|b| b.principal = "bob".into()),
            "expected a string in format principalType:principalName but got bob"
        );
        let filter = AclFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: Any,
            permission: PermissionType::Any,
        };
        assert!(filter.matches(&good));
        assert_eq!(
            AclFilter {
                pattern_type: PatternType::Unknown,
                ..filter.clone()
            }
            .validate(),
            Err("Unknown patternFilter.".to_string())
        );
        let matching = AclFilter {
            resource_type: Topic,
            name: Some("orders-eu".into()),
            pattern_type: PatternType::Match,
            ..filter.clone()
        };
        assert!(matching.matches(&acl(Topic, "orders-", Prefixed, ME, "*", Read, Allow)));
        assert!(matching.matches(&acl(Topic, "*", Literal, ME, "*", Read, Allow)));
        assert!(!matching.matches(&acl(Topic, "orders", Literal, ME, "*", Read, Allow)));
        let literal = AclFilter {
            pattern_type: Literal,
            ..matching.clone()
        };
        assert!(!literal.matches(&acl(Topic, "*", Literal, ME, "*", Read, Allow)));
        assert!(literal.matches(&acl(Topic, "orders-eu", Literal, ME, "*", Read, Allow)));
    }

    #[test]
    fn only_the_standard_authorizer_is_accepted() {
        assert!(!AuthorizerConfig::parse("", "", false).unwrap().enabled);
        let config = AuthorizerConfig::parse(STANDARD_AUTHORIZER, "User:a; User:b", true).unwrap();
        assert!(config.enabled);
        assert_eq!(config.super_users, vec!["User:a", "User:b"]);
        let err = AuthorizerConfig::parse("kafka.security.authorizer.AclAuthorizer", "", false)
            .unwrap_err();
        assert!(err.contains(STANDARD_AUTHORIZER), "{err}");
        assert!(AuthorizerConfig::parse(STANDARD_AUTHORIZER, "admin", false).is_err());
    }
}
