use super::*;
use alkaid_model::MacAddr;
use alkaid_model::resource::Phase;
use alkaid_model::resource::{Object, SubnetSpec, VpcSpec};
use alkaid_store::StateMachine as _;

fn vpc(name: &str, cidr: &str) -> Entry {
    Entry::Command(Command::ApplyVpc(Object::new(
        name,
        VpcSpec::new(cidr.parse().unwrap()),
    )))
}

fn subnet(name: &str, vpc: &str, cidr: &str) -> Entry {
    Entry::Command(Command::ApplySubnet(Object::new(
        name,
        SubnetSpec::new(vpc, cidr.parse().unwrap()),
    )))
}

fn droplet(name: &str, last: u8) -> Entry {
    Entry::Command(Command::RegisterDroplet {
        name: DropletName::new(name).unwrap(),
        ip: Ipv4Addr::new(192, 168, 0, last),
        mac: MacAddr([2, 0, 0, 0, 0, last]),
        interface: "eth0".into(),
        node: name.into(),
        seen: 0,
    })
}

fn alloc(name: &str, vpc: &str, subnet: &str, on: &str) -> Entry {
    Entry::Allocate {
        namespace: "ns".into(),
        name: name.into(),
        vpc: vpc.into(),
        subnet: subnet.into(),
        droplet: DropletName::new(on).unwrap(),
        ip: None,
        pod: name.into(),
    }
}

fn machine() -> (Machine, Arc<Shared>) {
    let shared = Shared::new(1000, 1000);
    (Machine::new(shared.clone()), shared)
}

fn run(m: &mut Machine, index: u64, e: &Entry) -> Result<Reply> {
    decode_reply(&m.apply(index, &e.to_bytes()))
}

#[test]
fn applies_captures_deltas_and_events() {
    let (mut m, shared) = machine();
    let mut i = 0;
    for e in [
        droplet("d1", 1),
        droplet("d2", 2),
        vpc("default", "10.0.0.0/16"),
        subnet("s1", "default", "10.0.1.0/24"),
    ] {
        i += 1;
        run(&mut m, i, &e).unwrap();
    }
    // Empty vpc and subnet resolve to the default VPC's only subnet.
    let Reply::Endpoint(a) = run(&mut m, 5, &alloc("e1", "", "", "d1")).unwrap() else {
        panic!("expected an allocation");
    };
    assert_eq!(a.subnet, "s1");
    assert_eq!(shared.applied(), 5);
    let v1 = shared.read(|s| s.version("d1"));
    assert!(v1 > 0);
    assert!(matches!(
        shared.feed.since(&DropletName::new("d1").unwrap(), 0),
        crate::feed::Since::Deltas(_)
    ));
    let changes = shared.events.since(4).unwrap();
    assert_eq!(changes.len(), 1);
    assert!(
        changes[0]
            .touched
            .contains(&ObjRef::Endpoint(alkaid_model::EndpointKey::new(
                "ns", "e1"
            )))
    );
}

