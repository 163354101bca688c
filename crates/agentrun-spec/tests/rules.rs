//! Each loading rule, one test at a time: the field it names, the line it points at and the
//! gist of its message.

use std::path::Path;
use std::time::Duration;

use agentrun_memory::{KeepAlive, LoadModeChoice, Policy};
use agentrun_spec::{
    AgentKind, AgentSpec, Approval, Condition, EdgeTarget, GpuBudget, HumanAgentSpec, KindName,
    LlmAgentSpec, McpServerSpec, McpToolChoice, McpTransport, Severity, SpecError, ToolName,
    Workflow,
};

/// A valid two-agent workflow; tests append sections or replace lines.
const BASE: &str = "\
name: base
agents:
  coder:
    model: qwen3-coder:32b
    prompt: You write code.
    options: { num_ctx: 32768 }
  reviewer:
    model: qwen3-coder:14b
    prompt: You review code.
    options: { num_ctx: 32768 }
flow:
  start: coder
  edges:
    - { from: coder, to: reviewer }
    - { from: reviewer, to: end, when: { contains: APPROVED } }
    - { from: reviewer, to: coder }
";

fn load(text: &str) -> Result<Workflow, SpecError> {
    Workflow::from_yaml_str(text, Path::new("w.yaml"))
}

/// The errors of a text that must not load: (field, line, message).
fn errors(text: &str) -> Vec<(String, usize, String)> {
    let error = load(text).expect_err("the workflow must not load");
    error
        .errors()
        .map(|d| (d.field.clone(), d.line, d.message.clone()))
        .collect()
}

