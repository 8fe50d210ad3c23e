//! The pure retention policy of `prune` (FORMAT.md §10.2, borg 1.2.4 `do_prune`, `prune_within`,
//! `prune_split`): given the candidate archives, the rules, "now" and a time zone, decide for
//! every archive whether it is kept (and by which rule) or pruned. No I/O.
//!
//! Facts this reproduces:
//! * candidates are ordered newest first by start time; ties keep the manifest's order (by name)
//!   reversed, because borg sorts ascending (stably) and then reverses the list;
//! * names ending in `.checkpoint` or `.checkpoint.N` are checkpoints: only the newest one is
//!   kept, and only if it is the newest candidate; they never count for a rule;
//! * `--keep-within` keeps every archive strictly newer than `now - interval`;
//! * the period rules run in the order secondly … yearly on local-time period keys (ISO weeks for
//!   `weekly`); an archive kept by an earlier rule still uses up its period; if a rule with a
//!   positive count kept fewer archives than asked, the oldest archive is kept as
//!   `<rule>[oldest]` (unless already kept); negative counts are unlimited, 0 disables the rule.

use chrono::{Datelike, TimeZone, Timelike};

/// A time-period rule, in the order borg applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodRule {
    /// `--keep-secondly` (and `--keep-last`): `%Y-%m-%d %H:%M:%S`.
    Secondly,
    /// `--keep-minutely`: `%Y-%m-%d %H:%M`.
    Minutely,
    /// `--keep-hourly`: `%Y-%m-%d %H`.
    Hourly,
    /// `--keep-daily`: `%Y-%m-%d`.
    Daily,
    /// `--keep-weekly`: `%G-%V` (ISO year and week).
    Weekly,
    /// `--keep-monthly`: `%Y-%m`.
    Monthly,
    /// `--keep-13weekly` (borg 1.4): quarters of 13 ISO weeks, weeks 1-13, 14-26, 27-39 and
    /// 40 onwards of the ISO year.
    Quarterly13Weekly,
    /// `--keep-3monthly` (borg 1.4): calendar quarters (months 1-3, 4-6, 7-9, 10-12).
    Quarterly3Monthly,
    /// `--keep-yearly`: `%Y`.
    Yearly,
}

impl PeriodRule {
    /// All rules in borg's `PRUNING_PATTERNS` order.
    pub const ALL: [PeriodRule; 9] = [
        PeriodRule::Secondly,
        PeriodRule::Minutely,
        PeriodRule::Hourly,
        PeriodRule::Daily,
        PeriodRule::Weekly,
        PeriodRule::Monthly,
        PeriodRule::Quarterly13Weekly,
        PeriodRule::Quarterly3Monthly,
        PeriodRule::Yearly,
    ];

    /// The rule's name as borg prints it (`daily`).
    pub fn name(self) -> &'static str {
        match self {
            PeriodRule::Secondly => "secondly",
            PeriodRule::Minutely => "minutely",
            PeriodRule::Hourly => "hourly",
            PeriodRule::Daily => "daily",
            PeriodRule::Weekly => "weekly",
            PeriodRule::Monthly => "monthly",
            PeriodRule::Quarterly13Weekly => "quarterly_13weekly",
            PeriodRule::Quarterly3Monthly => "quarterly_3monthly",
            PeriodRule::Yearly => "yearly",
        }
    }

    /// The period key of a local time: equal keys mean the same period.
    fn key(self, t: &chrono::NaiveDateTime) -> [i64; 6] {
        let (y, mo, d) = (t.year() as i64, t.month() as i64, t.day() as i64);
        let (h, mi, s) = (t.hour() as i64, t.minute() as i64, t.second() as i64);
        match self {
            PeriodRule::Secondly => [y, mo, d, h, mi, s],
            PeriodRule::Minutely => [y, mo, d, h, mi, 0],
            PeriodRule::Hourly => [y, mo, d, h, 0, 0],
            PeriodRule::Daily => [y, mo, d, 0, 0, 0],
            PeriodRule::Weekly => {
                let w = t.iso_week();
                [w.year() as i64, w.week() as i64, 0, 0, 0, 0]
            }
            PeriodRule::Monthly => [y, mo, 0, 0, 0, 0],
            PeriodRule::Quarterly13Weekly => {
                let w = t.iso_week();
                let quarter = match w.week() {
                    1..=13 => 1,
                    14..=26 => 2,
                    27..=39 => 3,
                    _ => 4,
                };
                [w.year() as i64, quarter, 0, 0, 0, 0]
            }
            PeriodRule::Quarterly3Monthly => [y, (mo - 1) / 3 + 1, 0, 0, 0, 0],
            PeriodRule::Yearly => [y, 0, 0, 0, 0, 0],
        }
    }
}

