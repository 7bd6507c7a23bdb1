//! Newline-delimited JSON framing with an incremental, bounded decoder.
//!
//! TCP delivers a byte stream, not messages: the old program read whatever
//! `recv` returned and printed it, which is how garbage reached transcripts.
//! [`FrameDecoder`] accepts bytes in any split and yields whole frames only;
//! feeding a stream byte by byte or in one piece gives the same frames.
//!
//! Memory is bounded: at most `max_line` bytes of an unfinished line are
//! kept. A longer line is reported once as [`DecodeError::TooLong`] and its
//! remaining bytes are skipped up to the next newline, so the decoder stays
//! usable (the state machines close the link anyway).
//!
//! A frame of a type this build does not know is skipped and counted, not
//! an error: a newer side may send message types an older one never heard
//! of (protocol version 2, `docs/PROTOCOL.md`), and the link must survive
//! them.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::VecDeque;
use std::marker::PhantomData;
use thiserror::Error;

/// Why a line could not become a frame.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("line longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("line is not valid JSON: {0}")]
    BadJson(String),
    #[error("frame has no \"type\" field")]
    MissingType,
    #[error("frame of type {kind:?} has bad fields: {detail}")]
    BadFields { kind: String, detail: String },
}

/// Serializes one frame: compact JSON and a trailing newline.
pub fn encode<T: Serialize>(frame: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(frame).expect("protocol types always serialize");
    bytes.push(b'\n');
    bytes
}

/// Splits a byte stream into lines, keeping at most `max_line` bytes of an
/// unfinished line.
#[derive(Debug)]
pub struct LineDecoder {
    max_line: usize,
    partial: Vec<u8>,
    /// True while skipping the rest of an over-long line.
    skipping: bool,
    ready: VecDeque<Result<Vec<u8>, DecodeError>>,
}

impl LineDecoder {
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            partial: Vec::new(),
            skipping: false,
            ready: VecDeque::new(),
        }
    }

    /// Takes the next chunk of the stream. Complete lines become available
    /// from [`LineDecoder::next_line`]; the queue never holds more than
    /// the lines of the chunks not yet drained.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (piece, rest, complete) = match newline {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if self.skipping {
                self.skipping = !complete;
                continue;
            }
            if self.partial.len() + piece.len() > self.max_line {
                self.partial = Vec::new();
                self.skipping = !complete;
                self.ready.push_back(Err(DecodeError::TooLong {
                    limit: self.max_line,
                }));
                continue;
            }
            self.partial.extend_from_slice(piece);
            if complete {
                let mut line = std::mem::take(&mut self.partial);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                // Blank lines (an `nc` user pressing Enter) carry nothing.
                if !line.iter().all(u8::is_ascii_whitespace) {
                    self.ready.push_back(Ok(line));
                }
            }
        }
    }

    /// The next complete line (newline and a trailing `\r` removed).
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, DecodeError>> {
        let line = self.ready.pop_front();
        if self.ready.is_empty() {
            // An idle connection keeps no queue: with 10,000 connections the
            // 4-slot buffer a queue keeps after its first line adds up.
            self.ready = VecDeque::new();
        }
        line
    }

    /// Bytes held for an unfinished line: never more than `max_line`.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Memory held for an unfinished line: its buffer, which grows by
    /// doubling (up to twice [`LineDecoder::buffered`]).
    pub fn held_memory(&self) -> usize {
        self.partial.capacity()
    }

    /// Changes the limit for the lines still to come (a server lowers it
    /// once a client has registered: no later request needs as much).
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }
}

