//! The placement rules, one test each, and the heuristic against the exact search.

use super::instance::Instance;
use super::items::Overrides;
use super::*;
use crate::test_support::{GB, agent, budget, edge, model, tdd_workload};
use crate::workload::{ModelSpec, PlannedAgent, PlannedEdge};

fn host(name: &str, gb: u64, cap: usize, models: &[&str]) -> PlacementHost {
    PlacementHost {
        name: name.to_owned(),
        budget: budget(gb, cap),
        labels: Vec::new(),
        models: models.iter().map(|name| (*name).to_owned()).collect(),
        load_speed: LoadSpeed::default(),
    }
}

fn labelled(mut host: PlacementHost, labels: &[&str]) -> PlacementHost {
    host.labels = labels.iter().map(|label| (*label).to_owned()).collect();
    host
}

fn fast(mut host: PlacementHost) -> PlacementHost {
    host.load_speed.bandwidth = Some(Bandwidth {
        fixed_seconds: 0.5,
        mmap_bytes_per_second: 10e9,
        no_mmap_bytes_per_second: 10e9,
    });
    host
}

fn workload(
    models: Vec<ModelSpec>,
    agents: Vec<PlannedAgent>,
    edges: Vec<PlannedEdge>,
) -> Workload {
    Workload::new(models, agents, edges, budget(64, 3)).expect("valid workload")
}

/// A coder and a tester alternating, on 19 GB and 9 GB models.
fn tdd_loop() -> Workload {
    workload(
        vec![model("coder", 19.0), model("tester", 9.0)],
        vec![
            agent("coder", Some("coder"), 120.0),
            agent("tester", Some("tester"), 40.0),
        ],
        vec![
            edge("coder", "tester", 1.0),
            edge("tester", "coder", 4.0),
            edge("tester", "end", 1.0),
        ],
    )
}

fn input<'a>(
    workload: &'a Workload,
    start: &'a str,
    hosts: &'a [PlacementHost],
    labels: &'a [AgentLabels],
) -> PlacementInput<'a> {
    PlacementInput {
        workload,
        start,
        hosts,
        labels,
    }
}

/// The expected seconds per turn of first loads alone, for a placement with no conflict.
fn cold_only(placement: &Placement) -> f64 {
    placement
        .hosts
        .iter()
        .map(|host| {
            host.wait_seconds_per_turn
                - host
                    .forced_loads
                    .iter()
                    .map(|load| load.wait_seconds_per_100_turns / 100.0)
                    .sum::<f64>()
        })
        .sum()
}

#[test]
fn a_model_too_big_for_one_host_goes_to_the_other() {
    let workload = workload(
        vec![model("big", 30.0), model("small", 4.0)],
        vec![
            agent("planner", Some("big"), 60.0),
            agent("helper", Some("small"), 20.0),
        ],
        vec![
            edge("planner", "helper", 1.0),
            edge("helper", "planner", 1.0),
        ],
    );
    // The 24 GB host comes first and loads faster, yet cannot hold the 30 GB model.
    let hosts = [
        fast(host("linux", 24, 3, &["big", "small"])),
        host("mac", 54, 3, &["big", "small"]),
    ];
    let placement = place(&input(&workload, "planner", &hosts, &[])).expect("placeable");
    assert_eq!(placement.host_of("planner"), Some("mac"));
    assert_eq!(placement.search, Search::Exact);
    // Nothing fits a model larger than every host.
    let hosts = [host("linux", 24, 3, &["big"]), host("pi", 8, 3, &["big"])];
    let error = place(&input(&workload, "planner", &hosts, &[])).unwrap_err();
    assert_eq!(
        error,
        PlacementError::ModelTooBig {
            model: "big".to_owned(),
            footprint_bytes: 30 * GB,
            host: "linux".to_owned(),
            largest_gpu_bytes: 24 * GB,
        }
    );
    assert!(error.to_string().contains("30.0 GB"), "{error}");
}