/// Asserts the text fails with exactly one error, on `field`, at `line`, saying `gist`.
fn assert_single_error(text: &str, field: &str, line: usize, gist: &str) {
    let found = errors(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (found_field, found_line, message) = &found[0];
    assert_eq!(
        (found_field.as_str(), *found_line),
        (field, line),
        "{message}"
    );
    assert!(message.contains(gist), "`{message}` does not say `{gist}`");
}

#[test]
fn the_base_workflow_loads_with_defaults() {
    let workflow = load(BASE).expect("valid");
    assert_eq!(workflow.name, "base");
    assert_eq!(workflow.description, "");
    assert_eq!(workflow.source.as_deref(), Some(Path::new("w.yaml")));
    assert_eq!(
        workflow
            .agents
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["coder", "reviewer"]
    );
    let coder = workflow.agent("coder").expect("coder");
    assert_eq!(coder.kind_name(), KindName::Llm);
    assert_eq!(llm(coder).context_window, 12);
    assert_eq!(workflow.limits.max_turns, 100);
    assert_eq!(workflow.limits.timeout, None);
    assert_eq!(workflow.memory.gpu_budget, GpuBudget::Auto);
    assert_eq!(workflow.memory.policy, Policy::Smart);
    assert_eq!(workflow.load_mode_of(coder), LoadModeChoice::Auto);
    assert_eq!(workflow.simulation.seed, 1);
    assert_eq!(workflow.simulation.max_turns, 300);
    assert_eq!(workflow.simulation.agents.len(), 2);
    assert_eq!(workflow.flow.edges[1].to, EdgeTarget::End);
    assert_eq!(
        workflow.flow.edges[1].when,
        Condition::Contains("APPROVED".into())
    );
    assert_eq!(workflow.flow.edges[0].when, Condition::Always);
    assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
}

#[test]
fn every_field_of_the_format_is_read() {
    let text = format!(
        "{BASE}\
limits: {{ max_turns: 40, timeout: 30m }}
memory: {{ gpu_budget: 48GiB, max_loaded_models: 3, num_parallel: 2, policy: ollama-default, load_mode: no-mmap }}
simulation:
  seed: 7
  max_turns: 50
  agents:
    coder: {{ reply_tokens: [400, 2500], tokens_per_second: 9.5 }}
    reviewer: {{ reply_tokens: 300, match_rate: 0.25 }}
"
    )
    .replace(
        "    options: { num_ctx: 32768 }\n  reviewer:",
        "    options: { num_ctx: 32768, temperature: 0.2, num_batch: 512, typical_p: 0.9 }\n    think: false\n    context_window: 20\n    fallback: qwen3-coder:14b\n    residency: { keep_alive: 2h, load_mode: mmap }\n  reviewer:",
    );
    let workflow = load(&text).expect("valid");
    let coder = workflow.agent("coder").expect("coder");
    assert_eq!(llm(coder).options.temperature, Some(0.2));
    assert_eq!(llm(coder).options.num_batch, Some(512));
    assert_eq!(
        llm(coder).options.extra["typical_p"],
        serde_json::json!(0.9)
    );
    assert_eq!(llm(coder).think, Some(agentrun_spec::Think::Enabled(false)));
    assert_eq!(llm(coder).context_window, 20);
    assert_eq!(llm(coder).fallback.as_deref(), Some("qwen3-coder:14b"));
    assert_eq!(
        llm(coder).residency.keep_alive,
        Some(KeepAlive::For(Duration::from_secs(7200)))
    );
    assert_eq!(workflow.load_mode_of(coder), LoadModeChoice::Mmap);
    let reviewer = workflow.agent("reviewer").expect("reviewer");
    assert_eq!(workflow.load_mode_of(reviewer), LoadModeChoice::NoMmap);
    assert_eq!(workflow.limits.max_turns, 40);
    assert_eq!(workflow.limits.timeout, Some(Duration::from_secs(1800)));
    assert_eq!(workflow.memory.gpu_budget, GpuBudget::Bytes(48 << 30));
    assert_eq!(workflow.memory.max_loaded_models, Some(3));
    assert_eq!(workflow.memory.num_parallel, Some(2));
    assert_eq!(workflow.memory.policy, Policy::OllamaDefault);
    assert_eq!(workflow.simulation.seed, 7);
    let coder_sim = &workflow.simulation.agents["coder"];
    assert_eq!(coder_sim.reply_tokens, 400..=2500);
    assert_eq!(coder_sim.tokens_per_second, Some(9.5));
    let reviewer_sim = &workflow.simulation.agents["reviewer"];
    assert_eq!(reviewer_sim.reply_tokens, 300..=300);
    assert_eq!(reviewer_sim.match_rate, 0.25);
    let again = load(&workflow.to_yaml()).expect("the YAML it writes loads");
    assert_eq!(again, workflow);
}

#[test]
fn commands_humans_and_routers_are_read() {
    let text = "\
name: kinds
agents:
  tests:
    kind: command
    command: [cargo, test]
    env: { RUST_BACKTRACE: '1' }
    timeout: 10m
  person:
    kind: human
    prompt: Decide.
    choices: { ship: ready to ship, again: run the tests again }
    answers: [again, ship]
flow:
  start: tests
  edges:
    - { from: tests, to: person, when: pass }
    - { from: tests, to: tests, when: fail }
    - { from: person, to: end, when: { choice: ship } }
    - { from: person, to: tests, when: { choice: again } }
simulation:
  agents:
    tests: { duration: [60s, 2m], pass_rate: 0.6 }
    person: { choices: { ship: 1, again: 3 } }
";
    let workflow = load(text).expect("valid");
    let tests = workflow.agent("tests").expect("tests");
    let AgentKind::Command(command) = &tests.kind else {
        panic!("tests is a command agent")
    };
    assert_eq!(command.argv, ["cargo", "test"]);
    assert_eq!(command.env["RUST_BACKTRACE"], "1");
    assert_eq!(command.timeout, Some(Duration::from_secs(600)));
    let person = workflow.agent("person").expect("person");
    assert_eq!(person.kind_name(), KindName::Human);
    assert_eq!(person.choices(), ["ship", "again"]);
    assert_eq!(
        human(person).choice_descriptions["again"],
        "run the tests again"
    );
    assert_eq!(human(person).answers, ["again", "ship"]);
    let sim = &workflow.simulation.agents;
    assert_eq!(
        sim["tests"].duration,
        Duration::from_secs(60)..=Duration::from_secs(120)
    );
    assert_eq!(sim["tests"].pass_rate, 0.6);
    assert_eq!(sim["person"].choices["again"], 3.0);
    assert_eq!(load(&workflow.to_yaml()).expect("reloads"), workflow);
}

#[test]
fn tools_and_the_command_allow_list_are_read() {
    let text = BASE.replace(
        "    prompt: You write code.\n",
        "    prompt: You write code.\n    tools: [read_file, edit_file, run_command]\n    \
         allow_commands: [[python3, -m, unittest], [cargo, test]]\n    approve: ask\n    \
         env: { PYTHONDONTWRITEBYTECODE: '1' }\n    timeout: 2m\n    max_tool_rounds: 12\n",
    );
    let workflow = load(&text).expect("valid");
    let coder = workflow.agent("coder").expect("coder");
    assert_eq!(
        coder.tools(),
        [ToolName::ReadFile, ToolName::EditFile, ToolName::RunCommand]
    );
    assert!(coder.has_tool(ToolName::RunCommand));
    assert_eq!(llm(coder).max_tool_rounds, 12);
    let policy = &llm(coder).command_policy;
    assert_eq!(policy.allow[0], ["python3", "-m", "unittest"]);
    assert_eq!(policy.approve, Approval::Ask);
    assert_eq!(policy.env["PYTHONDONTWRITEBYTECODE"], "1");
    assert_eq!(policy.timeout, Some(Duration::from_secs(120)));
    assert!(matches!(coder.kind, AgentKind::Llm(_)));
    assert_eq!(load(&workflow.to_yaml()).expect("reloads"), workflow);

    let reviewer = workflow.agent("reviewer").expect("reviewer");
    assert!(reviewer.tools().is_empty());
    assert_eq!(llm(reviewer).max_tool_rounds, 8, "the default");
    assert_eq!(llm(reviewer).command_policy.approve, Approval::Never);
}

#[test]
fn tool_settings_are_checked() {
    let with = |lines: &str| {
        BASE.replace(
            "    prompt: You write code.\n",
            &format!("    prompt: You write code.\n{lines}"),
        )
    };
    assert_single_error(
        &with("    tools: [read_file, red_file]\n"),
        "agents.coder.tools[1]",
        6,
        "unknown value `red_file`",
    );
    assert_single_error(
        &with("    tools: [run_command]\n"),
        "agents.coder.tools",
        6,
        "needs an allow-list",
    );
    assert_single_error(
        &with("    tools: [read_file, read_file]\n"),
        "agents.coder.tools",
        6,
        "listed twice",
    );
    assert_single_error(
        &with("    allow_commands: [[cargo, test]]\n"),
        "agents.coder.allow_commands",
        6,
        "no use without the `run_command` tool",
    );
    assert_single_error(
        &with("    env: { A: b }\n"),
        "agents.coder.env",
        6,
        "an llm agent has no use for `env`",
    );
    assert_single_error(
        &with("    max_tool_rounds: 101\n"),
        "agents.coder.max_tool_rounds",
        6,
        "out of range",
    );
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let text = BASE
        .replace("model: qwen3-coder:32b", "modle: qwen3-coder:32b")
        .replace("to: reviewer }", "to: reviwer }")
        + "limits: { max_turns: 0 }\n";
    let found = errors(&text);
    let fields: Vec<&str> = found.iter().map(|(field, _, _)| field.as_str()).collect();
    assert_eq!(
        fields,
        ["agents.coder.modle", "flow.edges[0].to", "limits.max_turns"]
    );
    let lines: Vec<usize> = found.iter().map(|(_, line, _)| *line).collect();
    assert_eq!(lines, [4, 14, 17]);
}

#[test]
fn yaml_syntax_errors_point_at_the_line() {
    let text = BASE.replace("    prompt: You write code.", "   prompt: You write code.");
    let error = load(&text).expect_err("bad indentation");
    assert_eq!(error.diagnostics.len(), 1);
    assert_eq!(error.diagnostics[0].line, 5);
    assert!(error.diagnostics[0].message.starts_with("invalid YAML"));
    assert_single_error("just some words\n", "", 1, "not a mapping of workflow keys");
}

#[test]
fn wrong_types_and_missing_fields() {
    assert_single_error(
        &BASE.replace(
            "num_ctx: 32768 }\n  reviewer",
            "num_ctx: lots }\n  reviewer",
        ),
        "agents.coder.options.num_ctx",
        6,
        "expected a whole number",
    );
    assert_single_error(
        &BASE.replace("  start: coder\n", ""),
        "flow.start",
        11,
        "required key is missing",
    );
    assert_single_error(
        &BASE.replace("name: base\n", ""),
        "name",
        1,
        "required key is missing",
    );
    assert_single_error(
        &format!("{BASE}limits: {{ timeout: [1, 2] }}\n"),
        "limits.timeout",
        17,
        "expected a whole number or text",
    );
}

#[test]
fn names_in_the_flow_must_exist() {
    assert_single_error(
        &BASE.replace("start: coder", "start: coders"),
        "flow.start",
        12,
        "no agent `coders`",
    );
    assert_single_error(
        &BASE.replace(
            "{ from: reviewer, to: coder }",
            "{ from: reviewr, to: coder }",
        ),
        "flow.edges[2].from",
        16,
        "no agent `reviewr`",
    );
    assert_single_error(
        &BASE.replace("{ from: reviewer, to: coder }", "{ from: end, to: coder }"),
        "flow.edges[2].from",
        16,
        "no edge leaves `end`",
    );
}

#[test]
fn every_agent_is_reached_and_every_run_can_end() {
    let unreachable = BASE.replace(
        "- { from: coder, to: reviewer }",
        "- { from: coder, to: end }",
    );
    assert_single_error(&unreachable, "agents.reviewer", 7, "never reached");
    let looping = BASE.replace(
        "to: end, when: { contains: APPROVED }",
        "to: coder, when: { contains: APPROVED }",
    );
    assert_single_error(&looping, "agents.coder", 3, "loops forever");
    let dead_end = BASE.replace("    - { from: reviewer, to: end, when: { contains: APPROVED } }\n    - { from: reviewer, to: coder }\n", "");
    assert_single_error(&dead_end, "agents.reviewer", 7, "no outgoing edge");
}

#[test]
fn dead_edges_are_errors() {
    let after_fallback = BASE.replace(
        "    - { from: reviewer, to: coder }\n",
        "    - { from: reviewer, to: coder }\n    - { from: reviewer, to: end, when: { matches: LGTM } }\n",
    );
    assert_single_error(&after_fallback, "flow.edges[3]", 17, "never taken");
    let repeated = BASE.replace(
        "    - { from: reviewer, to: coder }\n",
        "    - { from: reviewer, to: coder, when: { contains: APPROVED } }\n    - { from: reviewer, to: coder }\n",
    );
    assert_single_error(&repeated, "flow.edges[2]", 16, "has the same condition");
}

#[test]
fn a_speaker_without_a_fallback_edge_is_a_warning() {
    let text = BASE.replace(
        "    - { from: reviewer, to: coder }\n",
        "    - { from: reviewer, to: coder, when: { matches: '(?i)changes' } }\n",
    );
    let workflow = load(&text).expect("loads with a warning");
    assert_eq!(workflow.warnings.len(), 1);
    let warning = &workflow.warnings[0];
    assert_eq!(
        (warning.severity, warning.field.as_str(), warning.line),
        (Severity::Warning, "flow.edges[2]", 16)
    );
    assert!(
        warning
            .to_string()
            .contains("warning: flow.edges[2]: when none of the conditions")
    );
}

#[test]
fn routers_and_their_choice_edges_must_agree() {
    let router = "\
name: r
agents:
  coder: { model: m, prompt: p, options: { num_ctx: 8192 } }
  router: { model: m, prompt: p, options: { num_ctx: 8192 }, choices: [again, done] }
flow:
  start: coder
  edges:
    - { from: coder, to: router }
    - { from: router, to: coder, when: { choice: again } }
    - { from: router, to: end, when: { choice: done } }
";
    load(router).expect("valid");
    assert_single_error(
        &router.replace("[again, done]", "[again, done, later]"),
        "agents.router.choices",
        4,
        "`later` has no edge",
    );
    assert_single_error(
        &router.replace(
            "when: { choice: done } }",
            "when: { choice: done } }\n    - { from: router, to: end, when: { choice: finish } }",
        ),
        "flow.edges[3].when.choice",
        11,
        "no choice `finish`",
    );
    assert_single_error(
        &router.replace(
            "to: router }",
            "to: router, when: { choice: x } }\n    - { from: coder, to: router }",
        ),
        "flow.edges[0].when",
        8,
        "not a router",
    );
    assert_single_error(
        &router.replace("[again, done]", "[again, done, again]"),
        "agents.router.choices",
        4,
        "listed twice",
    );
}

#[test]
fn pass_and_fail_belong_to_commands() {
    let text = BASE.replace("when: { contains: APPROVED }", "when: pass");
    assert_single_error(&text, "flow.edges[1].when", 15, "not a command agent");
}

#[test]
fn patterns_must_compile() {
    let text = BASE.replace("{ contains: APPROVED }", "{ matches: '[unclosed' }");
    assert_single_error(
        &text,
        "flow.edges[1].when.matches",
        15,
        "invalid regular expression: unclosed character class",
    );
}

#[test]
fn kinds_need_their_fields_and_refuse_others() {
    assert_single_error(
        &BASE.replace("    model: qwen3-coder:32b\n", ""),
        "agents.coder.model",
        3,
        "needs a model",
    );
    assert_single_error(
        &BASE.replace("    prompt: You write code.\n", ""),
        "agents.coder.prompt",
        3,
        "needs a role prompt",
    );
    let command = BASE.replace(
        "  reviewer:\n    model: qwen3-coder:14b\n",
        "  reviewer:\n    kind: command\n    command: [make, check]\n    model: qwen3-coder:14b\n",
    );
    let found = errors(&command);
    let fields: Vec<&str> = found.iter().map(|(field, _, _)| field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "agents.reviewer.model",
            "agents.reviewer.prompt",
            "agents.reviewer.options"
        ],
        "{found:#?}"
    );
    assert!(
        found[0]
            .2
            .contains("a command agent has no use for `model`")
    );
    let llm_command = BASE.replace("  reviewer:\n", "  reviewer:\n    command: [make]\n");
    assert_single_error(
        &llm_command,
        "agents.reviewer.command",
        8,
        "llm agent has no use for `command`",
    );
    let llm_timeout = BASE.replace("  reviewer:\n", "  reviewer:\n    timeout: 5m\n");
    assert_single_error(
        &llm_timeout,
        "agents.reviewer.timeout",
        8,
        "no use for `timeout`",
    );
    let empty_command = BASE.replace("  reviewer:\n    model: qwen3-coder:14b\n    prompt: You review code.\n    options: { num_ctx: 32768 }\n", "  reviewer:\n    kind: command\n    command: []\n");
    assert_single_error(
        &empty_command,
        "agents.reviewer.command",
        9,
        "the command is empty",
    );
}

