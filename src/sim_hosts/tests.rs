use super::*;

use std::collections::BTreeMap;
use std::path::PathBuf;

use agentrun_core::Event;
use agentrun_memory::{LoadModeChoice, Policy};

use crate::{RandomWorkflow, SimulationOptions, simulate};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn options(hosts: Vec<SimHost>, policies: Vec<Policy>, machine: SimConfig) -> SimulationOptions {
    SimulationOptions {
        seed: None,
        policies,
        load_mode: Some(LoadModeChoice::Auto),
        machine,
        keep_events: true,
        branches: crate::BranchMode::Planned,
        hosts,
    }
}

#[test]
fn the_shipped_two_host_team_waits_less_than_the_one_host_team_on_the_same_future() {
    let workflow =
        agentrun_spec::Workflow::from_yaml_file(&repo("workflows/scenarios/mac-54gb.yaml"))
            .expect("valid");
    let hosts =
        SimHost::read_scenario(&repo("workflows/sim/hosts/mac-plus-linux.yaml")).expect("valid");
    assert_eq!(hosts.len(), 2);
    let one = simulate(
        &workflow,
        &options(
            Vec::new(),
            vec![Policy::Smart, Policy::OllamaDefault],
            SimConfig::target_mac(),
        ),
    )
    .expect("one host");
    let two = simulate(
        &workflow,
        &options(
            hosts,
            vec![
                Policy::Smart,
                Policy::Static,
                Policy::OllamaDefault,
                Policy::Oracle,
            ],
            SimConfig::target_mac(),
        ),
    )
    .expect("two hosts");
    // The bound models one machine: on several hosts only the trivial one stands.
    assert!(one.bound_s > 0.0);
    assert_eq!(two.bound_s, 0.0);
    // Ollama's own expiry unloads idle models whatever the memory: with the loop's models
    // no longer evicted by the architect's, they expire on the idle Linux box instead, and
    // the second host saves almost none of the baseline's loads.
    let (default_one, default_two) = (
        &one.policies[&Policy::OllamaDefault],
        &two.policies[&Policy::OllamaDefault],
    );
    println!(
        "ollama-default: one host {:.1} s, {} loads, {} expiries; two hosts {:.1} s, {} loads, \
         {} expiries",
        default_one.load_wait_s,
        default_one.loads,
        default_one.expiries,
        default_two.load_wait_s,
        default_two.loads,
        default_two.expiries
    );
    assert!(default_two.expiries > default_one.expiries);
    assert!(default_two.loads + 10 > default_one.loads);
    assert_eq!(one.policies[&Policy::Smart].expiries, 0);
    assert_eq!(one.turns, two.turns, "the same drawn future");
    let (alone, shared) = (&one.policies[&Policy::Smart], &two.policies[&Policy::Smart]);
    assert_eq!(alone.turns, shared.turns);
    let (fixed, foresight) = (
        &two.policies[&Policy::Static],
        &two.policies[&Policy::Oracle],
    );
    println!(
        "load wait, smart: one host {:.1} s, two hosts {:.1} s; on two hosts static {:.1} s, \
         oracle {:.1} s; one-host bound {:.1} s",
        alone.load_wait_s,
        shared.load_wait_s,
        fixed.load_wait_s,
        foresight.load_wait_s,
        one.bound_s
    );
    // On the hosts the planner places, its residency plans beat keeping what was loaded.
    assert!(
        shared.load_wait_s < fixed.load_wait_s,
        "smart {:.1} s, static {:.1} s on two hosts",
        shared.load_wait_s,
        fixed.load_wait_s
    );
    assert!(
        shared.load_wait_s < alone.load_wait_s,
        "two hosts {:.1} s, one host {:.1} s",
        shared.load_wait_s,
        alone.load_wait_s
    );
    // The 52 GB architect's model can only live on the Mac; the tester's went to the Linux box.
    let placement = two.events[&Policy::Smart]
        .iter()
        .find_map(|event| match event {
            Event::Placement { hosts, .. } => Some(hosts.clone()),
            _ => None,
        })
        .expect("a placement");
    assert!(
        placement[0]
            .models
            .contains(&"qwen3-coder-next:q4_K_M".to_owned())
    );
    assert!(placement[1].models.contains(&"qwen3-coder:14b".to_owned()));
}

/// The first placement of a run: per host its name, GPU budget and models.
fn first_placement(events: &[Event]) -> Vec<agentrun_core::HostPlacement> {
    events
        .iter()
        .find_map(|event| match event {
            Event::Placement { hosts, .. } => Some(hosts.clone()),
            _ => None,
        })
        .expect("a placement")
}

