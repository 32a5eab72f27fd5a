//! The cover of `/skills-search` listings: which filtered listings, read
//! how far, reach every skill that any filter reaches, planned from the
//! registry's own counts (`docs/registry-protocol.md`, "Search mode"); and,
//! once they are read, which stored skills a complete listing would have had
//! to show, the only ones a prune may remove.

use crate::domain::{RegistryRow, TrustTier};

/// The trust tiers the OpenAPI file lets `/skills-search` filter on.
pub const SEARCH_TIERS: [TrustTier; 5] = [
    TrustTier::Official,
    TrustTier::Verified,
    TrustTier::Curated,
    TrustTier::Community,
    TrustTier::Unverified,
];

/// The categories the OpenAPI file lets `/skills-search` filter on.
pub const CATEGORIES: [&str; 6] = [
    "Development",
    "Testing",
    "DevOps",
    "Documentation",
    "Productivity",
    "Security",
];

/// At most this many tiers outside the OpenAPI enum are tried as filters,
/// so a registry that reports thousands of tiers cannot make us probe them.
pub const MAX_EXTRA_TIERS: usize = 8;

/// One `/skills-search` filter set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    /// `trust_tier=`.
    pub tier: Option<String>,
    /// `category=`.
    pub category: Option<&'static str>,
    /// `min_score=0`: only skills with a quality score (a null score never
    /// meets a minimum, not even 0).
    pub scored: bool,
}

impl Filter {
    /// `trust_tier=tier`.
    pub fn tier(tier: &str) -> Filter {
        Filter {
            tier: Some(tier.to_owned()),
            category: None,
            scored: false,
        }
    }

    /// `category=category`.
    pub fn category(category: &'static str) -> Filter {
        Filter {
            tier: None,
            category: Some(category),
            scored: false,
        }
    }

    /// `min_score=0`: every scored skill.
    pub fn scored() -> Filter {
        Filter {
            tier: None,
            category: None,
            scored: true,
        }
    }

    /// The same filter, scored skills only.
    pub fn and_scored(&self) -> Filter {
        Filter {
            scored: true,
            ..self.clone()
        }
    }

    /// The query parameters, in a fixed order.
    pub fn query(&self) -> Vec<(&'static str, &str)> {
        let mut q = Vec::with_capacity(3);
        if let Some(t) = &self.tier {
            q.push(("trust_tier", t.as_str()));
        }
        if let Some(c) = self.category {
            q.push(("category", c));
        }
        if self.scored {
            q.push(("min_score", "0"));
        }
        q
    }

    /// The filter as people read it, e.g. `trust_tier=community`.
    pub fn describe(&self) -> String {
        self.query()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// What the registry says it holds, before any listing is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// `/stats` `skillCount`.
    pub registry_total: Option<u64>,
    /// `/stats?detailed=true` `breakdown.byTier`.
    pub by_tier: Option<Vec<(String, u64)>>,
    /// Tiers `/skills-search` accepts as a filter: the OpenAPI enum, and
    /// any tier `/stats` reported that a probe showed it accepts.
    pub filterable: Vec<String>,
    /// Tiers `/stats` reported that `/skills-search` refused (400).
    pub unfilterable: Vec<String>,
}

impl Census {
    /// A census with only the OpenAPI tiers filterable.
    pub fn new() -> Census {
        Census {
            filterable: SEARCH_TIERS.iter().map(|t| t.as_str().to_owned()).collect(),
            ..Census::default()
        }
    }

    /// What `/stats` counts in `tier`.
    pub fn count_of(&self, tier: &str) -> Option<u64> {
        self.by_tier
            .iter()
            .flatten()
            .find(|(t, _)| t == tier)
            .map(|(_, n)| *n)
    }

    /// Tiers `/stats` reports that are neither in the OpenAPI enum nor
    /// `local` (which the registry never sends) nor `unknown` (the name
    /// stored for every tier this version does not know, so a listing of a
    /// registry's own `unknown` tier would seem to cover them all): the ones
    /// worth a probe.
    pub fn tiers_to_probe(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (tier, count) in self.by_tier.iter().flatten() {
            if *count > 0
                && tier != "local"
                && tier != "unknown"
                && !tier.is_empty()
                && tier.len() <= 64
                && !self.filterable.contains(tier)
                && !out.contains(tier)
            {
                out.push(tier.clone());
            }
        }
        out.truncate(MAX_EXTRA_TIERS);
        out
    }

