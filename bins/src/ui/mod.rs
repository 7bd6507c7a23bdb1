//! The full-screen terminal UI of `natter peer` (ratatui on crossterm).
//!
//! The view is a pure function of the state: `state.rs` takes peer
//! events, keys and pastes and says what to do ([`state::Action`]);
//! `view.rs` draws the state; `terminal.rs` (beside this module) owns the
//! real terminal, the threads and the signals, and performs the actions.
//! One concept per file: panes, the roster, scrollback from transcripts,
//! input history, completion, the clock and the colours.

pub mod clock;
pub mod complete;
pub mod history;
pub mod pane;
pub mod roster;
pub mod scrollback;
pub mod state;
pub mod theme;
pub mod view;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod snapshots;
