//! What needs no signed-in session: the sign-in screen, empty and with its error, is accessible
//! and usable with the keyboard alone; over plain HTTP from another host the console says that
//! signing is off.

use fantoccini::key::Key;
use prescrypt::auth::Role;
use prescrypt_testkit::{PRESCRIBER, PRESCRIBER_ORG, Service, prescrypt_bin};

use crate::browser::Browser;

#[tokio::test]
async fn the_sign_in_screen_is_accessible_and_works_from_the_keyboard() {
    let service = Service::start(prescrypt_bin!());
    let browser = Browser::start("a11y").await;
    browser
        .goto(&format!("{}/console/", service.endpoint().address))
        .await;
    browser
        .until(
            "the console to start",
            "return document.body.dataset.ready === 'true';",
        )
        .await;
    browser.assert_accessible("signin").await;

    // Keyboard only: Tab from the heading reaches the token field; Tab again the button; Enter
    // submits; the error is announced beside the field and focus returns to it.
    assert_eq!(browser.focused().await, "h-signin");
    let page = browser
        .client
        .active_element()
        .await
        .expect("focused element");
    page.send_keys(&Key::Tab.to_string()).await.expect("tab");
    assert_eq!(browser.focused().await, "token");
    browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys("a.b")
        .await
        .unwrap();
    browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys(&Key::Tab.to_string())
        .await
        .unwrap();
    let button = browser
        .run("return document.activeElement.textContent.trim();", vec![])
        .await;
    assert_eq!(button, "Sign in");
    // A visible focus indicator on the button.
    let outline = browser
        .run(
            "return getComputedStyle(document.activeElement).outlineStyle;",
            vec![],
        )
        .await;
    assert_eq!(outline, "solid");
    browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    let error = browser
        .until(
            "the token error",
            "return document.getElementById('token-error').textContent;",
        )
        .await;
    assert!(error.as_str().unwrap().contains("three parts"), "{error}");
    assert_eq!(browser.focused().await, "token");
    // Announced: the live status line says it too.
    assert!(browser.text("#status").await.starts_with("Not signed in"));
    browser.screenshot("signin-error").await;
    browser.assert_accessible("signin-error").await;
    browser.close().await;
}

/// Opened as `http://console.test:PORT/` (a name, not loopback, mapped to the service by
/// chromium's resolver flag), the page is not a secure context: no WebCrypto, so the console says
/// so plainly and offers no key.
#[tokio::test]
async fn over_plain_http_from_another_host_the_console_says_signing_is_off() {
    let service = Service::start(prescrypt_bin!());
    let address = service.endpoint().address;
    let port = address.rsplit(':').next().unwrap();
    let browser = Browser::start_with(
        "insecure",
        &["--host-resolver-rules=MAP console.test 127.0.0.1"],
    )
    .await;
    browser
        .goto(&format!("http://console.test:{port}/console/"))
        .await;
    browser
        .until(
            "the console to start",
            "return document.body.dataset.ready === 'true';",
        )
        .await;
    assert_eq!(
        browser.run("return window.isSecureContext;", vec![]).await,
        serde_json::json!(false)
    );
    assert_eq!(
        browser
            .run("return document.getElementById('insecure').hidden;", vec![])
            .await,
        serde_json::json!(false)
    );
    assert!(browser.text("#insecure").await.contains("secure context"));
    browser.screenshot("banner").await;
    browser.assert_accessible("insecure").await;

    // Signed in, the key screen offers nothing; what needs no key (cancelling) still works.
    let gp = service.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER);
    let (status, view) = service
        .endpoint()
        .post(
            "/api/v1/prescriptions",
            &gp,
            &prescrypt_testkit::new_prescription(),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    browser.type_into("#token", &gp).await;
    browser.click("#signin-form button[type=submit]").await;
    browser
        .until(
            "the key screen",
            "return !document.getElementById('screen-key').hidden;",
        )
        .await;
    assert!(browser.text("#key-state").await.starts_with("Unavailable"));
    assert_eq!(
        browser
            .run(
                "return document.getElementById('key-enrol').disabled;",
                vec![]
            )
            .await,
        serde_json::json!(true)
    );
    browser
        .run(
            "location.hash = '#detail/' + arguments[0];",
            vec![view["id"].clone()],
        )
        .await;
    browser
        .until(
            "the detail",
            "return !document.getElementById('detail-body').hidden;",
        )
        .await;
    browser.click("#cancel-submit").await;
    let outcome = browser
        .until(
            "the outcome",
            "return document.getElementById('cancel-outcome').textContent;",
        )
        .await;
    assert_eq!(outcome, "Cancelled.");
    browser.close().await;
}
