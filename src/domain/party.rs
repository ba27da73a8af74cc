//! Who acted on a case and who must act. Contacts and callbacks name the
//! party who made them (or, as before parties existed, an agent by
//! `agent_id`); demands and promises may name the party required to act. One
//! reading of both, so the case view, the promise judgement, the owner's
//! coordination and the agent figures agree on who someone is.

use crate::proto::v1::{Party, PartyKind};

/// The party who acted: `party` when given, else the agent of `agent_id`,
/// else nobody named.
pub fn acting_party(party: Option<&Party>, agent_id: &str) -> Option<Party> {
    match party {
        Some(p) if p.kind != PartyKind::Unspecified as i32 || !p.id.is_empty() => Some(p.clone()),
        _ if !agent_id.is_empty() => Some(Party {
            kind: PartyKind::Agent as i32,
            id: agent_id.to_string(),
        }),
        _ => None,
    }
}

/// Whether `actor` is the party `required` names: the same kind when the
/// requirement gives one, the same id when it gives one. No requirement is
/// met by anyone; a requirement is never met by nobody named.
pub fn meets(required: Option<&Party>, actor: Option<&Party>) -> bool {
    let Some(r) = required.filter(|r| r.kind != PartyKind::Unspecified as i32 || !r.id.is_empty())
    else {
        return true;
    };
    let Some(a) = actor else { return false };
    (r.kind == PartyKind::Unspecified as i32 || r.kind == a.kind)
        && (r.id.is_empty() || r.id == a.id)
}

/// The owner standing at business time `at`, given the case's owner
/// assignments (business time, owner) in the order recorded: the latest
/// assigned by then (of two at one time, the one recorded later).
pub fn owner_at(assignments: &[(i128, Party)], at: i128) -> Option<&Party> {
    assignments
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t <= at)
        .max_by_key(|(i, (t, _))| (*t, *i))
        .map(|(_, (_, p))| p)
}

/// Whether a contact with the customer by `actor` at `at` was made without
/// the case's owner: someone else acted while an owner stood.
pub fn uncoordinated(assignments: &[(i128, Party)], at: i128, actor: Option<&Party>) -> bool {
    owner_at(assignments, at).is_some_and(|owner| !meets(Some(owner), actor))
}

/// `manager 5001`, `agent`, `id 5001`: a party for a line of text.
pub fn describe(p: &Party) -> String {
    let kind = PartyKind::try_from(p.kind)
        .ok()
        .filter(|k| *k != PartyKind::Unspecified)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("PARTY_KIND_")
                .to_lowercase()
        });
    match (kind, p.id.as_str()) {
        (Some(k), "") => k,
        (Some(k), id) => format!("{k} {id}"),
        (None, id) => format!("id {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(kind: PartyKind, id: &str) -> Party {
        Party {
            kind: kind as i32,
            id: id.into(),
        }
    }

    #[test]
    fn an_agent_id_alone_is_an_agent_party() {
        assert_eq!(
            acting_party(None, "8030"),
            Some(party(PartyKind::Agent, "8030"))
        );
        assert_eq!(acting_party(Some(&Party::default()), ""), None);
        let v = party(PartyKind::Volunteer, "mod-7");
        assert_eq!(acting_party(Some(&v), ""), Some(v));
    }

    #[test]
    fn requirements_match_kind_and_id_exactly() {
        let manager = party(PartyKind::Manager, "5001");
        let other_manager = party(PartyKind::Manager, "5002");
        let tech = party(PartyKind::FieldStaff, "t9");
        let any_manager = party(PartyKind::Manager, "");
        assert!(meets(None, None));
        assert!(meets(Some(&Party::default()), Some(&tech)));
        assert!(meets(Some(&any_manager), Some(&manager)));
        assert!(meets(Some(&any_manager), Some(&other_manager)));
        assert!(!meets(Some(&any_manager), Some(&tech)));
        assert!(!meets(Some(&manager), Some(&other_manager)));
        assert!(meets(
            Some(&party(PartyKind::Unspecified, "5001")),
            Some(&manager)
        ));
        assert!(!meets(Some(&any_manager), None));
        assert!(!meets(
            Some(&party(PartyKind::TeamLead, "")),
            Some(&manager)
        ));
    }
}
