//! Environments: the list, and one environment's desired spec rendered for people.

use domain::change::{Drift, EnvironmentDetail, EnvironmentSummary};
use domain::cloudwatch::{TargetHealthReport, UnhealthyTargets};
use domain::slo::SloState;
use domain::spec::diff::{action_summary, cpu_summary};
use domain::spec::EnvironmentSpec;
use domain::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{load_environment, load_environments, load_target_health, ReconcileEnvironment};
use crate::components::chain::ChainDiagram;
use crate::components::{
    now_unix, page_zone, short, user_zone, ChangeTable, DriftBadge, ErrorBox, Loaded, Operations,
    SpecErrors, StatusBadge, WhenAt, ZoneNote,
};
use crate::pages::slo::SloBadge;
use crate::resource::resource;
use crate::CurrentUser;

/// What an environment's card says of its load balancers' targets: those not healthy, or why
/// they could not be read; nothing when all are healthy.
fn target_notice(env: &str, t: UnhealthyTargets) -> Option<AnyView> {
    let href = format!("/environments/{env}#targets-h");
    if let Some(e) = t.error {
        return Some(
            view! { <p class="notice error" role="alert">"Target health: " {e}</p> }.into_any(),
        );
    }
    let n = t.targets.len();
    (n > 0).then(|| {
        let list = t
            .targets
            .iter()
            .map(|(tg, x)| {
                format!(
                    "{} in {tg} ({}{})",
                    x.id,
                    x.state,
                    x.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let count = format!("{n} target{} not healthy", if n == 1 { "" } else { "s" });
        view! { <p class="notice error" role="alert"><a href=href>{count}</a> ": " {list}</p> }
            .into_any()
    })
}

/// An environment's card; with its SLOs' state (the worst of them), their badge beside the
/// drift's, linked to its SLO page.
#[component]
pub fn EnvironmentCard(
    env: EnvironmentSummary,
    #[prop(optional_no_strip)] slo: Option<SloState>,
    /// Its load balancers' targets that take no traffic (the overview's cards).
    #[prop(optional_no_strip)]
    targets: Option<UnhealthyTargets>,
) -> impl IntoView {
    let href = format!("/environments/{}", env.name);
    let slo_href = format!("/slo?env={}", env.name);
    view! {
        <section class="card env-card">
            <h2><a href=href>{env.name.clone()}</a> " " <DriftBadge drift=env.drift.clone() />
                {slo.map(|state| view! { " " <a class="badge-link" href=slo_href title="SLOs">"SLO " <SloBadge state /></a> })}</h2>
            {env.applying.map(|c| view! { <p class="notice" role="status">"Applying " <a href=format!("/changes/{c}")>"change #" {c}</a> " now."</p> })}
            {targets.map(|t| target_notice(&env.name, t))}
            <p>"Last applied: " {match &env.last_applied_commit {
                Some(c) => view! { <code>{short(c)}</code> }.into_any(),
                None => view! { <span class="muted">"never"</span> }.into_any(),
            }}</p>
            <p>{env.open_changes} " open change" {if env.open_changes == 1 { "" } else { "s" }}</p>
            {env.latest_change.map(|c| view! {
                <p class="latest">
                    "Latest: " <a href=format!("/changes/{}", c.id)>"#" {c.id}</a> " " <StatusBadge status=c.status />
                    " " <span class="subject">{c.commit.subject().to_owned()}</span>
                </p>
            })}
        </section>
    }
}

#[component]
pub fn Environments() -> impl IntoView {
    let envs = resource(|| (), |_| load_environments());
    let may_import = use_context::<CurrentUser>()
        .and_then(|c| c.0)
        .is_some_and(|m| m.role >= Role::Admin);
    view! {
        <Title text="Environments" />
        <h1>"Environments"</h1>
        {may_import.then(|| view! {
            <p><a href="/environments/import">"Import an environment from what runs"</a>
                " — its spec written from the live account, proven by a plan of no changes."</p>
        })}
        <Loaded resource=envs empty_when=Vec::is_empty empty=|| view! {
            <section class="card empty-state">
                <p><strong>"No environments yet."</strong>" Each folder environments/<name>/ of the spec repository is one."</p>
                <p>"Set " <code>"[repo] url"</code> " in tierdeck.toml (or " <code>"TIERDECK_REPO__URL"</code> ") to the spec repository; environments appear after its first fetch."</p>
            </section>
        } let:list>
            <div class="cards">{list.into_iter().map(|env| view! { <EnvironmentCard env /> }).collect_view()}</div>
        </Loaded>
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
}

#[component]
fn SpecView(spec: EnvironmentSpec) -> impl IntoView {
    let e = spec.environment.clone();
    let windows = if e.change_windows.is_empty() {
        "any time".to_owned()
    } else {
        e.change_windows
            .iter()
            .map(|w| {
                let days: Vec<&str> = w.days.iter().map(|d| d.as_str()).collect();
                format!("{} {}–{} ({})", days.join(", "), w.start, w.end, w.timezone)
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    view! {
        {view! {
        <section class="card" aria-labelledby="settings-h">
            <h2 id="settings-h">"Settings"</h2>
            <dl class="facts">
                <dt>"Region"</dt><dd>{e.region.clone().unwrap_or_else(|| "the configured default".into())}</dd>
                <dt>"Approvals"</dt><dd>{e.approvals.required} " required" {if e.approvals.allow_self_approval { ", authors may approve their own" } else { ", not by the commit's author" }}</dd>
                <dt>"Auto-apply"</dt><dd>{if e.auto_apply { "yes, once approved" } else { "no, an operator applies" }}</dd>
                <dt>"Change windows"</dt><dd>{windows}</dd>
                <dt>"Guardrails"</dt><dd>{format!(
                    "{}–{} instances per tier{}",
                    e.guardrails.min_instances,
                    e.guardrails.max_instances,
                    if e.guardrails.require_multi_az { ", Multi-AZ databases" } else { "" }
                )}</dd>
            </dl>
        </section>
        }.into_any()}
        {view! {
        <section class="card" aria-labelledby="tiers-h">
            <h2 id="tiers-h">"Tiers"</h2>
            <div class="table-wrap"><table>
                <thead><tr><th scope="col">"Group"</th><th scope="col">"Tier"</th><th scope="col">"Min"</th><th scope="col">"Desired"</th><th scope="col">"Max"</th><th scope="col">"CPU scaling"</th></tr></thead>
                <tbody>{spec.autoscaling_groups.iter().map(|g| view! {
                    <tr>
                        <th scope="row"><code>{g.name.to_string()}</code></th>
                        <td>{g.tier.clone()}</td>
                        <td class="num">{g.capacity.min()}</td>
                        <td class="num">{opt(g.capacity.desired())}</td>
                        <td class="num">{g.capacity.max()}</td>
                        <td>{g.cpu_scaling.as_ref().map(cpu_summary).unwrap_or_else(|| "none".into())}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
            {spec.autoscaling_groups.iter().filter(|g| !g.schedule.is_empty()).map(|g| view! {
                <h3>"Schedule of " <code>{g.name.to_string()}</code></h3>
                <div class="table-wrap"><table>
                    <thead><tr><th scope="col">"Action"</th><th scope="col">"Cron"</th><th scope="col">"Time zone"</th><th scope="col">"Min"</th><th scope="col">"Desired"</th><th scope="col">"Max"</th></tr></thead>
                    <tbody>{g.schedule.iter().map(|a| view! {
                        <tr title=action_summary(a)>
                            <th scope="row">{a.name.clone()}</th>
                            <td><code>{a.cron.to_string()}</code></td>
                            <td>{a.timezone.to_string()}</td>
                            <td class="num">{opt(a.capacity.min())}</td>
                            <td class="num">{opt(a.capacity.desired())}</td>
                            <td class="num">{opt(a.capacity.max())}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table></div>
            }).collect_view()}
        </section>
        }.into_any()}
        {view! {
        <section class="card" aria-labelledby="db-h">
            <h2 id="db-h">"Databases"</h2>
            <div class="table-wrap"><table>
                <thead><tr><th scope="col">"Identifier"</th><th scope="col">"Class"</th><th scope="col">"Multi-AZ"</th><th scope="col">"Storage (GB)"</th><th scope="col">"Backups (days)"</th><th scope="col">"Deletion protection"</th></tr></thead>
                <tbody>{spec.databases.iter().map(|d| view! {
                    <tr>
                        <th scope="row"><code>{d.identifier.to_string()}</code></th>
                        <td>{opt(d.instance_class.clone())}</td>
                        <td>{opt(d.multi_az)}</td>
                        <td class="num">{opt(d.allocated_storage_gb)}</td>
                        <td class="num">{opt(d.backup_retention_days)}</td>
                        <td>{opt(d.deletion_protection)}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
        </section>
        }.into_any()}
        {view! {
        <section class="card" aria-labelledby="sg-h">
            <h2 id="sg-h">"Security groups"</h2>
            {spec.security_groups.iter().map(|sg| {
                let place = match (&sg.tier, &sg.subnets) {
                    (Some(t), Some(s)) => format!(" — tier {t}, in the {s} subnets"),
                    (Some(t), None) => format!(" — tier {t}"),
                    _ => String::new(),
                };
                view! {
                    <h3><code>{sg.name.clone()}</code> {sg.edge.then_some(" (internet-facing)")} <span class="muted">{place}</span></h3>
                    <ul class="rules">{sg.ingress.iter().map(|r| view! {
                        <li><code>{r.summary()}</code> {r.description.clone().map(|d| format!(" — {d}"))}</li>
                    }).collect_view()}</ul>
                }
            }).collect_view()}
        </section>
        }.into_any()}
        {(!spec.subnets.is_empty() || !spec.network_acls.is_empty()).then(|| view! {
        <section class="card" aria-labelledby="nacl-h">
            <h2 id="nacl-h">"Subnets and network ACLs"</h2>
            <div class="table-wrap"><table>
                <thead><tr><th scope="col">"Subnet"</th><th scope="col">"Tier"</th><th scope="col">"Block"</th><th scope="col">"Routed"</th><th scope="col">"Network ACL"</th></tr></thead>
                <tbody>{spec.subnets.iter().map(|s| {
                    let acl = spec.network_acls.iter().find(|a| a.subnets.contains(&s.tier)).map_or_else(|| "AWS's default (not managed)".to_owned(), |a| a.resource.to_string());
                    view! {
                        <tr>
                            <th scope="row"><code>{s.resource.to_string()}</code></th>
                            <td>{s.tier.clone()}</td>
                            <td><code>{s.cidr.clone()}</code></td>
                            <td>{if s.public { "public" } else { "private" }}</td>
                            <td>{acl}</td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table></div>
            {spec.network_acls.iter().map(|a| view! {
                <h3><code>{a.resource.to_string()}</code> <span class="muted">" — guards the " {a.subnets.join(", ")} " subnets"</span></h3>
                <div class="side-by-side">
                    {[("Ingress", false, &a.ingress), ("Egress", true, &a.egress)].into_iter().map(|(title, egress, entries)| view! {
                        <div>
                            <h4>{title}</h4>
                            <ol class="rules acl">{entries.iter().map(|e| {
                                let entry = domain::observed::ObservedAclEntry::from(e);
                                let class = entry.action.as_str();
                                view! { <li class=class><code>{entry.numbered_text(egress)}</code></li> }
                            }).collect_view()}
                            <li class="deny"><code>"* deny everything else"</code></li></ol>
                        </div>
                    }).collect_view()}
                </div>
            }).collect_view()}
        </section>
        })}
        {view! {
        <section class="card" aria-labelledby="slo-h">
            <h2 id="slo-h">"SLOs"</h2>
            <div class="table-wrap"><table>
                <thead><tr><th scope="col">"SLO"</th><th scope="col">"Objective"</th><th scope="col">"Window"</th><th scope="col">"Indicator"</th></tr></thead>
                <tbody>{spec.slos.iter().map(|s| view! {
                    <tr>
                        <th scope="row">{s.name.clone()}</th>
                        <td class="num">{format!("{} %", s.objective)}</td>
                        <td>{s.window_days} " days"</td>
                        <td class="detail">{match &s.indicator {
                            domain::spec::Indicator::Errors { errors, total } => view! { "errors " <code>{errors.clone()}</code> " / total " <code>{total.clone()}</code> }.into_any(),
                            domain::spec::Indicator::Good { good, total } => view! { "good " <code>{good.clone()}</code> " / total " <code>{total.clone()}</code> }.into_any(),
                            domain::spec::Indicator::LoadBalancer { load_balancer, latency_under_ms: None } => view! { "CloudWatch: 5XX answers / requests of load balancer " <code>{load_balancer.clone()}</code> }.into_any(),
                            domain::spec::Indicator::LoadBalancer { load_balancer, latency_under_ms: Some(ms) } => view! { "CloudWatch: requests of load balancer " <code>{load_balancer.clone()}</code> " answered within " {format!("{ms} ms")} " (" <code>{domain::cloudwatch::percentile_rank(*ms)}</code> ")" }.into_any(),
                        }}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
            {(!spec.monitoring.tiers.is_empty()).then(|| view! {
                <h3>"Monitoring selectors"</h3>
                <ul>{spec.monitoring.tiers.iter().map(|(t, s)| view! { <li>{t.clone()} ": " <code>{s.clone()}</code></li> }).collect_view()}</ul>
            })}
        </section>
        }.into_any()}
    }
}

/// The environment page's target health: loaded on its own, so AWS reads never hold up the
/// page; nothing when the spec names no load balancer.
#[component]
fn EnvironmentTargets(env: String) -> impl IntoView {
    let report = resource(move || env.clone(), load_target_health);
    view! {
        <Loaded resource=report loading="Reading target health…" let:r>
            {targets_view(r)}
        </Loaded>
    }
}

fn targets_view(r: TargetHealthReport) -> Option<AnyView> {
    if r.target_groups.is_empty() && r.error.is_none() {
        return None;
    }
    Some(view! {
        <section class="card" aria-labelledby="groups-targets-h">
            <h2 id="groups-targets-h">"Instances in service and healthy targets"</h2>
            {r.error.map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            <div class="table-wrap"><table>
                <thead><tr><th scope="col">"Group"</th><th scope="col">"Tier"</th><th scope="col">"In service"</th><th scope="col">"Healthy targets"</th></tr></thead>
                <tbody>{r.groups.into_iter().map(|g| {
                    let short = g.healthy_targets.is_some_and(|h| h < g.in_service);
                    view! {
                        <tr class=if short { "target-unhealthy" } else { "" }>
                            <th scope="row">{g.group}</th>
                            <td>{g.tier}</td>
                            <td class="num">{g.in_service}</td>
                            <td class="num">{g.healthy_targets.map_or_else(|| "—".to_owned(), |h| h.to_string())}</td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table></div>
        </section>
        <crate::pages::monitoring::TargetHealth groups=r.target_groups />
    }.into_any())
}

/// What the last drift check found, and the reconcile button when there is drift: an island,
/// live in the browser for that button.
#[island]
fn DriftView(
    drift: Drift,
    env: String,
    may_reconcile: bool,
    /// The zone's name, and the server's clock when it rendered the page.
    zone: String,
    now: i64,
) -> impl IntoView {
    let reconcile = ServerAction::<ReconcileEnvironment>::new();
    let zone = domain::time::zone_named(&zone);
    // `try_get`, as `ActionResult` does: while the page streams, a result whose island was
    // already dropped (the section rendered again) renders nothing instead of panicking. The
    // value's signal is taken now, while the action lives: asking a disposed action for it
    // panics (seen in a server's render thread in a full test run).
    let value = reconcile.value();
    let result = move || {
        value.try_get().flatten().map(|r| match r {
            Ok(id) => view! {
                <p class="notice ok" role="status">"Created " <a href=format!("/changes/{id}")>"change #" {id}</a> ": open it to review and apply it."</p>
            }
            .into_any(),
            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
        })
    };
    match drift {
        Drift::Unchecked => view! {
            {result}
            <p class="muted">"Not checked: tierdeck checks drift once it has applied this environment."</p>
        }
        .into_any(),
        Drift::InSync { checked_at, notes } => view! {
            {result}
            <p>"AWS matches the last applied commit (checked " <WhenAt t=checked_at zone now /> ")."</p>
            {(!notes.is_empty()).then(|| view! {
                <ul class="plan-notes">{notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
            })}
        }
        .into_any(),
        Drift::Unknown { checked_at, error } => view! {
            {result}
            <p class="notice error" role="alert">"The last check (" <WhenAt t=checked_at zone now /> ") could not run: " {error}</p>
        }
        .into_any(),
        Drift::Drifted { checked_at, since, plan } => view! {
            {result}
            <p>"Live AWS differs from the last applied commit since " <WhenAt t=since zone now />
               " (checked " <WhenAt t=checked_at zone now /> "). Applying these operations would bring it back:"</p>
            <Operations plan />
            {may_reconcile.then(|| view! {
                <ActionForm action=reconcile attr:class="inline">
                    <input type="hidden" name="env" value=env.clone() />
                    <button type="submit">"Reconcile: make a change"</button>
                </ActionForm>
            })}
        }
        .into_any(),
    }
}

#[component]
pub fn Environment() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let query = use_query_map();
    let hours = move || {
        if query.with(|q| q.get("preview").as_deref() == Some("7d")) {
            168
        } else {
            24
        }
    };
    let user = user_zone();
    // The environment's times read in the reader's zone, else the spec's (its schedule's).
    let zone_of = move |spec: &Option<EnvironmentSpec>| {
        page_zone(
            user,
            spec.as_ref()
                .map_or("UTC", |s| domain::time::environment_zone(s).name()),
        )
    };
    let may_reconcile = use_context::<CurrentUser>()
        .and_then(|c| c.0)
        .is_some_and(|m| m.role >= Role::Operator);
    let detail = resource(
        move || (name(), hours()),
        |(name, hours)| load_environment(name, hours),
    );
    view! {
        <Loaded resource=detail title="Environment" let(EnvironmentDetail { summary: EnvironmentSummary { name, last_applied_commit, drift, applying, .. }, head_commit, spec, spec_errors: errors, recent_changes, schedule, reverted, reachability })>
            <Title text=name.clone() />
            <h1>"Environment " {name.clone()}</h1>
            <ZoneNote zone=zone_of(&spec) at=now_unix() chosen=user.is_some() />
            <p class="lede">
                "Desired state at the branch head " {head_commit.as_deref().map(short).unwrap_or_else(|| "—".into())}
                "; last applied " {last_applied_commit.as_deref().map(short).unwrap_or_else(|| "never".into())} "."
                " Each change's page shows its plan against live AWS."
            </p>
            {applying.map(|c| view! { <p class="notice" role="status">"Applying " <a href=format!("/changes/{c}")>"change #" {c}</a> " now."</p> })}
            {reverted.map(|r| view! {
                <p class="notice reverted" role="status">{format!(
                    "Reverted to {}; the branch's {} is not applied. It stays so until a newer commit is applied: tierdeck does not apply {} again by itself.",
                    short(&r.to), short(&r.from), short(&r.from)
                )}</p>
            })}
            <section class="card" aria-labelledby="drift-h">
                <h2 id="drift-h">"Drift " <DriftBadge drift=drift.clone() /></h2>
                <DriftView drift env=name.clone() may_reconcile zone=zone_of(&spec).name().to_owned() now=now_unix() />
            </section>
            {(!errors.is_empty()).then(|| view! {
                <section class="card" aria-labelledby="errors-h">
                    <h2 id="errors-h">"The spec at the head has errors"</h2>
                    <SpecErrors errors />
                </section>
            })}
            {reachability.map(|r| view! {
                <section class="card" aria-labelledby="reach-h">
                    <h2 id="reach-h">"Who reaches which tier"</h2>
                    {if r.tiers.is_empty() {
                        view! { <p class="muted">"No security group names its tier: give each one its " <code>"tier"</code> " (see the spec reference) to see who reaches which tier."</p> }.into_any()
                    } else {
                        view! { <ChainDiagram reachability=r /> }.into_any()
                    }}
                </section>
            })}
            {spec.clone().map(|spec| view! { <SpecView spec /> })}
            {schedule.map(|p| {
                let base = format!("/environments/{name}");
                let week = p.hours > 48;
                view! {
                    <section class="card" aria-labelledby="preview-h">
                        <h2 id="preview-h">"Schedule preview: the next " {if week { "7 days" } else { "24 hours" }}</h2>
                        <p class="muted">"What the scheduled actions of the spec at the branch head set, in their own time zones (daylight saving included). "
                            <a href=format!("{base}?preview=24h")>"24 hours"</a> " · " <a href=format!("{base}?preview=7d")>"7 days"</a></p>
                        <crate::pages::schedule::SchedulePreview preview=p zone=zone_of(&spec) />
                    </section>
                }
            })}
            <EnvironmentTargets env=name.clone() />
            <crate::pages::cost::EnvironmentCost env=name.clone() />
            <section class="card" aria-labelledby="recent-h">
                <h2 id="recent-h">"Recent changes"</h2>
                <ChangeTable changes=recent_changes />
            </section>
        </Loaded>
    }
}
