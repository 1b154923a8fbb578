//! A key's `allowed_routes` and `key_type` presets, on SQLite and on Postgres: what a restricted
//! key may call, LiteLLM's 403 for the rest, and who may set a restriction.

use crate::helpers::*;
use crate::keys::{backends, chat_with, keys_config};
use crate::team_rights::{ok, refused, user_key};
use serde_json::{json, Value};

/// LiteLLM's refusal names the key's list and the route.
const REFUSED: &str = "Virtual key is not allowed to call this route. Only allowed to call routes:";

#[tokio::test]
async fn restricted_keys_call_only_their_routes() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(&keys_config(db.as_deref()), Some(&mock)).await;

        // `key_type: llm_api`: LLM calls and model listings, nothing to manage.
        let k = ok(gw
            .post("/key/generate", json!({"key_type": "llm_api"}))
            .await)
        .await;
        assert_eq!(k["key_type"], "llm_api", "{name}");
        assert_eq!(k["allowed_routes"], json!(["llm_api_routes"]), "{name}");
        let llm = k["key"].as_str().unwrap().to_string();
        assert_eq!(chat_with(&gw, &llm, "up").await.status(), 200, "{name}");
        assert_eq!(gw.get_as(&llm, "/v1/models").await.status(), 200, "{name}");
        let e = refused(gw.get_as(&llm, "/key/info").await, 403, REFUSED).await;
        assert_eq!(
            e["error"]["message"],
            "Virtual key is not allowed to call this route. Only allowed to call routes: ['llm_api_routes']. Tried to call route: /key/info",
            "{name}"
        );
        assert_eq!(e["error"]["type"], "auth_error", "{name}");
        refused(
            gw.post_as(&llm, "/key/generate", json!({})).await,
            403,
            REFUSED,
        )
        .await;

        // `key_type: read_only`: views only; a refused call never reaches the upstream.
        let k = ok(gw
            .post("/key/generate", json!({"key_type": "read_only"}))
            .await)
        .await;
        let viewer = k["key"].as_str().unwrap().to_string();
        assert_eq!(
            gw.get_as(&viewer, "/key/info").await.status(),
            200,
            "{name}"
        );
        let before = mock.count();
        refused(
            chat_with(&gw, &viewer, "up").await,
            403,
            "/v1/chat/completions",
        )
        .await;
        assert_eq!(mock.count(), before, "{name}");

        // Paths an admin lists: exact, a prefix at a `/`, or a `*` prefix.
        let k = ok(gw
            .post(
                "/key/generate",
                json!({"allowed_routes": ["/chat/completions", "/key/*"]}),
            )
            .await)
        .await;
        let listed = k["key"].as_str().unwrap().to_string();
        let r = gw
            .post_as(&listed, "/chat/completions", chat_body("gpt-4o"))
            .await;
        assert_eq!(r.status(), 200, "{name}");
        refused(
            chat_with(&gw, &listed, "gpt-4o").await,
            403,
            "['/chat/completions', '/key/*']",
        )
        .await;
        assert_eq!(
            gw.get_as(&listed, "/key/info").await.status(),
            200,
            "{name}"
        );

        // The list is stored: it reads back, and clearing it lifts the restriction at once.
        let info = ok(gw.get(&format!("/key/info?key={listed}")).await).await;
        assert_eq!(
            info["info"]["allowed_routes"],
            json!(["/chat/completions", "/key/*"]),
            "{name}"
        );
        ok(gw
            .post("/key/update", json!({"key": listed, "allowed_routes": []}))
            .await)
        .await;
        assert_eq!(
            chat_with(&gw, &listed, "gpt-4o").await.status(),
            200,
            "{name}"
        );
        let bad = gw
            .post(
                "/key/generate",
                json!({"allowed_routes": "/chat/completions"}),
            )
            .await;
        assert_eq!(bad.status(), 400, "{name}");
    }
}

#[tokio::test]
async fn only_proxy_admins_choose_routes_freely() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let me = user_key(&gw, "u1", "internal_user").await;
        let only_admins = "Only proxy admins can set `allowed_routes` on a key.";

        // An internal user may not write a list, nor pick the management preset.
        for body in [
            json!({"allowed_routes": ["/chat/completions"]}),
            json!({"allowed_routes": []}),
            json!({"key_type": "management"}),
        ] {
            let r = gw.post_as(&me, "/key/generate", body.clone()).await;
            refused(r, 403, only_admins).await;
        }
        // The LLM and read-only presets are theirs to pick.
        let k: Value = ok(gw
            .post_as(&me, "/key/generate", json!({"key_type": "llm_api"}))
            .await)
        .await;
        let own = k["key"].as_str().unwrap().to_string();
        assert_eq!(k["allowed_routes"], json!(["llm_api_routes"]), "{name}");
        refused(gw.get_as(&own, "/key/info").await, 403, REFUSED).await;

        // Between the safe presets an owner may move, but a read-only key stays read-only.
        let to_view = json!({"key": own, "allowed_routes": ["info_routes"]});
        ok(gw.post_as(&me, "/key/update", to_view).await).await;
        assert_eq!(gw.get_as(&own, "/key/info").await.status(), 200, "{name}");
        let widen = json!({"key": own, "allowed_routes": ["llm_api_routes"]});
        refused(
            gw.post_as(&me, "/key/update", widen.clone()).await,
            403,
            only_admins,
        )
        .await;
        let by_preset = json!({"key": own, "key_type": "llm_api"});
        refused(
            gw.post_as(&me, "/key/update", by_preset).await,
            403,
            only_admins,
        )
        .await;
        ok(gw.post("/key/update", widen).await).await;
        assert_eq!(chat_with(&gw, &own, "gpt-4o").await.status(), 200, "{name}");
    }
}
