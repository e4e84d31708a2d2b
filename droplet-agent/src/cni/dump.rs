//! `{"command":"DUMP"}` on the agent socket: everything the data plane holds and its
//! counters, for `alkaid lab tables`. Every row carries its `vni` (0 for substrate rows).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use alkaid_model::{RowKey, RowValue};
use serde::{Deserialize, Serialize};

use crate::dataplane::{Dataplane, EndpointAttachment};
use crate::error::{Error, Result};

/// One row as dumped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpRow {
    /// The row's VNI (0: substrate).
    pub vni: u32,
    /// Its key.
    pub key: RowKey,
    /// Its value.
    pub value: RowValue,
}

/// The whole dump.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablesDump {
    /// Rows in key order.
    pub rows: Vec<DumpRow>,
    /// Attached endpoint interfaces.
    pub endpoints: Vec<EndpointAttachment>,
    /// Counters by name.
    pub counters: BTreeMap<String, u64>,
}

/// The reply to DUMP: `{"dump":{...}}` or `{"error":"..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DumpReply {
    /// The data.
    Dump(TablesDump),
    /// Why there is none.
    Error(String),
}

/// Reads everything from `dp`.
///
/// # Errors
/// What the data plane returns.
pub fn collect<D: Dataplane>(dp: &D) -> Result<TablesDump> {
    let rows = dp
        .rows()?
        .rows()
        .iter()
        .map(|(k, v)| DumpRow {
            vni: k.vni(),
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    Ok(TablesDump {
        rows,
        endpoints: dp.endpoints()?,
        counters: dp.counters()?,
    })
}

/// Asks the agent at `socket` for its dump (what `alkaid lab tables` calls).
///
/// # Errors
/// [`Error::Io`] if the agent cannot be reached, [`Error::Json`] for a bad reply,
/// [`Error::Dataplane`] if the agent could not read its maps.
pub fn request(socket: &Path, timeout: Duration) -> Result<TablesDump> {
    let io = |op| move |e| Error::io(op, socket, e);
    let mut s = UnixStream::connect(socket).map_err(io("connect"))?;
    s.set_read_timeout(Some(timeout)).map_err(io("configure"))?;
    s.write_all(b"{\"command\":\"DUMP\"}\n")
        .map_err(io("write"))?;
    let mut line = String::new();
    BufReader::new(s.take(1 << 30))
        .read_line(&mut line)
        .map_err(io("read"))?;
    match serde_json::from_str(&line).map_err(|source| Error::Json {
        what: "dump reply",
        source,
    })? {
        DumpReply::Dump(d) => Ok(d),
        DumpReply::Error(message) => Err(Error::Dataplane {
            op: "dump",
            message,
        }),
    }
}

/// Whether a request line is a DUMP (checked before parsing it as a CNI request).
pub fn is_dump(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.get("command")
                .and_then(|c| c.as_str())
                .map(|c| c == "DUMP")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use alkaid_model::table::{PeerEntry, VpcEntry};
    use alkaid_model::{MacAddr, Vni};

    use super::*;
    use crate::dataplane::FakeDataplane;
    use crate::sync::MapOp;

    #[test]
    fn every_row_carries_its_vni_and_the_json_roundtrips() {
        let dp = FakeDataplane::new();
        let peer = Ipv4Addr::new(192, 168, 0, 2);
        dp.apply(&[
            MapOp::Upsert(
                RowKey::Peer { ip: peer },
                RowValue::Peer(PeerEntry {
                    mac: MacAddr([2, 0, 0, 0, 0, 2]),
                }),
            ),
            MapOp::Upsert(
                RowKey::Vpc {
                    vni: Vni::new(7001).unwrap(),
                },
                RowValue::Vpc(VpcEntry {
                    dividers: vec![peer],
                }),
            ),
        ])
        .unwrap();
        let d = collect(&dp).unwrap();
        let vnis: Vec<u32> = d.rows.iter().map(|r| r.vni).collect();
        assert_eq!(vnis, vec![7001, 0]);
        let json = serde_json::to_string(&DumpReply::Dump(d.clone())).unwrap();
        assert!(json.starts_with("{\"dump\":"), "{json}");
        assert_eq!(
            serde_json::from_str::<DumpReply>(&json).unwrap(),
            DumpReply::Dump(d)
        );
        assert!(is_dump("{\"command\":\"DUMP\"}"));
        assert!(!is_dump("{\"command\":\"ADD\"}"));
        assert!(!is_dump("not json"));
    }
}
