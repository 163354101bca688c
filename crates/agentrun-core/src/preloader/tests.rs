use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{PreloadJob, Preloader};
use crate::backend::{
    BackendError, ChatRequest, ChatResponse, KeepAlive, LoadReport, ModelBackend, ModelDetails,
    ModelOptions, RunningModel, TokenSink,
};
use crate::clock::RunClock;
use crate::event::EventSink;

/// A server whose every load takes ten seconds; it records when each load started.
#[derive(Default)]
struct SlowLoads {
    started: Mutex<Vec<(String, Instant)>>,
}

#[async_trait]
impl ModelBackend for SlowLoads {
    fn endpoint(&self) -> String {
        "slow loads".to_owned()
    }

    async fn chat(&self, _: &ChatRequest, _: TokenSink<'_>) -> Result<ChatResponse, BackendError> {
        unreachable!("the loader never chats")
    }

    async fn preload(
        &self,
        model: &str,
        _: &ModelOptions,
        _: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        self.started
            .lock()
            .unwrap()
            .push((model.to_owned(), Instant::now()));
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(LoadReport::default())
    }

    async fn unload(&self, _: &str) -> Result<(), BackendError> {
        Ok(())
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        Ok(Vec::new())
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        Err(BackendError::ModelNotFound {
            model: model.to_owned(),
            url: self.endpoint(),
        })
    }
}

fn job(model: &str) -> PreloadJob {
    PreloadJob {
        caller: None,
        model: model.to_owned(),
        options: ModelOptions::default(),
        keep_alive: None,
        expected_s: None,
    }
}

/// Runs preloads of `a` and `b` (`a` on host one, `b` on `b_host`) to their end and
/// returns when each started, in seconds after the plan.
async fn load_starts(b_host: &'static str) -> Vec<(String, f64)> {
    let backend = Arc::new(SlowLoads::default());
    let mut preloader = Preloader::on_hosts(
        backend.clone(),
        EventSink::default(),
        RunClock::start(1.0, 0.0),
        Arc::new(move |model: &str| if model == "b" { b_host } else { "one" }.to_owned()),
    );
    let planned = Instant::now();
    assert!(preloader.replace(vec![job("a"), job("b")], None).is_empty());
    let mut done = Vec::new();
    while done.len() < 2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        done.extend(preloader.finished());
    }
    let started = backend.started.lock().unwrap();
    started
        .iter()
        .map(|(model, at)| (model.clone(), (*at - planned).as_secs_f64().round()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn preloads_on_two_hosts_load_at_once() {
    let mut starts = load_starts("two").await;
    starts.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(starts, [("a".to_owned(), 0.0), ("b".to_owned(), 0.0)]);
}

#[tokio::test(start_paused = true)]
async fn preloads_on_one_host_load_one_after_the_other() {
    let starts = load_starts("one").await;
    assert_eq!(starts, [("a".to_owned(), 0.0), ("b".to_owned(), 10.0)]);
}

#[tokio::test(start_paused = true)]
async fn the_gate_holds_only_its_own_hosts_preloads() {
    let backend = Arc::new(SlowLoads::default());
    let preloader = Preloader::on_hosts(
        backend.clone(),
        EventSink::default(),
        RunClock::start(1.0, 0.0),
        Arc::new(|model: &str| if model == "b" { "two" } else { "one" }.to_owned()),
    );
    // The turn's own model `g` (host one) is not resident: `a` waits for it, `b` does not.
    preloader.replace(vec![job("a"), job("b")], Some("g".to_owned()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(preloader.in_flight(Some("b")).as_deref(), Some("b"));
    assert_eq!(preloader.in_flight(Some("a")), None);
    preloader.open_gate();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(preloader.in_flight(Some("a")).as_deref(), Some("a"));
}
