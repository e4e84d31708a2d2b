use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::cni::spec::parse_cni_args;

const CONF: &str = r#"{"cniVersion":"1.0.0","name":"alkaid","type":"alkaid-cni","agentSocket":"/tmp/a.sock","vpc":"blue"}"#;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn add_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=team;K8S_POD_NAME=web-0",
        ),
    ]
}

fn info() -> EndpointInfo {
    EndpointInfo {
        endpoint: "team/web-0".into(),
        host_ifname: "alk1234".into(),
        host_mac: "0a:00:00:00:00:01".into(),
        ifname: "eth0".into(),
        mac: "0a:00:01:00:01:05".into(),
        netns: PathBuf::from("/var/run/netns/x"),
        address: "10.0.1.5/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 0, 1, 1),
        mtu: 1450,
        vni: 7001,
    }
}

fn never(_: &Path, _: &AgentRequest) -> Result<AgentReply, CniError> {
    panic!("the agent must not be called")
}

fn error_of(out: &Outcome) -> Value {
    assert_eq!(out.exit_code, 1, "{}", out.stdout);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    for k in ["cniVersion", "code", "msg"] {
        assert!(v.get(k).is_some(), "error lacks {k}: {v}");
    }
    v
}

#[test]
fn add_builds_request_and_spec_result() {
    let out = run(env(&add_env()), Ok(CONF.into()), |sock, req| {
        assert_eq!(sock, Path::new("/tmp/a.sock"));
        assert_eq!(req.command, Command::Add);
        assert_eq!(req.namespace, "team");
        assert_eq!(req.pod.as_deref(), Some("web-0"));
        assert_eq!(req.vpc.as_deref(), Some("blue"));
        assert_eq!(req.netns, Some(PathBuf::from("/var/run/netns/x")));
        Ok(AgentReply::Ok(Some(info())))
    });
    assert_eq!(out.exit_code, 0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "alk1234", "mac": "0a:00:00:00:00:01"},
                {"name": "eth0", "mac": "0a:00:01:00:01:05", "sandbox": "/var/run/netns/x"}
            ],
            "ips": [{"address": "10.0.1.5/24", "gateway": "10.0.1.1", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.1.1"}],
            "dns": {}
        })
    );
}

#[test]
fn legacy_result_carries_ip_version() {
    let r = result_for("0.4.0", &info());
    assert_eq!(r.ips[0].version.as_deref(), Some("4"));
    assert_eq!(r.cni_version, "0.4.0");
}

#[test]
fn version_command_needs_nothing_else() {
    let out = run(
        env(&[("CNI_COMMAND", "VERSION")]),
        Ok(b"{\"cniVersion\":\"0.4.0\"}".to_vec()),
        never,
    );
    assert_eq!(out.exit_code, 0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["cniVersion"], "0.4.0");
    assert_eq!(v["supportedVersions"], json!(["0.4.0", "1.0.0"]));
    let out = run(env(&[("CNI_COMMAND", "VERSION")]), Ok(Vec::new()), never);
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap()["cniVersion"],
        "1.0.0"
    );
}

#[test]
fn error_codes_table() {
    let no = |k: &str| -> Vec<(&'static str, &'static str)> {
        add_env().into_iter().filter(|(n, _)| *n != k).collect()
    };
    let with = |k: &'static str, val: &'static str| -> Vec<(&'static str, &'static str)> {
        let mut e = no(k);
        e.push((k, val));
        e
    };
    type Env = Vec<(&'static str, &'static str)>;
    // (case, environment, stdin, expected code, expected reply version)
    let cases: Vec<(&str, Env, &str, u64, &str)> = vec![
        ("bad json", add_env(), "{not json", 6, "1.0.0"),
        ("json array", add_env(), "[1,2]", 6, "1.0.0"),
        (
            "unsupported version",
            add_env(),
            r#"{"cniVersion":"9.9.9","name":"n","type":"t"}"#,
            1,
            "1.0.0",
        ),
        (
            "missing version",
            add_env(),
            r#"{"name":"n","type":"t"}"#,
            7,
            "1.0.0",
        ),
        (
            "bad name",
            add_env(),
            r#"{"cniVersion":"0.4.0","name":"-x","type":"t"}"#,
            7,
            "0.4.0",
        ),
        (
            "missing type",
            add_env(),
            r#"{"cniVersion":"1.0.0","name":"n"}"#,
            7,
            "1.0.0",
        ),
        (
            "bad requested ip",
            add_env(),
            r#"{"cniVersion":"1.0.0","name":"n","type":"t","args":{"cni":{"ips":["nope"]}}}"#,
            7,
            "1.0.0",
        ),
        ("no command", no("CNI_COMMAND"), CONF, 4, "1.0.0"),
        (
            "unknown command",
            with("CNI_COMMAND", "FROB"),
            CONF,
            4,
            "1.0.0",
        ),
        ("no container id", no("CNI_CONTAINERID"), CONF, 4, "1.0.0"),
        (
            "bad container id",
            with("CNI_CONTAINERID", "_x/y"),
            CONF,
            4,
            "1.0.0",
        ),
        ("no netns on add", no("CNI_NETNS"), CONF, 4, "1.0.0"),
        ("no ifname", no("CNI_IFNAME"), CONF, 4, "1.0.0"),
        (
            "long ifname",
            with("CNI_IFNAME", "abcdefghijklmnop"),
            CONF,
            4,
            "1.0.0",
        ),
        (
            "bad CNI_ARGS",
            with("CNI_ARGS", "K8S_POD_NAME"),
            CONF,
            4,
            "1.0.0",
        ),
    ];
    for (name, e, stdin, code, version) in cases {
        let out = run(env(&e), Ok(stdin.as_bytes().to_vec()), never);
        let v = error_of(&out);
        assert_eq!(v["code"], code, "{name}: {v}");
        assert_eq!(v["cniVersion"], version, "{name}: {v}");
    }
}

