//! What needs no signed-in service: the sign-in screen, empty and with its error, is accessible
//! and usable with the keyboard alone.

use fantoccini::key::Key;
use prescrypt_testkit::{Service, prescrypt_bin};

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
