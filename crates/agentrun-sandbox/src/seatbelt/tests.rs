//! Tests of the Seatbelt profile, as text.

use super::*;

fn profile(network: bool) -> SeatbeltProfile {
    SeatbeltProfile {
        writable: vec![
            PathBuf::from("/Users/me/project"),
            PathBuf::from("/private/var/folders/x/T/agentrun-sandbox-1"),
        ],
        secrets: vec![
            PathBuf::from("/Users/me/.ssh"),
            PathBuf::from("/Users/me/.netrc"),
        ],
        protected: vec![PathBuf::from("/Users/me/project/.git")],
        network,
    }
}

#[test]
fn the_profile_denies_by_default_and_allows_reading_and_the_writable_trees() {
    let text = profile(false).render();
    assert!(text.starts_with("(version 1)\n(deny default)\n"), "{text}");
    assert!(text.contains("(allow file-read*)\n"), "{text}");
    assert!(
        text.contains("(allow file-write* (subpath \"/Users/me/project\") (subpath \"/private/var/folders/x/T/agentrun-sandbox-1\"))"),
        "{text}"
    );
    assert!(
        !text.contains("(allow file-write* (subpath \"/\")"),
        "{text}"
    );
}

#[test]
fn the_secrets_are_denied_last_so_the_deny_wins() {
    let text = profile(false).render();
    let deny = text
        .find("(deny file-read* file-write* (subpath \"/Users/me/.ssh\") (subpath \"/Users/me/.netrc\"))")
        .expect("the secrets are denied");
    let last_allow = text.rfind("(allow").expect("allows");
    assert!(deny > last_allow, "{text}");
}

#[test]
fn without_network_only_loopback_is_allowed() {
    let text = profile(false).render();
    assert!(!text.contains("(allow network*)"), "{text}");
    assert!(text.contains("(remote ip \"localhost:*\")"), "{text}");
    assert!(text.contains("(local ip \"localhost:*\")"), "{text}");
    assert!(profile(true).render().contains("(allow network*)\n"));
}

#[test]
fn a_path_cannot_end_its_string_and_add_rules() {
    let hostile = SeatbeltProfile {
        writable: vec![PathBuf::from("/tmp/x\") (allow default) (\"")],
        secrets: vec![],
        protected: vec![],
        network: false,
    };
    let text = hostile.render();
    assert!(
        text.contains("(subpath \"/tmp/x\\\") (allow default) (\\\"\")"),
        "{text}"
    );
    assert_eq!(text.matches("(allow default)").count(), 1);
}

#[test]
fn the_command_is_sandbox_exec_with_the_profile() {
    let argv = vec!["cargo".to_owned(), "test".to_owned()];
    let command = profile(false).command(&argv);
    assert_eq!(command[0], "/usr/bin/sandbox-exec");
    assert_eq!(command[1], "-p");
    assert_eq!(command[2], profile(false).render());
    assert_eq!(&command[3..], ["--", "cargo", "test"]);
}

#[test]
fn the_workspaces_git_directory_stays_read_only() {
    let text = profile(false).render();
    let deny = text
        .find("(deny file-write* (subpath \"/Users/me/project/.git\"))")
        .expect("the .git directory is denied writes");
    let allow = text
        .find("(allow file-write* (subpath \"/Users/me/project\")")
        .expect("allowed");
    assert!(deny > allow, "{text}");
}
