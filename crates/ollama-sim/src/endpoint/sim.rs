//! The simulator's own endpoints: `GET /sim/log`, `POST /sim/reset`, `POST /sim/faults`.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;

use crate::faults::Faults;
use crate::http;
use crate::simulator::Simulator;

pub(crate) async fn log(State(sim): State<Simulator>) -> Response {
    http::json_response(200, &sim.log())
}

pub(crate) async fn reset(State(sim): State<Simulator>) -> Response {
    sim.reset();
    http::json_response(200, &serde_json::json!({"status": "reset"}))
}

pub(crate) async fn faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let faults: Faults = match http::parse_body(&body) {
        Ok(faults) => faults,
        Err(error) => return http::error_response(&error),
    };
    sim.set_faults(faults.clone());
    http::json_response(200, &faults)
}
