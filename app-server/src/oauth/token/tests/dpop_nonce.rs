//! DPoP proofs at the token endpoint and the one retry with a server nonce.

use super::*;

#[test]
fn token_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let http = HttpClient::for_tests();
    let url = Url::parse("https://as.example/token").unwrap();
    let reg = public();
    assert_send(exchange_code(&http, &url, &reg, "c", "v", &url, "r", None));
    assert_send(refresh(&http, &url, &reg, "rt", "r", None, None));
    assert_send(revoke(&http, &url, &reg, "t", None));
}

/// A token endpoint that wants a DPoP nonce: `use_dpop_nonce` with `answer_nonce` unless
/// the proof carries `wanted`.
fn nonce_endpoint(
    wanted: &'static str,
    answer_nonce: Option<&'static str>,
) -> impl Fn(&Recorded) -> Response {
    move |req: &Recorded| {
        let proof = req
            .headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let claims = proof
            .split('.')
            .nth(1)
            .and_then(|c| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
            })
            .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
            .unwrap_or_default();
        if claims["nonce"] == wanted {
            return json(200, json!({"access_token": "at-d", "token_type": "dpop"}));
        }
        let body = serde_json::to_vec(&json!({"error": "use_dpop_nonce"})).unwrap();
        match answer_nonce {
            Some(n) => with_headers(
                400,
                &[("dpop-nonce", n), ("content-type", "application/json")],
                body,
            ),
            None => with_headers(400, &[("content-type", "application/json")], body),
        }
    }
}

#[tokio::test]
async fn a_dpop_nonce_refusal_is_retried_once_with_the_nonce_and_remembered() {
    let server = token_server(nonce_endpoint("n-1", Some("n-1"))).await;
    let (key, _) = crate::oauth::dpop::generate_key().unwrap();
    let nonces = dpop::NonceCache::default();
    let dpop = TokenDpop {
        key: &key,
        nonces: &nonces,
        slot: "s",
    };
    let http = HttpClient::for_tests();
    let url = server.url("/token");
    let tokens = refresh(&http, &url, &public(), "rt", "r", None, Some(dpop))
        .await
        .unwrap();
    assert_eq!(tokens.token_type, "DPoP", "any case of dpop is DPoP");
    assert_eq!(server.count("/token"), 2);
    assert_eq!(nonces.get("s").as_deref(), Some("n-1"));
    // The next request starts with the remembered nonce: no refusal.
    let form = [("grant_type", "client_credentials")];
    request_token_dpop(&http, &url, &form, &HeaderMap::new(), Some(dpop))
        .await
        .unwrap();
    assert_eq!(server.count("/token"), 3);
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.headers.contains_key("dpop"))
    );
}

#[tokio::test]
async fn a_dpop_nonce_refusal_without_a_new_nonce_is_not_retried() {
    for answer in [None, Some("other")] {
        // With "other" the retry carries it and is refused again: one retry only.
        let server = token_server(nonce_endpoint("never", answer)).await;
        let (key, _) = crate::oauth::dpop::generate_key().unwrap();
        let nonces = dpop::NonceCache::default();
        let dpop = TokenDpop {
            key: &key,
            nonces: &nonces,
            slot: "s",
        };
        let e = refresh(
            &HttpClient::for_tests(),
            &server.url("/token"),
            &public(),
            "rt",
            "r",
            None,
            Some(dpop),
        )
        .await
        .unwrap_err();
        assert_eq!(e.oauth_error(), Some("use_dpop_nonce"), "{answer:?}");
        let expected = if answer.is_some() { 2 } else { 1 };
        assert_eq!(server.count("/token"), expected, "{answer:?}");
    }
}

#[tokio::test]
async fn without_dpop_no_proof_is_sent() {
    let server = token_server(|_| tokens()).await;
    refresh(
        &HttpClient::for_tests(),
        &server.url("/token"),
        &public(),
        "rt",
        "r",
        None,
        None,
    )
    .await
    .unwrap();
    assert!(!server.requests()[0].headers.contains_key("dpop"));
}