#[test]
fn alternating_models_never_share_a_host_that_cannot_hold_both() {
    // On 24 GB the tester does not load beside the coder (9 > 0.8 x 5); on 40 GB it does.
    // The small host loads faster, so only the conflict keeps the pair off it.
    let workload = tdd_loop();
    let hosts = [
        fast(host("small", 24, 3, &["coder", "tester"])),
        host("roomy", 40, 3, &["coder", "tester"]),
    ];
    let placement = place(&input(&workload, "coder", &hosts, &[])).expect("placeable");
    let together_on_small =
        placement.host_of("coder") == Some("small") && placement.host_of("tester") == Some("small");
    assert!(!together_on_small, "{placement}");
    // No load is forced: the wait is the first loads alone.
    assert!(
        placement
            .hosts
            .iter()
            .all(|host| host.forced_loads.is_empty())
    );
    assert!((placement.wait_seconds_per_turn - cold_only(&placement)).abs() < 1e-12);
    // With the small host alone, every hand-over reloads.
    let alone = place(&input(&workload, "coder", &hosts[..1], &[])).expect("placeable");
    assert_eq!(alone.hosts[0].forced_loads.len(), 2, "{alone}");
    assert!(alone.wait_seconds_per_turn > placement.wait_seconds_per_turn);
}

#[test]
fn alternating_models_end_up_where_they_co_reside() {
    // The 44 GB architect leaves no room beside it on the 54 GB Mac for either loop model
    // (9 > 0.8 x 10), so splitting the loop would reload a model at every phase change; on
    // the 40 GB box the tester loads beside the coder (9 <= 0.8 x 21). The Mac loads
    // faster, so only the conflicts send the loop to the box.
    let workload = workload(
        vec![
            model("architect", 44.0),
            model("coder", 19.0),
            model("tester", 9.0),
        ],
        vec![
            agent("architect", Some("architect"), 200.0),
            agent("coder", Some("coder"), 120.0),
            agent("tester", Some("tester"), 40.0),
        ],
        vec![
            edge("architect", "coder", 1.0),
            edge("coder", "tester", 1.0),
            edge("tester", "coder", 4.0),
            edge("tester", "architect", 1.0),
        ],
    );
    let all = ["architect", "coder", "tester"];
    let hosts = [fast(host("mac", 54, 3, &all)), host("box", 40, 3, &all)];
    let placement = place(&input(&workload, "architect", &hosts, &[])).expect("placeable");
    assert_eq!(placement.host_of("architect"), Some("mac"));
    assert_eq!(placement.host_of("coder"), Some("box"), "{placement}");
    assert_eq!(placement.host_of("tester"), Some("box"), "{placement}");
    assert!(
        placement
            .hosts
            .iter()
            .all(|host| host.forced_loads.is_empty()),
        "{placement}"
    );
    let one = placement
        .one_host
        .as_ref()
        .expect("the Mac holds every model");
    assert_eq!(one.host, "mac");
    assert!(placement.saving_seconds_per_turn().expect("compared") > 0.0);
}

#[test]
fn the_placement_prints_each_host_and_the_saving() {
    let workload = tdd_loop();
    let both = ["coder", "tester"];
    let hosts = [host("small", 24, 3, &both), host("idle", 8, 3, &both)];
    let alone = place(&input(&workload, "coder", &hosts[..1], &[])).expect("placeable");
    let text = alone.to_string();
    assert!(text.starts_with("host small: load wait "), "{text}");
    assert!(
        text.contains("  coder (19.0 GB) for coder + tester\n"),
        "{text}"
    );
    assert!(
        text.contains("  phase coder + tester loads tester after coder: "),
        "{text}"
    );
    assert!(text.contains("; on small alone: "), "{text}");
    let two = place(&input(&workload, "coder", &hosts, &[])).expect("placeable");
    assert!(two.to_string().contains("host idle: "), "{two}");
}

#[test]
fn required_labels_restrict_and_preferred_labels_break_ties() {
    let workload = tdd_loop();
    let both = ["coder", "tester"];
    let hosts = [
        labelled(host("a", 40, 3, &both), &["mac"]),
        labelled(host("b", 40, 3, &both), &["linux", "gpu"]),
        labelled(host("c", 40, 3, &both), &["linux"]),
    ];
    let wishes = [
        AgentLabels {
            agent: "coder".to_owned(),
            required: vec!["linux".to_owned()],
            preferred: vec!["gpu".to_owned()],
        },
        AgentLabels {
            agent: "tester".to_owned(),
            required: vec![],
            preferred: vec!["mac".to_owned()],
        },
    ];
    let placement = place(&input(&workload, "coder", &hosts, &wishes)).expect("placeable");
    assert_eq!(placement.host_of("coder"), Some("b"));
    assert_eq!(placement.host_of("tester"), Some("a"));
    let impossible = [AgentLabels {
        agent: "tester".to_owned(),
        required: vec!["linux".to_owned(), "mac".to_owned()],
        preferred: vec![],
    }];
    let error = place(&input(&workload, "coder", &hosts, &impossible)).unwrap_err();
    assert_eq!(
        error,
        PlacementError::LabelUnsatisfied {
            agent: "tester".to_owned(),
            required: vec!["linux".to_owned(), "mac".to_owned()],
        }
    );
    assert_eq!(
        error.to_string(),
        "no host has the labels agent 'tester' requires: linux, mac"
    );
    let unknown = [AgentLabels {
        agent: "nobody".to_owned(),
        ..AgentLabels::default()
    }];
    assert_eq!(
        place(&input(&workload, "coder", &hosts, &unknown)).unwrap_err(),
        PlacementError::UnknownAgent("nobody".to_owned())
    );
}

