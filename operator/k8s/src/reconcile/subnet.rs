//! `Subnet` as a [`UserKind`]: children are endpoints.

use alkaid_proto::v1 as pb;
use pb::resource::Kind as K;

use super::user::UserKind;
use crate::crd::{Phase, Subnet, SubnetStatus};
use crate::{decide, pb as conv};

impl UserKind for Subnet {
    const KIND: &'static str = "Subnet";
    const NOUN: &'static str = "subnet";
    const PB_KIND: pb::Kind = pb::Kind::Subnet;
    const CHILD_KIND: pb::Kind = pb::Kind::Endpoint;
    const CHILDREN: &'static str = "endpoints";
    const FINALIZER: &'static str = "alkaid.dev/subnet";
    type Status = SubnetStatus;

    fn to_pb(&self) -> pb::Resource {
        conv::subnet_to_pb(self)
    }

    fn stored_status(stored: &pb::Resource) -> Option<SubnetStatus> {
        let Some(K::Subnet(s)) = &stored.kind else {
            return None;
        };
        let mut st = conv::subnet_status(s);
        st.conditions = decide::accepted(st.conditions);
        Some(st)
    }

    fn refused_status(message: &str) -> SubnetStatus {
        let (phase, conditions) = decide::refused(message);
        SubnetStatus {
            phase,
            conditions,
            ..SubnetStatus::default()
        }
    }

    fn observe(status: &mut SubnetStatus, generation: Option<i64>) {
        status.observed_generation = generation;
    }

    fn phase(status: &SubnetStatus) -> Phase {
        status.phase
    }

    fn current(&self) -> Option<&SubnetStatus> {
        self.status.as_ref()
    }

    fn blockers(name: &str, stored: &[pb::Resource]) -> Vec<String> {
        decide::subnet_blockers(name, stored)
    }
}
