//! Property tests of reply decoding: however the network cuts a body, it decodes to
//! what the whole body decodes to, and no body makes decoding panic. Bodies found
//! interesting are kept in `tests/fuzz-corpus/ndjson/` at the repository root.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// What a body decodes to: the text streamed to the sink and the outcome, an error as
/// its message.
#[derive(Debug, PartialEq)]
struct Decoded {
    streamed: String,
    outcome: Result<ChatResponse, String>,
}

fn target() -> Target<'static> {
    Target::model("http://127.0.0.1:11434", "coder", "POST /api/chat")
}

/// Decodes `body` delivered in pieces ending at `cuts` (any order, any values), the way
/// [`chat`] reads a response body.
fn decode(body: &[u8], cuts: &[usize], max_line_bytes: usize) -> Decoded {
    let mut ends: Vec<usize> = cuts.iter().map(|cut| cut % (body.len() + 1)).collect();
    ends.push(body.len());
    ends.sort_unstable();
    let mut streamed = String::new();
    let outcome = {
        let mut sink = |text: &str| streamed.push_str(text);
        let mut decoder = LineDecoder::new(max_line_bytes);
        let mut reply = ReplyBuilder::default();
        let mut from = 0;
        let mut outcome = None;
        for end in ends {
            decoder.push(&body[from..end]);
            from = end;
            match reply.read_lines(&mut decoder, target(), &mut sink) {
                Ok(None) => {}
                Ok(Some(response)) => {
                    outcome = Some(Ok(response));
                    break;
                }
                Err(error) => {
                    outcome = Some(Err(error.to_string()));
                    break;
                }
            }
        }
        outcome.unwrap_or_else(|| match decoder.finish() {
            Some(line) => match reply.read_line(line, target(), &mut sink) {
                Ok(Some(response)) => Ok(response),
                Ok(None) => Err("ended without done".to_owned()),
                Err(error) => Err(error.to_string()),
            },
            None => Err("ended without done".to_owned()),
        })
    };
    Decoded {
        streamed,
        outcome: outcome.map_err(|message| without_line_length(&message)),
    }
}

/// A line that is too long is refused as soon as the decoder holds more than the
/// limit, so how much of it had arrived depends on the cuts; the rest does not.
fn without_line_length(message: &str) -> String {
    if message.contains("exceeded") {
        message.replace(|c: char| c.is_ascii_digit(), "")
    } else {
        message.to_owned()
    }
}

/// One line of a reply body, as a generator picks it.
#[derive(Debug, Clone)]
enum Line {
    Piece(String),
    Done,
    Error(String),
    Garbage(Vec<u8>),
    Blank,
}

impl Line {
    fn bytes(&self) -> Vec<u8> {
        let value = match self {
            Line::Piece(text) => {
                json!({"model": "coder", "message": {"role": "assistant", "content": text}, "done": false})
            }
            Line::Done => json!({"model": "coder", "message": {"role": "assistant", "content": ""},
                                 "done": true, "done_reason": "stop", "eval_count": 7}),
            Line::Error(message) => json!({"error": message}),
            // Never JSON, never blank.
            Line::Garbage(bytes) => return [b"#".as_slice(), bytes].concat(),
            Line::Blank => return Vec::new(),
        };
        serde_json::to_vec(&value).expect("JSON serializes")
    }
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        6 => "\\PC{0,12}".prop_map(Line::Piece),
        1 => Just(Line::Done),
        1 => "[ -~]{0,20}".prop_map(Line::Error),
        1 => proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..40)
            .prop_map(Line::Garbage),
        1 => Just(Line::Blank),
    ]
}

/// Joins lines with `\n` or `\r\n`, with or without a last newline.
fn body_of(lines: &[Line], crlf: bool, last_newline: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        body.extend(line.bytes());
        if index + 1 < lines.len() || last_newline {
            body.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
    }
    body
}

