//! The tier chain as SVG drawn on the server: the internet → external ALB → web → internal
//! ALB → was → db, each link labelled with the ports that pass it, paths that skip a tier as
//! red arcs, and who else reaches each tier, in a table below. The geometry is plain
//! functions; [`ChainDiagram`] only draws it, and reads without JavaScript.

use domain::reachability::{flows_text, tier_text, Origin, Path, PathKind, Reachability, CHAIN};
use leptos::prelude::*;

/// The viewBox's width; its height follows the arcs.
pub const WIDTH: f64 = 1200.0;
const BOX_W: f64 = 120.0;
const BOX_H: f64 = 56.0;
const MARGIN: f64 = 16.0;
/// Room above or below the boxes without arcs: for link notes and the other sources line.
const ROOM: f64 = 36.0;

/// A place of the chain: the internet or a tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The tier (`None`: the internet).
    pub tier: Option<&'static str>,
    pub label: &'static str,
    pub x: f64,
    /// Whether the spec has it (a security group with that tier); the internet always.
    pub present: bool,
    /// Sources outside the chain that reach it, as people read them.
    pub others: Vec<String>,
}

/// How a link of the chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    /// Open, but a network ACL drops its return traffic.
    AnswersDropped,
    /// A security group admits it, a network ACL drops it.
    Blocked,
    /// Nothing admits it.
    None,
}

impl LinkState {
    pub fn class(self) -> &'static str {
        match self {
            LinkState::Open => "link open",
            LinkState::AnswersDropped => "link answers-dropped",
            LinkState::Blocked => "link blocked",
            LinkState::None => "link none",
        }
    }
}

/// The arrow from one place to the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub from: usize,
    pub state: LinkState,
    /// Above the arrow: the ports, or what is wrong.
    pub label: String,
    /// Below it: what the ACLs do, when they do something.
    pub note: Option<String>,
    /// On hover: the link in a sentence.
    pub title: String,
}

/// A path that skips a tier (or runs backwards): a red arc, above the boxes when it runs
/// forwards, below when backwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Arc {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub title: String,
}

impl Arc {
    fn above(&self) -> bool {
        self.to > self.from
    }

    /// How far from the boxes it bows: longer spans bow further.
    fn height(&self) -> f64 {
        36.0 + 18.0 * (self.from.abs_diff(self.to) as f64 - 1.0).max(0.0)
    }

    /// The arc's path and where its label stands, for boxes at `box_y`.
    pub fn geometry(&self, places: &[Place], box_y: f64) -> (String, f64, f64) {
        let (x1, x2) = (center(&places[self.from]), center(&places[self.to]));
        let (edge, bow) = if self.above() {
            (box_y, box_y - 2.0 * self.height())
        } else {
            (box_y + BOX_H, box_y + BOX_H + 2.0 * self.height())
        };
        let mid = (x1 + x2) / 2.0;
        let label_y = if self.above() {
            edge - self.height() - 4.0
        } else {
            edge + self.height() + 12.0
        };
        (
            format!("M{x1:.1},{edge:.1} Q{mid:.1},{bow:.1} {x2:.1},{edge:.1}"),
            mid,
            label_y,
        )
    }
}

fn center(p: &Place) -> f64 {
    p.x + BOX_W / 2.0
}

/// The chain of `r`, laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub places: Vec<Place>,
    pub links: Vec<Link>,
    pub arcs: Vec<Arc>,
    /// The boxes' top: below the arcs that bow above them.
    pub box_y: f64,
    /// The viewBox's height: below the arcs that bow beneath the boxes.
    pub height: f64,
}

fn place_index(o: &Origin) -> Option<usize> {
    o.chain_index()
}

/// `tcp/80, 443`, or with what the ACLs do to it.
fn path_label(p: &Path) -> String {
    flows_text(&p.open)
}