#[test]
fn agent_names_are_checked() {
    assert_single_error(
        &BASE
            .replace("  reviewer:", "  re viewer:")
            .replace("from: reviewer", "from: re viewer")
            .replace("to: reviewer", "to: re viewer"),
        "agents.re viewer",
        7,
        "not a valid agent name",
    );
}

#[test]
fn option_values_and_keys_are_checked() {
    let options = |replacement: &str| BASE.replacen("options: { num_ctx: 32768 }", replacement, 1);
    assert_single_error(
        &options("options: { num_ctx: 0 }"),
        "agents.coder.options.num_ctx",
        6,
        "out of range",
    );
    assert_single_error(
        &options("options: { num_ctx: 8192, top_p: 1.5 }"),
        "agents.coder.options.top_p",
        6,
        "out of range",
    );
    assert_single_error(
        &options("options: { num_ctx: 8192, use_mmap: false }"),
        "agents.coder.options.use_mmap",
        6,
        "load mode",
    );
    assert_single_error(
        &options("options: { num_ctx: 8192, keep_alive: 5m }"),
        "agents.coder.options.keep_alive",
        6,
        "not a model option",
    );
    assert_single_error(
        &options("options: { num_ctx: 8192, num_cxt: 2 }"),
        "agents.coder.options.num_cxt",
        6,
        "unknown Ollama option",
    );
    let newer = load(&options(
        "options: { num_ctx: 8192, flash_attention_level: 2 }",
    ))
    .expect("passes unknown options through");
    assert_eq!(newer.warnings.len(), 1, "{:?}", newer.warnings);
    let unset = load(&options("options: { temperature: 0.2 }")).expect("loads");
    assert_eq!(unset.warnings[0].field, "agents.coder.options.num_ctx");
}

