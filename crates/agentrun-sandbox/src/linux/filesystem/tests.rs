//! Tests of the trees granted around secrets.

use super::*;

#[test]
fn a_tree_without_secrets_is_granted_whole() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().canonicalize().expect("canonical");
    std::fs::create_dir_all(root.join("a/b")).expect("dirs");
    assert_eq!(trees_without(&root, &[]), vec![root.clone()]);
    let elsewhere = PathBuf::from("/nowhere/.ssh");
    assert_eq!(trees_without(&root, &[elsewhere]), vec![root]);
}

#[test]
fn the_way_down_to_a_secret_is_split_into_its_siblings() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().canonicalize().expect("canonical");
    for path in ["home/.ssh", "home/project/src", "usr/bin"] {
        std::fs::create_dir_all(root.join(path)).expect("dirs");
    }
    std::fs::write(root.join("home/.netrc"), "machine x").expect("a file");
    let secrets = [root.join("home/.ssh"), root.join("home/.netrc")];
    let mut granted = trees_without(&root, &secrets);
    granted.sort();
    assert_eq!(granted, vec![root.join("home/project"), root.join("usr")]);
}

#[test]
fn a_link_to_a_secret_is_not_granted() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().canonicalize().expect("canonical");
    std::fs::create_dir_all(root.join("home/.ssh")).expect("dirs");
    std::fs::create_dir_all(root.join("other")).expect("dirs");
    std::os::unix::fs::symlink(root.join("home/.ssh"), root.join("other/keys")).expect("link");
    std::os::unix::fs::symlink(root.join("home"), root.join("home-link")).expect("link");
    std::os::unix::fs::symlink(root.join("home/.ssh"), root.join("keys")).expect("link");
    let secrets = [root.join("home/.ssh")];
    let granted = trees_without(&root, &secrets);
    assert!(!granted.contains(&root.join("keys")), "{granted:?}");
    assert!(!granted.contains(&root.join("home-link")), "{granted:?}");
    // Landlock follows inodes: a tree holding a link to the secret does not grant it, a
    // granted path that is itself such a link would.
    assert!(granted.contains(&root.join("other")), "{granted:?}");
    assert!(
        !granted
            .iter()
            .any(|tree| secrets[0].starts_with(tree.canonicalize().expect("exists"))),
        "a granted tree leads to the secret: {granted:?}"
    );
}
