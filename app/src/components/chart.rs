//! The one chart of the pages: values over time, drawn on the server and readable without
//! JavaScript. A value axis of round ticks with gridlines and units, a time axis of round local
//! times, line and step series (a line breaks where samples are missing), marker rules (applies,
//! scheduled actions) and a hover crosshair with the values and the time.
//!
//! The plot is an SVG stretched to its card's width (its strokes keep their width), and the
//! text — tick labels, the hover's values — is HTML laid over it, so it keeps one size whatever
//! the card's width. The hover is CSS alone: one column per sample that shows its crosshair,
//! dots and values while the pointer is over it. The geometry is plain functions; [`TimeChart`]
//! only draws it.

use domain::axis::Axis;
use domain::time::TimeTick;
use leptos::prelude::*;

/// The plot's width in SVG units: an x of 1000 is the right edge (x / 10 is a percentage).
pub const WIDTH: f64 = 1000.0;

/// A linear map from data (`from`) to SVG coordinates (`to`); clamped, it keeps data outside
/// `from` at its ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    from: (f64, f64),
    to: (f64, f64),
    clamp: bool,
}

impl Scale {
    /// A domain of no width counts as one wide, so that nothing divides by zero.
    pub fn linear(from: (f64, f64), to: (f64, f64)) -> Self {
        Self {
            from,
            to,
            clamp: false,
        }
    }

    /// Unix seconds from `start` to `end`, at least one second wide.
    pub fn time(start: i64, end: i64, to: (f64, f64)) -> Self {
        let end = start + (end - start).max(1);
        Self::linear((start as f64, end as f64), to)
    }

    pub fn clamped(self) -> Self {
        Self {
            clamp: true,
            ..self
        }
    }

    pub fn at(self, v: f64) -> f64 {
        let ((d0, d1), (r0, r1)) = (self.from, self.to);
        let span = d1 - d0;
        let span = if span == 0.0 || !span.is_finite() {
            1.0
        } else {
            span
        };
        let v = if self.clamp {
            v.clamp(d0.min(d1), d0.max(d1))
        } else {
            v
        };
        r0 + (v - d0) / span * (r1 - r0)
    }
}

/// A coordinate as the SVG gets it.
fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// A percentage for a style: `12.35%`.
fn pct(x: f64) -> String {
    format!("{:.2}%", x / WIDTH * 100.0)
}

/// A line path through each run of `points`: `M x,y L x,y …`, a new `M` after each break.
pub fn line_path(runs: &[Vec<(f64, f64)>]) -> String {
    let mut d = String::new();
    for run in runs {
        for (i, (x, y)) in run.iter().enumerate() {
            if !d.is_empty() {
                d.push(' ');
            }
            d.push_str(&format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" }));
        }
    }
    d
}

/// A step path through each run of `points` (each value held until the next point); the last
/// run is held on to `end_x`, the others to their last point.
pub fn step_path(runs: &[Vec<(f64, f64)>], end_x: f64) -> String {
    let mut d = String::new();
    for (r, run) in runs.iter().enumerate() {
        for (i, (x, y)) in run.iter().enumerate() {
            if i == 0 {
                if !d.is_empty() {
                    d.push(' ');
                }
                d.push_str(&format!("M{x:.1},{y:.1}"));
            } else {
                d.push_str(&format!(" H{x:.1} V{y:.1}"));
            }
        }
        if r + 1 == runs.len() && !run.is_empty() {
            d.push_str(&format!(" H{end_x:.1}"));
        }
    }
    d
}

/// `points` cut where two neighbours are more than `max_gap` seconds apart: the runs a line
/// draws, missing samples left as gaps.
pub fn runs(points: &[(i64, f64)], max_gap: Option<i64>) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut last: Option<i64> = None;
    for &(t, v) in points {
        if !v.is_finite() {
            last = None;
            continue;
        }
        let gap = match (last, max_gap) {
            (Some(l), Some(g)) => t - l > g,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if gap || out.is_empty() {
            out.push(Vec::new());
        }
        if let Some(run) = out.last_mut() {
            run.push((t, v));
        }
        last = Some(t);
    }
    out
}

/// The gap beyond which a series of samples `step` seconds apart is broken: one and a half
/// steps (one sample missing).
pub fn gap_for_step(step: i64) -> i64 {
    step + step / 2
}

/// How a series goes from point to point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Straight lines.
    Line,
    /// Each value held until the next point, and the last one to the plot's right edge.
    Step,
}

