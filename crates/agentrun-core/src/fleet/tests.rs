use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::message::Message;

/// A host that has some models, answers chats with its own name, and can be taken away.
struct FakeHost {
    name: &'static str,
    models: Vec<&'static str>,
    gone: AtomicBool,
    calls: Mutex<Vec<String>>,
    /// What `/api/ps` shows.
    resident: Mutex<Vec<String>>,
    /// While set, chats wait for `release`.
    hold: AtomicBool,
    release: tokio::sync::Notify,
    /// Seconds a call or preload reports waiting for its model (its load).
    load_s: Mutex<f64>,
}

impl FakeHost {
    /// From now on `/api/ps` lists `model`.
    fn show_resident(&self, model: &str) {
        self.resident.lock().expect("lock").push(model.to_owned());
    }

    fn new(name: &'static str, models: &[&'static str]) -> Arc<FakeHost> {
        Arc::new(FakeHost {
            name,
            models: models.to_vec(),
            gone: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            resident: Mutex::new(Vec::new()),
            hold: AtomicBool::new(false),
            release: tokio::sync::Notify::new(),
            load_s: Mutex::new(0.0),
        })
    }

    fn check(&self, call: String) -> Result<(), BackendError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(BackendError::Unreachable {
                url: self.name.to_owned(),
                reason: "connection refused".to_owned(),
            });
        }
        self.calls.lock().expect("lock").push(call);
        Ok(())
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }

    fn load(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs_f64(
            *self.load_s.lock().expect("lock"),
        ))
    }
}

#[async_trait]
impl ModelBackend for FakeHost {
    fn endpoint(&self) -> String {
        self.name.to_owned()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        _: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        self.check(format!("chat {}", request.model))?;
        if self.hold.load(Ordering::SeqCst) {
            self.release.notified().await;
        }
        Ok(ChatResponse {
            message: Message::assistant(self.name),
            done_reason: None,
            metrics: crate::backend::CallMetrics {
                load: self.load(),
                ..Default::default()
            },
        })
    }

    async fn preload(
        &self,
        model: &str,
        _: &ModelOptions,
        _: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        self.check(format!("preload {model}"))?;
        // As Ollama: the load takes its time, and the answer carries no timing fields.
        if let Some(load) = self.load() {
            tokio::time::sleep(load).await;
        }
        Ok(LoadReport {
            load_duration: None,
        })
    }

    async fn unload(&self, model: &str) -> Result<(), BackendError> {
        self.check(format!("unload {model}"))
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        self.check("ps".to_owned())?;
        Ok(self
            .resident
            .lock()
            .expect("lock")
            .iter()
            .map(|name| RunningModel {
                name: name.clone(),
                size_bytes: GB,
                size_vram_bytes: GB,
                expires_at: None,
                context_length: None,
            })
            .collect())
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        self.check(format!("show {model}"))?;
        if !self.models.contains(&model) {
            return Err(BackendError::ModelNotFound {
                model: model.to_owned(),
                url: self.name.to_owned(),
            });
        }
        Ok(ModelDetails {
            name: model.to_owned(),
            file_bytes: 1,
            ..ModelDetails::default()
        })
    }
}

const GB: u64 = 1 << 30;

fn spec(name: &str, gb: u64, labels: &[&str]) -> HostSpec {
    HostSpec {
        name: name.to_owned(),
        url: format!("http://{name}:11434"),
        budget_bytes: gb * GB,
        max_loaded_models: 3,
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
        load_speed: None,
        load_times: Vec::new(),
    }
}

/// A workload of agents named after their models (`architect` calls `architect`, ...), each
/// handing over to the next in a ring, with these footprints.
fn workload(models: &[(&str, u64)]) -> Workload {
    use agentrun_memory::{
        LoadModeChoice, LoadTimes, ModelSpec, PlannedAgent, PlannedEdge, PlannedTarget,
    };
    let specs = models
        .iter()
        .map(|(name, gb)| ModelSpec {
            name: (*name).to_owned(),
            runner_key: (*name).to_owned(),
            footprint_bytes: gb * GB,
            load_times: LoadTimes::from_bandwidth(gb * GB, 2.0, 0.8e9, 5e9),
            load_mode: LoadModeChoice::NoMmap,
        })
        .collect();
    let agents = models
        .iter()
        .map(|(name, _)| PlannedAgent {
            name: (*name).to_owned(),
            model: Some((*name).to_owned()),
            mean_turn_seconds: 60.0,
            static_keep_alive: None,
            num_ctx: None,
        })
        .collect();
    let edges = (0..models.len())
        .map(|index| PlannedEdge {
            from: models[index].0.to_owned(),
            to: PlannedTarget::Agent(models[(index + 1) % models.len()].0.to_owned()),
            prior_weight: None,
            count: 0,
        })
        .collect();
    Workload::new(
        specs,
        agents,
        edges,
        Budget {
            gpu_bytes: 64 * GB,
            max_loaded_models: 3,
        },
    )
    .expect("a valid workload")
}

