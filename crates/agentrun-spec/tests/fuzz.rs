//! Fuzzing the loader with bytes: arbitrary files, and the shipped workflows with bytes
//! inserted, deleted, duplicated or flipped, never panic, and every error they give
//! points at a line of the file. The inputs found interesting are kept in
//! `tests/fuzz-corpus/workflows/` at the repository root.

use std::path::Path;
use std::sync::OnceLock;

use agentrun_spec::{SpecError, Workflow};
use proptest::prelude::*;

const SHIPPED: [&str; 2] = [
    include_str!("../../../workflows/tdd.yaml"),
    include_str!("../../../workflows/review.yaml"),
];

/// A scratch copy of the repository's `agents/` beside an empty `workflows/`, so mutated
/// workflows are written where their relative `use` paths resolve, outside the repository.
fn scratch_tree() -> &'static Path {
    static TREE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TREE.get_or_init(|| {
        let tree = tempfile::tempdir().expect("a temp dir");
        let agents = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../agents");
        copy_dir(&agents, &tree.path().join("agents"));
        std::fs::create_dir(tree.path().join("workflows")).expect("a workflows dir");
        // The workspace `workflows/tdd.yaml` names for simulated runs.
        std::fs::create_dir_all(tree.path().join("examples/tdd-project")).expect("a dir");
        tree
    })
    .path()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a readable directory") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copied");
        }
    }
}

/// Loads `bytes` as a file named after `name` in `dir` and checks what comes back.
fn check_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<Workflow, SpecError> {
    let scratch = tempfile::Builder::new()
        .prefix(name)
        .suffix(".yaml")
        .tempfile_in(dir)
        .expect("a scratch file");
    std::fs::write(scratch.path(), bytes).expect("written");
    let loaded = Workflow::from_yaml_file(scratch.path());
    check(scratch.path(), bytes, &loaded);
    loaded
}

/// A workflow that loads has agents; one that does not says why, and each error about
/// the file itself names a line and column inside it.
fn check(path: &Path, bytes: &[u8], loaded: &Result<Workflow, SpecError>) {
    match loaded {
        Ok(workflow) => assert!(!workflow.agents.is_empty()),
        Err(error) => {
            let rendered = error.to_string();
            assert!(error.errors().next().is_some(), "{rendered}");
            // YAML breaks lines at `\n`, `\r\n` and a lone `\r`.
            let lines = bytes
                .iter()
                .enumerate()
                .filter(|&(at, byte)| {
                    *byte == b'\n' || (*byte == b'\r' && bytes.get(at + 1) != Some(&b'\n'))
                })
                .count()
                + 1;
            for diagnostic in error.errors() {
                assert!(!diagnostic.message.is_empty(), "{rendered}");
                if diagnostic.file == path {
                    assert!(
                        diagnostic.line >= 1 && diagnostic.line <= lines + 1,
                        "no line in the file: {rendered}"
                    );
                    assert!(diagnostic.column >= 1, "no column: {rendered}");
                }
            }
        }
    }
}

/// A change to a file's bytes, as the generator picks it.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Flip(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), 1usize..80).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip(at, byte)),
        // YAML's own syntax, where it hurts most.
        (
            any::<usize>(),
            prop::sample::select(vec![
                &b":"[..],
                b"\n",
                b"\t",
                b"  ",
                b"- ",
                b"&a ",
                b"*a",
                b"<<: *a\n",
                b"!!binary ",
                b"{",
                b"[",
                b"\"",
                b"'",
                b"#",
                b"|\n",
                b">-\n",
                b"---\n",
                b"...\n",
                b"\xef\xbb\xbf",
                b"\0",
                b"\xff",
            ])
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes.to_vec())),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len();
        match mutation {
            Mutation::Insert(at, inserted) => {
                let at = at % (len + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Delete(at, count) if len > 0 => {
                let at = at % len;
                bytes.drain(at..(at + count).min(len));
            }
            Mutation::Duplicate(at, count) if len > 0 => {
                let at = at % len;
                let copy = bytes[at..(at + count).min(len)].to_vec();
                bytes.splice(at..at, copy);
            }
            Mutation::Flip(at, byte) if len > 0 => bytes[at % len] = *byte,
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_carry_a_line(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        check_file(scratch_tree(), "bytes", &bytes).ok();
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_shipped_workflows_never_panic_and_errors_carry_a_line(
        which in 0usize..SHIPPED.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let bytes = mutate(SHIPPED[which].as_bytes().to_vec(), &mutations);
        check_file(&scratch_tree().join("workflows"), "mutated", &bytes).ok();
    }
}

#[test]
fn the_shipped_workflows_load_from_the_scratch_tree() {
    for text in SHIPPED {
        check_file(
            &scratch_tree().join("workflows"),
            "shipped",
            text.as_bytes(),
        )
        .expect("a shipped workflow loads");
    }
}

#[test]
fn an_invalid_byte_is_reported_at_its_line_and_column() {
    let error = check_file(
        scratch_tree(),
        "latin1",
        b"name: x\ntask: caf\xe9 au lait\n",
    )
    .expect_err("not UTF-8");
    let diagnostic = error.errors().next().expect("an error");
    assert_eq!((diagnostic.line, diagnostic.column), (2, 10), "{error}");
    assert!(diagnostic.message.contains("not UTF-8"), "{error}");
}

#[test]
fn the_corpus_never_panics_and_its_errors_carry_a_line() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz-corpus/workflows");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).expect("the corpus directory exists") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a corpus file");
        let loaded = Workflow::from_yaml_file(&path);
        check(&path, &bytes, &loaded);
        assert!(loaded.is_err(), "{} loads", path.display());
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} corpus files");
}
