//! Knowledge kept across runs: what applies, what a change forgets, and files that go wrong.

use std::collections::BTreeMap;
use std::path::Path;

use agentrun_core::{ModelDetails, Observations};
use agentrun_memory::LoadMode;
use agentrun_spec::{EdgeTarget, Workflow};

use super::{Knowledge, KnowledgeError};

const WORKFLOW: &str = "\
name: pair
agents:
  writer: { model: 'm:8b', prompt: You write., options: { num_ctx: 4096 } }
  reviewer: { model: 'm:14b', prompt: You review., options: { num_ctx: 4096 } }
flow:
  start: writer
  edges:
    - { from: writer, to: reviewer }
    - { from: reviewer, to: end, when: { contains: APPROVED } }
    - { from: reviewer, to: writer }
";

fn workflow(text: &str) -> Workflow {
    Workflow::from_yaml_str(text, Path::new("pair.yaml")).expect("a valid workflow")
}

fn details(digest_8b: &str) -> BTreeMap<String, ModelDetails> {
    [("m:8b", digest_8b), ("m:14b", "sha256:14b")]
        .into_iter()
        .map(|(name, digest)| {
            let details = ModelDetails {
                name: name.to_owned(),
                file_bytes: 5_000_000_000,
                digest: Some(digest.to_owned()),
                context_length: Some(40_960),
                ..ModelDetails::default()
            };
            (name.to_owned(), details)
        })
        .collect()
}

/// What one run of the pair observes: two rounds, then approval.
fn one_run() -> Observations {
    let mut observed = Observations::default();
    for _ in 0..2 {
        observed.turn("writer", 30.0);
        observed.edge("writer", &EdgeTarget::Agent("reviewer".into()));
        observed.turn("reviewer", 10.0);
    }
    observed.edge("reviewer", &EdgeTarget::Agent("writer".into()));
    observed.edge("reviewer", &EdgeTarget::End);
    observed.load("m:8b", LoadMode::NoMmap, 4.0);
    observed.load("m:14b", LoadMode::NoMmap, 6.0);
    observed.decode("m:8b", 600, 30.0);
    observed
}

#[test]
fn a_second_run_starts_with_what_the_first_measured() {
    let workflow = workflow(WORKFLOW);
    let details = details("sha256:8b");
    let mut knowledge = Knowledge::default();
    knowledge.absorb(&workflow, "http://host:11434", &details, &one_run());
    knowledge.absorb(&workflow, "http://host:11434", &details, &one_run());
    let experience = knowledge.experience(&workflow, &details);
    assert_eq!(knowledge.runs, 2);
    assert_eq!(experience.turns["writer"].count, 4);
    assert_eq!(experience.turns["writer"].mean(), Some(30.0));
    assert_eq!(
        experience.edges,
        vec![
            ("reviewer".into(), EdgeTarget::End, 2),
            ("reviewer".into(), EdgeTarget::Agent("writer".into()), 2),
            ("writer".into(), EdgeTarget::Agent("reviewer".into()), 4),
        ]
    );
    assert_eq!(
        experience.load_seconds("m:14b", LoadMode::NoMmap),
        Some(6.0)
    );
    assert_eq!(experience.load_seconds("m:14b", LoadMode::Mmap), None);
    assert_eq!(experience.decode["m:8b"].tokens_per_second(), Some(20.0));
    let facts = knowledge.facts(&workflow, &details);
    assert!(
        facts.iter().all(|fact| fact.applies && fact.runs == 2),
        "{facts:#?}"
    );
}

#[test]
fn a_changed_agent_forgets_its_turns_only() {
    let details = details("sha256:8b");
    let mut knowledge = Knowledge::default();
    knowledge.absorb(&workflow(WORKFLOW), "s", &details, &one_run());
    let changed = workflow(&WORKFLOW.replace("You review.", "You review strictly."));
    let experience = knowledge.experience(&changed, &details);
    assert!(!experience.turns.contains_key("reviewer"));
    assert!(experience.turns.contains_key("writer"));
    // The edges and the loads do not depend on the reviewer's prompt.
    assert_eq!(experience.edges.len(), 3);
    assert_eq!(experience.loads.len(), 2);
    // The next run's figures replace the stale ones instead of adding to them.
    knowledge.absorb(&changed, "s", &details, &one_run());
    assert_eq!(knowledge.agents["reviewer"].runs, 1);
    assert_eq!(knowledge.agents["writer"].runs, 2);
}

#[test]
fn a_changed_condition_forgets_the_edges_of_its_agent() {
    let details = details("sha256:8b");
    let mut knowledge = Knowledge::default();
    knowledge.absorb(&workflow(WORKFLOW), "s", &details, &one_run());
    let changed = workflow(&WORKFLOW.replace("contains: APPROVED", "contains: LGTM"));
    let experience = knowledge.experience(&changed, &details);
    assert_eq!(
        experience.edges,
        vec![("writer".into(), EdgeTarget::Agent("reviewer".into()), 2)]
    );
}