fn labels(agent: &str, required: &[&str]) -> Vec<AgentLabels> {
    vec![AgentLabels {
        agent: agent.to_owned(),
        required: required.iter().map(|label| (*label).to_owned()).collect(),
        preferred: Vec::new(),
    }]
}

fn chat(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: Vec::new(),
        options: ModelOptions::new(),
        keep_alive: None,
        format: None,
        tools: Vec::new(),
        think: None,
    }
}

async fn answer(fleet: &Fleet, model: &str) -> Result<String, BackendError> {
    let mut sink = |_: &str| {};
    let reply = fleet.chat(&chat(model), &mut sink).await?;
    Ok(reply.message.content)
}

fn two_hosts() -> (Fleet, Arc<FakeHost>, Arc<FakeHost>) {
    let mac = FakeHost::new("mac", &["architect", "coder"]);
    let linux = FakeHost::new("linux", &["coder", "tester"]);
    let fleet = Fleet::new(vec![
        (
            spec("mac", 54, &["big"]),
            mac.clone() as Arc<dyn ModelBackend>,
        ),
        (
            spec("linux", 24, &["linux"]),
            linux.clone() as Arc<dyn ModelBackend>,
        ),
    ]);
    (fleet, mac, linux)
}

#[tokio::test]
async fn calls_go_to_the_host_each_model_is_placed_on() {
    let (fleet, mac, linux) = two_hosts();
    let run = workload(&[("architect", 40), ("coder", 20), ("tester", 4)]);
    fleet
        .place(&run, "architect", Vec::new(), Vec::new())
        .await
        .expect("placed");
    let placement = fleet.placement();
    assert_eq!(placement["architect"], "mac");
    // 40 + 20 GB does not fit 54 GB: the coder lives beside the tester, on the second host.
    assert_eq!(placement["coder"], "linux");
    assert_eq!(placement["tester"], "linux");
    assert_eq!(answer(&fleet, "architect").await.expect("answers"), "mac");
    assert_eq!(answer(&fleet, "coder").await.expect("answers"), "linux");
    fleet
        .preload("tester", &ModelOptions::new(), None)
        .await
        .expect("loads");
    assert!(linux.calls().contains(&"preload tester".to_owned()));
    assert!(!mac.calls().iter().any(|call| call.starts_with("preload")));
}

#[tokio::test]
async fn placement_prices_each_host_with_its_own_load_speed() {
    let slow_box = FakeHost::new("slow", &["coder"]);
    let fast_box = FakeHost::new("fast", &["coder"]);
    let speed = |bytes_per_second: f64| agentrun_memory::Bandwidth {
        fixed_seconds: 2.0,
        mmap_bytes_per_second: bytes_per_second,
        no_mmap_bytes_per_second: bytes_per_second,
    };
    let host = |name: &str, bytes_per_second: f64| HostSpec {
        load_speed: Some(speed(bytes_per_second)),
        ..spec(name, 24, &[])
    };
    let run = workload(&[("coder", 20)]);
    // The same budgets and catalogues: only the speeds differ, and the slow host comes first.
    let fleet = Fleet::new(vec![
        (
            host("slow", 0.3e9),
            slow_box.clone() as Arc<dyn ModelBackend>,
        ),
        (
            host("fast", 6.0e9),
            fast_box.clone() as Arc<dyn ModelBackend>,
        ),
    ]);
    fleet
        .place(&run, "coder", Vec::new(), Vec::new())
        .await
        .expect("placed");
    assert_eq!(fleet.placement()["coder"], "fast");
    // Swapped, the speeds carry the model with them: it is the speed, not the order.
    let fleet = Fleet::new(vec![
        (host("slow", 6.0e9), slow_box as Arc<dyn ModelBackend>),
        (host("fast", 0.3e9), fast_box as Arc<dyn ModelBackend>),
    ]);
    fleet
        .place(&run, "coder", Vec::new(), Vec::new())
        .await
        .expect("placed");
    assert_eq!(fleet.placement()["coder"], "slow");
}

