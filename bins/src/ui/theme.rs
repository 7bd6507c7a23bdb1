//! Colours, or none: with `NO_COLOR` set (https://no-color.org) every style
//! keeps only its weight (bold, reversed), so the screen still reads.

use natter_core::protocol::PeerStatus;
use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    colour: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set to anything but the empty string.
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::new(!no_color)
    }

    pub fn new(colour: bool) -> Theme {
        Theme { colour }
    }

    fn paint(&self, style: Style, colour: Color) -> Style {
        if self.colour {
            style.fg(colour)
        } else {
            style
        }
    }

    pub fn time(&self) -> Style {
        self.paint(Style::new(), Color::DarkGray)
    }

    /// The name before a message: yours, or the partner's.
    pub fn author(&self, mine: bool) -> Style {
        let colour = if mine { Color::Cyan } else { Color::Yellow };
        self.paint(Style::new().add_modifier(Modifier::BOLD), colour)
    }

    /// Lines of natter itself (a call, an end, an answer).
    pub fn note(&self) -> Style {
        self.paint(Style::new(), Color::Gray)
    }

    pub fn error(&self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Red)
    }

    pub fn receipt(&self, delivered: bool) -> Style {
        self.paint(
            Style::new(),
            if delivered { Color::Green } else { Color::Red },
        )
    }

    /// The "new messages" divider and the rule before earlier chats.
    pub fn rule(&self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Magenta)
    }

    /// Title rows and the status line.
    pub fn bar(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Whatever asks for attention now: a call ringing, unread messages.
    pub fn alert(&self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::LightRed)
    }

    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn status(&self, status: PeerStatus) -> Style {
        let colour = match status {
            PeerStatus::Available => Color::Green,
            PeerStatus::Chatting => Color::Yellow,
            PeerStatus::Busy => Color::Red,
            PeerStatus::Unknown => Color::DarkGray,
        };
        self.paint(Style::new(), colour)
    }

    pub fn dim(&self) -> Style {
        self.paint(Style::new(), Color::DarkGray)
    }
}
