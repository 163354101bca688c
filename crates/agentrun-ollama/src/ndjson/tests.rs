//! Tests of the NDJSON line decoder.

use super::*;

/// Feeds `body` cut at the given offsets and collects every line, the last
/// one without a newline included.
fn lines_of(body: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut decoder = LineDecoder::new(MAX_LINE_BYTES);
    let mut lines = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
        decoder.push(&body[from..cut]);
        from = cut;
        while let Some(line) = decoder.next_line().expect("short lines") {
            lines.push(String::from_utf8(line.to_vec()).expect("utf-8 line"));
        }
    }
    if let Some(rest) = decoder.finish() {
        lines.push(String::from_utf8(rest.to_vec()).expect("utf-8 line"));
    }
    lines
}

#[test]
fn whole_lines_come_out_as_they_went_in() {
    let body = b"{\"a\":1}\n{\"b\":2}\n";
    assert_eq!(lines_of(body, &[]), ["{\"a\":1}", "{\"b\":2}"]);
}

#[test]
fn every_cut_of_the_body_gives_the_same_lines() {
    // A multi-byte character, CRLF, a blank line and a last line without a
    // newline: each cut lands somewhere awkward for one of them.
    let body = "{\"content\":\"déjà vu ✓\"}\r\n\n  {\"done\":true}".as_bytes();
    let expected = ["{\"content\":\"déjà vu ✓\"}", "{\"done\":true}"];
    for first in 0..=body.len() {
        for second in first..=body.len() {
            assert_eq!(
                lines_of(body, &[first, second]),
                expected,
                "cuts at {first} and {second}"
            );
        }
    }
}

#[test]
fn a_byte_at_a_time_works() {
    let body = b"{\"a\":1}\n{\"b\":2}\n";
    let cuts: Vec<usize> = (1..body.len()).collect();
    assert_eq!(lines_of(body, &cuts), ["{\"a\":1}", "{\"b\":2}"]);
}

#[test]
fn a_line_without_end_is_refused_once_too_long() {
    let mut decoder = LineDecoder::new(8);
    decoder.push(b"12345");
    assert_eq!(decoder.next_line(), Ok(None));
    decoder.push(b"6789");
    assert_eq!(decoder.next_line(), Err(LineTooLong { bytes: 9 }));
}

#[test]
fn a_complete_line_that_is_too_long_is_refused() {
    let mut decoder = LineDecoder::new(4);
    decoder.push(b"ok\n123456\n");
    assert_eq!(decoder.next_line(), Ok(Some(&b"ok"[..])));
    assert_eq!(decoder.next_line(), Err(LineTooLong { bytes: 6 }));
}

#[test]
fn the_buffer_does_not_grow_with_the_number_of_lines() {
    let mut decoder = LineDecoder::new(MAX_LINE_BYTES);
    for _ in 0..10_000 {
        decoder.push(b"{\"message\":{\"content\":\"tok\"}}\n{\"mess");
        while decoder.next_line().expect("short lines").is_some() {}
        decoder.push(b"age\":{}}\n");
        while decoder.next_line().expect("short lines").is_some() {}
    }
    assert!(
        decoder.buffer.capacity() < 1024,
        "capacity {}",
        decoder.buffer.capacity()
    );
}
