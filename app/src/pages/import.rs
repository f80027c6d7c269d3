//! Environments → Import (admins): an environment's spec written from what runs in the
//! account, previewed with the round trip's plan, and downloaded as a tar archive of its
//! folder. tierdeck commits nothing: the files go to the spec repository by hand.

use domain::import::Preview;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::import_preview;
use crate::components::Loaded;
use crate::resource::resource;

/// The form's fields, as the address carries them.
#[derive(Debug, Clone, PartialEq, Default)]
struct Asked {
    env: String,
    region: String,
    by: String,
    value: String,
}

impl Asked {
    fn query(&self) -> String {
        let e = |s: &str| urlencoding::encode(s).into_owned();
        format!(
            "env={}&region={}&by={}&value={}",
            e(&self.env),
            e(&self.region),
            e(&self.by),
            e(&self.value)
        )
    }
}

#[component]
fn Listed(title: &'static str, items: Vec<String>) -> impl IntoView {
    (!items.is_empty()).then(|| {
        view! {
            <section class="card">
                <h2>{title}</h2>
                <ul>{items.into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul>
            </section>
        }
    })
}

#[component]
fn PreviewView(preview: Preview, download: String) -> impl IntoView {
    if preview.files.is_empty() {
        let unread: Vec<String> = preview
            .unread
            .iter()
            .map(|u| format!("{}: the credentials may not call {}", u.what, u.action))
            .collect();
        return view! {
            <section class="card empty-state" id="import-result">
                <p><strong>"Nothing in " {preview.region.clone()} " matches " <code>{preview.selector.clone()}</code> "."</strong>
                    " No Auto Scaling group and no database: there is nothing to write."</p>
            </section>
            <Listed title="Could not read (access denied)" items=unread />
        }
        .into_any();
    }
    let round_trip = match (&preview.round_trip_failed, preview.round_trip_clean) {
        (Some(why), _) => view! { <p class="error">"The written spec could not be planned: " {why.clone()}</p> }.into_any(),
        (None, true) => view! { <p class="ok" id="round-trip">"No changes: the spec says what runs."</p> }.into_any(),
        (None, false) => view! {
            <p id="round-trip">"The plan is not empty: what the spec could not express as it runs:"</p>
            <ol>{preview.round_trip.iter().map(|o| view! { <li>{o.clone()}</li> }).collect_view()}</ol>
        }
        .into_any(),
    };
    let unread: Vec<String> = preview
        .unread
        .iter()
        .map(|u| format!("{}: the credentials may not call {}", u.what, u.action))
        .collect();
    let unexpressed: Vec<String> = preview
        .unexpressed
        .iter()
        .map(ToString::to_string)
        .collect();
    let unmatched: Vec<String> = preview.unmatched.clone();
    let folder = format!("environments/{}/", preview.env);
    view! {
        <section class="card" id="import-result">
            <p>"Read " {preview.region.clone()} " (" <code>{preview.selector.clone()}</code> "): "
                {preview.counts.clone()} "; " {preview.read_ms} " ms, " {preview.aws_calls} " AWS calls."</p>
            <p><a class="button" href=download download="">"Download " {folder.clone()} " as a tar archive"</a>
                " — tierdeck commits nothing: add the files to the spec repository yourself."</p>
            <h2>"Round trip"</h2>
            {round_trip}
        </section>
        <Listed title="Could not read (access denied; the rest was read)" items=unread />
        <Listed title="No group or database of these names" items=unmatched />
        <Listed title="Not expressed in the spec" items=unexpressed />
        <Listed title="Written files that do not validate" items=preview.spec_errors.clone() />
        <Listed title="Guardrail violations of what runs" items=preview.violations.clone() />
        {preview.files.into_iter().map(|(name, text)| view! {
            <section class="card import-file">
                <h2><code>{format!("{folder}{name}")}</code></h2>
                <pre>{text}</pre>
            </section>
        }).collect_view()}
    }
    .into_any()
}

#[component]
pub fn Import() -> impl IntoView {
    let query = use_query_map();
    let asked = move || {
        query.with(|q| Asked {
            env: q.get("env").unwrap_or_default(),
            region: q.get("region").unwrap_or_default(),
            by: q.get("by").unwrap_or_else(|| "prefix".into()),
            value: q.get("value").unwrap_or_default(),
        })
    };
    let preview = resource(asked, |a: Asked| async move {
        if a.env.is_empty() {
            return Ok(None);
        }
        import_preview(a.env, a.region, a.by, a.value)
            .await
            .map(Some)
    });
    let a = asked();
    let by = a.by.clone();
    let download = format!("/environments/import.tar?{}", a.query());
    view! {
        <Title text="Import" />
        <h1>"Import an environment from what runs"</h1>
        <p>"Reads the account with the environment's plan role — its Auto Scaling groups, their CPU scaling and schedules, the databases, their security groups, subnets and network ACLs — writes the environment's spec files and plans them against the same account: “No changes” proves them. For admins; the same as " <code>"tierdeck import"</code> "."</p>
        <form method="get" action="/environments/import" class="card import-form">
            <label>"Environment " <input name="env" required value=a.env.clone() placeholder="prod" /></label>
            <label>"Region " <input name="region" required value=a.region.clone() placeholder="ap-northeast-2" /></label>
            <label>"Select by "
                <select name="by">
                    <option value="prefix" selected=by == "prefix">"name prefix"</option>
                    <option value="tag" selected=by == "tag">"tag KEY=VALUE"</option>
                    <option value="names" selected=by == "names">"names"</option>
                </select>
            </label>
            <label>"Value " <input name="value" required value=a.value.clone() placeholder="shop-prod-" /></label>
            <button type="submit">"Preview"</button>
        </form>
        <Loaded resource=preview let:found>
            {found.map(|p| view! { <PreviewView preview=p download=download.clone() /> })}
        </Loaded>
    }
}