/// What the lines mean, read in order: the reply up to the first `done`, or the
/// failure that comes first.
fn expected(lines: &[Line]) -> Result<String, ()> {
    let mut content = String::new();
    for line in lines {
        match line {
            Line::Piece(text) => content.push_str(text),
            Line::Done => return Ok(content),
            Line::Blank => {}
            Line::Error(_) | Line::Garbage(_) => return Err(()),
        }
    }
    Err(())
}

/// Every cut of the body, one at a time and byte by byte.
fn check_every_cut(body: &[u8]) -> Decoded {
    let whole = decode(body, &[], MAX_LINE_BYTES);
    for cut in 0..=body.len() {
        assert_eq!(decode(body, &[cut], MAX_LINE_BYTES), whole, "cut at {cut}");
    }
    let bytes: Vec<usize> = (0..body.len()).collect();
    assert_eq!(decode(body, &bytes, MAX_LINE_BYTES), whole, "byte by byte");
    whole
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_valid_reply_decodes_whole_however_it_is_cut(
        pieces in proptest::collection::vec("\\PC{0,16}", 0..12),
        crlf in any::<bool>(),
        last_newline in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
    ) {
        let mut lines: Vec<Line> = pieces.iter().cloned().map(Line::Piece).collect();
        lines.push(Line::Done);
        let body = body_of(&lines, crlf, last_newline);
        let decoded = decode(&body, &cuts, MAX_LINE_BYTES);
        let response = decoded.outcome.as_ref().expect("a valid reply decodes");
        prop_assert_eq!(&response.message.content, &pieces.concat());
        prop_assert_eq!(&decoded.streamed, &pieces.concat());
        prop_assert_eq!(response.metrics.eval_count, Some(7));
        prop_assert_eq!(decoded, decode(&body, &[], MAX_LINE_BYTES));
    }

    #[test]
    fn any_mix_of_lines_decodes_the_same_however_it_is_cut_and_never_keeps_a_broken_reply(
        lines in proptest::collection::vec(line(), 0..16),
        crlf in any::<bool>(),
        last_newline in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
    ) {
        let body = body_of(&lines, crlf, last_newline);
        let whole = decode(&body, &[], MAX_LINE_BYTES);
        prop_assert_eq!(&decode(&body, &cuts, MAX_LINE_BYTES), &whole);
        match expected(&lines) {
            Ok(content) => {
                let response = whole.outcome.as_ref().expect("the reply is complete");
                prop_assert_eq!(&response.message.content, &content);
            }
            Err(()) => prop_assert!(whole.outcome.is_err(), "a broken reply was kept: {:?}", whole),
        }
    }

    #[test]
    fn lines_over_the_limit_fail_the_same_however_they_are_cut(
        lines in proptest::collection::vec(line(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
    ) {
        let body = body_of(&lines, false, true);
        prop_assert_eq!(decode(&body, &cuts, 48), decode(&body, &[], 48));
    }

    #[test]
    fn arbitrary_bytes_decode_the_same_however_they_are_cut(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
    ) {
        let whole = decode(&body, &[], MAX_LINE_BYTES);
        prop_assert_eq!(decode(&body, &cuts, MAX_LINE_BYTES), whole);
    }
}

#[test]
fn the_corpus_decodes_the_same_at_every_cut() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz-corpus/ndjson");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).expect("the corpus directory exists") {
        let path = entry.expect("a corpus entry").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("a UTF-8 file name")
            .to_owned();
        let body = std::fs::read(&path).expect("a corpus file");
        let whole = check_every_cut(&body);
        // The file name says what the body must decode to.
        if name.starts_with("ok-") {
            assert!(whole.outcome.is_ok(), "{name}: {whole:?}");
        } else if name.starts_with("err-") {
            assert!(whole.outcome.is_err(), "{name}: {whole:?}");
        } else {
            panic!("{name}: corpus files start with ok- or err-");
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} corpus files");
}
