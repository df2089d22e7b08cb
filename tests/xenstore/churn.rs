//! Address churn: slots are stable, reused lowest first, slot 0 stays
//! with the primary IPv4, and the cap holds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use super::*;

/// The default `--max-addresses`.
const CAP: usize = 32;

/// A small deterministic generator (xorshift64), so that a failure can be
/// replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    /// `k` distinct elements of `from`, in random order.
    fn pick<T: Copy>(&mut self, from: &[T], k: usize) -> Vec<T> {
        let mut pool = from.to_vec();
        let mut out = Vec::new();
        while out.len() < k && !pool.is_empty() {
            out.push(pool.swap_remove(self.below(pool.len())));
        }
        out
    }
}

/// What dom0 must see for one family of eth0, following the contract's
/// slot rules as a reader states them: an address keeps its slot while it
/// exists, newcomers take the lowest free slots (the primary first, the
/// others in address order), the primary IPv4 takes slot 0 when free, at
/// most [`CAP`] slots.
struct Expected {
    family: &'static str,
    prefix: u8,
    primary: Option<IpAddr>,
    present: BTreeSet<IpAddr>,
    slots: Vec<Option<IpAddr>>,
    /// IPv6 addresses added by the last batch. The kernel notifies IPv6
    /// additions from a per-CPU workqueue, so their notifications may come
    /// in any order: which free slot each takes (and which get one at all
    /// when they outnumber the free slots) is the agent's to decide, and
    /// [`converge`] reads it back.
    arrived: Vec<IpAddr>,
}

impl Expected {
    fn new(family: &'static str, prefix: u8, primary: Option<IpAddr>) -> Self {
        Expected {
            family,
            prefix,
            primary,
            present: primary.into_iter().collect(),
            slots: primary.into_iter().map(Some).collect(),
            arrived: Vec::new(),
        }
    }

    /// The slots once the agent has seen the present addresses. Callers
    /// make changes in an order that makes any intermediate state the
    /// agent may render lead to the same slots (removals before
    /// additions, additions in address order, removals of skipped
    /// addresses before those of published ones, and these in slot
    /// order).
    fn settle(&mut self) {
        for s in &mut self.slots {
            if s.is_some_and(|a| !self.present.contains(&a)) {
                *s = None;
            }
        }
        if let Some(p) = self.primary.filter(|p| self.present.contains(p)) {
            if self.slots.first().is_none_or(Option::is_none) && !self.slots.contains(&Some(p)) {
                self.put(0, p);
            }
        }
        let newcomers: Vec<IpAddr> = self
            .present
            .iter()
            .filter(|a| !self.slots.contains(&Some(**a)))
            .copied()
            .collect();
        for a in newcomers {
            if let Some(free) = (0..CAP).find(|&i| self.slots.get(i).is_none_or(Option::is_none)) {
                self.put(free, a);
            }
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
    }

    fn put(&mut self, slot: usize, a: IpAddr) {
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, None);
        }
        self.slots[slot] = Some(a);
    }

    fn nodes(&self) -> Vec<(String, String)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(n, a)| {
                a.map(|a| (format!("attr/vif/0/{}/{n}", self.family), a.to_string()))
            })
            .collect()
    }

    /// Present addresses other than the primary.
    fn removable(&self) -> Vec<IpAddr> {
        self.present
            .iter()
            .filter(|a| Some(**a) != self.primary)
            .copied()
            .collect()
    }

    fn slot_of(&self, a: &IpAddr) -> Option<usize> {
        self.slots.iter().position(|s| s.as_ref() == Some(a))
    }

    fn add(&self, a: &IpAddr) -> String {
        let nodad = if self.family == "ipv6" { " nodad" } else { "" };
        format!("addr add {a}/{} dev eth0{nodad}", self.prefix)
    }

    fn del(&self, a: &IpAddr) -> String {
        format!("addr del {a}/{} dev eth0", self.prefix)
    }
}

/// One batch of changes: `dels` then `adds` for each family, in the order
/// [`Expected::settle`] needs; returns the number of changes.
fn apply(
    t: &Scenario,
    fams: &mut [Expected; 2],
    dels: [Vec<IpAddr>; 2],
    adds: [Vec<IpAddr>; 2],
) -> usize {
    let mut cmds = Vec::new();
    for (f, mut d) in fams.iter().zip(dels.clone()) {
        // Skipped ones first (no slot: nothing changes for dom0), then
        // published ones in slot order: a skipped address moves into a
        // freed slot as soon as the agent sees it free.
        d.sort_by_key(|a| f.slot_of(a));
        cmds.extend(d.iter().map(|a| f.del(a)));
    }
    for (f, mut a) in fams.iter().zip(adds.clone()) {
        a.sort();
        cmds.extend(a.iter().map(|a| f.add(a)));
    }
    for (f, (d, a)) in fams.iter_mut().zip(dels.into_iter().zip(adds)) {
        for x in &d {
            assert!(f.present.remove(x));
        }
        for x in &a {
            assert!(f.present.insert(*x));
        }
        if f.family == "ipv6" {
            f.arrived = a;
        }
        f.settle();
    }
    if !cmds.is_empty() {
        t.ip_batch(&cmds);
    }
    cmds.len()
}

