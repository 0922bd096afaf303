//! Turning a stream of token bytes into text a client can be sent piece by piece: whole UTF-8
//! characters only, and nothing past a stop sequence.

/// Accumulates token bytes and hands out the longest complete UTF-8 prefix. A token may end in
/// the middle of a character (emoji, CJK); its bytes wait for the next token.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds `bytes` and returns the text that is now complete. Invalid sequences become U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix up to `valid` was just checked.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: keep it for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end of generation (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// What a [`StopMatcher`] lets through after a piece of text.
#[derive(Debug, PartialEq, Eq)]
pub struct Released {
    /// Text that can be sent now.
    pub text: String,
    /// A stop sequence was found: `text` ends just before it and generation must end.
    pub stopped: bool,
}

/// Holds back text that might be the beginning of a stop sequence until it is sure.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub fn new(stops: impl IntoIterator<Item = String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        Self {
            stops,
            held: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> Released {
        self.held.push_str(text);
        if self.stops.is_empty() {
            return Released {
                text: std::mem::take(&mut self.held),
                stopped: false,
            };
        }
        if let Some(at) = first_stop(&self.held, &self.stops) {
            self.held.truncate(at);
            return Released {
                text: std::mem::take(&mut self.held),
                stopped: true,
            };
        }
        // Keep the longest tail of `held` that some stop sequence starts with.
        let keep = self
            .stops
            .iter()
            .map(|stop| longest_suffix_prefix(&self.held, stop))
            .max()
            .unwrap_or(0);
        let split = self.held.len() - keep;
        let rest = self.held.split_off(split);
        Released {
            text: std::mem::replace(&mut self.held, rest),
            stopped: false,
        }
    }

    /// The text still held back when generation ends for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Where generation stops in `text`: at the first stop sequence to be complete, as if the text
/// came one byte at a time (however it was cut into pieces), cut where the earliest stop
/// sequence complete by then begins.
fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    let end = stops
        .iter()
        .filter_map(|s| text.find(s.as_str()).map(|at| at + s.len()))
        .min()?;
    stops
        .iter()
        .filter_map(|s| text[..end].find(s.as_str()))
        .min()
}

/// The length in bytes of the longest suffix of `text` that is a proper prefix of `stop`, on a
/// character boundary of both.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && stop.is_char_boundary(n) && text[start..] == stop[..n]
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn split_characters_wait_for_their_last_byte() {
        let bytes = "é🙂".as_bytes();
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&bytes[..1]), "");
        assert_eq!(s.push(&bytes[1..3]), "é");
        assert_eq!(s.push(&bytes[3..5]), "");
        assert_eq!(s.push(&bytes[5..]), "🙂");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(s.push(b"\xe2\x82"), "");
        assert_eq!(
            s.finish(),
            "\u{fffd}",
            "an unfinished character is one replacement"
        );
    }

    #[test]
    fn stop_sequences_cut_the_text_even_across_tokens() {
        let mut m = StopMatcher::new(["\nUser:".to_string()]);
        assert_eq!(
            m.push("Hello"),
            Released {
                text: "Hello".into(),
                stopped: false
            }
        );
        assert_eq!(
            m.push(" there\nUs"),
            Released {
                text: " there".into(),
                stopped: false
            }
        );
        assert_eq!(
            m.push("er: hi"),
            Released {
                text: String::new(),
                stopped: true
            }
        );
    }

    #[test]
    fn a_false_start_is_released() {
        let mut m = StopMatcher::new(["END".to_string()]);
        assert_eq!(m.push("the EN").text, "the ");
        assert!(m.push("D").stopped);
        let mut m = StopMatcher::new(["END".to_string()]);
        assert_eq!(m.push("the EN").text, "the ");
        assert_eq!(m.push("ding").text, "ENding");
        assert_eq!(m.finish(), "");
    }

    proptest! {
        #[test]
        fn pieces_add_up_to_the_text_before_the_first_stop(
            text in "[ab\n]{0,40}",
            stops in proptest::collection::vec("[ab\n]{1,4}", 0..3),
            cuts in proptest::collection::vec(0usize..40, 0..10),
        ) {
            let mut m = StopMatcher::new(stops.clone());
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.sort_unstable();
            cuts.push(text.len());
            let (mut out, mut last, mut stopped) = (String::new(), 0, false);
            for c in cuts {
                let r = m.push(&text[last..c]);
                out.push_str(&r.text);
                last = c;
                if r.stopped { stopped = true; break; }
            }
            if !stopped { out.push_str(&m.finish()); }
            // The stop that is complete first ends the text, at the start of the earliest
            // stop complete by then.
            let end = stops.iter().filter_map(|s| text.find(s.as_str()).map(|at| at + s.len())).min();
            let expected = match end {
                Some(end) => {
                    let at = stops.iter().filter_map(|s| text[..end].find(s.as_str())).min();
                    &text[..at.unwrap_or(end)]
                }
                None => &text[..],
            };
            prop_assert_eq!(out, expected);
            prop_assert_eq!(stopped, stops.iter().any(|s| text.contains(s.as_str())));
        }
    }
}