#[test]
fn limits_and_budgets_must_be_possible() {
    assert_single_error(
        &format!("{BASE}limits: {{ max_turns: 0 }}\n"),
        "limits.max_turns",
        17,
        "from 1 to 1000000",
    );
    assert_single_error(
        &format!("{BASE}limits: {{ max_turns: 2000000 }}\n"),
        "limits.max_turns",
        17,
        "from 1 to 1000000",
    );
    assert_single_error(
        &format!("{BASE}limits: {{ timeout: 0 }}\n"),
        "limits.timeout",
        17,
        "zero",
    );
    assert_single_error(
        &format!("{BASE}limits: {{ timeout: soon }}\n"),
        "limits.timeout",
        17,
        "not a duration",
    );
    assert_single_error(
        &format!("{BASE}memory: {{ gpu_budget: 54XB }}\n"),
        "memory.gpu_budget",
        17,
        "unknown size unit `XB`",
    );
    assert_single_error(
        &format!("{BASE}memory: {{ gpu_budget: 0 }}\n"),
        "memory.gpu_budget",
        17,
        "too small",
    );
    assert_single_error(
        &format!("{BASE}memory: {{ gpu_budget: 64MB }}\n"),
        "memory.gpu_budget",
        17,
        "too small",
    );
    assert_single_error(
        &format!("{BASE}memory: {{ max_loaded_models: 0 }}\n"),
        "memory.max_loaded_models",
        17,
        "out of range",
    );
    assert_single_error(
        &format!("{BASE}memory: {{ num_parallel: 0 }}\n"),
        "memory.num_parallel",
        17,
        "out of range",
    );
    assert_single_error(
        &format!("{BASE}memory: {{ policy: lru }}\n"),
        "memory.policy",
        17,
        "unknown value `lru`",
    );
    let auto = load(&format!("{BASE}memory: {{ gpu_budget: auto }}\n")).expect("valid");
    assert_eq!(auto.memory.gpu_budget, GpuBudget::Auto);
}