/// Wait until the tree is what `fams` expect, but for the slots the last
/// batch's IPv6 additions took, which may hold any of them (see
/// [`Expected::arrived`]); then take those slots as the agent chose them.
fn converge(t: &Scenario, base: &BTreeMap<String, String>, fams: &mut [Expected; 2]) {
    let want = expected(base, fams);
    let v6 = &fams[1];
    let loose: BTreeSet<&String> = want
        .iter()
        .filter(|(k, v)| {
            k.starts_with("attr/vif/0/ipv6/") && v6.arrived.iter().any(|a| a.to_string() == **v)
        })
        .map(|(k, _)| k)
        .collect();
    let fits = |tree: &BTreeMap<String, String>| {
        let arrived: BTreeSet<String> = v6.arrived.iter().map(|a| a.to_string()).collect();
        let mut taken = BTreeSet::new();
        tree.len() == want.len()
            && want.iter().all(|(k, v)| match tree.get(k) {
                Some(got) if loose.contains(k) => arrived.contains(got) && taken.insert(got),
                Some(got) => got == v,
                None => false,
            })
    };
    let got = t.wait_until(WAIT, fits);
    if !fits(&got) {
        t.wait_tree(&want, Duration::ZERO); // panics, showing the difference
    }
    let v6 = &mut fams[1];
    for k in loose {
        let slot: usize = k.rsplit('/').next().and_then(|n| n.parse().ok()).unwrap();
        v6.slots[slot] = got[k].parse().ok();
    }
    v6.arrived.clear();
}

