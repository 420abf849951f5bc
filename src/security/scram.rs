//! SCRAM credentials as a KRaft controller keeps them (KIP-554): per user and
//! mechanism, the salt, the iteration count, and the stored key and server key derived
//! from the salted password AlterUserScramCredentials carries (RFC 5802: StoredKey =
//! H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server
//! Key")). The salted password itself is not kept.
//!
//! corelog has no SASL listener yet: the credentials are stored, persisted and described
//! for one to come, and authenticate nobody today.

use crate::protocol::ErrorCode;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;

/// Kafka's `ScramMechanism` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// The mechanism of a wire code; `None` for UNKNOWN (0) and codes Kafka does not
    /// define.
    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The fewest iterations Kafka accepts for the mechanism.
    pub fn min_iterations(self) -> i32 {
        4096
    }

    /// RFC 5802's StoredKey and ServerKey of a salted password.
    pub fn keys(self, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
        macro_rules! derive {
            ($digest:ty) => {{
                let hmac = |message: &[u8]| {
                    let mut mac = <Hmac<$digest> as Mac>::new_from_slice(salted_password)
                        .expect("HMAC takes a key of any length");
                    mac.update(message);
                    mac.finalize().into_bytes().to_vec()
                };
                let stored_key = <$digest>::digest(hmac(b"Client Key")).to_vec();
                (stored_key, hmac(b"Server Key"))
            }};
        }
        match self {
            ScramMechanism::Sha256 => derive!(Sha256),
            ScramMechanism::Sha512 => derive!(Sha512),
        }
    }
}

/// The most iterations Kafka's controller accepts.
pub const MAX_ITERATIONS: i32 = 16384;

/// One user's credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// Every credential, by user and mechanism.
pub type ScramCredentials = BTreeMap<(String, ScramMechanism), ScramCredential>;

/// An AlterUserScramCredentials deletion, with the mechanism's wire code.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub name: String,
    pub mechanism: i8,
}