#[test]
fn stdin_io_error_is_code_5() {
    let out = run(env(&add_env()), Err(std::io::Error::other("boom")), never);
    assert_eq!(error_of(&out)["code"], 5);
}

#[test]
fn agent_errors_pass_through_with_request_version() {
    let conf = r#"{"cniVersion":"0.4.0","name":"n","type":"alkaid-cni"}"#;
    let out = run(env(&add_env()), Ok(conf.into()), |sock, _| {
        assert_eq!(sock, Path::new(DEFAULT_AGENT_SOCKET));
        Err(CniError::new(ErrorCode::TryAgainLater, "agent down", ""))
    });
    let v = error_of(&out);
    assert_eq!(v["code"], 11);
    assert_eq!(v["cniVersion"], "0.4.0");
    assert!(v.get("details").is_none(), "empty details are omitted");
}

#[test]
fn del_without_netns_is_allowed_and_prints_nothing() {
    let mut e = add_env();
    e.retain(|(k, _)| *k != "CNI_NETNS");
    e.retain(|(k, _)| *k != "CNI_COMMAND");
    e.push(("CNI_COMMAND", "DEL"));
    let out = run(env(&e), Ok(CONF.into()), |_, req| {
        assert_eq!(req.netns, None);
        Ok(AgentReply::Ok(None))
    });
    assert_eq!(
        out,
        Outcome {
            stdout: String::new(),
            exit_code: 0
        }
    );
}

#[test]
fn check_compares_prev_result() {
    let mut e = add_env();
    e.retain(|(k, _)| *k != "CNI_COMMAND");
    e.push(("CNI_COMMAND", "CHECK"));
    let conf = |addr: &str| {
        json!({"cniVersion":"1.0.0","name":"n","type":"t",
               "prevResult": {"ips": [{"address": addr}]}})
        .to_string()
        .into_bytes()
    };
    let ok = run(env(&e), Ok(conf("10.0.1.5/24")), |_, _| {
        Ok(AgentReply::Ok(Some(info())))
    });
    assert_eq!(ok.exit_code, 0, "{}", ok.stdout);
    let bad = run(env(&e), Ok(conf("10.0.1.6/24")), |_, _| {
        Ok(AgentReply::Ok(Some(info())))
    });
    assert_eq!(error_of(&bad)["code"], 103);
}

#[test]
fn precedence_of_overrides() {
    let conf = json!({
        "cniVersion": "1.0.0", "name": "n", "type": "t", "vpc": "a", "subnet": "s1",
        "args": {"cni": {"vpc": "b", "ips": ["10.0.0.9"]}},
        "runtimeConfig": {"alkaid": {"vpc": "c"}, "ips": ["10.0.0.7/24"]}
    })
    .to_string();
    let mut version = String::new();
    let inv = parse(
        &env(&add_env()),
        conf.as_bytes(),
        Command::Add,
        &mut version,
    )
    .unwrap();
    assert_eq!(inv.request.vpc.as_deref(), Some("c"));
    assert_eq!(inv.request.subnet.as_deref(), Some("s1"));
    assert_eq!(inv.request.ip, Some(Ipv4Addr::new(10, 0, 0, 7)));
    let mut e = add_env();
    e.push(("CNI_ARGS", "IP=10.0.0.3"));
    e.retain(|(k, v)| *k != "CNI_ARGS" || v.starts_with("IP"));
    let inv = parse(&env(&e), conf.as_bytes(), Command::Add, &mut version).unwrap();
    assert_eq!(inv.request.ip, Some(Ipv4Addr::new(10, 0, 0, 3)));
    assert_eq!(inv.request.namespace, "default");
}

#[test]
fn cni_args_parsing() {
    let a = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=x;;EMPTY=").unwrap();
    assert_eq!(a.get("K8S_POD_NAME").map(String::as_str), Some("x"));
    assert_eq!(a.get("EMPTY").map(String::as_str), Some(""));
    assert!(parse_cni_args("=v").is_err());
}

#[test]
fn error_json_roundtrips() {
    let e = CniError::new(ErrorCode::InvalidConfig, "m", "d");
    let s = serde_json::to_string(&e).unwrap();
    assert_eq!(
        s,
        r#"{"cniVersion":"1.0.0","code":7,"msg":"m","details":"d"}"#
    );
    assert_eq!(serde_json::from_str::<CniError>(&s).unwrap(), e);
}