#[test]
fn a_sixteen_host_fleet_runs_a_300_turn_workflow_in_virtual_time() {
    let random = RandomWorkflow::generate(3, 300);
    let hosts: Vec<SimHost> = (0..16)
        .map(|index| {
            let mut machine = random.machine.clone();
            // Budgets from 16 to 46 GB, each host its own load speed.
            machine.gpu_memory_bytes = (16 + 2 * index as u64) * 1_000_000_000;
            machine.load.cold_mmap_bytes_per_second = 0.5e9 + 0.1e9 * index as f64;
            SimHost {
                name: format!("host-{index:02}"),
                labels: Vec::new(),
                machine,
            }
        })
        .collect();
    let clock = std::time::Instant::now();
    let report = simulate(
        &random.workflow,
        &options(hosts.clone(), vec![Policy::Smart], random.machine.clone()),
    )
    .expect("runs");
    let elapsed = clock.elapsed();
    // Each host of the fleet alone, on the same drawn future: the fleet has every one of
    // them in it, so it must wait no longer than the best.
    let alone: Vec<(String, f64)> = hosts
        .iter()
        .map(|host| {
            let one = simulate(
                &random.workflow,
                &SimulationOptions {
                    keep_events: false,
                    ..options(
                        vec![host.clone()],
                        vec![Policy::Smart],
                        random.machine.clone(),
                    )
                },
            )
            .expect("runs on one host");
            assert_eq!(one.turns, report.turns, "the same drawn future");
            (host.name.clone(), one.policies[&Policy::Smart].load_wait_s)
        })
        .collect();
    let (best_host, best_wait) = alone
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .expect("sixteen hosts");
    let figures = &report.policies[&Policy::Smart];
    let events = &report.events[&Policy::Smart];
    let placement = first_placement(events);
    let used: Vec<String> = placement
        .iter()
        .filter(|host| !host.models.is_empty())
        .map(|host| format!("{} {:?}", host.host, host.models))
        .collect();
    println!(
        "16 hosts, {} turns ({}): {:.0} simulated seconds in {:.2} s of real time, load wait {:.1} s \
         (best single host of the fleet, {best_host}: {best_wait:.1} s; smallest, {}: {:.1} s); \
         placed: {}",
        figures.turns,
        random.describe(),
        figures.wall_s,
        elapsed.as_secs_f64(),
        figures.load_wait_s,
        alone[0].0,
        alone[0].1,
        used.join(", ")
    );
    assert_eq!(report.turns, 300);
    assert_eq!(figures.turns, 300);
    assert!(
        figures.load_wait_s <= best_wait,
        "the fleet waits {:.1} s, {best_host} alone {best_wait:.1} s",
        figures.load_wait_s
    );
    // Models share a host only where they fit together: each model at the largest size the
    // server accounted for it, against the host's budget and count cap.
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for event in events {
        if let Event::Resident { models, .. } = event {
            for model in models {
                let size = sizes.entry(model.model.clone()).or_default();
                *size = (*size).max(model.bytes);
            }
        }
    }
    for host in &placement {
        let footprints: Vec<u64> = host.models.iter().map(|model| sizes[model]).collect();
        let budget = agentrun_memory::Budget {
            gpu_bytes: host.gpu_budget_bytes,
            max_loaded_models: random.machine.max_loaded_models,
        };
        assert!(
            budget.load_order(&footprints).is_some(),
            "{} holds {:?} ({footprints:?} bytes), which do not fit together in {} bytes",
            host.host,
            host.models,
            host.gpu_budget_bytes
        );
    }
}

#[test]
fn a_hosts_scenario_with_a_problem_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let write = |text: &str| {
        let path = dir.path().join("hosts.yaml");
        std::fs::write(&path, text).expect("written");
        path
    };
    let error = SimHost::read_scenario(&write("hosts:\n  - name: a\n  - name: a\n"))
        .expect_err("twice")
        .to_string();
    assert!(
        error.ends_with("hosts[1].name: 'a' is given twice"),
        "{error}"
    );
    let error = SimHost::read_scenario(&write("hosts:\n  - name: a\n    labels: [Big]\n"))
        .expect_err("label")
        .to_string();
    assert!(
        error.contains("hosts[0].labels: 'Big' is not a label"),
        "{error}"
    );
    let error = SimHost::read_scenario(&write(
        "hosts:\n  - name: a\n    machine: { max_loaded_models: 0 }\n",
    ))
    .expect_err("no slots")
    .to_string();
    assert!(error.contains("hosts[0].machine: "), "{error}");
    assert!(
        error.contains("max_loaded_models must be at least 1"),
        "{error}"
    );
    let error = SimHost::read_scenario(&write("hosts:\n  - nme: a\n"))
        .expect_err("unknown key")
        .to_string();
    assert!(error.contains("nme"), "{error}");
}
