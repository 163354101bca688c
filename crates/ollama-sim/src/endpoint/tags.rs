//! `GET /api/tags`.

use axum::extract::State;
use axum::response::Response;

use crate::http;
use crate::simulator::Simulator;

pub(crate) async fn handle(State(sim): State<Simulator>) -> Response {
    http::json_response(200, &sim.tags())
}