#[test]
fn a_count_cap_of_one_keeps_alternating_models_apart() {
    // Memory would hold both on the fast host, but it keeps one model loaded at a time.
    let workload = tdd_loop();
    let both = ["coder", "tester"];
    let hosts = [
        fast(host("one-slot", 64, 1, &both)),
        host("other", 40, 3, &both),
    ];
    let placement = place(&input(&workload, "coder", &hosts, &[])).expect("placeable");
    let together = placement.host_of("coder") == placement.host_of("tester");
    assert!(
        !together || placement.host_of("coder") == Some("other"),
        "{placement}"
    );
    assert!(
        placement
            .hosts
            .iter()
            .all(|host| host.forced_loads.is_empty())
    );
    // On the one-slot host alone, every hand-over loads.
    let alone = place(&input(&workload, "coder", &hosts[..1], &[])).expect("placeable");
    let forced = &alone.hosts[0].forced_loads;
    assert_eq!(forced.len(), 2, "{alone}");
}

#[test]
fn more_alternating_models_than_the_count_cap_spread_over_hosts() {
    // Two phases of two small models each, taking turns, with short turns: each phase's
    // pair fits either host (the smaller one comes first and wins ties), but each keeps at
    // most three models loaded, so one host serving all four reloads one model per phase.
    let names = ["a", "b", "c", "d"];
    let workload = workload(
        names.iter().map(|name| model(name, 3.0)).collect(),
        names
            .iter()
            .map(|name| agent(name, Some(name), 1.0))
            .collect(),
        vec![
            edge("a", "b", 1.0),
            edge("b", "a", 9.0),
            edge("b", "c", 1.0),
            edge("c", "d", 1.0),
            edge("d", "c", 9.0),
            edge("d", "a", 1.0),
        ],
    );
    let hosts = [host("small", 16, 3, &names), host("large", 48, 3, &names)];
    let placement = place(&input(&workload, "a", &hosts, &[])).expect("placeable");
    for host in ["small", "large"] {
        let served = names
            .iter()
            .filter(|name| placement.host_of(name) == Some(host))
            .count();
        assert!(served < names.len(), "{placement}");
    }
    // On one host alone, the phase changes force loads.
    let alone = place(&input(&workload, "a", &hosts[..1], &[])).expect("placeable");
    assert!(!alone.hosts[0].forced_loads.is_empty(), "{alone}");
}