/// One path: its class (which the stylesheet colours), its shape and its points (Unix seconds,
/// value), broken where neighbours are more than `max_gap` apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    class: &'static str,
    shape: Shape,
    points: Vec<(i64, f64)>,
    max_gap: Option<i64>,
}

impl Series {
    pub fn line(class: &'static str, points: Vec<(i64, f64)>) -> Self {
        Self {
            class,
            shape: Shape::Line,
            points,
            max_gap: None,
        }
    }

    pub fn step(class: &'static str, points: Vec<(i64, f64)>) -> Self {
        Self {
            shape: Shape::Step,
            ..Self::line(class, points)
        }
    }

    /// Missing samples drawn as gaps: the line breaks where two points are more than `secs`
    /// apart.
    pub fn gaps_over(self, secs: i64) -> Self {
        Self {
            max_gap: Some(secs),
            ..self
        }
    }
}

/// How far a marker's rule reaches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// The plot's height.
    Full,
    /// A tick this long (pixels) up from the bottom.
    Tick(f64),
}

/// A vertical rule at a time, with its text on hover; perhaps linked.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    at: i64,
    class: &'static str,
    reach: Reach,
    title: String,
    href: Option<String>,
}

impl Marker {
    pub fn rule(at: i64, class: &'static str, reach: Reach, title: String) -> Self {
        Self {
            at,
            class,
            reach,
            title,
            href: None,
        }
    }

    pub fn link(self, href: String) -> Self {
        Self {
            href: Some(href),
            ..self
        }
    }
}

/// What the crosshair shows at one time: the text (the time and the values) and a dot on each
/// series' value (the series' class, the value).
#[derive(Debug, Clone, PartialEq)]
pub struct Hover {
    pub at: i64,
    pub text: String,
    pub values: Vec<(&'static str, f64)>,
}

/// One hover column as drawn: its left edge and width (SVG x units), the crosshair's x inside
/// the plot, the dots' heights (pixels) and where its text is anchored.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub left: f64,
    pub width: f64,
    pub x: f64,
    pub dots: Vec<(&'static str, f64)>,
    pub text: String,
    /// `start`, `middle` or `end`: the text stays inside the plot near its edges.
    pub anchor: &'static str,
}

/// A chart, as data: its height, scales, ticks, series, markers and hovers.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// The plot's height in pixels (its width is the card's).
    height: f64,
    x: Scale,
    y: Scale,
    axis: Axis,
    value_labels: Vec<(f64, String)>,
    time_ticks: Vec<TimeTick>,
    series: Vec<Series>,
    markers: Vec<Marker>,
    hovers: Vec<Hover>,
    /// Hover columns run from their sample to the next (step charts) instead of around it.
    held: bool,
    empty: Option<&'static str>,
}

impl ChartSpec {
    /// A chart `height` pixels high, time from `start` to `end` across and values on `axis` up.
    pub fn new(height: f64, (start, end): (i64, i64), axis: Axis) -> Self {
        Self {
            height,
            x: Scale::time(start, end, (0.0, WIDTH)),
            y: Scale::linear((axis.lo, axis.hi), (height, 0.0)),
            axis,
            value_labels: Vec::new(),
            time_ticks: Vec::new(),
            series: Vec::new(),
            markers: Vec::new(),
            hovers: Vec::new(),
            held: false,
            empty: None,
        }
    }