/// The retention rules of one `prune` run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// `--keep-within`, in hours (already multiplied out; always > 0 when given).
    pub within_hours: Option<i64>,
    /// Counts per rule, indexed like [`PeriodRule::ALL`]; `None` = not given.
    pub counts: [Option<i64>; 9],
}

impl Rules {
    /// Sets the count of one rule.
    pub fn set(&mut self, rule: PeriodRule, n: Option<i64>) {
        if let Some(i) = PeriodRule::ALL.iter().position(|r| *r == rule) {
            self.counts[i] = n;
        }
    }

    /// borg's "at least one rule" test: a count of 0 counts as not given.
    pub fn any(&self) -> bool {
        self.within_hours.is_some_and(|h| h != 0) || self.counts.iter().any(|c| c.unwrap_or(0) != 0)
    }
}

/// Parses borg's `--keep-within` interval (`N` + one of `H d w m y`; m = 31 days, y = 365
/// days) into hours. The error text is borg's argparse message.
pub fn parse_interval(s: &str) -> Result<i64, String> {
    let Some(suffix) = s.chars().last() else {
        return Err(
            "Unexpected interval time unit \"\": expected one of ['H', 'd', 'w', 'm', 'y']"
                .to_string(),
        );
    };
    let mult: i64 = match suffix {
        'H' => 1,
        'd' => 24,
        'w' => 24 * 7,
        'm' => 24 * 31,
        'y' => 24 * 365,
        other => {
            return Err(format!(
            "Unexpected interval time unit \"{other}\": expected one of ['H', 'd', 'w', 'm', 'y']"
        ))
        }
    };
    let number = &s[..s.len() - suffix.len_utf8()];
    let hours = crate::python::int(number)
        .and_then(|n| n.checked_mul(mult))
        .unwrap_or(-1);
    if hours <= 0 {
        return Err(format!(
            "Unexpected interval number \"{number}\": expected an integer greater than 0"
        ));
    }
    Ok(hours)
}

/// One candidate archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The archive name.
    pub name: String,
    /// Start time, microseconds since the Unix epoch (UTC).
    pub time_us: i64,
    /// The archive id.
    pub id: [u8; 32],
}

/// Why an archive is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    /// `--keep-within`.
    Within,
    /// A period rule.
    Rule(PeriodRule),
    /// A period rule's "keep the oldest archive" fallback.
    Oldest(PeriodRule),
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepReason::Within => f.write_str("within"),
            KeepReason::Rule(r) => f.write_str(r.name()),
            KeepReason::Oldest(r) => write!(f, "{}[oldest]", r.name()),
        }
    }
}

/// The decision for one archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Kept by a rule; `number` counts the archives that rule kept so far (1-based).
    Keep {
        /// The rule.
        reason: KeepReason,
        /// Its running number (`#N` in borg's list).
        number: usize,
    },
    /// The newest candidate is a checkpoint and is kept.
    KeepCheckpoint,
    /// To be deleted.
    Prune,
}

/// The `.checkpoint` / `.checkpoint.N` suffix of a name, if any (`\.checkpoint(\.\d+)?\Z`).
pub fn checkpoint_suffix(name: &str) -> Option<usize> {
    if let Some(stem) = name.strip_suffix(".checkpoint") {
        return Some(stem.len());
    }
    let (head, digits) = name.rsplit_once('.')?;
    if digits.is_empty() || !digits.chars().all(char::is_numeric) {
        return None;
    }
    head.strip_suffix(".checkpoint").map(str::len)
}

/// True for checkpoint archive names.
pub fn is_checkpoint(name: &str) -> bool {
    checkpoint_suffix(name).is_some()
}

/// Converts a UTC instant (µs) to local wall-clock time the way borg's `to_localtime` does
/// (`time.localtime` of the seconds, rounded down).
pub fn local_time<Tz: TimeZone>(time_us: i64, tz: &Tz) -> chrono::NaiveDateTime {
    let secs = time_us.div_euclid(1_000_000);
    match tz.timestamp_opt(secs, 0).earliest() {
        Some(t) => t.naive_local(),
        None => chrono::DateTime::from_timestamp(secs, 0)
            .unwrap_or_default()
            .naive_utc(),
    }
}

