//! `agentrun-sandbox`: the launcher that confines itself and executes a command. Started by
//! agentrun, not by people; see the `agentrun_sandbox` library for its arguments.

fn main() {
    std::process::exit(agentrun_sandbox::launcher_main());
}
