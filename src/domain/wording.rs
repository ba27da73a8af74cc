//! The words a timeline line is made of: a channel's name, free text cut to
//! one short line, who must act and who acted.

use super::party::{acting_party, describe};
use crate::proto::v1 as pb;

pub(crate) fn channel(c: i32) -> String {
    pb::Channel::try_from(c)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("CHANNEL_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| c.to_string())
}

pub(crate) fn short(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

/// " (must act: manager 5001)" for a demand or promise that names who.
pub(crate) fn must_act(p: Option<&pb::Party>) -> String {
    match p {
        Some(p) if p.kind != 0 || !p.id.is_empty() => format!(" (must act: {})", describe(p)),
        _ => String::new(),
    }
}

/// " (field_staff t9)": who made a callback, when anyone is named.
pub(crate) fn acted_by(party: Option<&pb::Party>, agent_id: &str) -> String {
    acting_party(party, agent_id)
        .map(|p| format!(" ({})", describe(&p)))
        .unwrap_or_default()
}