#[tokio::test]
async fn a_host_that_stops_answering_has_its_models_moved_and_the_call_goes_on() {
    let (fleet, mac, linux) = two_hosts();
    fleet
        .place(
            &workload(&[("architect", 40), ("coder", 20)]),
            "architect",
            Vec::new(),
            vec![Fallback {
                model: "coder".to_owned(),
                fallback: "tester".to_owned(),
            }],
        )
        .await
        .expect("placed");
    assert_eq!(fleet.placement()["coder"], "linux");
    let before = fleet.version();
    linux.gone.store(true, Ordering::SeqCst);
    assert_eq!(answer(&fleet, "coder").await.expect("answers"), "mac");
    assert_eq!(fleet.placement()["coder"], "mac");
    assert!(fleet.version() > before);
    let notes = fleet.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("host 'linux' stopped answering"),
        "{notes:?}"
    );
    assert!(notes[0].contains("coder to 'mac'"), "{notes:?}");
    assert_eq!(mac.calls().iter().filter(|c| *c == "chat coder").count(), 1);
    // It returns: it answers `ps` again and serves what is placed next.
    linux.gone.store(false, Ordering::SeqCst);
    fleet.running_models().await.expect("answers");
    assert!(fleet.hosts()[1].up);
    assert_eq!(answer(&fleet, "tester").await.expect("answers"), "linux");
}

#[tokio::test]
async fn a_model_only_the_lost_host_had_cannot_be_served_and_says_why() {
    let (fleet, mac, _) = two_hosts();
    fleet
        .place(
            &workload(&[("architect", 40)]),
            "architect",
            Vec::new(),
            Vec::new(),
        )
        .await
        .expect("placed");
    mac.gone.store(true, Ordering::SeqCst);
    let error = answer(&fleet, "architect").await.expect_err("nowhere");
    assert!(
        matches!(&error, BackendError::NoHost { model, reason }
            if model == "architect" && reason.contains("host 'mac' is lost")),
        "{error}"
    );
}

#[tokio::test]
async fn labels_nothing_carries_and_models_no_allowed_host_has_are_refused() {
    let (fleet, _, _) = two_hosts();
    let error = fleet
        .place(
            &workload(&[("coder", 8)]),
            "coder",
            labels("coder", &["gpu"]),
            Vec::new(),
        )
        .await
        .expect_err("no label");
    assert_eq!(
        error.to_string(),
        "agent 'coder' requires a host labelled gpu, and no host is: the hosts are \
         'mac' (big), 'linux' (linux)"
    );
    let (fleet, _, _) = two_hosts();
    let error = fleet
        .place(
            &workload(&[("tester", 8)]),
            "tester",
            labels("tester", &["big"]),
            Vec::new(),
        )
        .await
        .expect_err("missing");
    assert_eq!(
        error.to_string(),
        "agent 'tester' uses model 'tester', which no host it may use has; pull it on \
         host 'mac' with `OLLAMA_HOST=http://mac:11434 ollama pull tester`"
    );
}

