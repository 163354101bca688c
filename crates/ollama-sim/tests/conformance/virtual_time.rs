//! The simulator in process under tokio's paused clock: an hour of simulated time runs in
//! virtual time and the same run gives the same log.

use std::time::Duration;

use futures::StreamExt;
use ollama_sim::{LogEvent, SimConfig, Simulator, api};

fn user(text: &str) -> api::Message {
    api::Message {
        role: "user".into(),
        content: text.into(),
        ..api::Message::default()
    }
}

fn request(model: &str, keep_alive: &str, tokens: i64) -> api::ChatRequest {
    api::ChatRequest {
        model: model.into(),
        messages: vec![user("next step")],
        options: Some(api::Options {
            num_ctx: Some(32_768),
            num_predict: Some(tokens),
            ..api::Options::default()
        }),
        keep_alive: Some(api::KeepAlive::Text(keep_alive.into())),
        ..api::ChatRequest::default()
    }
}

/// Agent turns on the target Mac until an hour has passed, then 31 idle minutes.
fn run_hour() -> (Vec<LogEvent>, f64, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut config = SimConfig::target_mac();
        config.epoch_unix_seconds = Some(1_767_225_600.0);
        let sim = Simulator::new(config);
        let start = tokio::time::Instant::now();
        let turns = [
            ("qwen3-coder-next:q4_K_M", "30m", 200),
            ("qwen3-coder:14b", "10m", 300),
            ("qwen3-coder:32b", "10m", 200),
            ("qwen3:1.7b", "-1m", 20),
        ];
        let mut replies = 0;
        while start.elapsed() < Duration::from_secs(3600) {
            for (model, keep_alive, tokens) in turns {
                let reply = sim
                    .chat(request(model, keep_alive, tokens))
                    .await
                    .expect("scheduled")
                    .collect()
                    .await
                    .expect("reply");
                let eval = reply.metrics.eval_count.expect("eval_count");
                assert!(eval <= tokens as u64, "num_predict bounds the reply");
                replies += 1;
            }
        }
        let hour = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(31 * 60)).await;
        let resident: Vec<String> = sim.ps().models.into_iter().map(|m| m.name).collect();
        assert_eq!(
            resident,
            ["qwen3:1.7b"],
            "only the forever model outlives 31 idle minutes"
        );
        (sim.log(), hour, replies)
    })
}

#[test]
fn an_hour_of_agent_turns_runs_in_virtual_time_and_repeats_exactly() {
    let (log, hour, replies) = run_hour();
    assert!(hour >= 3600.0);
    assert!(replies >= 12, "{replies} replies");
    // The 52 GB model cannot stay beside the others: it reloads every round, cold or warm.
    let big_loads = log
        .iter()
        .filter(|e| {
            matches!(&e.event, ollama_sim::Event::LoadStarted { model, .. } if &**model == "qwen3-coder-next:q4_K_M")
        })
        .count();
    assert_eq!(big_loads, replies / 4);
    let (again, _, _) = run_hour();
    assert_eq!(log, again, "virtual time is deterministic");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_reply_stream_is_a_client_disconnect() {
    let sim = Simulator::new(SimConfig::target_mac());
    let mut stream = sim
        .chat(request("qwen3:1.7b", "5m", 500))
        .await
        .expect("scheduled");
    let first = stream.next().await.expect("a chunk").expect("ok");
    assert!(!first.done);
    assert_eq!(sim.ps().models.len(), 1);
    drop(stream);
    let finished: Vec<u16> = sim
        .log()
        .iter()
        .filter_map(|e| match &e.event {
            ollama_sim::Event::RequestFinished { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(finished, [499]);
}

/// Under paused time two models decoding at once share the bandwidth exactly: while they
/// overlap each runs at `1 / (2 x 0.7 / 0.85)` of its speed, so each reply's decode grows by
/// the same `overlap x (1 - 0.85 / 1.4)` over its lone figure, to the nanosecond.
#[tokio::test(start_paused = true)]
async fn concurrent_decodes_share_the_bandwidth_exactly_in_virtual_time() {
    let sim = Simulator::new(SimConfig::target_mac());
    let eval =
        |reply: &api::ChatChunk| reply.metrics.eval_duration.expect("eval_duration") as f64 / 1e9;
    let coder = request("qwen3-coder:14b", "30m", 300);
    let small = request("qwen3:8b", "30m", 300);
    let reply = |request: api::ChatRequest| {
        let sim = sim.clone();
        async move {
            sim.chat(request)
                .await
                .expect("scheduled")
                .collect()
                .await
                .expect("reply")
        }
    };
    let alone_coder = eval(&reply(coder.clone()).await);
    let alone_small = eval(&reply(small.clone()).await);
    let (together_coder, together_small) = tokio::join!(reply(coder), reply(small));
    let extra_coder = eval(&together_coder) - alone_coder;
    let extra_small = eval(&together_small) - alone_small;
    assert!(extra_coder > 1.0, "the coder slowed: {extra_coder} s");
    assert!(
        (extra_coder - extra_small).abs() < 1e-6,
        "{extra_coder} s and {extra_small} s"
    );
    // Neither decode can have lasted less than the overlap that slowed it.
    let overlap = extra_coder / (1.0 - 0.85 / 1.4);
    assert!(overlap <= alone_small * 1.4 / 0.85 + 1e-6, "{overlap} s");
}