#[test]
fn residency_values_are_checked() {
    let residency = |value: &str| {
        BASE.replacen(
            "options: { num_ctx: 32768 }",
            &format!("options: {{ num_ctx: 32768 }}\n    residency: {value}"),
            1,
        )
    };
    for (value, expected) in [
        ("{ keep_alive: -1 }", KeepAlive::Forever),
        ("{ keep_alive: '-1' }", KeepAlive::Forever),
        ("{ keep_alive: 0 }", KeepAlive::UnloadWhenIdle),
        (
            "{ keep_alive: 300 }",
            KeepAlive::For(Duration::from_secs(300)),
        ),
        (
            "{ keep_alive: 30m }",
            KeepAlive::For(Duration::from_secs(1800)),
        ),
    ] {
        let workflow = load(&residency(value)).unwrap_or_else(|error| panic!("{value}: {error}"));
        assert_eq!(
            llm(&workflow.agents[0]).residency.keep_alive,
            Some(expected),
            "{value}"
        );
    }
    assert_single_error(
        &residency("{ keep_alive: later }"),
        "agents.coder.residency.keep_alive",
        7,
        "not a keep_alive",
    );
    assert_single_error(
        &residency("{ load_mode: nommap }"),
        "agents.coder.residency.load_mode",
        7,
        "unknown value `nommap`",
    );
}

#[test]
fn host_labels_are_read_and_checked() {
    let residency = |value: &str| {
        BASE.replacen(
            "options: { num_ctx: 32768 }",
            &format!("options: {{ num_ctx: 32768 }}\n    residency: {value}"),
            1,
        )
    };
    let workflow = load(&residency(
        "{ require_labels: [big], prefer_labels: [linux, gpu-2] }",
    ))
    .expect("valid");
    let coder = llm(&workflow.agents[0]);
    assert_eq!(coder.residency.require_labels, vec!["big".to_owned()]);
    assert_eq!(
        coder.residency.prefer_labels,
        vec!["linux".to_owned(), "gpu-2".to_owned()]
    );
    // The labels survive a save.
    let saved = load(&workflow.to_yaml()).expect("reloads");
    assert_eq!(llm(&saved.agents[0]).residency, coder.residency);
    assert_single_error(
        &residency("{ require_labels: [Big] }"),
        "agents.coder.residency.require_labels[0]",
        7,
        "'Big' is not a host label",
    );
    assert_single_error(
        &residency("{ prefer_labels: [linux, linux] }"),
        "agents.coder.residency.prefer_labels[1]",
        7,
        "the label 'linux' is given twice",
    );
}

#[test]
fn simulation_settings_are_checked() {
    let sim = |agents: &str| format!("{BASE}simulation:\n  agents:\n    {agents}\n");
    assert_single_error(
        &sim("coders: { reply_tokens: 10 }"),
        "simulation.agents.coders",
        19,
        "no agent `coders`",
    );
    assert_single_error(
        &sim("coder: { reply_tokens: [900, 100] }"),
        "simulation.agents.coder.reply_tokens",
        19,
        "out of order",
    );
    assert_single_error(
        &sim("coder: { pass_rate: 0.5 }"),
        "simulation.agents.coder.pass_rate",
        19,
        "does not apply to an llm agent",
    );
    assert_single_error(
        &sim("coder: { match_rate: 1.5 }"),
        "simulation.agents.coder.match_rate",
        19,
        "not a share",
    );
    assert_single_error(
        &sim("coder: { duration: [1m, 2m] }"),
        "simulation.agents.coder.duration",
        19,
        "does not apply",
    );
    assert_single_error(
        &sim("coder: { choices: { a: 1 } }"),
        "simulation.agents.coder.choices",
        19,
        "not a router",
    );
    assert_single_error(
        &sim("coder: { reply_tokens: [1, 2, 3] }"),
        "simulation.agents.coder.reply_tokens",
        19,
        "exactly 2 values",
    );
}