pub fn layout(r: &Reachability) -> Layout {
    let labels = [
        "internet",
        "external ALB",
        "web",
        "internal ALB",
        "was",
        "db",
    ];
    let step = (WIDTH - 2.0 * MARGIN - BOX_W) / (labels.len() as f64 - 1.0);
    let mut places: Vec<Place> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let tier = i.checked_sub(1).map(|t| CHAIN[t]);
            Place {
                tier,
                label,
                x: MARGIN + step * i as f64,
                present: tier.is_none_or(|t| r.tiers.iter().any(|x| x == t)),
                others: Vec::new(),
            }
        })
        .collect();
    let mut links = Vec::new();
    for to in 1..places.len() {
        let tier = places[to].tier.expect("a tier");
        let path = r
            .paths
            .iter()
            .find(|p| p.to == tier && p.kind == PathKind::Chain);
        let from_text = match to {
            1 => "the internet".to_owned(),
            _ => tier_text(CHAIN[to - 2]),
        };
        let (state, label, title) = match path {
            Some(p) if p.is_open() && !p.answers_dropped.is_empty() => (
                LinkState::AnswersDropped,
                path_label(p),
                format!(
                    "{} reaches {} on {}, but {} drops the answers (ports {})",
                    from_text,
                    tier_text(tier),
                    path_label(p),
                    p.answers_dropped_by.join(", "),
                    p.answers_dropped.text()
                ),
            ),
            Some(p) if p.is_open() => (
                LinkState::Open,
                path_label(p),
                format!(
                    "{from_text} reaches {} on {}",
                    tier_text(tier),
                    path_label(p)
                ),
            ),
            Some(p) if !p.blocked.is_empty() => (
                LinkState::Blocked,
                flows_text(&p.blocked),
                format!(
                    "its security groups admit {} from {from_text}, but {} drops it",
                    flows_text(&p.blocked),
                    p.blocked_by.join(", ")
                ),
            ),
            _ => (
                LinkState::None,
                "no path".to_owned(),
                format!("nothing lets {from_text} reach {}", tier_text(tier)),
            ),
        };
        let note = match state {
            LinkState::AnswersDropped => Some("answers dropped".to_owned()),
            LinkState::Blocked => Some("blocked by an ACL".to_owned()),
            _ => None,
        };
        links.push(Link {
            from: to - 1,
            state,
            label,
            note,
            title,
        });
    }
    let mut arcs = Vec::new();
    for p in r.paths.iter().filter(|p| p.is_open()) {
        let Some(to) = CHAIN.iter().position(|t| *t == p.to).map(|i| i + 1) else {
            continue;
        };
        match (p.kind, place_index(&p.from)) {
            (PathKind::Skip, Some(from)) => arcs.push(Arc {
                from,
                to,
                label: path_label(p),
                title: format!(
                    "{} reaches {} on {}: it skips a tier",
                    p.from.text(),
                    tier_text(&p.to),
                    path_label(p)
                ),
            }),
            (PathKind::Other, _) => {
                places[to]
                    .others
                    .push(format!("{}: {}", p.from.text(), path_label(p)));
            }
            _ => {}
        }
    }
    let bow = |above: bool| {
        arcs.iter()
            .filter(|a| a.above() == above)
            .map(|a| a.height() + 24.0)
            .fold(ROOM, f64::max)
    };
    let box_y = bow(true);
    let height = box_y + BOX_H + bow(false);
    Layout {
        places,
        links,
        arcs,
        box_y,
        height,
    }
}