/// An AlterUserScramCredentials upsertion, with the mechanism's wire code.
#[derive(Debug, Clone)]
pub struct Upsertion {
    pub name: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

/// One user's answer: `Ok`, or Kafka's error code and message.
pub type UserResult = (String, Result<(), (ErrorCode, String)>);

fn check_name_and_mechanism(
    name: &str,
    mechanism: i8,
) -> Result<ScramMechanism, (ErrorCode, String)> {
    if name.is_empty() {
        return Err((
            ErrorCode::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    ScramMechanism::from_code(mechanism).ok_or_else(|| {
        (
            ErrorCode::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".into(),
        )
    })
}

const TWICE: &str = "A user credential cannot be altered twice in the same request";

/// Checks an AlterUserScramCredentials request against `current` as Kafka's controller
/// does (each user at most once per request, known mechanisms, Kafka's iteration
/// bounds, deleting only what exists) and returns one result per user — successful
/// deletions, then successful upsertions, then failures — with the credentials after
/// the successful alterations.
pub fn alter(
    current: &ScramCredentials,
    deletions: &[Deletion],
    upsertions: &[Upsertion],
) -> (Vec<UserResult>, ScramCredentials) {
    let mut deleted: Vec<(String, ScramMechanism)> = Vec::new();
    let mut upserted: Vec<(String, ScramMechanism, &Upsertion)> = Vec::new();
    let mut failed: Vec<(String, (ErrorCode, String))> = Vec::new();
    let has_failed = |failed: &Vec<(String, (ErrorCode, String))>, name: &str| {
        failed.iter().any(|f| f.0 == name)
    };
    for deletion in deletions {
        if has_failed(&failed, &deletion.name) {
            continue;
        }
        if let Some(i) = deleted.iter().position(|d| d.0 == deletion.name) {
            deleted.remove(i);
            failed.push((
                deletion.name.clone(),
                (ErrorCode::DuplicateResource, TWICE.into()),
            ));
            continue;
        }
        let checked =
            check_name_and_mechanism(&deletion.name, deletion.mechanism).and_then(|mechanism| {
                if current.contains_key(&(deletion.name.clone(), mechanism)) {
                    Ok(mechanism)
                } else {
                    Err((
                        ErrorCode::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist".into(),
                    ))
                }
            });
        match checked {
            Ok(mechanism) => deleted.push((deletion.name.clone(), mechanism)),
            Err(error) => failed.push((deletion.name.clone(), error)),
        }
    }
    for upsertion in upsertions {
        if has_failed(&failed, &upsertion.name) {
            continue;
        }
        let was_deleted = deleted.iter().position(|d| d.0 == upsertion.name);
        let was_upserted = upserted.iter().position(|u| u.0 == upsertion.name);
        if was_deleted.is_some() || was_upserted.is_some() {
            if let Some(i) = was_deleted {
                deleted.remove(i);
            }
            if let Some(i) = was_upserted {
                upserted.remove(i);
            }
            failed.push((
                upsertion.name.clone(),
                (ErrorCode::DuplicateResource, TWICE.into()),
            ));
            continue;
        }
        let checked =
            check_name_and_mechanism(&upsertion.name, upsertion.mechanism).and_then(|mechanism| {
                if upsertion.iterations < mechanism.min_iterations() {
                    Err((
                        ErrorCode::UnacceptableCredential,
                        "Too few iterations".into(),
                    ))
                } else if upsertion.iterations > MAX_ITERATIONS {
                    Err((
                        ErrorCode::UnacceptableCredential,
                        "Too many iterations".into(),
                    ))
                } else {
                    Ok(mechanism)
                }
            });
        match checked {
            Ok(mechanism) => upserted.push((upsertion.name.clone(), mechanism, upsertion)),
            Err(error) => failed.push((upsertion.name.clone(), error)),
        }
    }
    let mut after = current.clone();
    let mut results: Vec<UserResult> = Vec::new();
    for (name, mechanism) in deleted {
        after.remove(&(name.clone(), mechanism));
        results.push((name, Ok(())));
    }
    for (name, mechanism, upsertion) in upserted {
        let (stored_key, server_key) = mechanism.keys(&upsertion.salted_password);
        after.insert(
            (name.clone(), mechanism),
            ScramCredential {
                salt: upsertion.salt.clone(),
                stored_key,
                server_key,
                iterations: upsertion.iterations,
            },
        );
        results.push((name, Ok(())));
    }
    results.extend(failed.into_iter().map(|(name, error)| (name, Err(error))));
    (results, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> Upsertion {
        Upsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: b"salted".to_vec(),
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn keys_follow_rfc_5802() {
        // RFC 7677's example user: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==,
        // 4096 iterations; the expected keys were computed with Python's hashlib/hmac.
        let salted = hex("c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d");
        let (stored, server) = ScramMechanism::Sha256.keys(&salted);
        assert_eq!(
            stored,
            hex("586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6")
        );
        assert_eq!(
            server,
            hex("c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5")
        );
        let (stored512, server512) = ScramMechanism::Sha512.keys(&salted);
        assert_eq!((stored512.len(), server512.len()), (64, 64));
    }

    #[test]
    fn alterations_are_checked_as_kafkas_controller_checks_them() {
        let (results, after) = alter(
            &ScramCredentials::new(),
            &[Deletion {
                name: "ghost".into(),
                mechanism: 1,
            }],
            &[
                upsert("alice", 1, 8192),
                upsert("bob", 1, 100),
                upsert("carol", 2, 20000),
                upsert("dave", 3, 8192),
                upsert("", 1, 8192),
                upsert("erin", 1, 8192),
                upsert("erin", 2, 8192),
            ],
        );
        let code = |name: &str| {
            results
                .iter()
                .find(|r| r.0 == name)
                .map(|r| r.1.as_ref().err().map(|e| e.0))
                .expect("a result per user")
        };
        assert_eq!(code("alice"), None);
        assert_eq!(code("ghost"), Some(ErrorCode::ResourceNotFound));
        assert_eq!(code("bob"), Some(ErrorCode::UnacceptableCredential));
        assert_eq!(code("carol"), Some(ErrorCode::UnacceptableCredential));
        assert_eq!(code("dave"), Some(ErrorCode::UnsupportedSaslMechanism));
        assert_eq!(code(""), Some(ErrorCode::UnacceptableCredential));
        assert_eq!(code("erin"), Some(ErrorCode::DuplicateResource));
        assert_eq!(results.len(), 7);
        assert_eq!(after.len(), 1);
        let alice = &after[&("alice".to_string(), ScramMechanism::Sha256)];
        assert_eq!(alice.iterations, 8192);
        assert_eq!(alice.salt, b"salt");
        let (results, after) = alter(
            &after,
            &[Deletion {
                name: "alice".into(),
                mechanism: 1,
            }],
            &[],
        );
        assert_eq!(results, vec![("alice".to_string(), Ok(()))]);
        assert!(after.is_empty());
    }
}