#[test]
fn unknown_keys_suggest_and_misplaced_keys_redirect() {
    assert_single_error(
        &BASE.replace("  start: coder", "  strat: coder\n  start: coder"),
        "flow.strat",
        12,
        "unknown key",
    );
    let error = load(&format!("{BASE}max_turns: 10\n")).expect_err("misplaced");
    assert!(
        error
            .to_string()
            .contains("hint: this goes under `limits:`"),
        "{error}"
    );
    let error = load(&BASE.replace("when: { contains: APPROVED }", "contains: APPROVED"))
        .expect_err("misplaced");
    assert!(
        error.to_string().contains("conditions go under `when:`"),
        "{error}"
    );
}

#[test]
fn unsupported_versions_are_refused() {
    assert_single_error(
        &format!("version: 2\n{BASE}"),
        "version",
        1,
        "version 2 is not supported",
    );
    load(&format!("version: 1\n{BASE}")).expect("version 1 loads");
}

#[test]
fn text_fields_take_numbers_as_written() {
    let workflow = load(
        &BASE
            .replace("name: base", "name: 2024")
            .replace("model: qwen3-coder:32b", "model: 7.10"),
    )
    .expect("valid");
    assert_eq!(workflow.name, "2024");
    assert_eq!(workflow.agents[0].model(), Some("7.10"));
}

#[test]
fn a_workflow_built_in_code_is_checked_by_the_same_rules() {
    let mut workflow = load(BASE).expect("valid");
    assert!(workflow.validate().expect("still valid").is_empty());
    workflow.flow.edges.push(agentrun_spec::EdgeSpec {
        from: "coder".into(),
        to: EdgeTarget::Agent("ghost".into()),
        when: Condition::Always,
    });
    workflow.limits.max_turns = 0;
    let error = workflow.validate().expect_err("broken now");
    let fields: Vec<&str> = error.errors().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["flow.edges[3].to", "limits.max_turns"]);
    assert!(error.errors().all(|d| d.line == 0));
}

#[test]
fn use_merges_files_and_resolves_paths_from_the_file_that_names_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |relative: &str, text: &str| {
        let path = dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("creatable");
        std::fs::write(path, text).expect("writable");
    };
    write("agents/prompts/coder.md", "You write code.\n");
    write(
        "agents/base.yaml",
        "model: qwen3-coder:14b\nprompt_file: prompts/coder.md\noptions: { num_ctx: 8192, temperature: 0.2 }\n",
    );
    write(
        "agents/coder.yaml",
        "use: base.yaml\nmodel: qwen3-coder:32b\n",
    );
    write("flows/prompts/reviewer.md", "You review code.\n");
    write(
        "flows/w.yaml",
        "name: w\nagents:\n  coder: { use: ../agents/coder.yaml, options: { temperature: 0.7 } }\n  reviewer: { use: ../agents/base.yaml, prompt_file: prompts/reviewer.md }\nflow:\n  start: coder\n  edges:\n    - { from: coder, to: reviewer }\n    - { from: reviewer, to: end }\n",
    );
    let path = dir.path().join("flows/w.yaml");
    let workflow = Workflow::from_yaml_file(&path).unwrap_or_else(|error| panic!("{error}"));
    let coder = workflow.agent("coder").expect("coder");
    assert_eq!(coder.model(), Some("qwen3-coder:32b"));
    assert_eq!(llm(coder).prompt, "You write code.\n");
    assert_eq!(
        (llm(coder).options.num_ctx, llm(coder).options.temperature),
        (Some(8192), Some(0.7))
    );
    let reviewer = workflow.agent("reviewer").expect("reviewer");
    assert_eq!(reviewer.model(), Some("qwen3-coder:14b"));
    assert_eq!(llm(reviewer).prompt, "You review code.\n");

    // A mistake inside a used file is reported at its own line.
    write(
        "agents/base.yaml",
        "model: qwen3-coder:14b\nprompt_file: prompts/coder.md\noptions: { num_ctx: 8192, temperature: warm }\n",
    );
    let error = Workflow::from_yaml_file(&path).expect_err("broken base");
    let diagnostic = error.errors().next().expect("an error");
    assert_eq!(diagnostic.file, dir.path().join("agents/base.yaml"));
    assert_eq!(
        (diagnostic.line, diagnostic.field.as_str()),
        (3, "agents.reviewer.options.temperature")
    );
    // The coder overrides the bad value, so only the reviewer inherits it.
    assert_eq!(error.errors().count(), 1, "{error}");

    // A file that uses itself is a cycle, not a stack overflow.
    write(
        "agents/base.yaml",
        "use: coder.yaml\nmodel: qwen3-coder:14b\n",
    );
    let error = Workflow::from_yaml_file(&path).expect_err("a cycle");
    assert!(
        error.to_string().contains("goes round in a circle"),
        "{error}"
    );
}