#[test]
fn three_models_that_fit_in_pairs_but_not_together_force_loads() {
    // A hub hands over to one of two experts now and then (mostly to a command): each agent
    // is a phase of its own. On 16 GB every pair fits (the 5 GB expert loads beside the 7 GB
    // one: 5 <= 0.8 x 9), but the three models together do not (the 4 GB hub then needs
    // 0.8 x 4 free): an expert used after the other, with the hub in between, was evicted.
    // Both hosts load at one speed and the small one comes first, so only that eviction
    // keeps the three off it.
    let names = ["hub", "x", "y"];
    let workload = workload(
        vec![model("hub", 4.0), model("x", 7.0), model("y", 5.0)],
        vec![
            agent("hub", Some("hub"), 0.5),
            agent("x", Some("x"), 20.0),
            agent("y", Some("y"), 20.0),
            agent("tool", None, 0.5),
        ],
        vec![
            edge("hub", "x", 1.0),
            edge("hub", "y", 1.0),
            edge("hub", "tool", 4.0),
            edge("tool", "hub", 1.0),
            edge("x", "hub", 1.0),
            edge("y", "hub", 1.0),
        ],
    );
    let hosts = [host("small", 16, 3, &names), host("large", 40, 3, &names)];
    let alone = place(&input(&workload, "hub", &hosts[..1], &[])).expect("placeable");
    // Each expert is a phase of its own: the phase rule (crowded) cannot see this.
    for model in &alone.hosts[0].models {
        assert_eq!(model.phases.len(), 1, "{alone}");
        assert!(
            !model.phases[0].contains(if model.model == "x" { 'y' } else { 'x' }),
            "{alone}"
        );
    }
    // Alone, the small host reloads each expert after the other.
    let forced = &alone.hosts[0].forced_loads;
    assert_eq!(forced.len(), 2, "{alone}");
    for load in forced {
        assert_ne!(load.model, "hub", "{alone}");
        assert_ne!(load.displaced, "hub", "{alone}");
        assert_ne!(load.model, load.displaced, "{alone}");
    }
    let placement = place(&input(&workload, "hub", &hosts, &[])).expect("placeable");
    for host in &hosts {
        let sizes: Vec<u64> = placement
            .hosts
            .iter()
            .find(|report| report.host == host.name)
            .expect("every host is reported")
            .models
            .iter()
            .map(|model| model.footprint_bytes)
            .collect();
        assert!(
            host.budget.load_order(&sizes).is_some(),
            "models that do not fit together share {}:\n{placement}",
            host.name
        );
    }
    // The large host holds all three, so it is the best single host, and the fleet does
    // no worse.
    let one = placement
        .one_host
        .as_ref()
        .expect("both hosts hold every model");
    assert_eq!(one.host, "large", "{placement}");
    assert!(
        alone.wait_seconds_per_turn > one.wait_seconds_per_turn,
        "{alone}\n{placement}"
    );
    assert!(placement.wait_seconds_per_turn <= one.wait_seconds_per_turn);
}

#[test]
fn one_host_is_todays_plan() {
    // The TDD team on the 54 GB Mac: everything there, and the loads forced are those of the
    // phase transitions the residency analysis reports.
    let workload = tdd_workload(54);
    let names: Vec<&str> = workload
        .models()
        .iter()
        .map(|model| model.name.as_str())
        .collect();
    let hosts = [host("mac", 54, 3, &names)];
    let placement = place(&input(&workload, "router", &hosts, &[])).expect("placeable");
    assert!(placement.routes.iter().all(|route| route.host == "mac"));
    assert!(placement.models.iter().all(|model| model.hosts == ["mac"]));
    let one = placement.one_host.as_ref().expect("one host");
    assert!((one.wait_seconds_per_turn - placement.wait_seconds_per_turn).abs() < 1e-12);
    assert_eq!(placement.saving_seconds_per_turn(), Some(0.0));
    let analysis = crate::analyze(&workload);
    let mut expected: Vec<(String, String)> = analysis
        .transitions
        .iter()
        .flat_map(|transition| {
            transition
                .loads
                .iter()
                .filter(|load| load.exposed_seconds > 0.0)
                .map(|load| (transition.to.clone(), load.model.clone()))
        })
        .collect();
    expected.sort();
    expected.dedup();
    let mut forced: Vec<(String, String)> = placement.hosts[0]
        .forced_loads
        .iter()
        .map(|load| (load.phase.clone(), load.model.clone()))
        .collect();
    forced.sort();
    forced.dedup();
    assert_eq!(forced, expected, "{placement}\n{analysis:#?}");
}

#[test]
fn a_model_no_host_has_is_named_with_the_pull_to_run() {
    let workload = tdd_loop();
    let hosts = [
        host("small", 16, 3, &["coder:latest"]),
        host("roomy", 40, 3, &["coder"]),
    ];
    let error = place(&input(&workload, "coder", &hosts, &[])).unwrap_err();
    let PlacementError::ModelMissing {
        agent,
        model,
        host,
        pull,
    } = &error
    else {
        panic!("expected a missing model, got {error}");
    };
    assert_eq!((agent.as_str(), model.as_str()), ("tester", "tester"));
    assert_eq!(pull, "ollama pull tester");
    assert!(host == "small" || host == "roomy");
    assert!(
        error.to_string().contains(&format!("on host '{host}'")),
        "{error}"
    );
}