#[test]
fn a_repulled_model_or_new_load_options_forget_its_loads_and_speed() {
    let mut knowledge = Knowledge::default();
    knowledge.absorb(&workflow(WORKFLOW), "s", &details("sha256:8b"), &one_run());
    let repulled = knowledge.experience(&workflow(WORKFLOW), &details("sha256:new"));
    assert!(!repulled.loads.contains_key("m:8b"));
    assert!(!repulled.decode.contains_key("m:8b"));
    assert!(!repulled.turns.contains_key("writer"));
    assert!(repulled.loads.contains_key("m:14b"));
    let bigger_context = workflow(&WORKFLOW.replace(
        "You review., options: { num_ctx: 4096 }",
        "You review., options: { num_ctx: 8192 }",
    ));
    let experience = knowledge.experience(&bigger_context, &details("sha256:8b"));
    assert!(!experience.loads.contains_key("m:14b"));
    assert!(experience.loads.contains_key("m:8b"));
}

#[test]
fn files_round_trip_and_bad_ones_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = Knowledge::path(dir.path(), "pair review", "http://host:11434");
    assert!(path.starts_with(dir.path().join("knowledge")));
    assert!(matches!(Knowledge::load(&path), Ok(None)));
    let mut knowledge = Knowledge::default();
    knowledge.absorb(
        &workflow(WORKFLOW),
        "http://host:11434",
        &details("d"),
        &one_run(),
    );
    knowledge.save(&path).expect("saved");
    assert_eq!(
        Knowledge::load(&path).expect("read"),
        Some(knowledge.clone())
    );
    // Nothing is left beside it.
    let entries = std::fs::read_dir(path.parent().expect("a folder")).expect("listed");
    assert_eq!(entries.count(), 1);

    std::fs::write(&path, "{\"version\": 1, \"runs\": ").expect("written");
    assert!(matches!(
        Knowledge::load(&path),
        Err(KnowledgeError::Format { .. })
    ));
    std::fs::write(&path, "{\"version\": 0, \"anything\": true}").expect("written");
    let error = Knowledge::load(&path).expect_err("an old format");
    assert!(matches!(error, KnowledgeError::Version { found: 0, .. }));
    assert!(error.to_string().contains("ignored"), "{error}");
}

#[test]
fn each_server_has_its_own_file() {
    let home = Path::new("/home");
    assert_ne!(
        Knowledge::path(home, "pair", "http://a:11434"),
        Knowledge::path(home, "pair", "http://b:11434")
    );
}

#[test]
fn on_several_hosts_each_keeps_its_own_loads_and_every_one_the_workflows_facts() {
    let workflow = workflow(WORKFLOW);
    let details = details("sha256:8b");
    let dir = tempfile::tempdir().expect("a temp dir");
    let (mac, linux) = ("http://mac:11434", "http://linux:11434");
    // The Mac served the pair alone once before: both models loaded there.
    let mut alone = Knowledge::default();
    alone.absorb(&workflow, mac, &details, &one_run());
    let file = |name: &str| dir.path().join(format!("{name}.json"));
    let known = super::HostsKnowledge {
        hosts: vec![
            (mac.to_owned(), file("mac"), alone),
            (linux.to_owned(), file("linux"), Knowledge::default()),
        ],
    };
    let experience = known.experience(&workflow, &details);
    // The workflow's facts come from the Mac's file; its loads are the Mac's alone.
    assert_eq!(known.richest().expect("one has runs").0, mac);
    assert_eq!(experience.turns["writer"].count, 2);
    assert!(experience.loads.is_empty());
    assert_eq!(
        experience.host_load_seconds(mac, "m:14b", LoadMode::NoMmap),
        Some(6.0)
    );
    assert_eq!(
        experience.host_load_seconds(linux, "m:14b", LoadMode::NoMmap),
        None
    );

    // A fleet run loads the reviewer's model on the Linux box, slower than the Mac did.
    let mut observed = one_run();
    observed.load_on(mac, "m:8b", LoadMode::NoMmap, 4.0);
    observed.load_on(linux, "m:14b", LoadMode::NoMmap, 20.0);
    for (path, saved) in known.absorb_and_save(&workflow, &details, &observed) {
        saved.unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    }
    let read = |name: &str| {
        Knowledge::load(&file(name))
            .expect("readable")
            .expect("kept")
    };
    let (mac_file, linux_file) = (read("mac"), read("linux"));
    assert_eq!((mac_file.runs, linux_file.runs), (2, 1));
    assert_eq!(linux_file.server, linux);
    // Each file keeps the loads measured on its host: the Mac's 14b figure is unmixed.
    assert_eq!(linux_file.loads.keys().collect::<Vec<_>>(), ["m:14b"]);
    assert_eq!(
        linux_file.loads["m:14b"].modes[&LoadMode::NoMmap].mean(),
        Some(20.0)
    );
    assert_eq!(
        mac_file.loads["m:14b"].modes[&LoadMode::NoMmap].mean(),
        Some(6.0)
    );
    assert_eq!(mac_file.loads["m:8b"].modes[&LoadMode::NoMmap].count, 2);
    // Both have the workflow's facts.
    assert_eq!(linux_file.agents["writer"].turns.count, 2);
    assert_eq!(mac_file.agents["writer"].turns.count, 4);
}
