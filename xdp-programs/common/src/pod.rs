//! `aya::Pod` for every key and value (feature `user`): lets the loader read and write them
//! through typed aya maps.
#![allow(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]

use crate::types::*;

macro_rules! pod {
    ($($t:ty),*) => {
        $(
            // SAFETY: `$t` is `#[repr(C)]`, made only of integers and byte arrays, with explicit
            // padding fields (its size is asserted in `types`), so every bit pattern is valid and
            // there are no implicit padding bytes.
            unsafe impl aya::Pod for $t {}
        )*
    };
}

pod!(
    EndpointKey,
    EndpointValue,
    NetworkKey,
    NetworkValue,
    VpcValue,
    PeerValue,
    AgentEndpoint,
    DirectPathValue,
    DpCacheEntry,
    EpCacheEntry,
    Config,
    Hop,
    AgentRecord,
    AgentSlot,
    LocalSlot,
    EndpointRecord,
    NetworkRecord
);