    /// Skills the registry counts in tiers no filter can select, when it
    /// says enough to tell: `None` means "maybe some".
    pub fn outside_filterable_tiers(&self) -> Option<u64> {
        let by_tier = self.by_tier.as_ref()?;
        let filterable: u64 = by_tier
            .iter()
            .filter(|(t, _)| self.filterable.contains(t))
            .map(|(_, n)| n)
            .sum();
        let listed: u64 = by_tier.iter().map(|(_, n)| n).sum();
        // Tiers missing from the breakdown count as outside.
        let total = self.registry_total.unwrap_or(listed).max(listed);
        Some(total.saturating_sub(filterable))
    }
}

/// Totals of the filter sets a full cover is planned from, by 1-item probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// `min_score=0`.
    pub scored: u64,
    /// Per filterable tier: (listing total, scored total).
    pub tiers: Vec<(String, u64, u64)>,
    /// Per category: (listing total, scored total).
    pub categories: Vec<(&'static str, u64, u64)>,
}

/// Which part of a listing a planned walk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Every record.
    All,
    /// Only the unscored records, whose count is `total - scored`.
    Unscored {
        /// The listing's total.
        total: u64,
        /// Its scored records.
        scored: u64,
    },
}

/// One listing of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// What to ask for.
    pub filter: Filter,
    /// How much of it.
    pub part: Part,
}

/// The listings to read, and what reading them completely proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// In reading order.
    pub listings: Vec<Listing>,
    /// Tiers the plan covers entirely (complete when their listings are).
    pub tiers: Vec<String>,
    /// Categories the plan covers entirely.
    pub categories: Vec<&'static str>,
    /// The plan reads every scored skill.
    pub scored: bool,
}

impl Plan {
    /// Every filterable tier in full: enough when no skill sits outside
    /// them, and what needs no probe at all.
    pub fn tiers_only(census: &Census) -> Plan {
        Plan {
            listings: census
                .filterable
                .iter()
                .map(|t| Listing {
                    filter: Filter::tier(t),
                    part: Part::All,
                })
                .collect(),
            tiers: census.filterable.clone(),
            categories: Vec::new(),
            scored: false,
        }
    }

    /// Every scored skill through `min_score=0`, then the unscored rest of
    /// each filterable tier, then (when skills outside those tiers may lack
    /// a score) the unscored rest of each category. Skills outside the
    /// filterable tiers with neither score nor category are in no listing.
    pub fn full(census: &Census, totals: &Totals) -> Plan {
        let mut listings = vec![Listing {
            filter: Filter::scored(),
            part: Part::All,
        }];
        for (tier, total, scored) in &totals.tiers {
            if total > scored {
                listings.push(Listing {
                    filter: Filter::tier(tier),
                    part: Part::Unscored {
                        total: *total,
                        scored: *scored,
                    },
                });
            }
        }
        // Skills outside the filterable tiers that have no score: only a
        // category listing can reach them. None, and categories add nothing.
        let outside_unscored = census.outside_filterable_tiers().map(|outside| {
            let filterable_scored: u64 = totals.tiers.iter().map(|(_, _, s)| s).sum();
            let outside_scored = totals.scored.saturating_sub(filterable_scored);
            outside.saturating_sub(outside_scored)
        });
        let mut categories = Vec::new();
        if outside_unscored != Some(0) {
            for (category, total, scored) in &totals.categories {
                categories.push(*category);
                if total > scored {
                    listings.push(Listing {
                        filter: Filter::category(category),
                        part: Part::Unscored {
                            total: *total,
                            scored: *scored,
                        },
                    });
                }
            }
        }
        Plan {
            listings,
            tiers: totals.tiers.iter().map(|(t, _, _)| t.clone()).collect(),
            categories,
            scored: true,
        }
    }

    /// Records a full plan reads, as its totals tell.
    pub fn planned_records(&self, totals: &Totals) -> u64 {
        self.listings
            .iter()
            .map(|l| match l.part {
                Part::All if l.filter == Filter::scored() => totals.scored,
                Part::All => 0,
                Part::Unscored { total, scored } => total - scored,
            })
            .sum()
    }
}

/// What a run's listings proved, for the prune: a stored skill that a
/// complete listing had to show, and that no listing showed, is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Every scored skill was listed.
    pub scored: bool,
    /// Tiers all of whose skills were listed.
    pub tiers: Vec<String>,
    /// Categories all of whose skills were listed.
    pub categories: Vec<&'static str>,
}

impl Reach {
    /// What reading `plan` proved, given which of its listings were read
    /// completely (`complete[i]` for `plan.listings[i]`).
    pub fn of(plan: &Plan, complete: &[bool]) -> Reach {
        let done = |f: &dyn Fn(&Filter) -> bool| {
            plan.listings
                .iter()
                .zip(complete)
                .filter(|(l, _)| f(&l.filter))
                .all(|(_, c)| *c)
        };
        let scored = plan.scored && done(&|f| *f == Filter::scored());
        // A tier in a full plan is covered by the scored listing plus its own
        // unscored block (absent when it has no unscored skills).
        let needs_scored = plan.scored;
        let tiers = plan
            .tiers
            .iter()
            .filter(|t| {
                (!needs_scored || scored) && done(&|f| f.tier.as_deref() == Some(t.as_str()))
            })
            .cloned()
            .collect();
        let categories = plan
            .categories
            .iter()
            .filter(|c| scored && done(&|f| f.category == Some(**c)))
            .copied()
            .collect();
        Reach {
            scored,
            tiers,
            categories,
        }
    }