/// Decodes a byte stream into frames of type `T`.
#[derive(Debug)]
pub struct FrameDecoder<T> {
    lines: LineDecoder,
    /// Frames of an unknown type skipped so far.
    ignored: u64,
    _frame: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> FrameDecoder<T> {
    pub fn new(max_line: usize) -> Self {
        Self {
            lines: LineDecoder::new(max_line),
            ignored: 0,
            _frame: PhantomData,
        }
    }

    /// Takes the next chunk of the stream, split anywhere.
    pub fn push(&mut self, bytes: &[u8]) {
        self.lines.push(bytes);
    }

    /// The next complete frame, or the reason the next line is not one.
    /// Frames of an unknown type are skipped (see [`FrameDecoder::ignored`]).
    pub fn next_frame(&mut self) -> Option<Result<T, DecodeError>> {
        loop {
            let line = match self.lines.next_line()? {
                Ok(line) => line,
                Err(e) => return Some(Err(e)),
            };
            match parse_line(&line) {
                Parsed::Frame(frame) => return Some(Ok(frame)),
                Parsed::Bad(e) => return Some(Err(e)),
                Parsed::UnknownType => self.ignored += 1,
            }
        }
    }

    /// Bytes held for an unfinished line.
    pub fn buffered(&self) -> usize {
        self.lines.buffered()
    }

    /// See [`LineDecoder::held_memory`].
    pub fn held_memory(&self) -> usize {
        self.lines.held_memory()
    }

    /// See [`LineDecoder::set_max_line`].
    pub fn set_max_line(&mut self, max_line: usize) {
        self.lines.set_max_line(max_line);
    }

    /// Frames skipped so far because their `type` is unknown to this build.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }
}

/// What one line turned out to be.
enum Parsed<T> {
    Frame(T),
    /// A well-formed object whose `type` this build does not know.
    UnknownType,
    Bad(DecodeError),
}

/// Parses one line; on failure, works out which kind of failure it was so
/// the reply can say what to fix.
fn parse_line<T: DeserializeOwned>(line: &[u8]) -> Parsed<T> {
    let Ok(text) = std::str::from_utf8(line) else {
        return Parsed::Bad(DecodeError::NotUtf8);
    };
    let error = match serde_json::from_str::<T>(text) {
        Ok(frame) => return Parsed::Frame(frame),
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Parsed::Bad(DecodeError::BadJson(e.to_string()))
        }
        Err(e) => e,
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return Parsed::Bad(DecodeError::BadJson(e.to_string())),
    };
    let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
        return Parsed::Bad(DecodeError::MissingType);
    };
    let detail = error.to_string();
    // serde names the tag it could not match; a value of an enum field
    // never matches here, since every enum in the protocol has an
    // `unknown` fallback.
    if detail.starts_with(&format!("unknown variant `{kind}`")) {
        Parsed::UnknownType
    } else {
        Parsed::Bad(DecodeError::BadFields {
            kind: kind.to_string(),
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ClientMsg, PeerMsg, PeerStatus, ServerMsg};
    use proptest::prelude::*;

    fn decode_all(decoder: &mut FrameDecoder<PeerMsg>) -> Vec<Result<PeerMsg, DecodeError>> {
        std::iter::from_fn(|| decoder.next_frame()).collect()
    }

    fn sample_stream() -> (Vec<u8>, Vec<PeerMsg>) {
        let frames = vec![
            PeerMsg::Hello {
                versions: crate::protocol::Versions::ours(),
                name: "alice".into(),
                max_message: None,
            },
            PeerMsg::Msg {
                n: 1,
                text: "hi zuzu — ünïcödé 👋".into(),
                at: "2026-11-25T11:08:54.123Z".into(),
            },
            PeerMsg::Ack { n: 1 },
            PeerMsg::Bye,
        ];
        let bytes = frames.iter().flat_map(encode).collect();
        (bytes, frames)
    }

    #[test]
    fn whole_stream_decodes_to_the_frames_sent() {
        let (bytes, frames) = sample_stream();
        let mut decoder = FrameDecoder::<PeerMsg>::new(1024);
        decoder.push(&bytes);
        let got: Vec<_> = decode_all(&mut decoder)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, frames);
        assert_eq!(decoder.buffered(), 0);
    }

    proptest! {
        /// Any split of the byte stream decodes to the same frames.
        #[test]
        fn any_split_of_the_stream_decodes_to_the_same_frames(
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40)
        ) {
            let (bytes, frames) = sample_stream();
            let mut positions: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            positions.push(0);
            positions.push(bytes.len());
            positions.sort_unstable();
            let mut decoder = FrameDecoder::<PeerMsg>::new(1024);
            let mut got = Vec::new();
            for pair in positions.windows(2) {
                decoder.push(&bytes[pair[0]..pair[1]]);
                got.extend(decode_all(&mut decoder).into_iter().map(Result::unwrap));
            }
            prop_assert_eq!(got, frames);
        }

        /// Whatever bytes arrive, the decoder never holds more than its limit
        /// of an unfinished line, and never panics.
        #[test]
        fn arbitrary_bytes_never_grow_the_buffer_past_the_limit(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..30)
        ) {
            let mut decoder = FrameDecoder::<ClientMsg>::new(100);
            for chunk in &chunks {
                decoder.push(chunk);
                prop_assert!(decoder.buffered() <= 100);
                while decoder.next_frame().is_some() {}
            }
        }
    }

    #[test]
    fn byte_by_byte_equals_one_piece() {
        let (bytes, frames) = sample_stream();
        let mut decoder = FrameDecoder::<PeerMsg>::new(1024);
        let mut got = Vec::new();
        for b in &bytes {
            decoder.push(std::slice::from_ref(b));
            got.extend(decode_all(&mut decoder).into_iter().map(Result::unwrap));
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn over_long_line_is_one_error_and_the_next_line_still_decodes() {
        let mut decoder = FrameDecoder::<PeerMsg>::new(16);
        decoder.push(&[b'x'; 10]);
        decoder.push(&[b'x'; 10]);
        assert!(decoder.buffered() <= 16);
        decoder.push(&[b'x'; 1000]);
        assert_eq!(decoder.buffered(), 0);
        decoder.push(b"xx\n{\"type\":\"bye\"}\n");
        assert_eq!(
            decode_all(&mut decoder),
            vec![Err(DecodeError::TooLong { limit: 16 }), Ok(PeerMsg::Bye)]
        );
    }

    #[test]
    fn each_kind_of_bad_line_is_its_own_error() {
        let mut decoder = FrameDecoder::<PeerMsg>::new(1024);
        decoder.push(b"\xff\xfe\n");
        decoder.push(b"{not json\n");
        decoder.push(b"{\"n\":1}\n");
        decoder.push(b"{\"type\":\"ack\",\"n\":\"one\"}\n");
        let got = decode_all(&mut decoder);
        assert_eq!(got[0], Err(DecodeError::NotUtf8));
        assert!(matches!(got[1], Err(DecodeError::BadJson(_))));
        assert_eq!(got[2], Err(DecodeError::MissingType));
        assert!(matches!(&got[3], Err(DecodeError::BadFields { kind, .. }) if kind == "ack"));
        assert_eq!(got.len(), 4);
        assert_eq!(decoder.ignored(), 0);
    }

    #[test]
    fn a_frame_type_from_a_newer_side_is_skipped_and_counted() {
        let mut decoder = FrameDecoder::<PeerMsg>::new(1024);
        decoder.push(b"{\"type\":\"ping\"}\n");
        decoder.push(b"{\"type\":\"typing\",\"n\":3,\"until\":\"soon\"}\n");
        decoder.push(b"{\"type\":\"launch_missiles\"}\n{\"type\":\"ack\",\"n\":1}\n");
        assert_eq!(
            decode_all(&mut decoder),
            vec![Ok(PeerMsg::Ping), Ok(PeerMsg::Ack { n: 1 })]
        );
        assert_eq!(decoder.ignored(), 2);
    }

    #[test]
    fn unknown_fields_and_an_unknown_status_from_a_newer_server_still_parse() {
        let mut decoder = FrameDecoder::<ServerMsg>::new(1024);
        decoder.push(
            b"{\"type\":\"peers\",\"id\":7,\"shard\":3,\"peers\":[{\"name\":\"bob\",\
              \"addr\":\"10.0.0.2:4000\",\"status\":\"away\",\"reachable\":true,\
              \"fingerprint\":\"x\"}],\"more\":false}\n",
        );
        let Some(Ok(ServerMsg::Peers { id, peers, more })) = decoder.next_frame() else {
            panic!("not a peers frame");
        };
        assert_eq!((id, more), (Some(7), false));
        assert_eq!(peers[0].status, PeerStatus::Unknown);
        assert_eq!(decoder.ignored(), 0);
    }

    #[test]
    fn crlf_and_blank_lines_from_nc_users_are_accepted() {
        let mut decoder = FrameDecoder::<ClientMsg>::new(1024);
        decoder.push(b"\r\n\n{\"type\":\"list\"}\r\n");
        assert_eq!(
            decode_all_client(&mut decoder),
            vec![Ok(ClientMsg::List { id: None })]
        );
    }

    fn decode_all_client(d: &mut FrameDecoder<ClientMsg>) -> Vec<Result<ClientMsg, DecodeError>> {
        std::iter::from_fn(|| d.next_frame()).collect()
    }
}
