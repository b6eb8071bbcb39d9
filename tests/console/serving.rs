//! The console's files as the service serves them: content types, the CSP, nothing external.

use prescrypt_testkit::{Service, prescrypt_bin};

#[tokio::test]
async fn console_files_have_their_types_and_a_strict_csp() {
    let service = Service::start(prescrypt_bin!());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", service.endpoint().address);

    let bare = client.get(url("/console")).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/console/");

    for (path, content_type) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/index.html", "text/html; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/api.js", "text/javascript; charset=utf-8"),
        ("/console/keys.js", "text/javascript; charset=utf-8"),
        ("/console/nhs.js", "text/javascript; charset=utf-8"),
        ("/console/codes.json", "application/json"),
    ] {
        let response = client.get(url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("style-src 'self';"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let body = response.text().await.unwrap();
        // Works on a LAN with no internet: nothing is fetched from elsewhere.
        assert!(
            !body.contains("https://"),
            "{path} names an outside address"
        );
        if path.ends_with(".html") || path.ends_with('/') {
            assert!(!body.contains(" style=\""), "{path}: inline style");
            assert!(!body.contains("<script>"), "{path}: inline script");
        }
    }

    let codes: serde_json::Value = client
        .get(url("/console/codes.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(codes["cancel_reasons"].as_array().unwrap().len(), 9);
    assert_eq!(codes["treatment_types"][2]["code"], "0003");
    assert_eq!(codes["statuses"].as_array().unwrap().len(), 13);
    assert_eq!(codes["statuses"][5]["display"], "Cancelled");

    let missing = client.get(url("/console/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );

    // Not part of the JSON API's document.
    let document: serde_json::Value = client
        .get(url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.keys().all(|path| !path.starts_with("/console")));
}
