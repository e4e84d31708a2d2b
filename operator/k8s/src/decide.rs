//! Pure decisions of the controllers: no I/O, no clocks, table-tested in `decide/tests.rs`.
//!
//! - what status a CR shows for a stored object or a refused spec ([`accepted`], [`refused`]);
//! - whether a store write is needed at all ([`spec_matches`]);
//! - what blocks a deletion and how to say it ([`vpc_blockers`], [`subnet_blockers`],
//!   [`blocked_message`]);
//! - when to look again ([`requeue_after`], [`backoff`]).

use std::time::Duration;

use alkaid_proto::v1 as pb;
use pb::resource::Kind as K;

use crate::crd::{Condition, Phase};

/// Condition type saying whether the store accepted the spec.
pub const ACCEPTED: &str = "Accepted";
/// Reason of a refused spec (also the Warning event's reason).
pub const INVALID_SPEC: &str = "InvalidSpec";

/// Conditions for a stored object: `Accepted=True` first, then the store's own.
pub fn accepted(store_conditions: Vec<Condition>) -> Vec<Condition> {
    let mut out = vec![Condition::new(ACCEPTED, true, "Stored", "")];
    out.extend(store_conditions.into_iter().filter(|c| c.type_ != ACCEPTED));
    out
}

/// Phase and conditions for a spec the store refused: `Failed`, `Accepted=False` with the
/// store's message verbatim (it names the field and what to change).
pub fn refused(message: &str) -> (Phase, Vec<Condition>) {
    (
        Phase::Failed,
        vec![Condition::new(ACCEPTED, false, INVALID_SPEC, message)],
    )
}

/// Whether the stored object already has the desired spec, so no Raft write is needed.
pub fn spec_matches(desired: &pb::Resource, stored: &pb::Resource) -> bool {
    match (&desired.kind, &stored.kind) {
        (Some(K::Vpc(d)), Some(K::Vpc(s))) => d.spec == s.spec,
        (Some(K::Subnet(d)), Some(K::Subnet(s))) => d.spec == s.spec,
        _ => false,
    }
}

/// Names of the stored subnets that belong to `vpc`, sorted: they block its deletion.
pub fn vpc_blockers(vpc: &str, subnets: &[pb::Resource]) -> Vec<String> {
    let mut out: Vec<String> = subnets
        .iter()
        .filter_map(|r| match &r.kind {
            Some(K::Subnet(s)) if s.spec.as_ref().is_some_and(|sp| sp.vpc == vpc) => {
                s.metadata.as_ref().map(|m| m.name.clone())
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// `namespace/name` of the stored endpoints in `subnet`, sorted: they block its deletion.
pub fn subnet_blockers(subnet: &str, endpoints: &[pb::Resource]) -> Vec<String> {
    let mut out: Vec<String> = endpoints
        .iter()
        .filter_map(|r| match &r.kind {
            Some(K::Endpoint(e)) if e.spec.as_ref().is_some_and(|sp| sp.subnet == subnet) => e
                .metadata
                .as_ref()
                .map(|m| format!("{}/{}", m.namespace, m.name)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The Warning shown while a deletion waits, naming at most five children.
pub fn blocked_message(kind: &str, name: &str, child_kind: &str, children: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut list = children
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if children.len() > SHOWN {
        list.push_str(&format!(" and {} more", children.len() - SHOWN));
    }
    format!(
        "{kind} {name:?} still has {} {child_kind} ({list}); delete them first, deletion continues once they are gone",
        children.len()
    )
}

/// How long until a healthy object is looked at again: soon while it converges (status
/// comes from the store, which does not notify Kubernetes), rarely once Ready.
pub fn requeue_after(phase: Phase) -> Duration {
    match phase {
        Phase::Ready => Duration::from_secs(300),
        Phase::Failed => Duration::from_secs(30),
        Phase::Pending | Phase::Provisioning | Phase::Unreachable => Duration::from_secs(5),
    }
}

/// Delay before retry number `attempt` (1-based) after an error: 1 s doubling to 5 min.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64 << attempt.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}

/// Delay while a deletion is blocked: steady, as the children go away on their own time.
pub const BLOCKED_RETRY: Duration = Duration::from_secs(10);

/// Whether to announce readiness: the phase just became Ready.
pub fn became_ready(before: Option<Phase>, now: Phase) -> bool {
    now == Phase::Ready && before != Some(Phase::Ready)
}

#[cfg(test)]
mod tests;