#[test]
fn hosts_are_checked() {
    let workload = tdd_loop();
    let both = ["coder", "tester"];
    let place_on = |hosts: &[PlacementHost]| place(&input(&workload, "coder", hosts, &[]));
    assert_eq!(place_on(&[]).unwrap_err(), PlacementError::NoHosts);
    assert_eq!(
        place_on(&[host("a", 40, 3, &both), host("a", 24, 3, &both)]).unwrap_err(),
        PlacementError::DuplicateHost("a".to_owned())
    );
    assert_eq!(
        place_on(&[host("a", 40, 0, &both)]).unwrap_err(),
        PlacementError::NoModelSlots("a".to_owned())
    );
    let mut broken = fast(host("a", 40, 3, &both));
    if let Some(bandwidth) = &mut broken.load_speed.bandwidth {
        bandwidth.mmap_bytes_per_second = 0.0;
    }
    assert!(matches!(
        place_on(&[broken]).unwrap_err(),
        PlacementError::Workload(Error::InvalidNumber { .. })
    ));
    assert!(matches!(
        place(&input(&workload, "nobody", &[host("a", 40, 3, &both)], &[])).unwrap_err(),
        PlacementError::Workload(Error::UnknownAgent(_))
    ));
}

#[test]
fn measured_load_times_beat_the_estimates() {
    // Two identical hosts; the second has measured the coder loading in a second.
    let workload = workload(
        vec![model("coder", 19.0)],
        vec![agent("coder", Some("coder"), 60.0)],
        vec![edge("coder", "end", 1.0)],
    );
    let mut quick = host("quick", 40, 3, &["coder"]);
    quick.load_speed.measured.push((
        "coder".to_owned(),
        LoadTimes {
            mmap_seconds: 1.0,
            no_mmap_seconds: 1.0,
        },
    ));
    let hosts = [host("slow", 40, 3, &["coder"]), quick];
    let placement = place(&input(&workload, "coder", &hosts, &[])).expect("placeable");
    assert_eq!(placement.host_of("coder"), Some("quick"));
    // One turn per run: the first load is the whole wait.
    assert!(
        (placement.wait_seconds_per_turn - 1.0).abs() < 1e-9,
        "{placement}"
    );
}

#[test]
fn failover_moves_only_the_lost_hosts_models() {
    let workload = workload(
        vec![
            model("architect", 50.0),
            model("coder", 19.0),
            model("tester", 9.0),
            model("small-coder", 8.0),
        ],
        vec![
            agent("architect", Some("architect"), 200.0),
            agent("coder", Some("coder"), 120.0),
            agent("tester", Some("tester"), 40.0),
        ],
        vec![
            edge("architect", "coder", 1.0),
            edge("coder", "tester", 1.0),
            edge("tester", "coder", 4.0),
            edge("tester", "architect", 1.0),
        ],
    );
    let hosts = [
        host(
            "mac",
            54,
            3,
            &["architect", "coder", "tester", "small-coder"],
        ),
        host("box", 40, 3, &["coder", "tester"]),
    ];
    let input = input(&workload, "architect", &hosts, &[]);
    let placement = place(&input).expect("placeable");
    assert_eq!(placement.host_of("architect"), Some("mac"));
    assert_eq!(placement.host_of("coder"), Some("box"));
    // The box goes: its models come to the Mac, the architect stays.
    let again = replace_lost_host(&input, &placement, "box", &[]).expect("the Mac serves all");
    assert!(
        again.routes.iter().all(|route| route.host == "mac"),
        "{again}"
    );
    assert!(again.substitutions.is_empty());
    // The Mac goes: the box has no architect and no fallback is given.
    let error = replace_lost_host(&input, &placement, "mac", &[]).unwrap_err();
    assert!(
        matches!(&error, PlacementError::NoHostLeft { agent, fallback: None, .. } if agent == "architect"),
        "{error}"
    );
    assert!(error.to_string().contains("host 'mac' is lost"), "{error}");
    // With a fallback the box lists, the architect's turns go to it; the loop stays put.
    let fallbacks = [Fallback {
        model: "architect".to_owned(),
        fallback: "coder".to_owned(),
    }];
    let again = replace_lost_host(&input, &placement, "mac", &fallbacks).expect("fallback");
    assert_eq!(again.host_of("architect"), Some("box"));
    assert_eq!(again.model_of("architect"), Some("coder"));
    assert_eq!(again.host_of("coder"), placement.host_of("coder"));
    assert_eq!(again.host_of("tester"), placement.host_of("tester"));
    assert_eq!(again.substitutions, fallbacks);
    assert_eq!(
        replace_lost_host(&input, &placement, "nowhere", &[]).unwrap_err(),
        PlacementError::UnknownHost("nowhere".to_owned())
    );
    // Losing a host that serves nothing changes no route.
    let mut spare = hosts.to_vec();
    spare.push(host("spare", 8, 1, &[]));
    let with_spare = super::PlacementInput {
        hosts: &spare,
        ..input
    };
    let again = replace_lost_host(&with_spare, &placement, "spare", &[]).expect("nothing moves");
    assert_eq!(again.routes, placement.routes);
}

