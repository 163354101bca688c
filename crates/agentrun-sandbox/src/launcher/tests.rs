//! Tests of the launcher's arguments.

use super::*;

#[test]
fn a_request_survives_its_command_line() {
    let request = LaunchRequest {
        isolate_network: true,
        force_user_namespace: false,
        writable: vec![PathBuf::from("/w"), PathBuf::from("/tmp/t")],
        secrets: vec![PathBuf::from("/home/me/.ssh")],
        protected: vec![PathBuf::from("/w/.git")],
    };
    let command = vec!["sh".to_owned(), "-c".to_owned(), "--write".to_owned()];
    let argv = Launcher::entry_point(Path::new("/bin/agentrun")).argv(&request, &command);
    assert_eq!(argv[..2], ["/bin/agentrun", LAUNCHER_ARGUMENT]);
    let (parsed, parsed_command) =
        LaunchRequest::parse(argv[2..].iter().map(OsString::from)).expect("parses");
    assert_eq!(parsed, request);
    assert_eq!(
        parsed_command,
        command.iter().map(OsString::from).collect::<Vec<_>>()
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let parse = |words: &[&str]| LaunchRequest::parse(words.iter().map(OsString::from));
    assert!(matches!(parse(&["--write"]), Err(LaunchError::Usage(_))));
    assert!(matches!(
        parse(&["--bogus", "--", "x"]),
        Err(LaunchError::Usage(_))
    ));
    assert!(matches!(parse(&["--"]), Err(LaunchError::Usage(_))));
    assert!(matches!(parse(&["true"]), Err(LaunchError::Usage(_))));
}

#[test]
fn modes_read_back_from_their_names() {
    for mode in crate::SandboxMode::ALL {
        assert_eq!(mode.as_str().parse(), Ok(mode));
    }
    assert!("workspace_write".parse::<crate::SandboxMode>().is_err());
}
