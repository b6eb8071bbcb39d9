//! Authentication failures and every role/organisation denial.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prescrypt::auth::{AUDIENCE, Claims, DEV_ISSUER, Role};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn claims(iss: &str, aud: &str, exp_offset: i64) -> Claims {
    claims_as(
        Role::Prescriber,
        PRESCRIBER_ORG,
        "G1234567",
        iss,
        aud,
        exp_offset,
    )
}

async fn assert_unauthenticated(app: &TestApp, bearer: &str) {
    let (status, problem) = app
        .post("/api/v1/prescriptions", bearer, &new_prescription())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(code_of(&problem), "unauthenticated");
}

#[tokio::test]
async fn missing_expired_wrong_issuer_wrong_audience_none_and_hs256_are_rejected() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/prescriptions/D7AC09-A99968-4BA59C"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    assert_unauthenticated(&app, "not-a-jwt").await;
    assert_unauthenticated(
        &app,
        &signed_by_dev_issuer(&app, &claims(DEV_ISSUER, AUDIENCE, -3600)),
    )
    .await;
    assert_unauthenticated(
        &app,
        &signed_by_dev_issuer(&app, &claims("evil", AUDIENCE, 3600)),
    )
    .await;
    assert_unauthenticated(
        &app,
        &signed_by_dev_issuer(&app, &claims(DEV_ISSUER, "other-api", 3600)),
    )
    .await;

    // alg none: a valid payload with no signature.
    let issuer = prescrypt::keys::dev_issuer(&app.keys_dir()).unwrap();
    assert_unauthenticated(&app, &alg_none(&app, &claims(DEV_ISSUER, AUDIENCE, 3600))).await;

    // HS256 keyed with the issuer's public key (the classic confusion attack).
    let hs = hs256_keyed_with(
        &issuer.signing.verifying_key().to_bytes(),
        issuer.kid.as_str(),
        &claims(DEV_ISSUER, AUDIENCE, 3600),
    );
    assert_unauthenticated(&app, &hs).await;

    // A token from an unknown key, even with a correct-looking kid.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&stranger).unwrap();
    let forged = jsonwebtoken::encode(
        &header_eddsa(issuer.kid.as_str()),
        &claims(DEV_ISSUER, AUDIENCE, 3600),
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    assert_unauthenticated(&app, &forged).await;

    // And the real thing works.
    let (status, _) = app
        .post(
            "/api/v1/prescriptions",
            &signed_by_dev_issuer(&app, &claims(DEV_ISSUER, AUDIENCE, 3600)),
            &new_prescription(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

fn header_eddsa(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header
}

#[tokio::test]
async fn tokens_from_a_configured_jwks_file_are_trusted_for_its_issuer_only() {
    let dir = tempfile::tempdir().unwrap();
    let idp_dir = dir.path().join("idp");
    let idp = prescrypt::keys::dev_issuer(&idp_dir).unwrap();
    let jwks = jsonwebtoken::jwk::JwkSet {
        keys: vec![idp.jwk().unwrap()],
    };
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, serde_json::to_vec(&jwks).unwrap()).unwrap();
    let app = TestApp::builder()
        .flags([
            "--jwks-file",
            jwks_path.to_str().unwrap(),
            "--jwks-issuer",
            "https://idp.example",
        ])
        .production()
        .spawn()
        .await;

    let good = jsonwebtoken::encode(
        &header_eddsa(idp.kid.as_str()),
        &claims("https://idp.example", AUDIENCE, 600),
        &idp.encoding,
    )
    .unwrap();
    let signer = prescrypt_testkit::PrescriberSigner::generate();
    signer.enrol(&app, &good).await;
    let created = signer.issue(&app, &good, &new_prescription()).await;
    assert!(created["prescriber_jws"].is_string(), "{created}");
    let wrong_iss = jsonwebtoken::encode(
        &header_eddsa(idp.kid.as_str()),
        &claims(DEV_ISSUER, AUDIENCE, 600),
        &idp.encoding,
    )
    .unwrap();
    assert_unauthenticated(&app, &wrong_iss).await;
    // The dev issuer is switched off.
    assert_unauthenticated(&app, &app.prescriber()).await;
}

#[tokio::test]
async fn roles_and_organisations_are_enforced() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    let admin = app.token(Role::Admin, "X26", "A1");
    let other_practice = app.token(Role::Prescriber, "B82005", "G2");

    // Role denials: 403 forbidden.
    for (bearer, path, body) in [
        (
            app.pharmacist(),
            "/api/v1/prescriptions".to_owned(),
            new_prescription(),
        ),
        (
            admin.clone(),
            "/api/v1/prescriptions".to_owned(),
            new_prescription(),
        ),
        (
            app.prescriber(),
            "/api/v1/release".to_owned(),
            json!({"token": token}),
        ),
        (
            admin.clone(),
            "/api/v1/release".to_owned(),
            json!({"token": token}),
        ),
        (
            app.prescriber(),
            "/api/v1/release/nominated".to_owned(),
            json!({}),
        ),
        (
            app.pharmacist(),
            format!("/api/v1/prescriptions/{id}/cancel"),
            json!({}),
        ),
        (
            app.prescriber(),
            format!("/api/v1/prescriptions/{id}/return"),
            json!({"reason": "0001"}),
        ),
        (
            app.prescriber(),
            format!("/api/v1/prescriptions/{id}/dispense/withdraw"),
            json!({}),
        ),
        (
            app.prescriber(),
            format!("/api/v1/prescriptions/{id}/claim"),
            claim_both_supplied(),
        ),
    ] {
        let (status, problem) = app.post_with(&path, &bearer, &body, Some("k")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {problem}");
        assert_eq!(code_of(&problem), "forbidden");
    }
    let (status, _) = app
        .dispense(
            &app.prescriber(),
            id,
            "k",
            &json!({"items": [{"line": 1, "outcome": "complete"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Organisation denials: 404, exactly like a prescription that does not exist.
    for bearer in [&other_practice, &app.pharmacist()] {
        let (status, problem) = app
            .get(&format!("/api/v1/prescriptions/{id}"), bearer)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(code_of(&problem), "prescription-not-found");
        let (status, _) = app
            .get(&format!("/api/v1/prescriptions/{id}/history"), bearer)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/cancel"),
            &other_practice,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(
            "/api/v1/prescriptions/D7AC09-A99968-4BA59C",
            &app.prescriber(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Admin may read; the holding pharmacy may read; another pharmacy may not act on it.
    let (status, _) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    app.release(&app.pharmacist(), token).await;
    let (status, _) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, body) in [
        ("return", json!({"reason": "0001"})),
        ("dispense/withdraw", json!({})),
        ("claim", claim_both_supplied()),
    ] {
        let (status, _) = app
            .post(
                &format!("/api/v1/prescriptions/{id}/{path}"),
                &app.other_pharmacist(),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = app
        .dispense(
            &app.other_pharmacist(),
            id,
            "k",
            &json!({"items": [{"line": 1, "outcome": "complete"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn refused_accesses_are_audited_without_naming_the_prescription() {
    use diesel::prelude::*;
    use prescrypt::store::schema::audit_log;

    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .get(
            &format!("/api/v1/prescriptions/{id}"),
            &app.other_pharmacist(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let refusals: Vec<(String, String, Option<String>, String)> = app
        .store
        .read(|conn| {
            Ok(audit_log::table
                .filter(audit_log::action.eq("access-refused"))
                .select((
                    audit_log::actor,
                    audit_log::org,
                    audit_log::prescription_uuid,
                    audit_log::detail,
                ))
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let (actor, org, prescription, detail) = &refusals[0];
    assert_eq!((actor.as_str(), org.as_str()), ("P1111111", OTHER_PHARMACY));
    assert_eq!(
        *prescription, None,
        "a refusal must not link to the prescription"
    );
    let detail: serde_json::Value = serde_json::from_str(detail).unwrap();
    assert_eq!(detail["id"], id.as_str());
    assert_eq!(detail["refusal"], "prescription-not-found");

    // The owner's history is unchanged by someone else's refused attempt.
    let (_, history) = app
        .get(
            &format!("/api/v1/prescriptions/{id}/history"),
            &app.prescriber(),
        )
        .await;
    assert!(!history.to_string().contains(OTHER_PHARMACY), "{history}");
}

#[tokio::test]
async fn only_prescribers_of_the_prescribing_organisation_print_tokens() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    for format in ["pdf", "png", "svg"] {
        let path = format!("/api/v1/prescriptions/{id}/token.{format}");
        for (bearer, expected) in [
            (
                app.token(Role::Pharmacist, PRESCRIBER_ORG, "P0000001"),
                StatusCode::FORBIDDEN,
            ),
            (
                app.token(Role::Admin, PRESCRIBER_ORG, "A0000001"),
                StatusCode::FORBIDDEN,
            ),
            (
                app.token(Role::Prescriber, "B82005", "G2"),
                StatusCode::NOT_FOUND,
            ),
        ] {
            let response = app
                .client
                .get(app.url(&path))
                .bearer_auth(&bearer)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), expected, "{path}");
        }
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(app.prescriber())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn tokens_not_yet_valid_issued_in_the_future_or_living_too_long_are_rejected() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let shifted = |iat: i64, exp: i64, nbf: Option<i64>| {
        let mut claims = claims(DEV_ISSUER, AUDIENCE, 0);
        claims.iat = iat;
        claims.exp = exp;
        claims.nbf = nbf;
        signed_by_dev_issuer(&app, &claims)
    };
    // Each alone is refused; the same token without the fault is accepted.
    assert_unauthenticated(&app, &shifted(now, now + 600, Some(now + 600))).await;
    assert_unauthenticated(&app, &shifted(now + 600, now + 1200, None)).await;
    assert_unauthenticated(&app, &shifted(now, now + 13 * 3600, None)).await;
    let good = shifted(now, now + 11 * 3600, Some(now));
    let (status, body) = app.get("/api/v1/prescriber-keys.json", &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let short = TestApp::builder()
        .flags(["--max-token-lifetime", "1h"])
        .spawn()
        .await;
    let two_hours = {
        let mut claims = claims(DEV_ISSUER, AUDIENCE, 2 * 3600);
        claims.iat = now;
        signed_by_dev_issuer(&short, &claims)
    };
    assert_unauthenticated(&short, &two_hours).await;
}

#[tokio::test]
async fn critical_headers_the_system_org_and_unreadable_subjects_are_rejected() {
    let app = spawn_app().await;
    let issuer = prescrypt::keys::dev_issuer(&app.keys_dir()).unwrap();
    let signed_with_header = |header: serde_json::Value, claims: &Claims| {
        let b64 = |bytes: Vec<u8>| data_encoding::BASE64URL_NOPAD.encode(&bytes);
        let message = format!(
            "{}.{}",
            b64(serde_json::to_vec(&header).unwrap()),
            b64(serde_json::to_vec(claims).unwrap())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &issuer.encoding, Algorithm::EdDSA)
                .unwrap();
        format!("{message}.{signature}")
    };
    let good = claims(DEV_ISSUER, AUDIENCE, 600);
    let plain = json!({"alg": "EdDSA", "kid": issuer.kid.as_str()});
    let (status, body) = app
        .get(
            "/api/v1/prescriber-keys.json",
            &signed_with_header(plain.clone(), &good),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the hand-made token is good: {body}"
    );
    let mut critical = plain;
    critical["crit"] = json!(["urn:example:policy"]);
    critical["urn:example:policy"] = json!("strict");
    assert_unauthenticated(&app, &signed_with_header(critical, &good)).await;

    let mut system = good.clone();
    system.org = "SYSTEM".into();
    assert_unauthenticated(&app, &signed_by_dev_issuer(&app, &system)).await;
    for sub in [
        "x".repeat(65),
        "G 123".to_owned(),
        "G\u{202e}123".to_owned(),
    ] {
        let mut odd = good.clone();
        odd.sub = sub;
        assert_unauthenticated(&app, &signed_by_dev_issuer(&app, &odd)).await;
    }
}
