//! The terminal console: human agents and command approvals ask the person running `agentrun`.

use agentrun::{Console, Event, EventSink};
use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

/// Reads answers from standard input, one line each. The question goes through the event
/// stream, so it is printed in order with everything else the run shows.
pub(crate) struct TerminalConsole {
    events: EventSink,
    lines: tokio::sync::Mutex<Lines<BufReader<Stdin>>>,
}

impl TerminalConsole {
    pub(crate) fn new(events: EventSink) -> TerminalConsole {
        TerminalConsole {
            events,
            lines: tokio::sync::Mutex::new(BufReader::new(tokio::io::stdin()).lines()),
        }
    }
}

#[async_trait]
impl Console for TerminalConsole {
    async fn ask(&self, agent: &str, question: &str) -> Option<String> {
        self.events.emit(Event::InputRequested {
            agent: agent.to_owned(),
            question: question.to_owned(),
        });
        let mut lines = self.lines.lock().await;
        lines.next_line().await.ok().flatten()
    }
}
