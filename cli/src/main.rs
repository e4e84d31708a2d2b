//! `alkaid`: parses the [`Config`], then runs one command. `lab exec` and the internal
//! `lab netns-exec` run before any thread exists (they setns, then exec); everything else
//! runs on a tokio runtime.

use std::time::Duration;

use alkaid_cli::client::{Target, TlsFiles};
use alkaid_cli::config::{Command, Config, EndpointHook, LabCommand, PodCommand};
use alkaid_cli::lab::{self, Lab};
use alkaid_cli::output::{self, Format};
use alkaid_cli::{apply, get, kind::Kind};
use anyhow::Context as _;
use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    cfg.validate()?;
    let lab = Lab::new(&cfg.lab, cfg.lab_dir.clone(), cfg.bin_dir.clone());
    if let Command::Lab(l) = &cfg.command {
        match &l.command {
            LabCommand::NetnsExec { netns, command } => {
                return Err(lab::sys::exec_in_netns(netns, command).into());
            }
            LabCommand::EchoServer {
                name,
                port,
                ready_file,
                ..
            } => {
                return lab::echo::serve_until_killed(name, *port, ready_file.as_deref())
                    .map_err(Into::into);
            }
            LabCommand::Probe {
                proto,
                addr,
                from,
                bytes,
                timeout_ms,
            } => {
                if let Some(pod) = from {
                    let st = lab.state()?;
                    lab::sys::enter_netns(&st.pod(pod)?.netns)?;
                }
                let addr = lab::echo::parse_addr(addr)?;
                let answer =
                    lab::echo::probe(proto, addr, Duration::from_millis(*timeout_ms), *bytes)?;
                println!("{answer}");
                return Ok(());
            }
            LabCommand::Exec { pod, command } => {
                let st = lab.state()?;
                let p = st.pod(pod)?;
                return Err(lab::sys::exec_in_netns(&p.netns, command).into());
            }
            _ => {}
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(run(cfg, lab))
}

fn target(cfg: &Config, lab: &Lab) -> anyhow::Result<Target> {
    if !cfg.server.is_empty() {
        let tls = match (&cfg.tls_ca, &cfg.tls_cert, &cfg.tls_key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
                domain: cfg.tls_domain.clone(),
            }),
            _ => None,
        };
        return Ok(Target {
            addrs: cfg.server.clone(),
            tls,
        });
    }
    match lab.target() {
        Ok(t) => Ok(t),
        Err(_) => Err(alkaid_cli::Error::NoServer.into()),
    }
}

async fn run(cfg: Config, lab: Lab) -> anyhow::Result<()> {
    match &cfg.command {
        Command::Apply { files, dry_run } => {
            let docs = apply::load(files)?;
            for l in apply::apply(&target(&cfg, &lab)?, &docs, *dry_run).await? {
                println!("{l}");
            }
        }
        Command::Delete {
            files,
            kind,
            name,
            namespace,
        } => {
            let t = target(&cfg, &lab)?;
            if files.is_empty() {
                let (Some(k), Some(n)) = (kind, name) else {
                    anyhow::bail!("give -f FILE or KIND NAME");
                };
                let k = Kind::parse(k)?;
                let label = format!("{}/{n}", k.name().to_ascii_lowercase());
                if apply::delete_one(&t, k, n, namespace).await? {
                    println!("{label} deleted");
                } else {
                    anyhow::bail!("{label} not found");
                }
            } else {
                for l in apply::delete_docs(&t, &apply::load(files)?).await? {
                    println!("{l}");
                }
            }
        }
        Command::Get {
            kind,
            name,
            output,
            namespace,
        } => {
            let k = Kind::parse(kind)?;
            let items = get::fetch(&target(&cfg, &lab)?, k, name.as_deref(), namespace).await?;
            print!("{}", get::render(k, &items, *output, name.is_some()));
        }
        Command::Describe {
            kind,
            name,
            namespace,
        } => {
            let k = Kind::parse(kind)?;
            let items = get::fetch(&target(&cfg, &lab)?, k, Some(name), namespace).await?;
            for i in &items {
                print!("{}", get::describe(i));
            }
        }
        Command::Lab(l) => run_lab(&lab, &l.command).await?,
    }
    Ok(())
}

async fn run_lab(lab: &Lab, cmd: &LabCommand) -> anyhow::Result<()> {
    match cmd {
        LabCommand::Up {
            droplets,
            operators,
            dataplane,
            no_tls,
            underlay,
            timeout,
            endpoint_hook,
            xdp_mode,
        } => {
            let o = lab::up::UpOptions {
                droplets: *droplets,
                operators: *operators,
                dataplane: *dataplane,
                tls: !no_tls,
                underlay: *underlay,
                timeout: Duration::from_secs(*timeout),
                endpoint_hook: *endpoint_hook,
                xdp_mode: (*endpoint_hook == EndpointHook::Xdp)
                    .then(|| xdp_mode.unwrap_or_default()),
            };
            lab::up::up(lab, &o).await?;
            print!(
                "{}",
                lab::status::render(&lab::status::json(lab).await?, Format::Table)
            );
            println!(
                "\nnext: alkaid apply -f cli/examples/two-tenants.yaml; alkaid lab pod add p1 --droplet d1 --vpc blue --subnet blue-a"
            );
            println!(
                "      alkaid --lab {} lab down   # removes everything",
                lab.name
            );
        }
        LabCommand::Down => {
            let r = lab::down::down(lab).await?;
            println!("{}", r.summary(&lab.name));
        }
        LabCommand::Status { output } => {
            print!(
                "{}",
                lab::status::render(&lab::status::json(lab).await?, *output)
            );
        }
        LabCommand::Pod(p) => match p {
            PodCommand::Add {
                name,
                droplet,
                vpc,
                subnet,
                ip,
                namespace,
                output,
            } => {
                let spec = lab::pod::PodSpec {
                    name: name.clone(),
                    droplet: droplet.clone(),
                    vpc: vpc.clone(),
                    subnet: subnet.clone(),
                    ip: *ip,
                    namespace: namespace.clone(),
                };
                let pod = lab::pod::add(lab, &spec).await?;
                let v = lab::pod::pod_json(&pod);
                match output {
                    Format::Json | Format::Yaml => print!("{}", output::structured(&v, *output)),
                    _ => print!("{}", lab::pod::render_list(&[v])),
                }
            }
            PodCommand::Del { name } => {
                lab::pod::del(lab, name).await?;
                println!("pod {name} deleted");
            }
            PodCommand::List { output } => {
                let st = lab.state()?;
                let pods: Vec<_> = st.pods.iter().map(lab::pod::pod_json).collect();
                match output {
                    Format::Json | Format::Yaml => {
                        print!("{}", output::structured(&serde_json::json!(pods), *output))
                    }
                    _ => print!("{}", lab::pod::render_list(&pods)),
                }
            }
        },
        LabCommand::Tables { droplet, output } => {
            print!(
                "{}",
                lab::tables::render(&lab::tables::dump(lab, droplet)?, *output)
            );
        }
        LabCommand::Droplet { action, name } => {
            println!("{}", lab::fault::droplet(lab, *action, name).await?)
        }
        LabCommand::Operator { action, id } => {
            println!("{}", lab::fault::operator(lab, *action, *id).await?)
        }
        LabCommand::Serve { pod, port } => println!("{}", lab::pod::serve(lab, pod, *port).await?),
        LabCommand::Exec { .. }
        | LabCommand::NetnsExec { .. }
        | LabCommand::EchoServer { .. }
        | LabCommand::Probe { .. } => unreachable!("handled before the runtime starts"),
    }
    Ok(())
}