    /// Times outside the range drawn at its ends.
    pub fn clamp_time(self) -> Self {
        Self {
            x: self.x.clamped(),
            ..self
        }
    }

    /// The value axis's ticks, each labelled by `label` (its unit included); a gridline each.
    pub fn value_labels(self, label: impl Fn(f64) -> String) -> Self {
        let labels = self
            .axis
            .ticks()
            .into_iter()
            .map(|v| (v, label(v)))
            .collect();
        Self {
            value_labels: labels,
            ..self
        }
    }

    /// The time axis's ticks (see `domain::time::time_ticks`); a gridline each.
    pub fn time_ticks(self, ticks: Vec<TimeTick>) -> Self {
        Self {
            time_ticks: ticks,
            ..self
        }
    }

    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    pub fn markers(mut self, m: impl IntoIterator<Item = Marker>) -> Self {
        self.markers.extend(m);
        self
    }

    /// The crosshair's stops, in time order; `held`: each covers its time to the next.
    pub fn hovers(self, hovers: Vec<Hover>, held: bool) -> Self {
        Self {
            hovers,
            held,
            ..self
        }
    }

    /// What to say instead of the chart when no series has a point.
    pub fn empty(self, text: &'static str) -> Self {
        Self {
            empty: Some(text),
            ..self
        }
    }

    /// The text to show instead, when there is nothing to draw and the chart says what then.
    pub fn empty_text(&self) -> Option<&'static str> {
        self.empty
            .filter(|_| self.series.iter().all(|s| s.points.is_empty()))
    }

    pub fn point(&self, at: i64, v: f64) -> (f64, f64) {
        (self.x.at(at as f64), self.y.at(v))
    }

    /// The height of the axis line: the value 0, or the nearest end of the value range to it.
    pub fn baseline(&self) -> f64 {
        self.y.at(0.0_f64.clamp(self.axis.lo, self.axis.hi))
    }

    pub fn path(&self, s: &Series) -> String {
        let runs: Vec<Vec<(f64, f64)>> = runs(&s.points, s.max_gap)
            .into_iter()
            .map(|r| r.into_iter().map(|(t, v)| self.point(t, v)).collect())
            .collect();
        match s.shape {
            Shape::Line => line_path(&runs),
            Shape::Step => step_path(&runs, WIDTH),
        }
    }

    /// A marker's rule: x, and the y it runs from and to.
    pub fn rule(&self, m: &Marker) -> (f64, f64, f64) {
        let x = self.x.at(m.at as f64);
        match m.reach {
            Reach::Full => (x, 0.0, self.height),
            Reach::Tick(len) => (x, self.height, self.height - len),
        }
    }

    /// The hover columns: around each stop (from half way to the one before to half way to
    /// the next), or from each stop to the next when held; the first from the plot's left
    /// edge, the last to its right edge.
    pub fn columns(&self) -> Vec<Column> {
        let xs: Vec<f64> = self
            .hovers
            .iter()
            .map(|h| self.x.clamped().at(h.at as f64))
            .collect();
        let n = xs.len();
        self.hovers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let x = xs[i];
                let (left, right) = if self.held {
                    (
                        if i == 0 { 0.0 } else { x },
                        xs.get(i + 1).copied().unwrap_or(WIDTH),
                    )
                } else {
                    (
                        if i == 0 { 0.0 } else { (xs[i - 1] + x) / 2.0 },
                        if i + 1 == n {
                            WIDTH
                        } else {
                            (x + xs[i + 1]) / 2.0
                        },
                    )
                };
                let anchor = if x < WIDTH * 0.2 {
                    "start"
                } else if x > WIDTH * 0.8 {
                    "end"
                } else {
                    "middle"
                };
                Column {
                    left,
                    width: (right - left).max(0.0),
                    x,
                    dots: h
                        .values
                        .iter()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(c, v)| (*c, self.y.at(*v)))
                        .collect(),
                    text: h.text.clone(),
                    anchor,
                }
            })
            .collect()
    }
}