/// A small deterministic generator (64-bit LCG), so the random instances are the same on
/// every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_instance(random: &mut Lcg) -> (Workload, Vec<PlacementHost>) {
    let models = 2 + random.below(5) as usize;
    let agents = models + random.below(3) as usize;
    let names: Vec<String> = (0..models).map(|index| format!("m{index}")).collect();
    let specs: Vec<ModelSpec> = names
        .iter()
        .map(|name| model(name, 1.0 + random.below(30) as f64))
        .collect();
    let planned: Vec<PlannedAgent> = (0..agents)
        .map(|index| {
            let model = names[if index < models {
                index
            } else {
                random.below(models as u64) as usize
            }]
            .as_str();
            agent(
                &format!("a{index}"),
                Some(model),
                5.0 + random.below(100) as f64,
            )
        })
        .collect();
    let mut edges = Vec::new();
    for from in 0..agents {
        for _ in 0..2 {
            let to = random.below(agents as u64 + 1) as usize;
            let to = if to == agents {
                "end".to_owned()
            } else {
                format!("a{to}")
            };
            edges.push(edge(&format!("a{from}"), &to, 1.0 + random.below(4) as f64));
        }
    }
    let workload = workload(specs, planned, edges);
    let host_count = 2 + random.below(2) as usize;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let hosts = (0..host_count)
        .map(|index| {
            let mut host = host(
                &format!("h{index}"),
                32 + random.below(32),
                1 + random.below(3) as usize,
                &names,
            );
            if random.below(2) == 0 {
                host = fast(host);
            }
            host
        })
        .collect();
    (workload, hosts)
}

/// On small random instances (2 to 6 models, 2 or 3 hosts of mixed budgets, caps and
/// speeds), the heuristic finds the exact optimum on at least 97 % of them, and its total
/// cost over all of them is within 2 % of the optimum's. (It is never below the optimum.)
#[test]
fn the_heuristic_matches_the_exact_search_on_small_instances() {
    let mut random = Lcg(2026);
    let runs = 500;
    let (mut equal, mut exact_total, mut heuristic_total) = (0, 0.0, 0.0);
    for run in 0..runs {
        let (workload, hosts) = random_instance(&mut random);
        let input = input(&workload, "a0", &hosts, &[]);
        let instance = Instance::new(&input, &Overrides::default()).expect("valid instance");
        let cost = |host_of: &[usize]| {
            let (wait, penalty) = super::cost::State::with_assignment(&instance, host_of).total();
            wait + penalty
        };
        let exact = cost(&search::exact_only(&instance));
        let heuristic = cost(&search::heuristic_only(&instance));
        assert!(
            heuristic >= exact - 1e-9,
            "run {run}: the exact search is beaten ({heuristic} < {exact})"
        );
        if heuristic <= exact + 1e-9 {
            equal += 1;
        }
        exact_total += exact;
        heuristic_total += heuristic;
    }
    assert!(equal * 100 >= runs * 97, "optimal on {equal} of {runs}");
    assert!(
        heuristic_total <= 1.02 * exact_total,
        "heuristic {heuristic_total} against exact {exact_total}"
    );
}

