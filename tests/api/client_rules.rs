//! Rules about the caller that LiteLLM keeps in `general_settings`: the `allowed_ips`
//! allow-list (with `use_x_forwarded_for`), `enforced_params` (and a key's own), and the
//! headers that name the end user (`user_header_name`, `user_header_mappings`).

use crate::helpers::*;
use serde_json::{json, Value};

async fn status_and_body(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn allowed_ips_gate_every_authenticated_route() {
    let mock = mock_upstream().await;
    // The tests call from 127.0.0.1: a list without it refuses, before the key is looked at.
    let gw = gateway(
        &config_for(
            &["m1"],
            "  allowed_ips: [\"10.9.9.9\", \"192.168.0.0/16\"]\n",
        ),
        Some(&mock),
    )
    .await;
    for r in [
        gw.post("/v1/chat/completions", chat_body("m1")).await,
        gw.get("/key/list").await,
        gw.get_as("sk-not-a-key", "/v1/models").await,
    ] {
        let (status, body) = status_and_body(r).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(
            body["error"]["message"],
            "Access forbidden: IP address 127.0.0.1 not allowed."
        );
        assert_eq!(body["error"]["type"], "auth_error");
    }
    assert_eq!(mock.count(), 0, "a refused call never reaches the upstream");
    // Public routes stay public.
    let r = gw
        .client
        .get(gw.url("/health/liveliness"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An address or a block that covers the caller lets it in.
    for list in ["[\"127.0.0.1\"]", "[\"10.0.0.0/8\", \"127.0.0.0/8\"]"] {
        let gw = gateway(
            &config_for(&["m1"], &format!("  allowed_ips: {list}\n")),
            Some(&mock),
        )
        .await;
        let r = gw.post("/v1/chat/completions", chat_body("m1")).await;
        assert_eq!(r.status(), 200, "{list}");
        assert_eq!(gw.get("/key/list").await.status(), 200, "{list}");
        // The key is still checked.
        assert_eq!(gw.get_as("sk-not-a-key", "/key/list").await.status(), 401);
    }
}

#[tokio::test]
async fn forwarded_for_names_the_client_when_asked() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &config_for(
            &["m1"],
            "  allowed_ips: [\"203.0.113.9\"]\n  use_x_forwarded_for: true\n",
        ),
        Some(&mock),
    )
    .await;
    let call = |xff: Option<&'static str>| {
        let mut r = gw
            .client
            .post(gw.url("/chat/completions"))
            .bearer_auth(MASTER)
            .json(&chat_body("m1"));
        if let Some(v) = xff {
            r = r.header("x-forwarded-for", v);
        }
        r.send()
    };
    assert_eq!(call(Some("203.0.113.9")).await.unwrap().status(), 200);
    let (status, body) = status_and_body(call(Some("198.51.100.1")).await.unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["message"],
        "Access forbidden: IP address 198.51.100.1 not allowed."
    );
    // Without the header, the connection's address counts (127.0.0.1, not on the list).
    assert_eq!(call(None).await.unwrap().status(), 403);
}

#[tokio::test]
async fn enforced_params_come_from_config_and_keys() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &config_for(&["m1"], "  enforced_params: [\"user\"]\n"),
        Some(&mock),
    )
    .await;
    let (status, body) =
        status_and_body(gw.post("/v1/chat/completions", chat_body("m1")).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        "BadRequest please pass param=user in request body. This is a required param"
    );
    assert_eq!(body["error"]["param"], "user");
    assert_eq!(mock.count(), 0);
    let mut with_user = chat_body("m1");
    with_user["user"] = json!("u-1");
    assert_eq!(
        gw.post("/v1/chat/completions", with_user.clone())
            .await
            .status(),
        200
    );
    // Embeddings are LLM calls too.
    let r = gw
        .post("/v1/embeddings", json!({"model": "m1", "input": "x"}))
        .await;
    assert_eq!(r.status(), 400);

    // A key's own list adds to the config's, and is kept in its metadata.
    let k = gw
        .new_key(json!({"enforced_params": ["metadata.generation_name"]}))
        .await;
    let info: Value = gw
        .get(&format!("/key/info?key={k}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["info"]["metadata"]["enforced_params"],
        json!(["metadata.generation_name"]),
        "{info}"
    );
    let (status, body) = status_and_body(
        gw.post_as(&k, "/v1/chat/completions", with_user.clone())
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        "BadRequest please pass param=[metadata][generation_name] in request body. This is a required param"
    );
    let mut full = with_user.clone();
    full["metadata"] = json!({"generation_name": "nightly"});
    assert_eq!(
        gw.post_as(&k, "/v1/chat/completions", full).await.status(),
        200
    );
    // The master key has no key metadata: only the config's list applies to it.
    assert_eq!(
        gw.post("/v1/chat/completions", with_user).await.status(),
        200
    );
}

#[tokio::test]
async fn configured_headers_and_metadata_name_the_end_user() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &config_for(&["m1"], "  user_header_name: X-OpenWebUI-User-Id\n"),
        Some(&mock),
    )
    .await;
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .header("x-openwebui-user-id", "webui-7")
        .json(&json!({"model": "m1", "user": "body-user", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut meta = chat_body("m1");
    meta["metadata"] = json!({"user_id": "meta-user"});
    assert_eq!(gw.post("/v1/chat/completions", meta).await.status(), 200);
    gw.state.spend.flush().await;
    let logs: Value = gw.get("/spend/logs").await.json().await.unwrap();
    let users: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["end_user"].as_str())
        .collect();
    assert!(users.contains(&"webui-7"), "{logs}");
    assert!(users.contains(&"meta-user"), "{logs}");
    assert!(!users.contains(&"body-user"), "{logs}");

    // `user_header_mappings` takes precedence over the older setting.
    let gw = gateway(
        &config_for(
            &["m1"],
            "  user_header_name: x-old\n  user_header_mappings:\n    - header_name: X-Customer\n      litellm_user_role: customer\n",
        ),
        Some(&mock),
    )
    .await;
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .header("x-old", "old-user")
        .header("x-customer", "cust-3")
        .json(&chat_body("m1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.state.spend.flush().await;
    let logs: Value = gw.get("/spend/logs").await.json().await.unwrap();
    assert_eq!(logs[0]["end_user"], "cust-3", "{logs}");
}