    /// Whether a complete listing had to show this stored skill, if the
    /// registry still has it as stored.
    pub fn must_list(&self, row: &RegistryRow) -> bool {
        (self.scored && row.scored)
            || self.tiers.iter().any(|t| t == row.trust_tier.as_str())
            || row
                .categories
                .iter()
                .any(|c| self.categories.contains(&c.as_str()))
    }

    /// Whether anything was proved at all.
    pub fn is_empty(&self) -> bool {
        !self.scored && self.tiers.is_empty() && self.categories.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn census(total: u64, by_tier: &[(&str, u64)]) -> Census {
        Census {
            registry_total: Some(total),
            by_tier: Some(by_tier.iter().map(|(t, n)| (t.to_string(), *n)).collect()),
            ..Census::new()
        }
    }

    fn row(tier: TrustTier, scored: bool, categories: &[&str]) -> RegistryRow {
        RegistryRow {
            id: "x".into(),
            trust_tier: tier,
            scored,
            categories: categories.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn totals() -> Totals {
        Totals {
            scored: 950,
            tiers: vec![
                ("verified".into(), 100, 95),
                ("community".into(), 600, 570),
                ("official".into(), 0, 0),
            ],
            categories: vec![("Testing", 300, 285), ("Security", 10, 10)],
        }
    }

    #[test]
    fn the_census_counts_what_no_tier_filter_reaches() {
        let c = census(
            1000,
            &[("verified", 100), ("community", 600), ("experimental", 300)],
        );
        assert_eq!(c.tiers_to_probe(), ["experimental"]);
        assert_eq!(c.outside_filterable_tiers(), Some(300));
        // A tier the breakdown leaves out counts as outside too.
        let c = census(1000, &[("verified", 100), ("community", 600)]);
        assert_eq!(c.outside_filterable_tiers(), Some(300));
        let c = census(700, &[("verified", 100), ("community", 600), ("local", 4)]);
        assert_eq!(c.tiers_to_probe(), Vec::<String>::new());
        assert_eq!(Census::new().outside_filterable_tiers(), None);
    }

    #[test]
    fn a_full_plan_reads_scored_skills_once_and_only_the_unscored_rest() {
        let c = census(
            1000,
            &[("verified", 100), ("community", 600), ("experimental", 300)],
        );
        let plan = Plan::full(&c, &totals());
        let filters: Vec<String> = plan.listings.iter().map(|l| l.filter.describe()).collect();
        assert_eq!(
            filters,
            [
                "min_score=0",
                "trust_tier=verified",
                "trust_tier=community",
                "category=Testing"
            ]
        );
        assert_eq!(
            plan.listings[1].part,
            Part::Unscored {
                total: 100,
                scored: 95
            }
        );
        assert_eq!(plan.planned_records(&totals()), 950 + 5 + 30 + 15);
    }

    #[test]
    fn categories_are_skipped_when_every_outside_skill_is_scored() {
        // 300 outside the tiers, all scored: 950 - (95 + 570) = 285 < 300,
        // so 15 may lack a score; with 665 + 300 scored, none do.
        let c = census(
            1000,
            &[("verified", 100), ("community", 600), ("experimental", 300)],
        );
        let mut t = totals();
        t.scored = 965;
        let plan = Plan::full(&c, &t);
        assert!(plan.categories.is_empty());
        assert!(plan.listings.iter().all(|l| l.filter.category.is_none()));
    }

    #[test]
    fn reach_needs_the_scored_listing_and_each_block() {
        let c = census(
            1000,
            &[("verified", 100), ("community", 600), ("experimental", 300)],
        );
        let plan = Plan::full(&c, &totals());
        let reach = Reach::of(&plan, &[true, true, false, true]);
        assert!(reach.scored);
        assert_eq!(reach.tiers, ["verified", "official"]);
        assert_eq!(reach.categories, ["Testing", "Security"]);
        assert!(reach.must_list(&row(TrustTier::Experimental, true, &[])));
        assert!(reach.must_list(&row(TrustTier::Verified, false, &[])));
        assert!(!reach.must_list(&row(TrustTier::Community, false, &[])));
        assert!(reach.must_list(&row(TrustTier::Experimental, false, &["Testing"])));
        assert!(!reach.must_list(&row(TrustTier::Experimental, false, &["DevOps"])));

        // Without the scored listing nothing of a full plan is proved.
        let reach = Reach::of(&plan, &[false, true, true, true]);
        assert!(reach.is_empty());
    }

    #[test]
    fn a_tiers_only_plan_proves_its_complete_tiers() {
        let mut c = Census::new();
        c.filterable.truncate(2);
        let plan = Plan::tiers_only(&c);
        let reach = Reach::of(&plan, &[true, false]);
        assert_eq!(reach.tiers, ["official"]);
        assert!(!reach.scored);
        assert!(reach.must_list(&row(TrustTier::Official, false, &[])));
        assert!(!reach.must_list(&row(TrustTier::Verified, true, &["Testing"])));
        assert!(!reach.must_list(&row(TrustTier::Experimental, true, &[])));
    }
}