fn expected(base: &BTreeMap<String, String>, fams: &[Expected; 2]) -> BTreeMap<String, String> {
    let mut nodes = vif_nodes(0, &[], &[]);
    for f in fams {
        nodes.extend(f.nodes());
    }
    with(base, nodes)
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_thousand_address_changes_keep_slots_stable_reused_and_capped() {
    let Some(t) = Scenario::new("a_thousand_address_changes_keep_slots_stable_reused_and_capped")
    else {
        return;
    };
    let (base, mut agent) = start_on_vif0(&t);
    let primary: IpAddr = "10.0.0.2".parse().unwrap();
    let mut fams = [
        Expected::new("ipv4", 24, Some(primary)),
        Expected::new("ipv6", 64, None),
    ];
    t.wait_tree(&expected(&base, &fams), WAIT);

    // Reuse, by hand: three addresses take slots 1-3, the one in slot 2
    // goes, a newcomer takes slot 2 (not 4).
    let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut changes = apply(
        &t,
        &mut fams,
        [vec![], vec![]],
        [
            vec![v4("10.0.0.3"), v4("10.0.0.4"), v4("10.0.0.5")],
            vec![v4("2001:db8::1:1")],
        ],
    );
    t.wait_tree(
        &with(
            &base,
            vif_nodes(
                0,
                &[
                    (0, "10.0.0.2"),
                    (1, "10.0.0.3"),
                    (2, "10.0.0.4"),
                    (3, "10.0.0.5"),
                ],
                &[(0, "2001:db8::1:1")],
            ),
        ),
        WAIT,
    );
    changes += apply(
        &t,
        &mut fams,
        [vec![v4("10.0.0.4")], vec![]],
        [vec![], vec![]],
    );
    t.wait_tree(&expected(&base, &fams), WAIT);
    changes += apply(
        &t,
        &mut fams,
        [vec![], vec![]],
        [vec![v4("10.0.0.9")], vec![]],
    );
    t.wait_tree(
        &with(
            &base,
            vif_nodes(
                0,
                &[
                    (0, "10.0.0.2"),
                    (1, "10.0.0.3"),
                    (2, "10.0.0.9"),
                    (3, "10.0.0.5"),
                ],
                &[(0, "2001:db8::1:1")],
            ),
        ),
        WAIT,
    );

    let pools: [Vec<IpAddr>; 2] = [
        (3..=254)
            .map(|i| format!("10.0.0.{i}").parse().unwrap())
            .collect(),
        (0x100..0x200)
            .map(|i| format!("2001:db8::{i:x}").parse().unwrap())
            .collect(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fresh = |rng: &mut Rng, f: &Expected, pool: &[IpAddr], k: usize| {
        let free: Vec<IpAddr> = pool
            .iter()
            .filter(|a| !f.present.contains(a))
            .copied()
            .collect();
        rng.pick(&free, k)
    };

    // Below the cap: removals and additions mixed in each batch.
    let mut rounds = 0;
    while changes < 600 {
        let mut dels: [Vec<IpAddr>; 2] = Default::default();
        let mut adds: [Vec<IpAddr>; 2] = Default::default();
        for i in 0..2 {
            let f = &fams[i];
            let removable = f.removable();
            let k = rng.below(removable.len().min(6) + 1);
            dels[i] = rng.pick(&removable, k);
            let room = CAP - (f.present.len() - k);
            let k = rng.below(room.min(6) + 1);
            adds[i] = fresh(&mut rng, f, &pools[i], k);
        }
        changes += apply(&t, &mut fams, dels, adds);
        rounds += 1;
        converge(&t, &base, &mut fams);
        let want = expected(&base, &fams);
        for f in &fams {
            // Every present address has exactly one slot, and no slot is
            // left empty below the highest one for long: reuse.
            let published: BTreeSet<&String> = want
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("attr/vif/0/{}/", f.family)))
                .map(|(_, v)| v)
                .collect();
            assert_eq!(published.len(), f.present.len());
        }
    }
    assert_eq!(agent.count("(--max-addresses)"), 0, "{:#?}", agent.stderr());

    // Beyond the cap: 40 addresses per family, 32 published.
    let mut adds: [Vec<IpAddr>; 2] = Default::default();
    for i in 0..2 {
        adds[i] = fresh(&mut rng, &fams[i], &pools[i], 40 - fams[i].present.len());
    }
    changes += apply(&t, &mut fams, [vec![], vec![]], adds);
    converge(&t, &base, &mut fams);
    for f in &fams {
        assert_eq!(f.present.len(), 40);
        assert_eq!(f.slots.len(), CAP);
        assert!(f.slots.iter().all(Option::is_some));
    }
    // While capped: removals of published addresses hand their slots to
    // the skipped ones (lowest address first), additions are skipped.
    let mut adding = false;
    while changes < 950 {
        let mut dels: [Vec<IpAddr>; 2] = Default::default();
        let mut adds: [Vec<IpAddr>; 2] = Default::default();
        for i in 0..2 {
            let f = &fams[i];
            if adding {
                let k = rng.below(8) + 1;
                adds[i] = fresh(&mut rng, f, &pools[i], k.min(48 - f.present.len()));
            } else {
                // Stay above the cap: one warning for the whole episode.
                let k = (rng.below(8) + 1).min(f.present.len() - (CAP + 1));
                dels[i] = rng.pick(&f.removable(), k);
            }
        }
        adding = !adding;
        changes += apply(&t, &mut fams, dels, adds);
        rounds += 1;
        converge(&t, &base, &mut fams);
    }
    for family in ["ipv4", "ipv6"] {
        let warned = agent.count(&format!("attr/vif/0/{family}: "));
        assert_eq!(warned, 1, "capping said once: {:#?}", agent.stderr());
    }
    let line = agent
        .stderr()
        .into_iter()
        .find(|l| l.contains("attr/vif/0/ipv4: "))
        .unwrap();
    assert!(line.contains("publishing 32 (--max-addresses)"), "{line}");

    // Back under the cap (published ones go first, in slot order), then
    // over it again: a new episode, a new warning.
    let mut dels: [Vec<IpAddr>; 2] = Default::default();
    for i in 0..2 {
        let f = &fams[i];
        let mut published: Vec<IpAddr> = f
            .slots
            .iter()
            .flatten()
            .filter(|a| Some(**a) != f.primary)
            .copied()
            .collect();
        published.truncate(f.present.len() - 20);
        dels[i] = published;
    }
    changes += apply(&t, &mut fams, dels, [vec![], vec![]]);
    converge(&t, &base, &mut fams);
    let mut adds: [Vec<IpAddr>; 2] = Default::default();
    for i in 0..2 {
        adds[i] = fresh(&mut rng, &fams[i], &pools[i], 20);
    }
    changes += apply(&t, &mut fams, [vec![], vec![]], adds);
    converge(&t, &base, &mut fams);
    for family in ["ipv4", "ipv6"] {
        assert_eq!(agent.count(&format!("attr/vif/0/{family}: ")), 2);
    }
    assert!(changes >= 1000, "{changes} changes in {rounds} rounds");

    // Slot 0 was the primary's all along: written once.
    let slot0: Vec<_> = touched(&t)
        .into_iter()
        .filter(|(_, p)| {
            p.starts_with("attr/vif/0/ipv4/0") || p == "attr/vif/0/ipv4" || p == "attr/vif/0"
        })
        .collect();
    assert_eq!(
        slot0,
        vec![(MsgType::Write, "attr/vif/0/ipv4/0".to_string())]
    );
    assert_eq!(unchanged_writes(&t), vec![]);
    assert_committed_in_order(&t);
    agent.assert_running();
}
