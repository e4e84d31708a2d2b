//! Bad scenarios, table-driven: each must be refused with a message naming the field and
//! saying what to do.

use alkaid_topology_sim::Scenario;

const BASE: &str = "\
seed: 1
droplets: 10
vpcs: {count: 2, cidr: 10.0.0.0/16}
subnets: {per_vpc: 2, prefix: 24, bouncers: 2}
endpoints: {per_subnet: 5}
";

/// (what, YAML, substrings the error must contain)
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "unknown top-level field",
        "dropletz: 3\n",
        &["unknown field `dropletz`", "expected one of"],
    ),
    (
        "unknown nested field",
        "churn: {creates_per_second: 3}\n",
        &["unknown field `creates_per_second`", "creates_per_sec"],
    ),
    (
        "wrong type",
        "traffic: {flows: many}\n",
        &["flows", "invalid type"],
    ),
    (
        "host bits in a cidr",
        "#vpcs\n",
        &["10.0.0.1/16", "did you mean 10.0.0.0/16"],
    ),
    (
        "failure of every droplet",
        "failures: [{at_s: 1, droplets: 10}]\n",
        &["failures[0].droplets", "use 1 to 9"],
    ),
    (
        "return before detection",
        "failures: [{at_s: 2, droplets: 1, detect_after_ms: 1000, return_at_s: 2.5}]\n",
        &["failures[0].return_at_s", "after the failure is detected"],
    ),
    (
        "no apply rate",
        "network: {apply_rows_per_sec: 0}\n",
        &["network.apply_rows_per_sec", "above 0"],
    ),
    (
        "negative latency",
        "network: {base_ms: -1}\n",
        &["network.base_ms", ">= 0"],
    ),
    (
        "no packets",
        "traffic: {packets_per_flow: 0}\n",
        &["traffic.packets_per_flow", "at least 1"],
    ),
    (
        "negative churn",
        "churn: {creates_per_sec: -5, duration_s: 1}\n",
        &["churn.creates_per_sec"],
    ),
    (
        "bad layout",
        "#layout\n",
        &["layout", "overlapping", "disjoint"],
    ),
];

/// Replaces a line of BASE for the cases that change an existing field.
fn yaml(what: &str, extra: &str) -> String {
    match extra {
        "#vpcs\n" => BASE.replace("10.0.0.0/16", "10.0.0.1/16"),
        "#layout\n" => BASE.replace("cidr: 10.0.0.0/16", "cidr: 10.0.0.0/16, layout: sideways"),
        _ => {
            assert!(!what.is_empty());
            format!("{BASE}{extra}")
        }
    }
}

fn check(text: &str) -> Result<Scenario, String> {
    let s = Scenario::parse(text, "test.yaml").map_err(|e| e.to_string())?;
    s.validate().map_err(|e| e.to_string())?;
    Ok(s)
}

#[test]
fn the_base_scenario_is_valid() {
    check(BASE).expect("base is valid");
}

#[test]
fn bad_scenarios_are_refused_with_the_field_and_the_fix() {
    for (what, extra, want) in CASES {
        let err = match check(&yaml(what, extra)) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e,
        };
        for w in *want {
            assert!(err.contains(w), "{what}: {err:?} lacks {w:?}");
        }
    }
}

/// Structural limits, each a replacement of one BASE field.
#[test]
fn structural_limits_name_their_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("droplets: 10", "droplets: 0", "droplets"),
        ("count: 2", "count: 0", "vpcs.count"),
        ("bouncers: 2", "bouncers: 17", "subnets.bouncers"),
        ("prefix: 24", "prefix: 12", "subnets.prefix"),
        ("prefix: 24", "prefix: 30", "subnets.prefix"),
        ("per_vpc: 2", "per_vpc: 257", "subnets.per_vpc"),
        ("per_subnet: 5", "per_subnet: 254", "endpoints.per_subnet"),
        ("cidr: 10.0.0.0/16", "cidr: 0.0.0.0/4", "vpcs.cidr"),
        (
            "vpcs: {count: 2, cidr: 10.0.0.0/16}",
            "vpcs: {count: 65000, cidr: 10.0.0.0/16, layout: disjoint}",
            "vpcs.count",
        ),
        ("seed: 1\n", "", "missing field `seed`"),
    ];
    for (from, to, field) in cases {
        let text = BASE.replace(from, to);
        assert_ne!(text, BASE, "{from} not in BASE");
        let err = check(&text).expect_err(to);
        assert!(err.contains(field), "{to}: {err:?} lacks {field:?}");
    }
}
