//! A small key-value state machine for tests, benchmarks and the demo node binary.
//!
//! Commands and replies are postcard-encoded [`KvCommand`] / [`KvReply`] values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result, StateMachine};

/// A write (or, through [`StateMachine::query`], a read) against the KV map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Reads `key` (as a command it goes through the log; as a query it does not).
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Sets `key` to `new` only if its current value is `expected` (`None`: absent).
    Cas {
        /// The key.
        key: Vec<u8>,
        /// The value the key must have.
        expected: Option<Vec<u8>>,
        /// The value to store (`None`: delete).
        new: Option<Vec<u8>>,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// The reply to a [`KvCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvReply {
    /// A put or delete was applied; carries the previous value.
    Done {
        /// The value before the command.
        previous: Option<Vec<u8>>,
    },
    /// The current value of a key.
    Value(Option<Vec<u8>>),
    /// A compare-and-swap: whether it succeeded, and the value the key had.
    Cas {
        /// Whether the swap happened.
        ok: bool,
        /// The value before the command.
        current: Option<Vec<u8>>,
    },
    /// The command could not be decoded.
    Invalid(String),
}

impl KvCommand {
    /// Encodes the command for [`crate::Node::propose`].
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding into a Vec cannot fail")
    }
}

impl KvReply {
    /// Decodes a reply returned by the store.
    pub fn decode(bytes: &[u8]) -> Option<KvReply> {
        postcard::from_bytes(bytes).ok()
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding into a Vec cannot fail")
    }
}

/// An ordered in-memory map; deterministic snapshots (BTreeMap order).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStateMachine {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    applied: u64,
}

impl KvStateMachine {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, read directly (tests).
    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.map.get(key)
    }

    /// The last applied index.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    fn execute(&mut self, cmd: KvCommand) -> KvReply {
        match cmd {
            KvCommand::Put { key, value } => KvReply::Done {
                previous: self.map.insert(key, value),
            },
            KvCommand::Get { key } => KvReply::Value(self.map.get(&key).cloned()),
            KvCommand::Delete { key } => KvReply::Done {
                previous: self.map.remove(&key),
            },
            KvCommand::Cas { key, expected, new } => {
                let current = self.map.get(&key).cloned();
                let ok = current == expected;
                if ok {
                    match new {
                        Some(v) => self.map.insert(key, v),
                        None => self.map.remove(&key),
                    };
                }
                KvReply::Cas { ok, current }
            }
        }
    }
}

impl StateMachine for KvStateMachine {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        let _span = tracing::trace_span!("kv_apply", index).entered();
        self.applied = index;
        match postcard::from_bytes::<KvCommand>(command) {
            Ok(cmd) => self.execute(cmd).encode(),
            Err(e) => KvReply::Invalid(e.to_string()).encode(),
        }
    }

    fn query(&self, query: &[u8]) -> Vec<u8> {
        match postcard::from_bytes::<KvCommand>(query) {
            Ok(KvCommand::Get { key }) => KvReply::Value(self.map.get(&key).cloned()).encode(),
            Ok(other) => KvReply::Invalid(format!("not a read-only query: {other:?}")).encode(),
            Err(e) => KvReply::Invalid(e.to_string()).encode(),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(&(self.applied, &self.map)).expect("encoding into a Vec cannot fail")
    }

    fn restore(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            *self = Self::default();
            return Ok(());
        }
        let (applied, map): (u64, BTreeMap<Vec<u8>, Vec<u8>>) = postcard::from_bytes(data)
            .map_err(|e| Error::Restore {
                reason: format!("kv snapshot: {e}"),
            })?;
        self.applied = applied;
        self.map = map;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Vec<u8> {
        KvCommand::Put {
            key: k.into(),
            value: v.into(),
        }
        .encode()
    }

    #[test]
    fn put_get_cas_delete() {
        let mut sm = KvStateMachine::new();
        sm.apply(1, &put("a", "1"));
        let get = KvCommand::Get { key: "a".into() }.encode();
        assert_eq!(
            KvReply::decode(&sm.query(&get)),
            Some(KvReply::Value(Some(b"1".to_vec())))
        );
        let cas = KvCommand::Cas {
            key: "a".into(),
            expected: Some(b"0".to_vec()),
            new: Some(b"2".to_vec()),
        };
        let r = KvReply::decode(&sm.apply(2, &cas.encode())).unwrap();
        assert_eq!(
            r,
            KvReply::Cas {
                ok: false,
                current: Some(b"1".to_vec())
            }
        );
        sm.apply(3, &KvCommand::Delete { key: "a".into() }.encode());
        assert_eq!(sm.get(b"a"), None);
        assert!(matches!(
            KvReply::decode(&sm.apply(4, b"\xff\xff\xff")),
            Some(KvReply::Invalid(_))
        ));
    }

    #[test]
    fn snapshot_roundtrip_is_deterministic() {
        let mut a = KvStateMachine::new();
        for i in 0..50u64 {
            a.apply(i + 1, &put(&format!("k{}", i % 7), &i.to_string()));
        }
        let mut b = KvStateMachine::new();
        b.restore(&a.snapshot()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.snapshot(), b.snapshot());
        assert!(b.restore(b"\xff").is_err());
    }
}