/// On random fleets with random catalogues and label wishes, every route goes to a host that
/// lists the agent's model, has the labels it requires and holds the model alone; the same
/// input gives the same placement; and an input that cannot be placed gets an error naming
/// the rule.
#[test]
fn every_route_keeps_the_hard_rules() {
    let mut random = Lcg(31);
    let mut placed = 0;
    for _ in 0..300 {
        let (workload, mut hosts) = random_instance(&mut random);
        for host in &mut hosts {
            host.models.retain(|_| random.below(4) != 0);
            if random.below(2) == 0 {
                host.labels.push("gpu".to_owned());
            }
        }
        let wishes: Vec<AgentLabels> = workload
            .agents()
            .iter()
            .filter(|_| random.below(3) == 0)
            .map(|agent| AgentLabels {
                agent: agent.name.clone(),
                required: vec!["gpu".to_owned()],
                preferred: Vec::new(),
            })
            .collect();
        let input = input(&workload, "a0", &hosts, &wishes);
        let placement = match place(&input) {
            Ok(placement) => placement,
            Err(
                PlacementError::ModelMissing { .. }
                | PlacementError::ModelTooBig { .. }
                | PlacementError::LabelUnsatisfied { .. },
            ) => continue,
            Err(other) => panic!("unexpected error {other}"),
        };
        placed += 1;
        assert_eq!(place(&input).as_ref(), Ok(&placement));
        for route in &placement.routes {
            let host = hosts
                .iter()
                .find(|host| host.name == route.host)
                .expect("a route names a host of the input");
            assert!(host.models.contains(&route.model), "{route:?}");
            let bytes = workload.footprint_bytes(&route.model).expect("known model");
            assert!(bytes <= host.budget.gpu_bytes, "{route:?}");
            let required = wishes
                .iter()
                .any(|wish| wish.agent == route.agent && !wish.required.is_empty());
            assert!(
                !required || host.labels.contains(&"gpu".to_owned()),
                "{route:?}"
            );
        }
    }
    assert!(
        placed >= 30,
        "only {placed} of the random inputs were placeable"
    );
}

/// A dense graph (every agent hands over to ten others, one-second turns, so no path is
/// hidden by its turns) stays small: paths taken under 1 % as often as their first turn are
/// dropped, so at most 100 per length and first turn remain.
#[test]
fn a_dense_graph_keeps_few_terms() {
    let mut random = Lcg(5);
    let count = 30;
    let names: Vec<String> = (0..count).map(|index| format!("m{index}")).collect();
    let models = names
        .iter()
        .map(|name| model(name, 10.0 + random.below(30) as f64))
        .collect();
    let agents = (0..count)
        .map(|index| agent(&format!("a{index}"), Some(&names[index]), 1.0))
        .collect();
    let mut edges = Vec::new();
    for from in 0..count {
        for _ in 0..10 {
            let to = format!("a{}", random.below(count as u64));
            edges.push(edge(&format!("a{from}"), &to, 1.0));
        }
    }
    let workload = workload(models, agents, edges);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let hosts: Vec<PlacementHost> = (0..8)
        .map(|index| host(&format!("h{index}"), 48, 3, &names))
        .collect();
    let input = input(&workload, "a0", &hosts, &[]);
    let instance = Instance::new(&input, &Overrides::default()).expect("valid");
    assert!(
        instance.terms.len() <= count * 100 * 5,
        "{} terms",
        instance.terms.len()
    );
    let placement = place(&input).expect("placeable");
    assert_eq!(placement.search, Search::Heuristic);
    assert_eq!(placement.routes.len(), count);
}

/// Pricing a move by the terms it touches gives the same cost as pricing the whole
/// assignment again, over random instances and random moves (the searches rely on it).
#[test]
fn moves_are_priced_as_the_whole_assignment() {
    let mut random = Lcg(11);
    for _ in 0..100 {
        let (workload, hosts) = random_instance(&mut random);
        let input = input(&workload, "a0", &hosts, &[]);
        let instance = Instance::new(&input, &Overrides::default()).expect("valid instance");
        let mut state = super::cost::State::new(&instance);
        for _ in 0..40 {
            let item = random.below(instance.items.len() as u64) as usize;
            let eligible = &instance.items[item].eligible;
            let to = match random.below(eligible.len() as u64 + 1) as usize {
                index if index == eligible.len() => None,
                index => Some(eligible[index]),
            };
            let predicted = state.cost + state.evaluate(item, to);
            state.apply(item, to);
            let (wait, penalty) = state.total();
            assert!((state.cost - predicted).abs() < 1e-9);
            assert!(
                (state.cost - (wait + penalty)).abs() < 1e-9 * (1.0 + wait),
                "incremental {} against {}",
                state.cost,
                wait + penalty
            );
        }
    }
}

/// Identical empty hosts count once: a few models over a large uniform fleet are still
/// placed by the exact search.
#[test]
fn a_uniform_fleet_is_searched_exactly() {
    let workload = tdd_loop();
    let hosts: Vec<PlacementHost> = (0..32)
        .map(|index| host(&format!("h{index}"), 24, 3, &["coder", "tester"]))
        .collect();
    let placement = place(&input(&workload, "coder", &hosts, &[])).expect("placeable");
    assert_eq!(placement.search, Search::Exact);
    // The pair cannot co-reside on 24 GB: it is split over the first two hosts.
    assert_eq!(placement.host_of("coder"), Some("h0"));
    assert_eq!(placement.host_of("tester"), Some("h1"));
    assert!(
        placement
            .hosts
            .iter()
            .all(|host| host.forced_loads.is_empty())
    );
}