/// Orders candidates like borg's `archives.list(sort_by=['ts'], reverse=True)` on a manifest
/// loaded in name order: newest first, equal times by name descending. Returns indices.
pub fn newest_first(archives: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..archives.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&archives[a], &archives[b]);
        (x.time_us, x.name.as_bytes()).cmp(&(y.time_us, y.name.as_bytes()))
    });
    order.reverse();
    order
}

/// Decides keep/prune for every candidate. `now_us` is "now" in µs since the epoch (UTC); `tz`
/// the local time zone of the period keys. The result lists `(index into archives, decision)`
/// in borg's processing order (newest first, see [`newest_first`]).
pub fn decide<Tz: TimeZone>(
    archives: &[Candidate],
    rules: &Rules,
    now_us: i64,
    tz: &Tz,
) -> Vec<(usize, Decision)> {
    let order = newest_first(archives);
    let mut decisions: Vec<Option<Decision>> = vec![None; archives.len()];
    // The newest checkpoint is kept only if it is the newest candidate overall.
    if let Some(&first) = order.first() {
        if is_checkpoint(&archives[first].name) {
            decisions[first] = Some(Decision::KeepCheckpoint);
        }
    }
    let regular: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| !is_checkpoint(&archives[i].name))
        .collect();
    if let Some(hours) = rules.within_hours {
        let span = hours.saturating_mul(3_600_000_000);
        let target = now_us.saturating_sub(span);
        let mut n = 0;
        for &i in &regular {
            if archives[i].time_us > target {
                n += 1;
                decisions[i] = Some(Decision::Keep {
                    reason: KeepReason::Within,
                    number: n,
                });
            }
        }
    }
    let locals: Vec<chrono::NaiveDateTime> = regular
        .iter()
        .map(|&i| local_time(archives[i].time_us, tz))
        .collect();
    for (rule, count) in PeriodRule::ALL.iter().zip(rules.counts.iter()) {
        let Some(n) = *count else { continue };
        if n == 0 {
            continue;
        }
        let mut kept: i64 = 0;
        let mut last: Option<[i64; 6]> = None;
        let mut reached = false;
        for (pos, &i) in regular.iter().enumerate() {
            let key = rule.key(&locals[pos]);
            if last != Some(key) {
                last = Some(key);
                if decisions[i].is_none() {
                    kept += 1;
                    decisions[i] = Some(Decision::Keep {
                        reason: KeepReason::Rule(*rule),
                        number: kept as usize,
                    });
                    if kept == n {
                        reached = true;
                        break;
                    }
                }
            }
        }
        if !reached && kept < n {
            if let Some(&oldest) = regular.last() {
                if decisions[oldest].is_none() {
                    kept += 1;
                    decisions[oldest] = Some(Decision::Keep {
                        reason: KeepReason::Oldest(*rule),
                        number: kept as usize,
                    });
                }
            }
        }
    }
    order
        .into_iter()
        .map(|i| (i, decisions[i].unwrap_or(Decision::Prune)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate, Utc};
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|x| x.and_hms_opt(h, mi, s))
            .map(|x| x.and_utc().timestamp_micros())
            .unwrap_or(0)
    }

    fn cand(name: &str, t: i64) -> Candidate {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&t.to_be_bytes());
        id[8] = name.len() as u8;
        Candidate {
            name: name.to_string(),
            time_us: t,
            id,
        }
    }

    fn rules(pairs: &[(PeriodRule, i64)]) -> Rules {
        let mut r = Rules::default();
        for (rule, n) in pairs {
            r.set(*rule, Some(*n));
        }
        r
    }

    fn kept(a: &[Candidate], d: &[(usize, Decision)]) -> Vec<(String, String)> {
        d.iter()
            .filter_map(|(i, d)| match d {
                Decision::Keep { reason, number } => {
                    Some((a[*i].name.clone(), format!("{reason} #{number}")))
                }
                Decision::KeepCheckpoint => Some((a[*i].name.clone(), "checkpoint".into())),
                Decision::Prune => None,
            })
            .collect()
    }

    #[test]
    fn daily_keeps_last_of_each_day_and_oldest() {
        let a = vec![
            cand("a1", at(2024, 1, 1, 10, 0, 0)),
            cand("a2", at(2024, 1, 1, 20, 0, 0)),
            cand("b1", at(2024, 1, 2, 9, 0, 0)),
            cand("c1", at(2024, 1, 3, 9, 0, 0)),
        ];
        let d = decide(&a, &rules(&[(PeriodRule::Daily, 2)]), 0, &Utc);
        assert_eq!(
            kept(&a, &d),
            vec![
                ("c1".to_string(), "daily #1".to_string()),
                ("b1".to_string(), "daily #2".to_string())
            ]
        );
        let d = decide(&a, &rules(&[(PeriodRule::Daily, 5)]), 0, &Utc);
        assert_eq!(
            kept(&a, &d),
            vec![
                ("c1".to_string(), "daily #1".to_string()),
                ("b1".to_string(), "daily #2".to_string()),
                ("a2".to_string(), "daily #3".to_string()),
                ("a1".to_string(), "daily[oldest] #4".to_string()),
            ]
        );
    }

    #[test]
    fn negative_count_is_unlimited_without_oldest() {
        let a: Vec<Candidate> = (0..10)
            .map(|i| cand(&format!("x{i}"), at(2020, 1, 1 + i, 1, 0, 0)))
            .collect();
        let d = decide(&a, &rules(&[(PeriodRule::Daily, -1)]), 0, &Utc);
        assert_eq!(kept(&a, &d).len(), 10);
        let d = decide(&a, &rules(&[(PeriodRule::Weekly, -1)]), 0, &Utc);
        // 2020-01-01 is a Wednesday: weeks 1 (1-5), 2 (6-10).
        assert_eq!(kept(&a, &d).len(), 2);
    }

    #[test]
    fn earlier_rule_uses_up_period() {
        let a = vec![
            cand("d1", at(2024, 3, 1, 1, 0, 0)),
            cand("d2", at(2024, 3, 2, 1, 0, 0)),
            cand("d3", at(2024, 3, 3, 1, 0, 0)),
        ];
        let d = decide(
            &a,
            &rules(&[(PeriodRule::Daily, 1), (PeriodRule::Monthly, 1)]),
            0,
            &Utc,
        );
        // The daily rule kept d3; March is used up, so monthly keeps nothing but its oldest.
        assert_eq!(
            kept(&a, &d),
            vec![
                ("d3".to_string(), "daily #1".to_string()),
                ("d1".to_string(), "monthly[oldest] #1".to_string())
            ]
        );
    }

    #[test]
    fn checkpoints() {
        let a = vec![
            cand("a", at(2024, 1, 1, 0, 0, 0)),
            cand("b.checkpoint", at(2024, 1, 2, 0, 0, 0)),
            cand("c.checkpoint.1", at(2024, 1, 3, 0, 0, 0)),
        ];
        let d = decide(&a, &rules(&[(PeriodRule::Secondly, 5)]), 0, &Utc);
        assert_eq!(
            kept(&a, &d),
            vec![
                ("c.checkpoint.1".to_string(), "checkpoint".to_string()),
                ("a".to_string(), "secondly #1".to_string())
            ]
        );
        assert!(is_checkpoint("x.checkpoint.12"));
        assert!(!is_checkpoint("x.checkpoint."));
        assert!(!is_checkpoint("x.checkpointy"));
        assert_eq!(checkpoint_suffix("x.checkpoint.3"), Some(1));
    }

    #[test]
    fn within_is_strict() {
        let now = at(2024, 1, 10, 0, 0, 0);
        let a = vec![
            cand("old", now - 3_600_000_000),
            cand("new", now - 3_599_999_999),
        ];
        let r = Rules {
            within_hours: Some(1),
            ..Rules::default()
        };
        let d = decide(&a, &r, now, &Utc);
        assert_eq!(
            kept(&a, &d),
            vec![("new".to_string(), "within #1".to_string())]
        );
    }

    #[test]
    fn local_time_changes_day() {
        // 23:30 UTC is the next day at +02:00.
        let a = vec![
            cand("a", at(2024, 6, 1, 21, 0, 0)),
            cand("b", at(2024, 6, 1, 23, 30, 0)),
        ];
        let r = rules(&[(PeriodRule::Daily, -1)]);
        assert_eq!(kept(&a, &decide(&a, &r, 0, &Utc)).len(), 1);
        let plus2 = FixedOffset::east_opt(7200).unwrap();
        assert_eq!(kept(&a, &decide(&a, &r, 0, &plus2)).len(), 2);
    }

    #[test]
    fn ties_order_by_name_descending() {
        let t = at(2024, 1, 1, 0, 0, 0);
        let a = vec![cand("a", t), cand("b", t)];
        let d = decide(&a, &rules(&[(PeriodRule::Secondly, 1)]), 0, &Utc);
        assert_eq!(kept(&a, &d)[0].0, "b");
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("2d"), Ok(48));
        assert_eq!(parse_interval("1m"), Ok(744));
        assert_eq!(parse_interval("1y"), Ok(8760));
        assert_eq!(parse_interval(" 3H"), Ok(3));
        assert!(parse_interval("0d").is_err());
        assert!(parse_interval("-1d").is_err());
        assert_eq!(
            parse_interval("3x").unwrap_err(),
            "Unexpected interval time unit \"x\": expected one of ['H', 'd', 'w', 'm', 'y']"
        );
        assert_eq!(
            parse_interval("d").unwrap_err(),
            "Unexpected interval number \"\": expected an integer greater than 0"
        );
    }

    /// A straightforward reference: borg's algorithm transcribed with explicit sets.
    fn reference(a: &[Candidate], r: &Rules) -> Vec<(usize, Decision)> {
        let order = newest_first(a);
        let regular: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| !is_checkpoint(&a[i].name))
            .collect();
        let mut kb: std::collections::HashMap<usize, Decision> = Default::default();
        for (rule, n) in PeriodRule::ALL.iter().zip(r.counts.iter()) {
            let Some(n) = *n else { continue };
            if n == 0 {
                continue;
            }
            let mut keep = Vec::new();
            let mut last = None;
            let mut cur = None;
            for &i in &regular {
                cur = Some(i);
                let k = rule.key(&local_time(a[i].time_us, &Utc));
                if Some(k) != last {
                    last = Some(k);
                    if let std::collections::hash_map::Entry::Vacant(e) = kb.entry(i) {
                        keep.push(i);
                        e.insert(Decision::Keep {
                            reason: KeepReason::Rule(*rule),
                            number: keep.len(),
                        });
                        if keep.len() as i64 == n {
                            break;
                        }
                    }
                }
            }
            if let Some(c) = cur {
                if (keep.len() as i64) < n && !kb.contains_key(&c) {
                    keep.push(c);
                    kb.insert(
                        c,
                        Decision::Keep {
                            reason: KeepReason::Oldest(*rule),
                            number: keep.len(),
                        },
                    );
                }
            }
        }
        order
            .iter()
            .map(|&i| {
                if Some(&i) == order.first() && is_checkpoint(&a[i].name) {
                    (i, Decision::KeepCheckpoint)
                } else {
                    (i, kb.get(&i).copied().unwrap_or(Decision::Prune))
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn matches_reference(
            times in proptest::collection::vec((0i64..4_000_000_000, any::<bool>()), 0..40),
            counts in proptest::array::uniform9(proptest::option::of(-2i64..6)),
        ) {
            let a: Vec<Candidate> = times
                .iter()
                .enumerate()
                .map(|(i, (t, cp))| {
                    let name = if *cp { format!("n{i}.checkpoint") } else { format!("n{i}") };
                    cand(&name, *t * 97_000)
                })
                .collect();
            let r = Rules { within_hours: None, counts };
            let got = decide(&a, &r, 0, &Utc);
            prop_assert_eq!(got, reference(&a, &r));
        }

        #[test]
        fn every_archive_decided_once(
            times in proptest::collection::vec(0i64..2_000_000_000_000_000, 0..30),
            within in proptest::option::of(1i64..100_000),
            counts in proptest::array::uniform9(proptest::option::of(-1i64..4)),
        ) {
            let a: Vec<Candidate> = times.iter().enumerate().map(|(i, t)| cand(&format!("a{i}"), *t)).collect();
            let r = Rules { within_hours: within, counts };
            let d = decide(&a, &r, 1_800_000_000_000_000, &Utc);
            let mut seen: Vec<usize> = d.iter().map(|(i, _)| *i).collect();
            seen.sort();
            prop_assert_eq!(seen, (0..a.len()).collect::<Vec<_>>());
            // Newest first.
            for w in d.windows(2) {
                prop_assert!(a[w[0].0].time_us >= a[w[1].0].time_us);
            }
        }
    }
}
