use super::*;

fn v(n: u64) -> Vni {
    Vni::new(n).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub(crate) fn sample_rows() -> Vec<Row> {
    vec![
        Row(
            RowKey::LocalEndpoint {
                vni: v(7),
                ip: ip("10.0.1.5"),
            },
            RowValue::LocalEndpoint(LocalEndpoint {
                mac: MacAddr([0x0a, 0, 7, 0, 1, 5]),
                subnet_cidr: Ipv4Cidr::new(ip("10.0.1.0"), 24).unwrap(),
                gateway: ip("10.0.1.1"),
                endpoint: EndpointKey::new("team", "web-0"),
            }),
        ),
        Row(
            RowKey::Endpoint {
                vni: v(7),
                ip: ip("10.0.1.6"),
            },
            RowValue::Endpoint(EndpointEntry {
                droplet_ip: ip("192.168.0.2"),
                mac: MacAddr([0x0a, 0, 7, 0, 1, 6]),
            }),
        ),
        Row(
            RowKey::Network {
                vni: v(7),
                cidr: Ipv4Cidr::new(ip("10.0.2.0"), 24).unwrap(),
            },
            RowValue::Network(NetworkEntry {
                bouncers: vec![ip("192.168.0.3"), ip("192.168.0.4")],
                gateway: ip("10.0.2.1"),
            }),
        ),
        Row(
            RowKey::Vpc { vni: v(7) },
            RowValue::Vpc(VpcEntry {
                dividers: vec![ip("192.168.0.9")],
            }),
        ),
        Row(
            RowKey::Peer {
                ip: ip("192.168.0.2"),
            },
            RowValue::Peer(PeerEntry {
                mac: MacAddr([2, 0, 0, 0, 0, 2]),
            }),
        ),
        Row(
            RowKey::Fence {
                ip: ip("192.168.0.8"),
            },
            RowValue::Fence(alkaid_model::table::FenceEntry {}),
        ),
    ]
}

#[test]
fn every_row_kind_roundtrips() {
    for row in sample_rows() {
        let wire = pb::Row::from(&row);
        assert_eq!(Row::try_from(&wire).unwrap(), row);
        let key = pb::RowKey::from(&Key(row.0.clone()));
        assert_eq!(Key::try_from(&key).unwrap().0, row.0);
    }
}

fn field_of(e: Error) -> &'static str {
    match e {
        Error::InvalidField { field, .. } => field,
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn bad_rows_name_the_field() {
    let good = || pb::Row::from(&sample_rows()[0]);
    let net = || pb::Row::from(&sample_rows()[2]);
    type Mutate = fn(&mut pb::Row);
    let cases: Vec<(&str, pb::Row, Mutate, &str)> = vec![
        ("no key", good(), |r| r.key = None, "row.key"),
        (
            "empty key",
            good(),
            |r| r.key = Some(pb::RowKey { key: None }),
            "key",
        ),
        ("no value", good(), |r| r.value = None, "row.value"),
        (
            "vni 0",
            good(),
            |r| {
                r.key = Some(pb::RowKey {
                    key: Some(pb::row_key::Key::LocalEndpoint(pb::VniIp { vni: 0, ip: 1 })),
                })
            },
            "key.local_endpoint.vni",
        ),
        (
            "short mac",
            good(),
            |r| {
                if let Some(pb::row::Value::LocalEndpoint(v)) = &mut r.value {
                    v.mac = vec![1, 2, 3];
                }
            },
            "row.local_endpoint.mac",
        ),
        (
            "kind mismatch",
            good(),
            |r| r.value = Some(pb::row::Value::Vpc(pb::VpcEntry::default())),
            "row.value",
        ),
        (
            "prefix 33",
            net(),
            |r| {
                if let Some(pb::row_key::Key::Network(c)) =
                    r.key.as_mut().and_then(|k| k.key.as_mut())
                {
                    c.prefix_len = 33;
                }
            },
            "key.network",
        ),
        (
            "host bits",
            net(),
            |r| {
                if let Some(pb::row_key::Key::Network(c)) =
                    r.key.as_mut().and_then(|k| k.key.as_mut())
                {
                    c.ip |= 1;
                }
            },
            "key.network",
        ),
    ];
    for (name, mut row, mutate, field) in cases {
        mutate(&mut row);
        assert_eq!(field_of(Row::try_from(&row).unwrap_err()), field, "{name}");
    }
}

#[test]
fn allocation_conversion() {
    let mut resp = pb::AllocateEndpointResponse {
        endpoint: Some(pb::Endpoint {
            spec: Some(pb::EndpointSpec {
                ip: "10.0.1.5".into(),
                mac: "0a:00:07:00:01:05".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        vni: 7,
        gateway: "10.0.1.1".into(),
        prefix_len: 24,
        droplet_version: 3,
    };
    let a = allocation_from_pb(&resp).unwrap();
    assert_eq!(a.address, "10.0.1.5/24".parse().unwrap());
    assert_eq!(a.mac, Some([0x0a, 0, 7, 0, 1, 5]));
    assert_eq!(format_mac(&a.mac.unwrap()), "0a:00:07:00:01:05");
    resp.prefix_len = 40;
    assert_eq!(
        field_of(allocation_from_pb(&resp).unwrap_err()),
        "prefix_len"
    );
    resp.prefix_len = 24;
    resp.gateway = "x".into();
    assert_eq!(field_of(allocation_from_pb(&resp).unwrap_err()), "gateway");
    resp.gateway = "10.0.1.1".into();
    resp.vni = 0;
    assert_eq!(field_of(allocation_from_pb(&resp).unwrap_err()), "vni");
    resp.vni = 7;
    resp.endpoint = None;
    assert_eq!(
        field_of(allocation_from_pb(&resp).unwrap_err()),
        "endpoint.spec"
    );
}