#[test]
fn refusals_change_nothing_and_carry_a_class() {
    let (mut m, shared) = machine();
    run(&mut m, 1, &droplet("d1", 1)).unwrap();
    let cases = [
        (subnet("s1", "nope", "10.0.1.0/24"), Refusal::NotFound),
        (alloc("e1", "nope", "s1", "d1"), Refusal::NotFound),
        (alloc("e1", "", "", "d1"), Refusal::NotFound),
    ];
    for (i, (e, want)) in cases.into_iter().enumerate() {
        match run(&mut m, 2 + i as u64, &e) {
            Err(Error::Refused { refusal, message }) => {
                assert_eq!(refusal, want, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(shared.read(|s| s.list_subnets().len()), 0);
    assert_eq!(shared.read(|s| s.endpoint_count()), 0);
    // Garbage in the log is refused, not a panic.
    let r = decode_reply(&m.apply(9, b"\xff\xff\xff"));
    assert!(matches!(
        r,
        Err(Error::Refused {
            refusal: Refusal::Internal,
            ..
        })
    ));
}

#[test]
fn acks_batch_turns_endpoint_ready_and_snapshot_round_trips() {
    let (mut m, shared) = machine();
    for (i, e) in [
        droplet("d1", 1),
        vpc("v", "10.0.0.0/16"),
        subnet("s", "v", "10.0.1.0/24"),
        alloc("e1", "v", "s", "d1"),
    ]
    .iter()
    .enumerate()
    {
        run(&mut m, i as u64 + 1, e).unwrap();
    }
    let phase = |s: &Shared| s.read(|c| c.get_endpoint("ns", "e1").unwrap().status.unwrap().phase);
    assert_eq!(phase(&shared), Phase::Provisioning);
    let d1 = DropletName::new("d1").unwrap();
    let v = shared.read(|s| s.version("d1"));
    run(&mut m, 5, &Entry::Acks(vec![(d1.clone(), v)])).unwrap();
    assert_eq!(phase(&shared), Phase::Ready);

    let snap = m.snapshot();
    let (mut m2, shared2) = machine();
    m2.restore(&snap).unwrap();
    assert_eq!(shared2.applied(), 5);
    assert!(shared2.read(|a| shared.read(|b| a.same_as(b))));
    // The restored feed holds no history: agents behind get a full sync.
    assert_eq!(shared2.feed.since(&d1, 0), crate::feed::Since::Gone);
    assert!(matches!(shared2.events.since(1), Err(Error::TooOld { .. })));
}

#[test]
fn metadata_tracks_last_change_and_spec_generation() {
    let (mut m, shared) = machine();
    let meta = |o: &ObjRef| shared.read_meta(|_, ms| ms.get(o));
    let (v, s, d1) = (
        ObjRef::Vpc("v".into()),
        ObjRef::Subnet("s".into()),
        ObjRef::Droplet(DropletName::new("d1").unwrap()),
    );
    let e1 = ObjRef::Endpoint(alkaid_model::EndpointKey::new("ns", "e1"));
    let at = |rv, generation| ObjMeta {
        resource_version: rv,
        generation,
    };
    run(&mut m, 1, &droplet("d1", 1)).unwrap();
    run(&mut m, 2, &vpc("v", "10.0.0.0/16")).unwrap();
    run(&mut m, 3, &subnet("s", "v", "10.0.1.0/24")).unwrap();
    assert_eq!(meta(&v), at(2, 1));
    assert_eq!(meta(&d1), at(1, 1));
    // The same spec again changes nothing: same version, same generation.
    run(&mut m, 4, &vpc("v", "10.0.0.0/16")).unwrap();
    assert_eq!(meta(&v), at(2, 1));
    // A new spec: new version and generation.
    let mut wider = VpcSpec::new("10.0.0.0/16".parse().unwrap());
    wider.dividers += 1;
    let cmd = Entry::Command(Command::ApplyVpc(Object::new("v", wider)));
    run(&mut m, 5, &cmd).unwrap();
    assert_eq!(meta(&v), at(5, 2));
    // Allocating changes the endpoint (new) and its subnet's counter, not the subnet's spec.
    let s_before = meta(&s);
    run(&mut m, 6, &alloc("e1", "v", "s", "d1")).unwrap();
    assert_eq!(meta(&e1), at(6, 1));
    assert_eq!(meta(&s), at(6, s_before.generation));
    // A heartbeat changes the droplet's status (lastSeen), not its spec.
    let hb = Entry::Command(Command::DropletHeartbeat {
        name: DropletName::new("d1").unwrap(),
        seen: 42,
    });
    run(&mut m, 7, &hb).unwrap();
    assert_eq!(meta(&d1), at(7, 1));
    // The acknowledgement turns the endpoint Ready: a status change.
    let ver = shared.read(|st| st.version("d1"));
    run(
        &mut m,
        8,
        &Entry::Acks(vec![(DropletName::new("d1").unwrap(), ver)]),
    )
    .unwrap();
    assert_eq!(meta(&e1), at(8, 1));
    // Metadata survives a snapshot; a deleted object has none.
    let (mut m2, shared2) = machine();
    m2.restore(&m.snapshot()).unwrap();
    assert_eq!(shared2.read_meta(|_, ms| ms.get(&e1)), at(8, 1));
    let rel = Entry::Command(Command::ReleaseEndpoint {
        namespace: "ns".into(),
        name: "e1".into(),
    });
    run(&mut m, 9, &rel).unwrap();
    assert_eq!(meta(&e1), ObjMeta::default());
    assert_eq!(meta(&s).resource_version, 9);
}
