//! The memory planner of agentrun: decides, before every turn, which models Ollama should
//! hold, so the conversation never waits for a load that could have been avoided.
//!
//! Pure and deterministic: no I/O, no threads, no clock. Time is input data (seconds), the
//! server's residency comes from the caller (`/api/ps`), and every decision is a value.
//!
//! Types to learn first:
//!
//! - [`Workload`]: models (footprints, load times), agents, the conversation graph and the
//!   [`Budget`], plus what the run learns (edge counts, turn lengths, load times).
//! - [`plan_turn`] with a [`Policy`] and a [`PlanContext`] (speaker, resident models) gives a
//!   [`TurnPlan`]: the call's keep_alive and load mode, unloads, preloads, keep_alive refreshes.
//! - [`analyze`] gives the [`Analysis`] that `agentrun plan` prints; [`classify_waits`] splits
//!   a run's load waits into avoidable and unavoidable ones.
//! - [`plan_fan_out`] with a [`FanOut`] decides whether the branches of a fan-out run at once
//!   or one after the other, and in which load order ([`FanOutPlan`]).
//! - [`place`] assigns the models to several Ollama hosts ([`PlacementHost`]) and explains the
//!   [`Placement`]; [`replace_lost_host`] re-places a lost host's models.
//!
//! The rules every plan keeps are Ollama's (see [`plan_turn`]): one load at a time, the model
//! count cap, and the fit test `predicted <= 0.80 x available` in the planned load order.
//!
//! ```
//! use agentrun_memory::{
//!     PlannedAgent, Budget, PlannedEdge, PlannedTarget, LoadModeChoice, LoadTimes, ModelSpec, Policy,
//!     LoadedModel, PlanContext, Workload, plan_turn,
//! };
//!
//! let gb = 1_000_000_000;
//! let model = |name: &str, bytes: u64| ModelSpec {
//!     name: name.into(),
//!     runner_key: name.into(),
//!     footprint_bytes: bytes,
//!     load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
//!     load_mode: LoadModeChoice::Mmap,
//! };
//! let agent = |name: &str, model: &str| PlannedAgent {
//!     name: name.into(),
//!     model: Some(model.into()),
//!     mean_turn_seconds: 90.0,
//!     static_keep_alive: None,
//!     num_ctx: None,
//! };
//! let edge = |from: &str, to: &str| PlannedEdge {
//!     from: from.into(),
//!     to: PlannedTarget::Agent(to.into()),
//!     prior_weight: None,
//!     count: 0,
//! };
//! let workload = Workload::new(
//!     vec![model("coder-32b", 20 * gb), model("tester-14b", 10 * gb)],
//!     vec![agent("coder", "coder-32b"), agent("tester", "tester-14b")],
//!     vec![edge("coder", "tester"), edge("tester", "coder")],
//!     Budget { gpu_bytes: 34 * gb, max_loaded_models: 3 },
//! )?;
//!
//! // The coder is about to speak and nothing is loaded: load it, and load the tester while
//! // the coder generates (10 GB fits beside 20 GB: 10 <= 0.8 x 14).
//! let plan = plan_turn(
//!     Policy::Smart,
//!     &workload,
//!     &PlanContext { speaker: "coder", resident: &[], future: &[] },
//! )?;
//! assert!(plan.call.as_ref().is_some_and(|call| call.loads));
//! assert_eq!(plan.preloads[0].model, "tester-14b");
//!
//! // Next turn: both resident; nothing to load.
//! let resident = [
//!     LoadedModel { model: "coder-32b".into(), bytes: 20 * gb, busy: false, keep_alive: None },
//!     LoadedModel { model: "tester-14b".into(), bytes: 10 * gb, busy: false, keep_alive: None },
//! ];
//! let plan = plan_turn(
//!     Policy::Smart,
//!     &workload,
//!     &PlanContext { speaker: "tester", resident: &resident, future: &[] },
//! )?;
//! assert!(plan.unloads.is_empty() && plan.preloads.is_empty());
//! # Ok::<(), agentrun_memory::Error>(())
//! ```

mod analysis;
mod audit;
mod bound;
mod budget;
mod cache_room;
mod concurrency;
mod error;
mod footprint;
mod forecast;
mod keep_alive;
mod load_mode;
mod lookahead;
mod name;
mod page_cache;
mod placement;
mod plan;
mod policy;
mod replay;
mod speculation;
#[cfg(test)]
mod test_support;
mod wait;
mod workload;

pub use analysis::{
    Analysis, Phase, PhaseTransition, TransitionLoad, Warning, WarningKind, analyze,
};
pub use bound::{Bound, BoundInstance, BoundModel, BoundTurn, lower_bound};
pub use budget::{Budget, gigabytes, min_gpu_bytes};
pub use concurrency::{
    BranchModel, BranchStart, Concurrency, DecodeBytes, FanOut, FanOutOption, FanOutPlan,
    MemoryBandwidth, plan_fan_out,
};
pub use error::Error;
pub use footprint::{FootprintInputs, predict_footprint};
pub use keep_alive::{KeepAlive, KeepAliveError};
pub use load_mode::{LoadMode, LoadModeChoice};
pub use name::UnknownName;
pub use page_cache::HostMemory;
pub use placement::{
    AgentLabels, Bandwidth, EXACT_ASSIGNMENTS, Fallback, ForcedLoad, HostReport, HostedModel,
    LoadSpeed, MAX_RUN_TURNS, ModelPlacement, OneHost, PREFERENCE_SECONDS, Placement,
    PlacementError, PlacementHost, PlacementInput, Route, Search, place, replace_lost_host,
};
pub use plan::{
    CallPlan, FutureTurn, LoadedModel, PlanContext, Preload, Refresh, TurnPlan, Unload, plan_turn,
};
pub use policy::Policy;
pub use replay::{ReplayConfig, ReplayReport, replay};
pub use speculation::{LoadingPreload, PreloadVerdict, judge_preload};
pub use wait::{ModelWaits, TraceTurn, WaitClass, WaitReport, classify_waits};
pub use workload::{LoadTimes, ModelSpec, PlannedAgent, PlannedEdge, PlannedTarget, Workload};