/// A marker as SVG: a rule with its text, perhaps linked; a wider invisible rule under it takes
/// the pointer.
fn marker_view(spec: &ChartSpec, m: &Marker) -> AnyView {
    let (x, y1, y2) = spec.rule(m);
    let (x, y1, y2) = (num(x), num(y1), num(y2));
    let title = m.title.clone();
    let inner = view! {
        <g class=format!("marker {}", m.class)>
            <title>{title}</title>
            <line class="hit" x1=x.clone() x2=x.clone() y1=y1.clone() y2=y2.clone() />
            <line x1=x.clone() x2=x y1=y1 y2=y2 />
        </g>
    };
    match &m.href {
        Some(href) => view! { <a href=href.clone()>{inner}</a> }.into_any(),
        None => inner.into_any(),
    }
}

/// A chart in a `<figure class=class>`: its plot — gridlines, axis, series, markers, tick
/// labels and hover columns — with `children` (the caption, notices) above it, or below with
/// `caption_below`. With nothing to draw and an empty text in `spec`, that text instead.
#[component]
pub fn TimeChart(
    spec: ChartSpec,
    /// What the stylesheet draws by: `line-chart` or `capacity-chart`.
    class: &'static str,
    /// The plot's `aria-label`.
    #[prop(into)]
    label: String,
    #[prop(optional)] caption_below: bool,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    if let Some(text) = spec.empty_text() {
        return view! { <p class="muted">{text}</p> }.into_any();
    }
    let h = spec.height;
    let base = num(spec.baseline());
    let grid = spec
        .value_labels
        .iter()
        .map(|(v, _)| {
            let y = num(spec.y.at(*v));
            view! { <line class="grid" x1="0" x2=num(WIDTH) y1=y.clone() y2=y /> }
        })
        .collect_view();
    let time_grid = spec
        .time_ticks
        .iter()
        .map(|t| {
            let x = num(spec.x.at(t.at as f64));
            view! { <line class="grid" x1=x.clone() x2=x y1="0" y2=num(h) /> }
        })
        .collect_view();
    let paths = spec
        .series
        .iter()
        .map(|s| view! { <path class=s.class d=spec.path(s) /> })
        .collect_view();
    let markers = spec
        .markers
        .iter()
        .map(|m| marker_view(&spec, m))
        .collect_view();
    let y_labels = spec
        .value_labels
        .iter()
        .map(|(v, text)| {
            view! { <span class="y-tick" style=format!("top:{}px", num(spec.y.at(*v)))>{text.clone()}</span> }
        })
        .collect_view();
    let x_labels = spec
        .time_ticks
        .iter()
        .map(|t| {
            let x = spec.x.at(t.at as f64);
            view! { <span class="x-tick" style=format!("left:{}", pct(x))>{t.label.clone()}</span> }
        })
        .collect_view();
    let columns = spec
        .columns()
        .into_iter()
        .map(|c| {
            let at = if c.width > 0.0 {
                (c.x - c.left) / c.width * 100.0
            } else {
                0.0
            };
            let at = format!("left:{at:.2}%");
            let dots = c
                .dots
                .iter()
                .map(|(class, y)| {
                    view! { <span class=format!("dot {class}") style=format!("{at};top:{}px", num(*y))></span> }
                })
                .collect_view();
            view! {
                <div class="hover" style=format!("left:{};width:{}", pct(c.left), pct(c.width))>
                    <span class="cross" style=at.clone()></span>
                    {dots}
                    <span class=format!("tip {}", c.anchor) style=at>{c.text}</span>
                </div>
            }
        })
        .collect_view();
    let plot = view! {
        <div class="plot" style=format!("height:{h}px")>
            <svg class="lines" viewBox=format!("0 0 {WIDTH} {h}") preserveAspectRatio="none" role="img" aria-label=label>
                {grid}
                {time_grid}
                <line class="axis" x1="0" x2=num(WIDTH) y1=base.clone() y2=base />
                {paths}
            </svg>
            {y_labels}
            {x_labels}
            <div class="hovers">{columns}</div>
            <svg class="marks" viewBox=format!("0 0 {WIDTH} {h}") preserveAspectRatio="none">
                {markers}
            </svg>
        </div>
    };
    let around = children.map(|c| c());
    if caption_below {
        view! { <figure class=format!("chart {class}")>{plot}{around}</figure> }.into_any()
    } else {
        view! { <figure class=format!("chart {class}")>{around}{plot}</figure> }.into_any()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: f64 = 100.0;

    fn axis(lo: f64, hi: f64, step: f64) -> Axis {
        Axis { lo, hi, step }
    }

    #[test]
    fn a_scale_maps_its_ends_and_between() {
        let s = Scale::linear((0.0, 10.0), (50.0, 10.0));
        assert_eq!(s.at(0.0), 50.0);
        assert_eq!(s.at(10.0), 10.0);
        assert_eq!(s.at(5.0), 30.0);
        assert_eq!(s.at(20.0), -30.0, "not clamped: beyond the end");
        assert_eq!(s.clamped().at(20.0), 10.0);
        assert_eq!(s.clamped().at(-3.0), 50.0);
    }

    #[test]
    fn a_scale_of_no_width_does_not_divide_by_zero() {
        let s = Scale::linear((3.0, 3.0), (0.0, 100.0));
        assert_eq!(s.at(3.0), 0.0);
        assert_eq!(s.at(4.0), 100.0);
    }

    #[test]
    fn a_time_scale_is_at_least_a_second_wide() {
        let s = Scale::time(1_000, 1_000, (10.0, 110.0));
        assert_eq!(s.at(1_000.0), 10.0);
        assert_eq!(s.at(1_001.0), 110.0);
        let hour = Scale::time(0, 3_600, (10.0, 110.0));
        assert_eq!(hour.at(1_800.0), 60.0);
    }

    #[test]
    fn missing_samples_break_the_line() {
        let pts = [
            (0, 1.0),
            (60, 2.0),
            (120, 3.0),
            (300, 4.0),
            (360, f64::NAN),
            (420, 5.0),
        ];
        let r = runs(&pts, Some(gap_for_step(60)));
        assert_eq!(
            r,
            vec![
                vec![(0, 1.0), (60, 2.0), (120, 3.0)],
                vec![(300, 4.0)],
                vec![(420, 5.0)],
            ],
            "a gap of three steps and a sample that is not a number"
        );
        assert_eq!(runs(&pts[..4], None).len(), 1, "no gaps asked: one run");
        assert!(runs(&[], Some(90)).is_empty());
        assert_eq!(gap_for_step(30), 45);
    }

    #[test]
    fn a_line_path_moves_then_draws_and_moves_again_after_a_gap() {
        assert_eq!(line_path(&[]), "");
        assert_eq!(line_path(&[vec![(1.0, 2.0)]]), "M1.0,2.0");
        assert_eq!(
            line_path(&[vec![(1.0, 2.0), (3.25, 4.0)], vec![(5.0, 6.04), (7.0, 8.0)]]),
            "M1.0,2.0 L3.2,4.0 M5.0,6.0 L7.0,8.0"
        );
    }

    #[test]
    fn a_step_path_holds_each_value_and_the_last_to_the_right_edge() {
        assert_eq!(step_path(&[], 100.0), "");
        assert_eq!(
            step_path(&[vec![(10.0, 40.0), (30.0, 20.0)]], 100.0),
            "M10.0,40.0 H30.0 V20.0 H100.0"
        );
    }

    #[test]
    fn series_paths_go_through_the_scales() {
        // Time 0..100 s across 0..1000, values 0..10 up from 100 to 0.
        let spec = ChartSpec::new(H, (0, 100), axis(0.0, 10.0, 5.0));
        let line = Series::line("series", vec![(0, 0.0), (50, 5.0), (100, 10.0)]);
        assert_eq!(spec.path(&line), "M0.0,100.0 L500.0,50.0 L1000.0,0.0");
        let step = Series::step("max", vec![(0, 10.0), (50, 5.0)]);
        assert_eq!(spec.path(&step), "M0.0,0.0 H500.0 V50.0 H1000.0");
        let gappy = Series::line("series", vec![(0, 0.0), (10, 1.0), (90, 2.0)]).gaps_over(15);
        assert_eq!(spec.path(&gappy), "M0.0,100.0 L100.0,90.0 M900.0,80.0");
    }

    #[test]
    fn clamped_time_keeps_early_points_at_the_left() {
        let spec = ChartSpec::new(H, (100, 200), axis(0.0, 10.0, 5.0)).clamp_time();
        assert_eq!(spec.point(50, 0.0), (0.0, 100.0));
        let free = ChartSpec::new(H, (100, 200), axis(0.0, 10.0, 5.0));
        assert_eq!(free.point(50, 0.0), (-500.0, 100.0));
    }

    #[test]
    fn the_axis_stands_at_zero_or_the_nearest_end() {
        let zero_up = ChartSpec::new(H, (0, 1), axis(0.0, 10.0, 5.0));
        assert_eq!(zero_up.baseline(), 100.0);
        let below_zero = ChartSpec::new(H, (0, 1), axis(-100.0, 100.0, 50.0));
        assert_eq!(below_zero.baseline(), 50.0);
        let above_zero = ChartSpec::new(H, (0, 1), axis(5.0, 10.0, 5.0));
        assert_eq!(above_zero.baseline(), 100.0);
    }

    #[test]
    fn value_labels_are_the_axis_ticks_with_their_unit() {
        let spec = ChartSpec::new(H, (0, 1), axis(0.0, 0.002, 0.0005))
            .value_labels(|v| format!("{:.2} %", v * 100.0));
        let labels: Vec<&str> = spec.value_labels.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(labels, ["0.00 %", "0.05 %", "0.10 %", "0.15 %", "0.20 %"]);
    }

    #[test]
    fn markers_span_the_plot_or_tick_up_from_the_bottom() {
        let spec = ChartSpec::new(H, (0, 100), axis(0.0, 10.0, 5.0));
        let full = Marker::rule(50, "apply", Reach::Full, "apply".into());
        assert_eq!(spec.rule(&full), (500.0, 0.0, 100.0));
        let tick = Marker::rule(100, "scheduled", Reach::Tick(8.0), "peak".into());
        assert_eq!(spec.rule(&tick), (1000.0, 100.0, 92.0));
    }

    fn hover(at: i64) -> Hover {
        Hover {
            at,
            text: format!("t{at}"),
            values: vec![("series", 5.0)],
        }
    }

    #[test]
    fn hover_columns_cover_the_plot_around_or_after_each_sample() {
        let spec = ChartSpec::new(H, (0, 100), axis(0.0, 10.0, 5.0))
            .hovers(vec![hover(10), hover(50), hover(90)], false);
        let cols: Vec<(f64, f64, f64, &str)> = spec
            .columns()
            .iter()
            .map(|c| (c.left, c.width, c.x, c.anchor))
            .collect();
        assert_eq!(
            cols,
            [
                (0.0, 300.0, 100.0, "start"),
                (300.0, 400.0, 500.0, "middle"),
                (700.0, 300.0, 900.0, "end"),
            ]
        );
        assert_eq!(spec.columns()[0].dots, [("series", 50.0)]);
        let held = ChartSpec::new(H, (0, 100), axis(0.0, 10.0, 5.0))
            .clamp_time()
            .hovers(vec![hover(-50), hover(50)], true);
        let cols: Vec<(f64, f64)> = held.columns().iter().map(|c| (c.left, c.width)).collect();
        assert_eq!(
            cols,
            [(0.0, 500.0), (500.0, 500.0)],
            "held from each to the next; one from before the range starts at the left edge"
        );
    }

    #[test]
    fn the_empty_text_shows_only_without_points() {
        let a = axis(0.0, 1.0, 0.5);
        let none = ChartSpec::new(H, (0, 1), a).series(Series::line("s", vec![]));
        assert_eq!(
            none.clone().empty("Nothing yet.").empty_text(),
            Some("Nothing yet.")
        );
        assert_eq!(none.empty_text(), None, "no empty text: drawn empty");
        let some = ChartSpec::new(H, (0, 1), a)
            .series(Series::line("s", vec![(0, 1.0)]))
            .empty("Nothing yet.");
        assert_eq!(some.empty_text(), None);
    }

    fn html(spec: ChartSpec, caption_below: bool) -> String {
        let owner = Owner::new();
        owner.with(|| {
            view! {
                <TimeChart spec class="line-chart" label="a chart" caption_below>
                    <figcaption>"caption"</figcaption>
                </TimeChart>
            }
            .to_html()
            .replace("<!>", "")
        })
    }

    #[test]
    fn the_chart_draws_its_grid_series_markers_labels_and_hovers() {
        let spec = ChartSpec::new(H, (0, 100), axis(0.0, 10.0, 5.0))
            .value_labels(|v| format!("{v} %"))
            .time_ticks(vec![TimeTick {
                at: 50,
                label: "21:00".into(),
            }])
            .markers(
                [Marker::rule(50, "apply", Reach::Full, "apply of #3".into())
                    .link("/changes/3".into())],
            )
            .series(Series::line("series", vec![(0, 0.0), (100, 10.0)]))
            .hovers(vec![hover(0), hover(100)], false);
        let out = html(spec.clone(), false);
        for part in [
            r#"<figure class="chart line-chart"><figcaption>caption</figcaption><div class="plot" style="height:100px;">"#,
            r#"<svg viewBox="0 0 1000 100" preserveAspectRatio="none" role="img" aria-label="a chart" class="lines">"#,
            r#"<line x1="0" x2="1000.0" y1="50.0" y2="50.0" class="grid">"#,
            r#"<line x1="500.0" x2="500.0" y1="0" y2="100.0" class="grid">"#,
            r#"<line x1="0" x2="1000.0" y1="100.0" y2="100.0" class="axis">"#,
            r#"<path d="M0.0,100.0 L1000.0,0.0" class="series">"#,
            r#"<span class="y-tick" style="top:0.0px;">10 %</span>"#,
            r#"<span class="x-tick" style="left:50.00%;">21:00</span>"#,
            r#"<div class="hover" style="left:0.00%;width:50.00%;"><span class="cross" style="left:0.00%;"></span><span class="dot series" style="left:0.00%;top:50.0px;"></span><span class="tip start" style="left:0.00%;">t0</span></div>"#,
            r#"<a href="/changes/3"><g class="marker apply"><title>apply of #3</title>"#,
        ] {
            assert!(out.contains(part), "{part} in {out}");
        }
        let below = html(spec, true);
        assert!(
            below.contains("</div><figcaption>caption</figcaption></figure>"),
            "{below}"
        );
    }

    #[test]
    fn with_nothing_to_draw_the_chart_says_so() {
        let spec = ChartSpec::new(H, (0, 1), axis(0.0, 1.0, 0.5))
            .series(Series::line("series", vec![]))
            .empty("No history yet.");
        let out = html(spec, false);
        assert!(
            out.contains(r#"<p class="muted">No history yet.</p>"#),
            "{out}"
        );
        assert!(!out.contains("<svg"), "{out}");
    }
}
