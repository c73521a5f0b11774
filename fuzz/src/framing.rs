//! The framing of multi-message inputs (a device's answers to the client, in order): each message is
//! a little-endian `u16` length and that many bytes; the last one may be short. libFuzzer mutates the
//! lengths as well as the messages, so answers split, merge and vanish.

/// Splits `input` into its messages.
pub fn split(mut input: &[u8]) -> Vec<&[u8]> {
    let mut messages = Vec::new();
    while let [lo, hi, rest @ ..] = input {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (message, tail) = rest.split_at(len);
        messages.push(message);
        input = tail;
    }
    messages
}

/// Frames `messages` (each at most 65,535 bytes; longer ones are cut).
pub fn join(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&message[..usize::from(len)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_then_split_gives_the_messages_back() {
        let messages = vec![b"one".to_vec(), Vec::new(), vec![7; 300]];
        let framed = join(&messages);
        let split: Vec<Vec<u8>> = split(&framed).into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(split, messages);
    }

    #[test]
    fn a_short_last_message_and_a_dangling_byte_are_taken_as_they_are() {
        assert_eq!(split(&[5, 0, b'a', b'b']), vec![&b"ab"[..]]);
        assert_eq!(split(&[1, 0, b'a', 9]), vec![&b"a"[..]]);
        assert!(split(&[]).is_empty());
    }
}
