//! `Vpc` as a [`UserKind`]: children are subnets.

use alkaid_proto::v1 as pb;
use pb::resource::Kind as K;

use super::user::UserKind;
use crate::crd::{Phase, Vpc, VpcStatus};
use crate::{decide, pb as conv};

impl UserKind for Vpc {
    const KIND: &'static str = "Vpc";
    const NOUN: &'static str = "vpc";
    const PB_KIND: pb::Kind = pb::Kind::Vpc;
    const CHILD_KIND: pb::Kind = pb::Kind::Subnet;
    const CHILDREN: &'static str = "subnets";
    const FINALIZER: &'static str = "alkaid.dev/vpc";
    type Status = VpcStatus;

    fn to_pb(&self) -> pb::Resource {
        conv::vpc_to_pb(self)
    }

    fn stored_status(stored: &pb::Resource) -> Option<VpcStatus> {
        let Some(K::Vpc(v)) = &stored.kind else {
            return None;
        };
        let mut st = conv::vpc_status(v);
        st.conditions = decide::accepted(st.conditions);
        Some(st)
    }

    fn refused_status(message: &str) -> VpcStatus {
        let (phase, conditions) = decide::refused(message);
        VpcStatus {
            phase,
            conditions,
            ..VpcStatus::default()
        }
    }

    fn observe(status: &mut VpcStatus, generation: Option<i64>) {
        status.observed_generation = generation;
    }

    fn phase(status: &VpcStatus) -> Phase {
        status.phase
    }

    fn current(&self) -> Option<&VpcStatus> {
        self.status.as_ref()
    }

    fn blockers(name: &str, stored: &[pb::Resource]) -> Vec<String> {
        decide::vpc_blockers(name, stored)
    }
}
