//! Agent scorecards under standard 003 (seed 003): established violations of
//! one agent in one calendar month, and the levels and consequences they add
//! up to.
//!
//! - level 1 (违规记录): each of items 1-5 established once → written warning;
//! - 3 level-1 records in the month, or item 6 once → month failed, 70 % pay;
//! - level 2 (严重违规): item 6 ≥ 4 times, or one of items 1-5 ≥ 3 times
//!   (each full multiple counts again) → also a 1-month freeze;
//! - level 3 (重大违规): item 7 once, or level 2 twice → 3-month freeze;
//! - level 4 (高压线): any of items 8-15 once → permanent freeze.
//!
//! A judgement counts when it was established and not overturned on appeal
//! (an appeal still pending leaves it standing). The month is the local
//! calendar month of the incident (`elements.when`).

use super::board::JudgementFact;
use crate::proto::v1 as pb;

/// The scorecard of `agent` for `month` ("YYYY-MM") from its judgements.
pub fn scorecard<'a>(
    agent: &str,
    month: &str,
    judgements: impl Iterator<Item = &'a JudgementFact>,
    view: impl Fn(&JudgementFact) -> pb::JudgementView,
) -> pb::Scorecard {
    let mut counts = [0u32; 16];
    let mut counted = Vec::new();
    let mut overturned = Vec::new();
    for j in judgements {
        if !j.judgement.established {
            continue;
        }
        if j.appeal_upheld == Some(false) {
            overturned.push(view(j));
            continue;
        }
        if let Some(c) = counts.get_mut(j.judgement.item as usize) {
            *c += 1;
        }
        counted.push(view(j));
    }
    let level1: u32 = counts[1..=5].iter().sum();
    let level2 = counts[6] / 4 + counts[1..=5].iter().map(|c| c / 3).sum::<u32>();
    let level3 = counts[7] + level2 / 2;
    let level4: u32 = counts[8..=15].iter().sum();
    let highest = if level4 > 0 {
        4
    } else if level3 > 0 {
        3
    } else if level2 > 0 {
        2
    } else if level1 > 0 {
        1
    } else {
        0
    };
    let month_failed = level1 >= 3 || counts[6] >= 1 || highest >= 2;
    let freeze_months = match highest {
        4 => -1,
        3 => 3,
        2 => 1,
        _ => 0,
    };
    let mut consequences = Vec::new();
    if level1 > 0 {
        consequences.push(format!(
            "{level1} written warning(s) (书面警告) for level-1 records"
        ));
    }
    if month_failed {
        consequences.push("month failed (当月绩效不合格): 70% pay".to_string());
    }
    match freeze_months {
        -1 => consequences.push("service qualification frozen permanently (永久冻结)".into()),
        0 => {}
        n => consequences.push(format!("service qualification frozen for {n} month(s)")),
    }
    pb::Scorecard {
        agent_id: agent.to_string(),
        month: month.to_string(),
        items: (1..=15)
            .filter(|i| counts[*i] > 0)
            .map(|i| pb::ItemCount {
                item: i as u32,
                established: counts[i],
            })
            .collect(),
        level1_records: level1,
        level2_records: level2,
        level3_records: level3,
        level4_records: level4,
        highest_level: highest,
        month_failed,
        pay_percent: if month_failed { 70 } else { 100 },
        freeze_months,
        consequences,
        judgements: counted,
        overturned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(items: &[u32]) -> Vec<JudgementFact> {
        items
            .iter()
            .enumerate()
            .map(|(n, item)| JudgementFact {
                case_id: "c".into(),
                event_id: format!("e{n}"),
                judgement: pb::ViolationJudged {
                    judgement_id: format!("j{n}"),
                    agent_id: "8030".into(),
                    item: *item,
                    established: true,
                    ..Default::default()
                },
                appealed_at: None,
                appeal_upheld: None,
            })
            .collect()
    }

    fn card(items: &[u32]) -> pb::Scorecard {
        card_of(&judged(items))
    }

    fn card_of(j: &[JudgementFact]) -> pb::Scorecard {
        scorecard("8030", "2020-12", j.iter(), |_| {
            pb::JudgementView::default()
        })
    }

    #[test]
    fn level_1_each_of_items_1_to_5_is_a_written_warning() {
        let c = card(&[1]);
        assert_eq!(
            (c.level1_records, c.highest_level, c.month_failed),
            (1, 1, false)
        );
        assert_eq!((c.pay_percent, c.freeze_months), (100, 0));
        let c = card(&[2, 5]);
        assert_eq!(
            (c.level1_records, c.highest_level, c.month_failed),
            (2, 1, false)
        );
    }

    #[test]
    fn three_level_1_records_fail_the_month() {
        let c = card(&[1, 2, 3]);
        assert_eq!((c.level1_records, c.level2_records), (3, 0));
        assert!(c.month_failed);
        assert_eq!(
            (c.highest_level, c.pay_percent, c.freeze_months),
            (1, 70, 0)
        );
    }

    #[test]
    fn item_6_once_fails_the_month() {
        let c = card(&[6]);
        assert!(c.month_failed);
        assert_eq!(
            (c.level2_records, c.pay_percent, c.freeze_months),
            (0, 70, 0)
        );
    }

    #[test]
    fn item_6_four_times_is_level_2() {
        assert_eq!(card(&[6, 6, 6]).level2_records, 0);
        let c = card(&[6, 6, 6, 6]);
        assert_eq!(
            (c.level2_records, c.highest_level, c.freeze_months),
            (1, 2, 1)
        );
        assert!(c.month_failed);
    }

    #[test]
    fn one_level_1_item_three_times_is_level_2() {
        let c = card(&[1, 1, 1]);
        assert_eq!(
            (c.level1_records, c.level2_records, c.highest_level),
            (3, 1, 2)
        );
        // Three different items are three records, not a level 2.
        assert_eq!(card(&[1, 2, 3]).level2_records, 0);
    }

    #[test]
    fn item_7_once_is_level_3() {
        let c = card(&[7]);
        assert_eq!(
            (c.level3_records, c.highest_level, c.freeze_months),
            (1, 3, 3)
        );
        assert_eq!(c.pay_percent, 70);
    }

    #[test]
    fn level_2_twice_is_level_3() {
        let c = card(&[1, 1, 1, 2, 2, 2]);
        assert_eq!(
            (c.level2_records, c.level3_records, c.highest_level),
            (2, 1, 3)
        );
        let c = card(&[6, 6, 6, 6, 6, 6, 6, 6]);
        assert_eq!((c.level2_records, c.level3_records), (2, 1));
    }

    #[test]
    fn any_of_items_8_to_15_is_level_4() {
        for item in 8..=15 {
            let c = card(&[item]);
            assert_eq!(
                (c.level4_records, c.highest_level, c.freeze_months),
                (1, 4, -1)
            );
            assert!(c.month_failed);
        }
    }

    #[test]
    fn overturned_and_unestablished_judgements_do_not_count() {
        let mut j = judged(&[7, 1]);
        j[0].appeal_upheld = Some(false);
        j[1].judgement.established = false;
        let c = card_of(&j);
        assert_eq!((c.highest_level, c.level3_records), (0, 0));
        assert_eq!(c.overturned.len(), 1);
        // An appeal still pending, or decided against the agent, stands.
        let mut j = judged(&[7]);
        j[0].appealed_at = Some(1);
        assert_eq!(card_of(&j).highest_level, 3);
        j[0].appeal_upheld = Some(true);
        assert_eq!(card_of(&j).highest_level, 3);
    }
}
