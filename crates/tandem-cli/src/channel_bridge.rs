//! `tandem view --channel NAME`: bridges one virtual channel to stdin and
//! stdout, line by line, so scripts can talk to the sharer's application.
//!
//! - Each line read on stdin (without its `\n`) is one message to the
//!   sharer; a line longer than a channel message (65520 bytes) is refused
//!   with a line on stderr and skipped. End of input ends only the sending
//!   side: viewing goes on until `--seconds`, `--frames`, a signal or the
//!   node's goodbye.
//! - Each message from the sharer is written to stdout followed by `\n`.
//!   Messages the node had to drop (this viewer read too slowly) are told
//!   on stderr.
//!
//! The clipboard is the channel named `clipboard` (interactive attendees
//! only, when the sharer has turned clipboard sharing on).

use std::io::{BufRead, Read, Write};

use tandem_proto::MAX_CHANNEL_MESSAGE;
use tandem_viewer::{ChannelIncoming, ChannelLink};
use tokio::sync::mpsc;

/// Lines read ahead of the network.
const OUTGOING_QUEUE: usize = 64;

/// Starts the stdin reader (a thread) and the stdout writer (a task on
/// `runtime`); returns the link for the viewer.
pub fn start(name: String, runtime: &tokio::runtime::Handle) -> ChannelLink {
    let (out_tx, outgoing) = mpsc::channel(OUTGOING_QUEUE);
    let (incoming, mut in_rx) = mpsc::channel(tandem_viewer::channels::INCOMING_QUEUE);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_stdin(&out_tx))
        .expect("spawning the stdin thread");
    let channel = name.clone();
    runtime.spawn(async move {
        while let Some(item) = in_rx.recv().await {
            match item {
                ChannelIncoming::Data(data) => {
                    let mut out = std::io::stdout().lock();
                    let ok = out
                        .write_all(&data)
                        .and_then(|()| out.write_all(b"\n"))
                        .and_then(|()| out.flush());
                    if ok.is_err() {
                        // stdout closed: nobody listens any more.
                        return;
                    }
                }
                ChannelIncoming::Dropped(n) => {
                    eprintln!(
                        "channel {channel}: {n} message(s) dropped by the node (read too slowly)"
                    );
                }
            }
        }
    });
    ChannelLink {
        name,
        outgoing,
        incoming,
    }
}

fn read_stdin(tx: &mpsc::Sender<Vec<u8>>) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        let mut line = Vec::new();
        // Bounded: never buffer more than one message and its newline.
        let mut limited = (&mut input).take((MAX_CHANNEL_MESSAGE + 2) as u64);
        match limited.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
        }
        if line.len() > MAX_CHANNEL_MESSAGE {
            eprintln!(
                "stdin line longer than {MAX_CHANNEL_MESSAGE} bytes: skipped (a channel message is at most that)"
            );
            // Skip to the end of the long line, in bounded pieces.
            if !complete && skip_line(&mut input).is_none() {
                return;
            }
            continue;
        }
        if tx.blocking_send(line).is_err() {
            return;
        }
    }
}

/// Skips the rest of a line, in bounded pieces; `None` at the end of input.
fn skip_line(input: &mut impl BufRead) -> Option<()> {
    loop {
        let mut rest = Vec::new();
        match input
            .take(MAX_CHANNEL_MESSAGE as u64)
            .read_until(b'\n', &mut rest)
        {
            Ok(0) | Err(_) => return None,
            Ok(_) if rest.last() == Some(&b'\n') => return Some(()),
            Ok(_) => {}
        }
    }
}