/// A helper model that both phases call is replicated when each phase's big model leaves
/// no room for it on one host and its small model leaves room on the other: each phase then
/// calls the copy beside its small model, and no turn inside a phase waits.
#[test]
fn a_model_both_phases_call_is_replicated_when_that_pays() {
    let workload = workload(
        vec![
            model("plan-big", 20.0),
            model("plan-small", 8.0),
            model("build-big", 20.0),
            model("build-small", 8.0),
            model("helper", 4.0),
        ],
        vec![
            agent("planner", Some("plan-big"), 30.0),
            agent("plan-helper", Some("helper"), 10.0),
            agent("plan-checker", Some("plan-small"), 20.0),
            agent("builder", Some("build-big"), 30.0),
            agent("build-helper", Some("helper"), 10.0),
            agent("build-checker", Some("build-small"), 20.0),
        ],
        vec![
            edge("planner", "plan-helper", 1.0),
            edge("plan-helper", "plan-checker", 1.0),
            edge("plan-checker", "planner", 9.0),
            edge("plan-checker", "builder", 1.0),
            edge("builder", "build-helper", 1.0),
            edge("build-helper", "build-checker", 1.0),
            edge("build-checker", "builder", 9.0),
            edge("build-checker", "planner", 1.0),
        ],
    );
    let all = [
        "plan-big",
        "plan-small",
        "build-big",
        "build-small",
        "helper",
    ];
    let hosts = [
        labelled(host("left", 24, 3, &all), &["left"]),
        labelled(host("right", 24, 3, &all), &["right"]),
    ];
    let require = |agent: &str, label: &str| AgentLabels {
        agent: agent.to_owned(),
        required: vec![label.to_owned()],
        preferred: Vec::new(),
    };
    let wishes = [require("planner", "left"), require("builder", "right")];
    let placement = place(&input(&workload, "planner", &hosts, &wishes)).expect("placeable");
    let helper = placement
        .models
        .iter()
        .find(|model| model.model == "helper")
        .expect("placed");
    assert_eq!(helper.hosts, ["left", "right"], "{placement}");
    assert_eq!(
        placement.host_of("plan-helper"),
        placement.host_of("plan-checker")
    );
    assert_eq!(
        placement.host_of("build-helper"),
        placement.host_of("build-checker")
    );
    assert_eq!(placement.host_of("plan-checker"), Some("right"));
    // Only the hand-overs between the phases load (each big model after the other phase's
    // small one); no load inside a phase.
    for host in &placement.hosts {
        for load in &host.forced_loads {
            assert!(load.model.ends_with("-big"), "{placement}");
        }
    }
}

/// Each host plans its residency as one server does today, with the workload of the agents
/// routed to it: the Linux box's analysis sees only the loop, which fits there.
#[test]
fn each_host_plans_with_the_agents_routed_to_it() {
    let workload = tdd_workload(54);
    let names: Vec<&str> = workload
        .models()
        .iter()
        .map(|model| model.name.as_str())
        .collect();
    let hosts = [host("mac", 54, 3, &names), host("linux", 32, 3, &names)];
    let placement = place(&input(&workload, "router", &hosts, &[])).expect("placeable");
    assert_eq!(placement.host_of("architect"), Some("mac"));
    assert_eq!(placement.host_of("coder"), Some("linux"));
    let linux = placement
        .host_workload(&workload, "linux", hosts[1].budget)
        .expect("routes name known agents and models");
    let mut models: Vec<&str> = linux
        .models()
        .iter()
        .map(|model| model.name.as_str())
        .collect();
    models.sort_unstable();
    assert_eq!(models, ["coder-14b", "coder-32b"]);
    let analysis = crate::analyze(&linux);
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
    assert!(analysis.phases.iter().all(|phase| phase.fits));
    let plan = crate::plan_turn(
        crate::Policy::Smart,
        &linux,
        &crate::PlanContext {
            speaker: "architect",
            resident: &[],
            future: &[],
        },
    )
    .expect("known speaker");
    assert_eq!(plan.call, None, "the architect's turn is the Mac's");
}
