use super::*;

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

#[test]
fn names() {
    let cases: &[(&str, Option<&str>)] = &[
        ("blue", None),
        ("blue-1.prod", None),
        ("a", None),
        ("", Some("must not be empty")),
        ("Blue", Some("lowercase")),
        ("-blue", Some("start and end")),
        ("blue-", Some("start and end")),
        ("blue..x", Some("non-empty parts")),
        ("blue_x", Some("lowercase")),
    ];
    for (name, want) in cases {
        let got = dns1123_subdomain("vpc", name);
        match (got, want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
    assert!(dns1123_label("namespace", &"a".repeat(64)).is_err());
    assert!(dns1123_label("namespace", "a.b").is_err());
    assert!(dns1123_subdomain("vpc", &"a".repeat(254)).is_err());
}

#[test]
fn vpc_specs() {
    let ok = VpcSpec::new(cidr("10.0.0.0/16"));
    let cases: Vec<(&str, VpcSpec, Option<&str>)> = vec![
        ("blue", ok.clone(), None),
        (
            "blue",
            VpcSpec {
                dividers: 0,
                ..ok.clone()
            },
            Some("dividers = 0 is out of range; use 1 to 16"),
        ),
        (
            "blue",
            VpcSpec {
                dividers: 17,
                ..ok.clone()
            },
            Some("dividers = 17"),
        ),
        (
            "blue",
            VpcSpec::new(cidr("10.0.0.0/29")),
            Some("prefix /29 of 10.0.0.0/29 is out of range; use /8 to /28"),
        ),
        ("blue", VpcSpec::new(cidr("0.0.0.0/0")), Some("prefix /0")),
        (
            "blue",
            VpcSpec {
                namespaces: vec!["Team".into()],
                ..ok.clone()
            },
            Some("invalid namespace name \"Team\""),
        ),
        ("Blue", ok, Some("invalid vpc name")),
    ];
    for (name, spec, want) in cases {
        let got = vpc(name, &spec);
        match (got, want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{spec:?}: {e}"),
            (got, want) => panic!("{spec:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn subnet_specs() {
    let vpc_cidr = cidr("10.0.0.0/16");
    let base = SubnetSpec::new("blue", cidr("10.0.1.0/24"));
    let gw = |g: &str| SubnetSpec {
        gateway: Some(g.parse().unwrap()),
        ..base.clone()
    };
    let cases: Vec<(SubnetSpec, Result<&str, &str>)> = vec![
        (base.clone(), Ok("10.0.1.1")),
        (gw("10.0.1.254"), Ok("10.0.1.254")),
        (
            gw("10.0.2.1"),
            Err("gateway 10.0.2.1 is not inside 10.0.1.0/24"),
        ),
        (
            gw("10.0.1.0"),
            Err("gateway 10.0.1.0 is the network address"),
        ),
        (
            gw("10.0.1.255"),
            Err("gateway 10.0.1.255 is the broadcast address"),
        ),
        (
            SubnetSpec::new("blue", cidr("10.1.0.0/24")),
            Err("cidr 10.1.0.0/24 is not inside vpc \"blue\" cidr 10.0.0.0/16"),
        ),
        (
            SubnetSpec::new("blue", cidr("10.0.0.0/30")),
            Err("prefix /30 of 10.0.0.0/30 is out of range; use /8 to /29"),
        ),
        (SubnetSpec::new("blue", cidr("10.0.0.8/29")), Ok("10.0.0.9")),
        (
            SubnetSpec {
                bouncers: 0,
                ..base.clone()
            },
            Err("bouncers = 0 is out of range"),
        ),
        (
            SubnetSpec {
                bouncers: 17,
                ..base
            },
            Err("bouncers = 17 is out of range"),
        ),
    ];
    for (spec, want) in cases {
        let got = subnet("web", &spec, vpc_cidr);
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g.to_string(), w, "{spec:?}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{spec:?}: {e}"),
            (got, want) => panic!("{spec:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn overlaps() {
    let siblings = [("a", cidr("10.0.0.0/24")), ("b", cidr("10.0.2.0/23"))];
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("c", "10.0.1.0/24", None),
        (
            "c",
            "10.0.0.0/16",
            Some("overlaps subnet \"a\" cidr 10.0.0.0/24"),
        ),
        ("c", "10.0.3.128/25", Some("overlaps subnet \"b\"")),
        ("a", "10.0.0.0/25", None), // itself (an update) does not count
    ];
    for (name, c, want) in cases {
        let got = no_overlap(
            name,
            "blue",
            cidr(c),
            siblings.iter().map(|(n, c)| (*n, *c)),
        );
        match (got, want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{c}: {e}"),
            (got, want) => panic!("{c}: got {got:?}, want {want:?}"),
        }
    }
}
