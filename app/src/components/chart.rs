//! The one chart of the pages: values over time as SVG drawn on the server — time and value
//! scales, the axis and its tick labels, line and step paths, marker rules, hover values
//! (`<title>`) and the empty state. The geometry is plain functions; [`TimeChart`] only draws it.

use leptos::prelude::*;

use super::step_path;

/// The SVG's size and the margin around the plot, in viewBox units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub pad: f64,
}

impl Frame {
    pub const fn new(width: f64, height: f64, pad: f64) -> Self {
        Self { width, height, pad }
    }

    pub fn left(self) -> f64 {
        self.pad
    }

    pub fn right(self) -> f64 {
        self.width - self.pad
    }

    pub fn top(self) -> f64 {
        self.pad
    }

    pub fn bottom(self) -> f64 {
        self.height - self.pad
    }
}

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

/// The top of a value axis: the largest value times `headroom` (1.1 leaves 10 % above it), or 1
/// when no value is above zero.
pub fn top_of(values: impl IntoIterator<Item = f64>, headroom: f64) -> f64 {
    let top = values.into_iter().fold(0.0_f64, f64::max);
    if top > 0.0 {
        top * headroom
    } else {
        1.0
    }
}

/// A line path through `points`: `M x,y L x,y …`.
pub fn line_path(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .enumerate()
        .map(|(i, (x, y))| format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" }))
        .collect()
}

/// Unix seconds as people read them, in UTC; `format` is chrono's (`%Y-%m-%d %H:%M UTC`).
pub fn utc_time(t: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// A coordinate as the SVG gets it.
fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// How a series goes from point to point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Straight lines.
    Line,
    /// Each value held until the next point, and the last one to the plot's right edge.
    Step,
}

/// A dot on a point, with its value on hover.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub r: f64,
    pub title: String,
}

/// One path: its class (which the stylesheet colours), its shape and its points (Unix seconds,
/// value); with dots, a circle on each point with that point's hover text.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    class: &'static str,
    shape: Shape,
    points: Vec<(i64, f64)>,
    dots: Option<(f64, Vec<String>)>,
}

impl Series {
    pub fn line(class: &'static str, points: Vec<(i64, f64)>) -> Self {
        Self {
            class,
            shape: Shape::Line,
            points,
            dots: None,
        }
    }

    pub fn step(class: &'static str, points: Vec<(i64, f64)>) -> Self {
        Self {
            shape: Shape::Step,
            ..Self::line(class, points)
        }
    }

    /// A dot of radius `r` on each point, with the point's text from `titles` (in order).
    pub fn dots(self, r: f64, titles: Vec<String>) -> Self {
        Self {
            dots: Some((r, titles)),
            ..self
        }
    }
}

/// How far a marker's rule reaches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// The plot's height.
    Full,
    /// A tick this long up from the bottom.
    Tick(f64),
}

/// A vertical rule at a time, with its text on hover; linked, or with a dot on it at a value
/// (then the dot has the text, and the class goes on a group around both).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    at: i64,
    class: &'static str,
    reach: Reach,
    title: String,
    href: Option<String>,
    dot: Option<(f64, f64)>,
}

impl Marker {
    pub fn rule(at: i64, class: &'static str, reach: Reach, title: String) -> Self {
        Self {
            at,
            class,
            reach,
            title,
            href: None,
            dot: None,
        }
    }

    pub fn link(self, href: String) -> Self {
        Self {
            href: Some(href),
            ..self
        }
    }

    /// A dot of radius `r` on the rule at `value`.
    pub fn dot(self, value: f64, r: f64) -> Self {
        Self {
            dot: Some((value, r)),
            ..self
        }
    }
}

/// A chart, as data: its frame and scales, labels, series and markers.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    frame: Frame,
    x: Scale,
    y: Scale,
    value_labels: Vec<(f64, String)>,
    /// Where value labels stand: at this x, this far below their value's height.
    label_x: f64,
    label_dy: f64,
    /// Labels under the two ends of the time axis.
    time_labels: Option<(String, String)>,
    series: Vec<Series>,
    markers: Vec<Marker>,
    empty: Option<&'static str>,
}