/// What the diagram shows, in words (its `<desc>`).
fn description(l: &Layout) -> String {
    let links: Vec<String> = l.links.iter().map(|k| k.title.clone()).collect();
    let mut out = links.join("; ");
    if !l.arcs.is_empty() {
        out.push_str(&format!(
            ". Paths that skip a tier: {}",
            l.arcs
                .iter()
                .map(|a| a.title.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    out.push('.');
    out
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// The chain as SVG, then every path in a table.
#[component]
pub fn ChainDiagram(reachability: Reachability) -> impl IntoView {
    let l = layout(&reachability);
    let box_y = l.box_y;
    let desc = description(&l);
    let places = l
        .places
        .iter()
        .map(|p| {
            let class = match (p.tier, p.present) {
                (None, _) => "place internet",
                (_, true) => "place",
                (_, false) => "place absent",
            };
            let others = (!p.others.is_empty()).then(|| {
                let n = p.others.len();
                view! {
                    <text class="others" x=num(center(p)) y=num(box_y + BOX_H + 16.0)>
                        <title>{p.others.join("; ")}</title>
                        {format!("+ {n} other source{}", if n == 1 { "" } else { "s" })}
                    </text>
                }
            });
            view! {
                <g class=class>
                    <rect x=num(p.x) y=num(box_y) width=num(BOX_W) height=num(BOX_H) rx="6" />
                    <text class="label" x=num(center(p)) y=num(box_y + BOX_H / 2.0 + 5.0)>{p.label}</text>
                    {(!p.present).then(|| view! {
                        <text class="sub" x=num(center(p)) y=num(box_y + BOX_H - 8.0)>"not in the spec"</text>
                    })}
                    {others}
                </g>
            }
        })
        .collect_view();
    let links = l
        .links
        .iter()
        .map(|k| {
            let (a, b) = (&l.places[k.from], &l.places[k.from + 1]);
            let (x1, x2, y) = (a.x + BOX_W, b.x, box_y + BOX_H / 2.0);
            let marker = if k.state == LinkState::None {
                None
            } else {
                Some("url(#chain-arrow)")
            };
            view! {
                <g class=k.state.class()>
                    <title>{k.title.clone()}</title>
                    <line x1=num(x1 + 2.0) y1=num(y) x2=num(x2 - 4.0) y2=num(y) marker-end=marker />
                    <text x=num((x1 + x2) / 2.0) y=num(y - 9.0)>{k.label.clone()}</text>
                    {k.note.clone().map(|n| view! { <text class="note" x=num((x1 + x2) / 2.0) y=num(y + 20.0)>{n}</text> })}
                </g>
            }
        })
        .collect_view();
    let arcs = l
        .arcs
        .iter()
        .map(|a| {
            let (d, x, y) = a.geometry(&l.places, box_y);
            view! {
                <g class="skip">
                    <title>{a.title.clone()}</title>
                    <path d=d marker-end="url(#chain-arrow-skip)" />
                    <text x=num(x) y=num(y)>{a.label.clone()}</text>
                </g>
            }
        })
        .collect_view();
    let rows = reachability
        .paths
        .iter()
        .map(|p| {
            let notes = [
                (p.kind == PathKind::Skip).then(|| "skips a tier".to_owned()),
                (!p.answers_dropped.is_empty()).then(|| {
                    format!(
                        "{} drops its answers (ports {})",
                        p.answers_dropped_by.join(", "),
                        p.answers_dropped.text()
                    )
                }),
                (!p.blocked.is_empty()).then(|| {
                    format!(
                        "{} of it blocked by {}",
                        flows_text(&p.blocked),
                        p.blocked_by.join(", ")
                    )
                }),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
            let class = match (p.kind, p.is_open()) {
                (PathKind::Skip, true) => "skip",
                (_, false) => "closed",
                _ => "",
            };
            view! {
                <tr class=class>
                    <th scope="row">{tier_text(&p.to)}</th>
                    <td>{p.from.text()}</td>
                    <td>{if p.is_open() { flows_text(&p.open) } else { "nothing".to_owned() }}</td>
                    <td>{notes}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <figure class="chain">
            <svg viewBox=format!("0 0 {WIDTH} {}", l.height) role="img" aria-labelledby="chain-title chain-desc">
                <title id="chain-title">"Who reaches which tier"</title>
                <desc id="chain-desc">{desc}</desc>
                <defs>
                    <marker id="chain-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
                    </marker>
                    <marker id="chain-arrow-skip" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0,0 L10,5 L0,10 z" class="arrowhead skip" />
                    </marker>
                </defs>
                {arcs}
                {links}
                {places}
            </svg>
            <figcaption class="muted">
                "Ports on each link are what passes the security groups"
                {if reachability.with_acls { " and the network ACLs" } else { " (the spec lists no network ACL: subnets keep AWS's default, which lets everything through)" }}
                ". Red: a path that skips a tier or runs backwards. Amber: the answers are dropped. Grey: no path."
            </figcaption>
        </figure>
        <div class="table-wrap"><table class="reach">
            <thead><tr><th scope="col">"Tier"</th><th scope="col">"Reached from"</th><th scope="col">"On"</th><th scope="col">"Notes"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::net::PortSet;
    use domain::reachability::{Flow, Traffic};
    use domain::spec::Loc;

    fn path(to: &str, from: Origin, kind: PathKind, ports: &[(u16, u16)]) -> Path {
        Path {
            to: to.into(),
            from,
            kind,
            open: if ports.is_empty() {
                Vec::new()
            } else {
                vec![Flow {
                    traffic: Traffic::Tcp,
                    ports: PortSet(ports.to_vec()),
                }]
            },
            answers_dropped: PortSet::empty(),
            answers_dropped_by: Vec::new(),
            blocked: Vec::new(),
            blocked_by: Vec::new(),
            loc: Loc::default(),
        }
    }

    fn chain() -> Reachability {
        Reachability {
            tiers: CHAIN.iter().map(|t| (*t).to_owned()).collect(),
            paths: vec![
                path(
                    "external-alb",
                    Origin::Internet,
                    PathKind::Chain,
                    &[(80, 80), (443, 443)],
                ),
                path(
                    "web",
                    Origin::Tier("external-alb".into()),
                    PathKind::Chain,
                    &[(80, 80)],
                ),
                path(
                    "was",
                    Origin::Tier("internal-alb".into()),
                    PathKind::Chain,
                    &[(8080, 8080)],
                ),
                path(
                    "db",
                    Origin::Tier("was".into()),
                    PathKind::Chain,
                    &[(3306, 3306)],
                ),
                path(
                    "db",
                    Origin::Tier("web".into()),
                    PathKind::Skip,
                    &[(3306, 3306)],
                ),
                path(
                    "web",
                    Origin::Cidr("10.0.0.0/8".into()),
                    PathKind::Other,
                    &[(22, 22)],
                ),
            ],
            with_acls: true,
        }
    }

    #[test]
    fn each_link_carries_its_ports_and_a_missing_one_says_so() {
        let l = layout(&chain());
        let links: Vec<(LinkState, &str)> = l
            .links
            .iter()
            .map(|k| (k.state, k.label.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                (LinkState::Open, "tcp/80, 443"),
                (LinkState::Open, "tcp/80"),
                (LinkState::None, "no path"),
                (LinkState::Open, "tcp/8080"),
                (LinkState::Open, "tcp/3306"),
            ]
        );
        assert_eq!(l.places[2].others, ["10.0.0.0/8: tcp/22"]);
        assert!(l.places.iter().all(|p| p.present));
    }

    #[test]
    fn a_skip_is_an_arc_above_the_boxes_between_its_ends() {
        let l = layout(&chain());
        assert_eq!(l.arcs.len(), 1);
        let a = &l.arcs[0];
        assert_eq!((a.from, a.to, a.label.as_str()), (2, 5, "tcp/3306"));
        let (d, x, y) = a.geometry(&l.places, l.box_y);
        let (x1, x2) = (center(&l.places[2]), center(&l.places[5]));
        let top = l.box_y;
        assert!(d.starts_with(&format!("M{x1:.1},{top:.1} Q")), "{d}");
        assert!(d.ends_with(&format!("{x2:.1},{top:.1}")), "{d}");
        assert!((x - (x1 + x2) / 2.0).abs() < 0.01);
        assert!(
            y < top && y > 0.0,
            "the label inside the picture, above the boxes: {y}"
        );
        // Nothing below the boxes but the notes: the picture ends there.
        assert_eq!(l.height, top + BOX_H + ROOM);
        // Backwards: below the boxes, inside the picture.
        let back = Arc {
            from: 5,
            to: 1,
            label: String::new(),
            title: String::new(),
        };
        let mut r = chain();
        r.paths.push(path(
            "external-alb",
            Origin::Tier("db".into()),
            PathKind::Skip,
            &[(443, 443)],
        ));
        let l2 = layout(&r);
        let (_, _, y) = back.geometry(&l2.places, l2.box_y);
        assert!(
            y > l2.box_y + BOX_H && y < l2.height,
            "{y} in {}",
            l2.height
        );
        // Every box fits.
        let last = l.places.last().unwrap();
        assert!(last.x + BOX_W <= WIDTH - MARGIN + 0.01);
    }

    #[test]
    fn the_description_says_every_link_and_skip_in_words() {
        let d = description(&layout(&chain()));
        assert!(
            d.contains("the internet reaches the external ALB on tcp/80, 443"),
            "{d}"
        );
        assert!(
            d.contains("nothing lets the web tier reach the internal ALB"),
            "{d}"
        );
        assert!(
            d.contains("the web tier reaches the db tier on tcp/3306: it skips a tier"),
            "{d}"
        );
    }
}