#[test]
fn the_simulation_workspace_is_a_directory_relative_to_the_workflow_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("project")).expect("a directory");
    std::fs::write(dir.path().join("notes.txt"), "notes").expect("a file");
    let file = dir.path().join("flows").join("w.yaml");
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("a directory");
    let with = |workspace: &str| format!("{BASE}simulation:\n  workspace: {workspace}\n");

    let workflow =
        Workflow::from_yaml_str(&with("../project"), &file).expect("an existing directory");
    let resolved = workflow.simulation.workspace.clone().expect("a workspace");
    assert!(resolved.is_absolute(), "{}", resolved.display());
    assert_eq!(
        resolved.canonicalize().expect("exists"),
        dir.path().join("project").canonicalize().expect("exists")
    );
    // The resolved workflow names it absolutely, so it loads the same from anywhere.
    let elsewhere = dir.path().join("runs").join("workflow.yaml");
    let again = Workflow::from_yaml_str(&workflow.to_yaml(), &elsewhere).expect("reloads");
    assert_eq!(again.simulation.workspace, Some(resolved));
    assert_eq!(load(BASE).expect("valid").simulation.workspace, None);

    for (workspace, gist) in [
        ("../missing", "does not exist"),
        ("../notes.txt", "is not a directory"),
    ] {
        let error = Workflow::from_yaml_str(&with(workspace), &file).expect_err("refused");
        let found: Vec<(String, usize, String)> = error
            .errors()
            .map(|d| (d.field.clone(), d.line, d.message.clone()))
            .collect();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            (found[0].0.as_str(), found[0].1),
            ("simulation.workspace", 18)
        );
        assert!(found[0].2.contains(gist), "{}", found[0].2);
    }
}

/// The model agent's data of an agent the test knows to be one.
fn llm(agent: &AgentSpec) -> &LlmAgentSpec {
    agent.llm().expect("an llm agent")
}

/// The person's data of an agent the test knows to be human.
fn human(agent: &AgentSpec) -> &HumanAgentSpec {
    match &agent.kind {
        AgentKind::Human(human) => human,
        other => panic!("not a human agent: {other:?}"),
    }
}

/// BASE with a command agent `tests` between coder and reviewer.
fn with_tests_agent(agent_extra: &str, workflow_extra: &str) -> String {
    let text = BASE.replace(
        "  reviewer:\n",
        &format!("  tests:\n    kind: command\n    command: [python3, -m, unittest]\n{agent_extra}  reviewer:\n"),
    );
    let text = text.replace(
        "    - { from: coder, to: reviewer }\n",
        "    - { from: coder, to: tests }\n    - { from: tests, to: reviewer }\n",
    );
    format!("{text}{workflow_extra}")
}

#[test]
fn sandboxes_default_to_workspace_write_and_agents_may_name_their_own() {
    use agentrun_spec::SandboxMode;
    let workflow = load(&with_tests_agent("", "")).expect("valid");
    let tests = workflow.agent("tests").expect("tests");
    assert_eq!(workflow.sandbox_of(tests), SandboxMode::WorkspaceWrite);
    assert!(workflow.sandbox.secret_paths.is_empty());

    let text = with_tests_agent(
        "    sandbox: network\n",
        "sandbox:\n  mode: off\n  secret_paths: [~/.kube, /etc/app/token]\n",
    );
    let workflow = load(&text).expect("valid");
    let tests = workflow.agent("tests").expect("tests");
    assert_eq!(workflow.sandbox_of(tests), SandboxMode::Network);
    assert_eq!(workflow.sandbox.mode, SandboxMode::Off);
    assert_eq!(workflow.sandbox.secret_paths, ["~/.kube", "/etc/app/token"]);
    let again = Workflow::from_yaml_str(&workflow.to_yaml(), Path::new("w.yaml")).expect("valid");
    assert_eq!(again, workflow);
}

#[test]
fn sandbox_settings_are_checked_where_they_are_written() {
    assert_single_error(
        &with_tests_agent("    sandbox: sealed\n", ""),
        "agents.tests.sandbox",
        10,
        "unknown value `sealed`",
    );
    assert_single_error(
        &with_tests_agent("", "sandbox:\n  secret_paths: [~/.kube, relative/path]\n"),
        "sandbox.secret_paths[1]",
        22,
        "neither absolute nor under `~/`",
    );
    assert_single_error(
        &with_tests_agent("    sandbox: container\n", ""),
        "agents.tests.sandbox",
        10,
        "needs an image",
    );
    assert!(
        load(&with_tests_agent(
            "    sandbox: container\n",
            "sandbox:\n  image: python:3.12-slim\n"
        ))
        .is_ok()
    );
    assert_single_error(
        &BASE.replace(
            "    options: { num_ctx: 32768 }\n  reviewer",
            "    options: { num_ctx: 32768 }\n    sandbox: off\n  reviewer",
        ),
        "agents.coder.sandbox",
        7,
        "an llm agent has no use for `sandbox`",
    );
}

#[test]
fn think_is_on_off_or_a_level() {
    use agentrun_spec::{Think, ThinkLevel};
    for (value, expected) in [
        ("true", Think::Enabled(true)),
        ("false", Think::Enabled(false)),
        ("high", Think::Level(ThinkLevel::High)),
        ("low", Think::Level(ThinkLevel::Low)),
    ] {
        let text = BASE.replace(
            "    options: { num_ctx: 32768 }\n  reviewer:",
            &format!("    options: {{ num_ctx: 32768 }}\n    think: {value}\n  reviewer:"),
        );
        let workflow = load(&text).expect("valid");
        assert_eq!(
            llm(workflow.agent("coder").expect("coder")).think,
            Some(expected),
            "think: {value}"
        );
    }
    let text = BASE.replace(
        "    options: { num_ctx: 32768 }\n  reviewer:",
        "    options: { num_ctx: 32768 }\n    think: hard\n  reviewer:",
    );
    let error = load(&text).expect_err("not a level").to_string();
    assert!(error.contains("think"), "{error}");
}