impl ChartSpec {
    /// A chart in `frame`, time from `start` to `end` across and values from `lo` to `hi` up.
    pub fn new(frame: Frame, (start, end): (i64, i64), (lo, hi): (f64, f64)) -> Self {
        Self {
            frame,
            x: Scale::time(start, end, (frame.left(), frame.right())),
            y: Scale::linear((lo, hi), (frame.bottom(), frame.top())),
            value_labels: Vec::new(),
            label_x: 0.0,
            label_dy: 0.0,
            time_labels: None,
            series: Vec::new(),
            markers: Vec::new(),
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

    /// Labels of values at `x`, `dy` below their value's height (negative: above).
    pub fn value_labels(self, x: f64, dy: f64, labels: Vec<(f64, String)>) -> Self {
        Self {
            value_labels: labels,
            label_x: x,
            label_dy: dy,
            ..self
        }
    }

    /// Labels under the start and the end of the time axis.
    pub fn time_labels(self, start: String, end: String) -> Self {
        Self {
            time_labels: Some((start, end)),
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

    /// The height of the axis: the value 0, or the nearest end of the value range to it.
    pub fn baseline(&self) -> f64 {
        let (lo, hi) = self.y.from;
        self.y.at(0.0_f64.clamp(lo.min(hi), lo.max(hi)))
    }

    pub fn value_label_at(&self, v: f64) -> (f64, f64) {
        (self.label_x, self.y.at(v) + self.label_dy)
    }

    pub fn path(&self, s: &Series) -> String {
        let pts: Vec<(f64, f64)> = s.points.iter().map(|(t, v)| self.point(*t, *v)).collect();
        match s.shape {
            Shape::Line => line_path(&pts),
            Shape::Step => step_path(&pts, self.frame.right()),
        }
    }

    /// The dots of every series, in order, each with its hover text.
    pub fn dots(&self) -> Vec<Dot> {
        self.series
            .iter()
            .filter_map(|s| s.dots.as_ref().map(|(r, titles)| (s, *r, titles)))
            .flat_map(|(s, r, titles)| {
                s.points.iter().zip(titles).map(move |((t, v), title)| {
                    let (x, y) = self.point(*t, *v);
                    Dot {
                        x,
                        y,
                        r,
                        title: title.clone(),
                    }
                })
            })
            .collect()
    }

    /// A marker's rule: x, and the y it runs from and to.
    pub fn rule(&self, m: &Marker) -> (f64, f64, f64) {
        let (top, bottom) = (self.frame.top(), self.frame.bottom());
        let x = self.x.at(m.at as f64);
        match m.reach {
            Reach::Full => (x, top, bottom),
            Reach::Tick(len) => (x, bottom, bottom - len),
        }
    }
}

/// A marker as SVG: a rule with its text, perhaps linked; or a group of a bare rule and a dot
/// with the text.
fn marker_view(spec: &ChartSpec, m: &Marker) -> AnyView {
    let (x, y1, y2) = spec.rule(m);
    let (x, y1, y2) = (num(x), num(y1), num(y2));
    let title = m.title.clone();
    if let Some((value, r)) = m.dot {
        let cy = num(spec.y.at(value));
        return view! {
            <g class=m.class>
                <line x1=x.clone() x2=x.clone() y1=y1 y2=y2 />
                <circle cx=x cy=cy r=r.to_string()><title>{title}</title></circle>
            </g>
        }
        .into_any();
    }
    let line =
        view! { <line class=m.class x1=x.clone() x2=x y1=y1 y2=y2><title>{title}</title></line> };
    match &m.href {
        Some(href) => view! { <a href=href.clone()>{line}</a> }.into_any(),
        None => line.into_any(),
    }
}

/// A chart in a `<figure class=class>`: the axis, labels, markers, paths and dots of `spec`,
/// with `children` (the caption, notices) above it, or below with `caption_below`. With nothing
/// to draw and an empty text in `spec`, that text instead.
#[component]
pub fn TimeChart(
    spec: ChartSpec,
    /// What the stylesheet draws by: `line-chart` or `capacity-chart`.
    class: &'static str,
    /// The SVG's `aria-label`.
    #[prop(into)]
    label: String,
    #[prop(optional)] caption_below: bool,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    if let Some(text) = spec.empty_text() {
        return view! { <p class="muted">{text}</p> }.into_any();
    }
    let f = spec.frame;
    let base = num(spec.baseline());
    let value_labels = spec
        .value_labels
        .iter()
        .map(|(v, text)| {
            let (x, y) = spec.value_label_at(*v);
            view! { <text class="tick" x=x.to_string() y=num(y)>{text.clone()}</text> }
        })
        .collect_view();
    let time_labels = spec.time_labels.clone().map(|(start, end)| {
        view! {
            <text class="tick" x=num(f.left()) y=f.height.to_string()>{start}</text>
            <text class="tick end" x=num(f.right()) y=f.height.to_string()>{end}</text>
        }
    });
    let markers = spec
        .markers
        .iter()
        .map(|m| marker_view(&spec, m))
        .collect_view();
    let paths = spec
        .series
        .iter()
        .map(|s| view! { <path class=s.class d=spec.path(s) /> })
        .collect_view();
    let dots = spec
        .dots()
        .into_iter()
        .map(|d| view! { <circle cx=num(d.x) cy=num(d.y) r=d.r.to_string()><title>{d.title}</title></circle> })
        .collect_view();
    let svg = view! {
        <svg viewBox=format!("0 0 {} {}", f.width, f.height) role="img" aria-label=label>
            <line class="axis" x1=num(f.left()) x2=num(f.right()) y1=base.clone() y2=base />
            {value_labels}
            {time_labels}
            {markers}
            {paths}
            {dots}
        </svg>
    };
    let around = children.map(|c| c());
    if caption_below {
        view! { <figure class=class>{svg}{around}</figure> }.into_any()
    } else {
        view! { <figure class=class>{around}{svg}</figure> }.into_any()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Frame = Frame::new(120.0, 60.0, 10.0);

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
    fn the_top_leaves_headroom_and_is_one_without_values() {
        assert!((top_of([1.0, 4.0, 2.0], 1.1) - 4.4).abs() < 1e-9);
        assert_eq!(top_of([3.0, 7.0], 1.0), 7.0);
        assert_eq!(top_of([0.0, -2.0], 1.1), 1.0);
        assert_eq!(top_of([], 1.1), 1.0);
    }

    #[test]
    fn a_line_path_moves_then_draws() {
        assert_eq!(line_path(&[]), "");
        assert_eq!(line_path(&[(1.0, 2.0)]), "M1.0,2.0");
        assert_eq!(
            line_path(&[(1.0, 2.0), (3.25, 4.0), (5.0, 6.04)]),
            "M1.0,2.0 L3.2,4.0 L5.0,6.0"
        );
    }

    #[test]
    fn a_step_path_holds_each_value_to_the_right_edge() {
        assert_eq!(step_path(&[], 100.0), "");
        assert_eq!(
            step_path(&[(10.0, 40.0), (30.0, 20.0)], 100.0),
            "M10.0,40.0 H30.0 V20.0 H100.0"
        );
    }

    #[test]
    fn series_paths_go_through_the_scales() {
        // Time 0..100 s across 10..110, values 0..10 up from 50 to 10.
        let spec = ChartSpec::new(FRAME, (0, 100), (0.0, 10.0));
        let line = Series::line("series", vec![(0, 0.0), (50, 5.0), (100, 10.0)]);
        assert_eq!(spec.path(&line), "M10.0,50.0 L60.0,30.0 L110.0,10.0");
        let step = Series::step("max", vec![(0, 10.0), (50, 5.0)]);
        assert_eq!(spec.path(&step), "M10.0,10.0 H60.0 V30.0 H110.0");
    }

    #[test]
    fn clamped_time_keeps_early_points_at_the_left() {
        let spec = ChartSpec::new(FRAME, (100, 200), (0.0, 10.0)).clamp_time();
        assert_eq!(spec.point(50, 0.0), (10.0, 50.0));
        let free = ChartSpec::new(FRAME, (100, 200), (0.0, 10.0));
        assert_eq!(free.point(50, 0.0), (-40.0, 50.0));
    }

    #[test]
    fn the_axis_stands_at_zero_or_the_nearest_end() {
        let zero_up = ChartSpec::new(FRAME, (0, 1), (0.0, 10.0));
        assert_eq!(zero_up.baseline(), 50.0);
        let below_zero = ChartSpec::new(FRAME, (0, 1), (-100.0, 100.0));
        assert_eq!(below_zero.baseline(), 30.0);
        let above_zero = ChartSpec::new(FRAME, (0, 1), (5.0, 10.0));
        assert_eq!(above_zero.baseline(), 50.0);
    }

    #[test]
    fn value_labels_stand_at_their_height_with_the_offset() {
        let spec = ChartSpec::new(FRAME, (0, 1), (0.0, 10.0)).value_labels(
            2.0,
            4.0,
            vec![(10.0, "10".into()), (0.0, "0".into())],
        );
        assert_eq!(spec.value_label_at(10.0), (2.0, 14.0));
        assert_eq!(spec.value_label_at(0.0), (2.0, 54.0));
    }

    #[test]
    fn dots_carry_their_points_hover_text() {
        let spec = ChartSpec::new(FRAME, (0, 100), (0.0, 10.0))
            .series(Series::step("max", vec![(0, 10.0)]))
            .series(
                Series::line("series", vec![(0, 0.0), (100, 10.0)])
                    .dots(2.0, vec!["first".into(), "last".into()]),
            );
        let dots = spec.dots();
        assert_eq!(
            dots,
            vec![
                Dot {
                    x: 10.0,
                    y: 50.0,
                    r: 2.0,
                    title: "first".into()
                },
                Dot {
                    x: 110.0,
                    y: 10.0,
                    r: 2.0,
                    title: "last".into()
                },
            ]
        );
    }

    #[test]
    fn markers_span_the_plot_or_tick_up_from_the_bottom() {
        let spec = ChartSpec::new(FRAME, (0, 100), (0.0, 10.0));
        let full = Marker::rule(50, "apply", Reach::Full, "apply".into());
        assert_eq!(spec.rule(&full), (60.0, 10.0, 50.0));
        let tick = Marker::rule(100, "scheduled", Reach::Tick(8.0), "peak".into());
        assert_eq!(spec.rule(&tick), (110.0, 50.0, 42.0));
    }

    #[test]
    fn the_empty_text_shows_only_without_points() {
        let none = ChartSpec::new(FRAME, (0, 1), (0.0, 1.0)).series(Series::line("s", vec![]));
        assert_eq!(
            none.clone().empty("Nothing yet.").empty_text(),
            Some("Nothing yet.")
        );
        assert_eq!(none.empty_text(), None, "no empty text: drawn empty");
        let some = ChartSpec::new(FRAME, (0, 1), (0.0, 1.0))
            .series(Series::line("s", vec![(0, 1.0)]))
            .empty("Nothing yet.");
        assert_eq!(some.empty_text(), None);
    }

    #[test]
    fn times_read_in_utc() {
        assert_eq!(utc_time(0, "%Y-%m-%d %H:%M UTC"), "1970-01-01 00:00 UTC");
        assert_eq!(utc_time(86_400 + 3_660, "%m-%d %H:%M"), "01-02 01:01");
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
    fn the_chart_draws_paths_dots_and_markers_in_its_figure() {
        let spec = ChartSpec::new(FRAME, (0, 100), (0.0, 10.0))
            .value_labels(0.0, -8.0, vec![(10.0, "10 %".into())])
            .time_labels("start".into(), "end".into())
            .markers([
                Marker::rule(50, "apply", Reach::Full, "apply of #3".into())
                    .link("/changes/3".into()),
                Marker::rule(20, "mark", Reach::Full, "peak".into()).dot(5.0, 4.0),
            ])
            .series(Series::line("series", vec![(0, 0.0)]).dots(2.0, vec!["0 %".into()]));
        let out = html(spec.clone(), false);
        for part in [
            r#"<figure class="line-chart"><figcaption>caption</figcaption><svg viewBox="0 0 120 60" role="img" aria-label="a chart">"#,
            r#"<line x1="10.0" x2="110.0" y1="50.0" y2="50.0" class="axis">"#,
            r#"<text x="0" y="2.0" class="tick">10 %</text>"#,
            r#"<text x="110.0" y="60" class="tick end">end</text>"#,
            r#"<a href="/changes/3"><line x1="60.0" x2="60.0" y1="10.0" y2="50.0" class="apply"><title>apply of #3</title></line></a>"#,
            r#"<g class="mark"><line x1="30.0" x2="30.0" y1="10.0" y2="50.0"></line><circle cx="30.0" cy="30.0" r="4"><title>peak</title></circle></g>"#,
            r#"<path d="M10.0,50.0" class="series">"#,
            r#"<circle cx="10.0" cy="50.0" r="2"><title>0 %</title></circle>"#,
        ] {
            assert!(out.contains(part), "{part} in {out}");
        }
        let below = html(spec, true);
        assert!(
            below.contains("</svg><figcaption>caption</figcaption></figure>"),
            "{below}"
        );
    }

    #[test]
    fn with_nothing_to_draw_the_chart_says_so() {
        let spec = ChartSpec::new(FRAME, (0, 1), (0.0, 1.0))
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