/// Two 24 GB hosts, each phase's big model required on its own host, and a helper both
/// phases call: placement puts the helper on both hosts (the planner's replication case).
async fn replicated_helper() -> (Fleet, Arc<FakeHost>, Arc<FakeHost>) {
    use agentrun_memory::{
        LoadModeChoice, LoadTimes, ModelSpec, PlannedAgent, PlannedEdge, PlannedTarget,
    };
    let all = [
        "plan-big",
        "plan-small",
        "build-big",
        "build-small",
        "helper",
    ];
    let model = |name: &str, gb: f64| ModelSpec {
        name: name.to_owned(),
        runner_key: name.to_owned(),
        footprint_bytes: (gb * 1e9) as u64,
        load_times: LoadTimes::from_bandwidth((gb * 1e9) as u64, 2.0, 0.8e9, 5e9),
        load_mode: LoadModeChoice::NoMmap,
    };
    let agent = |name: &str, model: &str, seconds: f64| PlannedAgent {
        name: name.to_owned(),
        model: Some(model.to_owned()),
        mean_turn_seconds: seconds,
        static_keep_alive: None,
        num_ctx: None,
    };
    let edge = |from: &str, to: &str, weight: f64| PlannedEdge {
        from: from.to_owned(),
        to: PlannedTarget::Agent(to.to_owned()),
        prior_weight: Some(weight),
        count: 0,
    };
    let run = Workload::new(
        vec![
            model("plan-big", 20.0),
            model("plan-small", 8.0),
            model("build-big", 20.0),
            model("build-small", 8.0),
            model("helper", 4.0),
        ],
        vec![
            agent("planner", "plan-big", 30.0),
            agent("plan-helper", "helper", 10.0),
            agent("plan-checker", "plan-small", 20.0),
            agent("builder", "build-big", 30.0),
            agent("build-helper", "helper", 10.0),
            agent("build-checker", "build-small", 20.0),
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
        Budget {
            gpu_bytes: 64 * GB,
            max_loaded_models: 3,
        },
    )
    .expect("a valid workload");
    let left = FakeHost::new("left", &all);
    let right = FakeHost::new("right", &all);
    let host = |name: &str| HostSpec {
        budget_bytes: 24_000_000_000,
        ..spec(name, 24, &[name])
    };
    let fleet = Fleet::new(vec![
        (host("left"), left.clone() as Arc<dyn ModelBackend>),
        (host("right"), right.clone() as Arc<dyn ModelBackend>),
    ]);
    let mut wishes = labels("planner", &["left"]);
    wishes.extend(labels("builder", &["right"]));
    fleet
        .place(&run, "planner", wishes, Vec::new())
        .await
        .expect("placed");
    let placed = fleet.current().expect("a placement");
    let helper = placed
        .models
        .iter()
        .find(|model| model.model == "helper")
        .expect("the helper is placed");
    assert_eq!(helper.hosts, ["left", "right"], "{placed}");
    (fleet, left, right)
}

#[tokio::test]
async fn a_replicated_model_is_called_where_it_is_resident_and_idle_else_on_a_free_host() {
    let (fleet, left, right) = replicated_helper().await;
    let helper_chats = |host: &FakeHost| {
        host.calls()
            .iter()
            .filter(|call| *call == "chat helper")
            .count()
    };
    // Resident nowhere and both hosts free: the first.
    assert_eq!(fleet.route("helper", None).as_deref(), Some("left"));
    assert_eq!(answer(&fleet, "helper").await.expect("answers"), "left");
    // Resident on the second host only: calls go there, and only it plans the helper's turn.
    right.show_resident("helper");
    fleet.running_models().await.expect("answers");
    assert_eq!(fleet.route("helper", None).as_deref(), Some("right"));
    assert_eq!(answer(&fleet, "helper").await.expect("answers"), "right");
    let views = fleet.hosts();
    assert!(views[0].models.contains("helper") && views[1].models.contains("helper"));
    assert!(!views[0].serves.contains("helper") && views[1].serves.contains("helper"));
    // A call still under way there: the next goes to the other copy's host, which is free.
    right.hold.store(true, Ordering::SeqCst);
    let fleet = Arc::new(fleet);
    let first = tokio::spawn({
        let fleet = fleet.clone();
        async move { answer(&fleet, "helper").await }
    });
    while helper_chats(&right) < 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(fleet.route("helper", None).as_deref(), Some("left"));
    assert_eq!(answer(&fleet, "helper").await.expect("answers"), "left");
    right.release.notify_one();
    assert_eq!(first.await.expect("joins").expect("answers"), "right");
    // Done there: resident and idle again, so calls go back.
    assert_eq!(fleet.route("helper", None).as_deref(), Some("right"));
    assert_eq!((helper_chats(&left), helper_chats(&right)), (2, 2));
}

#[tokio::test]
async fn an_unload_of_a_replicated_model_keeps_the_copy_its_calls_go_to() {
    let (fleet, left, right) = replicated_helper().await;
    left.show_resident("helper");
    right.show_resident("helper");
    fleet.running_models().await.expect("answers");
    // Both copies resident and idle: calls go to the first, and the unload to the other.
    assert_eq!(fleet.route("helper", None).as_deref(), Some("left"));
    fleet.unload("helper").await.expect("unloads");
    assert!(!left.calls().contains(&"unload helper".to_owned()));
    assert!(right.calls().contains(&"unload helper".to_owned()));
}

#[tokio::test]
async fn an_agents_call_of_a_replicated_model_prefers_its_own_route_and_labels() {
    let (fleet, left, right) = replicated_helper().await;
    let placed = fleet.current().expect("a placement");
    let own = |agent: &str| own_route(&placed, agent);
    // Nothing resident and both hosts free: each agent's call goes to its own route's copy.
    for agent in ["plan-helper", "build-helper"] {
        assert_eq!(fleet.route("helper", Some(agent)), Some(own(agent)));
        let host = as_caller(agent.to_owned(), answer(&fleet, "helper"))
            .await
            .expect("answers");
        assert_eq!(host, own(agent));
    }
    assert_ne!(own("plan-helper"), own("build-helper"));
    for host in [&left, &right] {
        let chats = host
            .calls()
            .iter()
            .filter(|call| *call == "chat helper")
            .count();
        assert_eq!(chats, 1, "{}", host.name);
    }
    // The planner's view follows the speaker: only its copy's host serves the turn.
    fleet.set_speaker("plan-helper");
    let serving: Vec<String> = fleet
        .hosts()
        .into_iter()
        .filter(|host| host.serves.contains("helper"))
        .map(|host| host.spec.name)
        .collect();
    assert_eq!(serving, vec![own("plan-helper")]);
}

#[tokio::test(start_paused = true)]
async fn each_load_of_a_replicated_model_counts_on_the_host_that_did_it() {
    let (fleet, left, right) = replicated_helper().await;
    *left.load_s.lock().expect("lock") = 3.0;
    *right.load_s.lock().expect("lock") = 5.0;
    // The first call loads the helper on the left host.
    assert_eq!(answer(&fleet, "helper").await.expect("answers"), "left");
    // Then a preload loads the copy on the right, where its calls go while it is resident.
    right.show_resident("helper");
    fleet.running_models().await.expect("answers");
    fleet
        .preload("helper", &ModelOptions::default(), None)
        .await
        .expect("preloads");
    *right.load_s.lock().expect("lock") = 0.0;
    assert_eq!(answer(&fleet, "helper").await.expect("answers"), "right");
    fleet.unload("plan-big").await.expect("unloads");
    let work = fleet.work();
    let (left_part, right_part) = (&work["left"], &work["right"]);
    assert_eq!((left_part.loads, right_part.loads), (1, 1));
    assert_eq!(left_part.load_wait_s, 3.0);
    // The preload waited, no call on the right host did.
    assert_eq!(right_part.load_wait_s, 0.0);
    assert_eq!(left_part.unloads + right_part.unloads, 1);
}

#[tokio::test]
async fn a_preload_of_a_replicated_model_warms_the_copy_its_next_caller_will_use() {
    let (fleet, left, right) = replicated_helper().await;
    let placed = fleet.current().expect("placed");
    let own = |agent: &str| own_route(&placed, agent);
    assert_ne!(own("plan-helper"), own("build-helper"));
    for agent in ["build-helper", "plan-helper"] {
        maybe_as_caller(
            Some(agent.to_owned()),
            fleet.preload("helper", &ModelOptions::default(), None),
        )
        .await
        .expect("preloads");
    }
    let preloaded = |host: &FakeHost| {
        host.calls()
            .iter()
            .filter(|call| *call == "preload helper")
            .count()
    };
    // One preload on each copy: each went to its caller's own copy.
    assert_eq!((preloaded(&left), preloaded(&right)), (1, 1));
    // The one run as the build helper's went to its host.
    let build_host = if own("build-helper") == "left" {
        &left
    } else {
        &right
    };
    assert_eq!(
        build_host
            .calls()
            .iter()
            .find(|c| c.starts_with("preload"))
            .map(String::as_str),
        Some("preload helper")
    );
    assert_eq!(fleet.work()[&own("build-helper")].loads, 0);
}

/// The host `agent`'s own route goes to in `placed`.
fn own_route(placed: &agentrun_memory::Placement, agent: &str) -> String {
    placed
        .routes
        .iter()
        .find(|route| route.agent == agent)
        .map(|route| route.host.clone())
        .expect("routed")
}
