//! API tokens: created once, sent as a bearer, checked like their owner, revocable.

use tierdeck_tests::{actions, TestApp, PASSWORD};

#[tokio::test]
async fn a_token_acts_as_its_owner_until_revoked() {
    let app = TestApp::spawn().await;
    app.add_user("root", "admin").await;
    app.add_user("vic", "viewer").await;
    let out = app
        .cli(
            &["token", "create", "--user", "vic", "--label", "reports"],
            None,
        )
        .await;
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("tdk_") && token.len() == 68, "{token}");

    let http = reqwest::Client::new();
    let me: serde_json::Value = http
        .get(format!("{}/api/v1/me", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "vic");
    assert_eq!(me["role"], "viewer");

    // Same role checks as the user: a viewer's token cannot create users. No Origin is needed:
    // a browser cannot attach a bearer token on someone's behalf.
    let res = http
        .post(format!("{}/sfn/create_user", app.base))
        .bearer_auth(&token)
        .header("Accept", "application/json")
        .form(&[
            ("name", "x"),
            ("email", ""),
            ("role", "admin"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Last use is recorded.
    let list = app.cli(&["token", "list", "--user", "vic"], None).await;
    let listing = String::from_utf8(list.stdout).unwrap();
    assert!(
        listing.contains("reports") && !listing.contains("never"),
        "{listing}"
    );
    // The secret is never stored or listed.
    assert!(!listing.contains(&token[4..]), "{listing}");

    let id = listing
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let out = app.cli(&["token", "revoke", &id], None).await;
    assert!(out.status.success());
    let res = http
        .get(format!("{}/api/v1/me", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");

    let root = app.login("root").await;
    let events = root.audit("action=token").await;
    assert_eq!(actions(&events), ["token.revoked", "token.created"]);
    assert_eq!(
        events[0]["actor"], "system",
        "the command line acts as tierdeck itself"
    );
}

#[tokio::test]
async fn people_manage_their_own_tokens_in_the_account_page() {
    let app = TestApp::spawn().await;
    app.add_user("ann", "approver").await;
    app.add_user("bob", "approver").await;
    let ann = app.login("ann").await;
    let res = ann.server_fn("create_token", &[("label", "laptop")]).await;
    assert_eq!(res.status(), 200);
    let created: serde_json::Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["token"]["id"].as_i64().unwrap().to_string();
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/me", app.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Someone else cannot revoke it.
    let bob = app.login("bob").await;
    assert_eq!(
        bob.server_fn("revoke_token", &[("id", &id)]).await.status(),
        403
    );
    assert_eq!(
        ann.server_fn("revoke_token", &[("id", &id)]).await.status(),
        200
    );
    let tokens: serde_json::Value = ann
        .server_fn("list_my_tokens", &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(tokens[0]["revoked_at"].is_string());
}

#[tokio::test]
async fn malformed_and_unknown_tokens_get_401() {
    let app = TestApp::spawn().await;
    for token in [
        "nonsense",
        "tdk_0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/audit", app.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{token}");
    }
}

#[tokio::test]
async fn a_password_reset_revokes_the_tokens_and_admins_see_and_revoke_anyones() {
    let app = TestApp::spawn().await;
    let admin = app.api_as("root", "admin").await;
    let bob = app.api_as("bob", "operator").await;
    let cy = app.api_as("cy", "viewer").await;
    assert_eq!(bob.get("/api/v1/me").await.status(), 200);

    // Admins list every live token, and revoke anyone's.
    let all = admin.get_json("/api/v1/tokens").await;
    let owners: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["owner"].as_str().unwrap())
        .collect();
    for who in ["root", "bob", "cy"] {
        assert!(owners.contains(&who), "{all}");
    }
    assert_eq!(cy.get("/api/v1/tokens").await.status(), 403);
    let cy_token = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["owner"] == "cy")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = bob.post(&format!("/api/v1/tokens/{cy_token}/revoke")).await;
    assert_eq!(res.status(), 403, "not someone else's");
    let res = admin
        .post(&format!("/api/v1/tokens/{cy_token}/revoke"))
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(cy.get("/api/v1/me").await.status(), 401);

    // A reset ends bob's token with his sessions.
    let page = app.login("root").await;
    let res = page
        .server_fn(
            "reset_password",
            &[("name", "bob"), ("password", "a brand new secret")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(bob.get("/api/v1/me").await.status(), 401);
    let reset = admin
        .get_json("/api/v1/audit?action=user.password_reset")
        .await;
    assert_eq!(reset["events"][0]["detail"]["tokens_revoked"], 1);
    let html = page.get("/admin").await.text().await.unwrap();
    assert!(html.contains("API tokens"), "the Admin page lists tokens");
}