#[test]
fn mcp_servers_and_the_tools_agents_take_from_them_are_read_and_written_back() {
    let text = BASE.replace(
        "    prompt: You write code.\n",
        "    prompt: You write code.\n    mcp_tools:\n      git: [git_status, git_log]\n      tracker: all\n",
    ) + "\
mcp_servers:
  git:
    command: mcp-server-git
    args: [--repository, .]
    env: { GIT_AUTHOR_NAME: agents }
    cwd: repo
    sandbox: network
    timeout: 30s
  tracker:
    url: http://127.0.0.1:8931/mcp
    headers_from_env: { Authorization: TRACKER_AUTH }
";
    let workflow = load(&text).expect("loads");
    let git = workflow.mcp_server("git").expect("git");
    assert_eq!(git.timeout, Duration::from_secs(30));
    assert_eq!(
        git.transport,
        McpTransport::Stdio {
            command: "mcp-server-git".to_owned(),
            args: vec!["--repository".to_owned(), ".".to_owned()],
            env: [("GIT_AUTHOR_NAME".to_owned(), "agents".to_owned())].into(),
            cwd: Some("repo".into()),
            sandbox: Some(agentrun_spec::SandboxMode::Network),
        }
    );
    let tracker = workflow.mcp_server("tracker").expect("tracker");
    assert_eq!(tracker.timeout, McpServerSpec::DEFAULT_TIMEOUT);
    assert!(
        matches!(&tracker.transport, McpTransport::Http { url, headers_from_env }
        if url == "http://127.0.0.1:8931/mcp" && headers_from_env["Authorization"] == "TRACKER_AUTH")
    );
    let coder = workflow
        .agent("coder")
        .and_then(AgentSpec::llm)
        .expect("coder");
    assert_eq!(
        coder.mcp_tools["git"],
        McpToolChoice::Named(vec!["git_status".to_owned(), "git_log".to_owned()])
    );
    assert_eq!(coder.mcp_tools["tracker"], McpToolChoice::All);
    let again = load(&workflow.to_yaml()).expect("the written workflow loads");
    assert_eq!(again, workflow);
}

#[test]
fn an_agent_naming_an_undeclared_mcp_server_is_told_which_exist() {
    let text = BASE.replace(
        "    prompt: You write code.\n",
        "    prompt: You write code.\n    mcp_tools: { gti: all }\n",
    ) + "mcp_servers:\n  git: { command: mcp-server-git }\n";
    assert_single_error(
        &text,
        "agents.coder.mcp_tools.gti",
        6,
        "there is no MCP server `gti`",
    );
}

#[test]
fn a_router_cannot_take_mcp_tools() {
    let text = BASE.replace(
        "    prompt: You review code.\n",
        "    prompt: You review code.\n    choices: [coder, end]\n    mcp_tools: { git: all }\n",
    ) + "mcp_servers:\n  git: { command: mcp-server-git }\n";
    let found = errors(&text);
    assert!(
        found
            .iter()
            .any(|(field, _, message)| field == "agents.reviewer.mcp_tools"
                && message.contains("a router answers with one of its choices")),
        "{found:?}"
    );
}

/// BASE with a `context:` line (indented under the coder) after its options.
fn with_context(context: &str) -> String {
    BASE.replacen(
        "    options: { num_ctx: 32768 }\n",
        &format!("    options: {{ num_ctx: 32768 }}\n    context: {context}\n"),
        1,
    )
}

#[test]
fn a_context_is_read_with_its_pins() {
    let workflow = load(&with_context(
        "{ strategy: summarize, pin: [reviewer, { agent: reviewer }], reply_tokens: 4096, summarizer: reviewer }",
    ))
    .expect("valid");
    let context = llm(&workflow.agents[0]).context.clone().expect("a context");
    assert_eq!(context.strategy, agentrun_spec::ContextStrategy::Summarize);
    assert_eq!(context.pin.len(), 2);
    assert!(
        context
            .pin
            .iter()
            .all(|pin| pin.agent() == "reviewer" && !pin.failed_only())
    );
    assert_eq!(context.reply_tokens, Some(4096));
    assert_eq!(context.summarizer.as_deref(), Some("reviewer"));
    let defaults = load(&with_context("{}")).expect("valid");
    let context = llm(&defaults.agents[0]).context.clone().expect("a context");
    assert_eq!(context.strategy, agentrun_spec::ContextStrategy::Budget);
    assert!(llm(&defaults.agents[1]).context.is_none());
}

#[test]
fn context_settings_are_checked_with_positions() {
    assert_single_error(
        &with_context("{ strategy: budget, pin: [reviewr] }"),
        "agents.coder.context.pin[0]",
        7,
        "there is no agent `reviewr` to pin",
    );
    assert_single_error(
        &with_context("{ strategy: window, pin: [reviewer] }"),
        "agents.coder.context.pin",
        7,
        "a `window` context keeps only the newest messages",
    );
    assert_single_error(
        &with_context("{ strategy: budget, summarizer: reviewer }"),
        "agents.coder.context.summarizer",
        7,
        "a `budget` context writes no summary",
    );
    assert_single_error(
        &with_context("{ reply_tokens: 20000 }"),
        "agents.coder.context.reply_tokens",
        7,
        "leaves too little for the prompt",
    );
    assert_single_error(
        &with_context("{ strategy: trim }"),
        "agents.coder.context.strategy",
        7,
        "trim",
    );
    assert_single_error(
        &with_context("{ stratgy: budget }"),
        "agents.coder.context.stratgy",
        7,
        "unknown key",
    );
}
