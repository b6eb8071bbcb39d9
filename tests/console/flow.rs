//! A GP's whole round in the console: sign in, enrol a key, issue a two-item prescription (after
//! a bad NHS number and a field the service refuses), print its token, find it in the practice
//! list and filter it, cancel it.

use std::time::Duration;

use prescrypt::auth::Role;
use prescrypt_barcode::PrescriptionId;
use prescrypt_barcode::decode::{CodeFormat, DecodeOptions, Decoder, Payload, Want};
use prescrypt_testkit::{PHARMACIST, PHARMACY, PRESCRIBER, PRESCRIBER_ORG, Service, prescrypt_bin};
use serde_json::{Value, json};

use crate::browser::Browser;

/// Bytes a blob: or same-origin URL in the page holds (fetched by the page itself).
const FETCH_BYTES: &str = "return fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {
    let s = ''; for (const x of new Uint8Array(b)) s += String.fromCharCode(x); return btoa(s); });";

fn base64(text: &Value) -> Vec<u8> {
    data_encoding::BASE64
        .decode(text.as_str().expect("base64 text").as_bytes())
        .expect("base64")
}

/// The detail screen with a prescription loaded: its body is hidden while it loads, so a detail
/// shown before (e.g. on going back) is never mistaken for this one.
async fn detail_loaded(browser: &Browser) {
    browser
        .until(
            "a loaded prescription",
            "return !document.getElementById('screen-detail').hidden
                && !document.getElementById('detail-body').hidden
                && document.querySelectorAll('#detail-history tr').length > 0;",
        )
        .await;
}

/// Waits for `row` (a selector) in the practice list.
async fn listed(browser: &Browser, row: &str) {
    browser
        .until(
            &format!("{row} in the list"),
            &format!("return document.querySelector(\"{row}\") !== null;"),
        )
        .await;
}

/// Waits for the practice list of a search whose caption names `filters`.
async fn searched(browser: &Browser, filters: &str) {
    browser
        .until(
            &format!("the list of {filters}"),
            &format!(
                "return document.getElementById('results-caption').textContent === \
                 'Prescriptions with {filters}, newest first';"
            ),
        )
        .await;
}

/// The IDs in the practice list, in its order.
async fn result_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .run(
            "return [...document.querySelectorAll('#results tr')].map(r => r.dataset.id);",
            vec![],
        )
        .await;
    serde_json::from_value(ids).expect("IDs")
}

/// The texts of the cells of `row` (a selector) in the practice list.
async fn row_cells(browser: &Browser, row: &str) -> Vec<String> {
    let cells = browser
        .run(
            "return [...document.querySelector(arguments[0]).cells].map(c => c.textContent.trim());",
            vec![json!(row)],
        )
        .await;
    serde_json::from_value(cells).expect("cells")
}

async fn visible(browser: &Browser, screen: &str) {
    browser
        .until(
            &format!("the {screen} screen"),
            &format!("return !document.getElementById('screen-{screen}').hidden;"),
        )
        .await;
}

#[tokio::test]
async fn a_gp_signs_in_enrols_issues_prints_finds_and_cancels() {
    let service = Service::start(prescrypt_bin!());
    let endpoint = service.endpoint();
    let base = endpoint.address.clone();
    let gp = service.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER);
    let browser = Browser::start("flow").await;
    browser.goto(&format!("{base}/console/")).await;
    browser
        .until(
            "the console to start",
            "return document.body.dataset.ready === 'true';",
        )
        .await;

    // Sign in: a malformed token is refused beside the field, then the real one.
    visible(&browser, "signin").await;
    assert_eq!(browser.focused().await, "h-signin");
    browser.screenshot("01-signin").await;
    browser.type_into("#token", "not-a-token").await;
    browser.click("#signin-form button[type=submit]").await;
    let error = browser
        .until(
            "the token error",
            "return document.getElementById('token-error').textContent;",
        )
        .await;
    assert!(error.as_str().unwrap().contains("three parts"), "{error}");
    assert_eq!(browser.focused().await, "token");
    browser.type_into("#token", &gp).await;
    browser.click("#signin-form button[type=submit]").await;
    visible(&browser, "key").await;
    let who = browser.text("#who").await;
    assert!(
        who.contains(PRESCRIBER) && who.contains(PRESCRIBER_ORG),
        "{who}"
    );
    browser.screenshot("02-key").await;
    browser.assert_accessible("02-key").await;

    // Enrol a key made by WebCrypto in this browser; the service knows it under its kid.
    browser.click("#key-enrol").await;
    let kid = browser
        .until(
            "an enrolled kid",
            "const t = document.getElementById('key-kid').textContent; return t === '—' ? '' : t;",
        )
        .await;
    let kid = kid.as_str().unwrap().to_owned();
    let (status, set) = endpoint.get("/api/v1/prescriber-keys.json", &gp).await;
    assert_eq!(status, 200, "{set}");
    let enrolled = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("{kid} not in {set}"));
    assert_eq!(enrolled["sub"], PRESCRIBER);
    assert_eq!(enrolled["revoked_at"], Value::Null);
    assert_eq!(
        browser.text("#key-state").await,
        "Enrolled: prescriptions are signed with it"
    );
    browser.screenshot("03-key-enrolled").await;
    browser.assert_accessible("03-key-enrolled").await;

    // Issue: the NHS number is checked as it is typed, beside its field.
    browser.click("a[data-nav=issue]").await;
    visible(&browser, "issue").await;
    browser.type_into("#nhs_number", "9434765918").await;
    let error = browser
        .until(
            "the NHS number error",
            "return document.getElementById('nhs_number-error').textContent;",
        )
        .await;
    assert!(error.as_str().unwrap().contains("check digit"), "{error}");
    assert_eq!(
        browser
            .run(
                "return document.getElementById('nhs_number').getAttribute('aria-invalid');",
                vec![]
            )
            .await,
        json!("true")
    );
    // The error is the field's description, so it is read with it.
    let described = browser
        .run(
            "return document.getElementById('nhs_number').getAttribute('aria-describedby');",
            vec![],
        )
        .await;
    assert!(described.as_str().unwrap().contains("nhs_number-error"));
    browser.screenshot("04-bad-nhs-number").await;
    browser.assert_accessible("04-bad-nhs-number").await;
    // Submitting anyway is refused in the browser and focus goes to the field.
    browser.click("#issue-submit").await;
    browser
        .until(
            "the summary",
            "return !document.getElementById('issue-summary').hidden;",
        )
        .await;
    assert_eq!(browser.focused().await, "nhs_number");

    browser.type_into("#nhs_number", "943 476 5919").await;
    assert_eq!(browser.text("#nhs_number-error").await, "Valid NHS number.");
    browser.type_into("#patient_name", "Jane Smith").await;
    // Repeat and repeat dispensing ask for the number of issues; acute does not.
    let issue_count_shown = "return !document.getElementById('issue-count-field').hidden;";
    assert_eq!(browser.run(issue_count_shown, vec![]).await, json!(false));
    browser.select("#treatment_type", "0003").await;
    assert_eq!(browser.run(issue_count_shown, vec![]).await, json!(true));
    browser.select("#treatment_type", "0001").await;
    assert_eq!(browser.run(issue_count_shown, vec![]).await, json!(false));
    browser
        .run(
            "document.getElementById('birth_date').value = '1970-01-31';",
            vec![],
        )
        .await;
    let item = |n: u32, field: &str| format!("#item-{n}-{field}");
    for (field, value) in [
        ("code", "39720311000001101"),
        ("display", "Paracetamol 500mg tablets"),
        ("quantity", "32"),
        ("unit", "tablet"),
        ("dosage", "2 four times a day"),
    ] {
        browser.type_into(&item(1, field), value).await;
    }
    browser.click("#add-item").await;
    assert_eq!(browser.focused().await, "item-2-code");
    for (field, value) in [
        ("code", "39113611000001102"),
        ("display", "Amoxicillin 500mg capsules"),
        ("quantity", "21.0001"),
        ("unit", "capsule"),
        ("dosage", "1 three times a day"),
    ] {
        browser.type_into(&item(2, field), value).await;
    }
    // The service refuses the second quantity: its problem+json names the field, shown beside it.
    browser.click("#issue-submit").await;
    let error = browser
        .until(
            "the quantity error",
            "return document.getElementById('item-2-quantity-error').textContent;",
        )
        .await;
    assert!(!error.as_str().unwrap().is_empty());
    assert_eq!(browser.focused().await, "item-2-quantity");
    assert_eq!(
        browser
            .run(
                "return document.getElementById('item-2-quantity').getAttribute('aria-invalid');",
                vec![]
            )
            .await,
        json!("true")
    );
    browser.screenshot("05-service-field-error").await;
    browser.assert_accessible("05-service-field-error").await;

    browser.type_into(&item(2, "quantity"), "21").await;
    browser.click("#issue-submit").await;
    visible(&browser, "print").await;
    let id = browser.text("#print-id").await;
    browser
        .until("the token preview", "const i = document.getElementById('print-preview'); return i.complete && i.naturalWidth > 0;")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // the PDF frame, for the screenshot only
    browser.screenshot("06-print").await;
    browser.assert_accessible("06-print").await;

    // The service holds it, signed by the browser's key, with both items.
    let (status, view) = endpoint
        .get(&format!("/api/v1/prescriptions/{id}"), &gp)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["items"].as_array().unwrap().len(), 2);
    assert_eq!(view["items"][1]["quantity"].as_f64(), Some(21.0));
    assert_eq!(view["patient"]["nhs_number"], "9434765919");
    let prescriber_jws = view["prescriber_jws"]
        .as_str()
        .expect("signed by the prescriber");
    assert!(
        prescriber_jws.starts_with(&kid_header_prefix()),
        "{prescriber_jws}"
    );

    assert_token_printable(&browser, &id, view["token"].as_str().unwrap()).await;

    // Find it in the practice list (the organisation's prescriptions, newest first).
    browser.click("a[data-nav=practice]").await;
    visible(&browser, "practice").await;
    let row = format!("#results tr[data-id='{id}']");
    listed(&browser, &row).await;
    assert_eq!(result_ids(&browser).await, vec![id.clone()]);
    assert_eq!(
        row_cells(&browser, &row).await[1..],
        [id.as_str(), "Jane Smith", "9434765919", "To Be Dispensed"]
    );
    browser.screenshot("07-practice").await;
    browser.assert_accessible("07-practice").await;

    // Filters: a bad NHS number is refused beside its field, by the service.
    browser.type_into("#search-nhs", "9434765918").await;
    browser.click("#search-submit").await;
    let error = browser
        .until(
            "the NHS number filter's error",
            "return document.getElementById('search-nhs-error').textContent;",
        )
        .await;
    assert!(!error.as_str().unwrap().is_empty());
    assert_eq!(browser.focused().await, "search-nhs");
    assert_eq!(
        browser
            .run(
                "return document.getElementById('search-nhs').getAttribute('aria-invalid');",
                vec![]
            )
            .await,
        json!("true")
    );
    assert!(browser.text("#status").await.contains("search failed"));
    browser.screenshot("07-practice-bad-nhs-number").await;
    browser
        .assert_accessible("07-practice-bad-nhs-number")
        .await;
    // The patient's NHS number (spaces allowed) finds it; a status it is not in excludes it.
    browser.type_into("#search-nhs", "943 476 5919").await;
    browser.click("#search-submit").await;
    searched(&browser, "NHS number 943 476 5919").await;
    assert_eq!(result_ids(&browser).await, vec![id.clone()]);
    browser.select("#search-status", "0002").await;
    browser.click("#search-submit").await;
    searched(&browser, "status With Dispenser, NHS number 943 476 5919").await;
    assert_eq!(result_ids(&browser).await, Vec::<String>::new());
    assert_eq!(
        browser
            .run(
                "return document.getElementById('results-empty').hidden;",
                vec![]
            )
            .await,
        json!(false)
    );
    browser.screenshot("07-practice-filtered").await;
    browser.assert_accessible("07-practice-filtered").await;
    // Issue dates (UTC, both inclusive): its own day finds it, the day after does not.
    browser.select("#search-status", "").await;
    let issued_on: chrono::NaiveDate = view["created_at"].as_str().unwrap()[..10]
        .parse()
        .expect("created_at's date");
    let set_dates = "document.getElementById('search-from').value = arguments[0];
        document.getElementById('search-to').value = arguments[1];";
    browser
        .run(
            set_dates,
            vec![json!(issued_on.to_string()), json!(issued_on.to_string())],
        )
        .await;
    browser.click("#search-submit").await;
    searched(
        &browser,
        &format!("issued on or after {issued_on}, issued on or before {issued_on}, NHS number 943 476 5919"),
    )
    .await;
    assert_eq!(result_ids(&browser).await, vec![id.clone()]);
    let next_day = issued_on.succ_opt().unwrap();
    browser
        .run(set_dates, vec![json!(next_day.to_string()), json!("")])
        .await;
    browser.click("#search-submit").await;
    searched(
        &browser,
        &format!("issued on or after {next_day}, NHS number 943 476 5919"),
    )
    .await;
    assert_eq!(result_ids(&browser).await, Vec::<String>::new());
    browser.run(set_dates, vec![json!(""), json!("")]).await;
    // Another patient's NHS number finds nothing either.
    browser.type_into("#search-nhs", "4010232137").await;
    browser.click("#search-submit").await;
    searched(&browser, "NHS number 4010232137").await;
    assert_eq!(result_ids(&browser).await, Vec::<String>::new());

    // Open by its ID still works, and shows the detail with the history.
    browser.type_into("#lookup-id", &id.to_lowercase()).await;
    browser.click("#lookup-form button[type=submit]").await;
    detail_loaded(&browser).await;
    assert_eq!(browser.text("#detail-id").await, id);
    assert_eq!(browser.text("#detail-status").await, "To Be Dispensed");
    assert_eq!(
        browser.text("#detail-signed").await,
        "Signed by the prescriber"
    );
    assert_eq!(
        browser
            .run(
                "return document.querySelectorAll('#detail-items tr').length;",
                vec![]
            )
            .await,
        json!(2)
    );
    browser.screenshot("08-detail").await;
    browser.assert_accessible("08-detail").await;

    // Cancel with an EPS reason.
    browser.select("#cancel-reason", "0003").await;
    browser.click("#cancel-submit").await;
    browser
        .until(
            "the cancellation outcome",
            "return document.getElementById('cancel-outcome').textContent;",
        )
        .await;
    assert_eq!(browser.text("#detail-status").await, "Cancelled");
    browser.screenshot("09-cancelled").await;
    browser.assert_accessible("09-cancelled").await;
    let (_, view) = endpoint
        .get(&format!("/api/v1/prescriptions/{id}"), &gp)
        .await;
    assert_eq!(view["status"]["code"], "0005");

    // The list shows it cancelled now (under that status filter), and its row opens the detail.
    browser.click("a[data-nav=practice]").await;
    visible(&browser, "practice").await;
    browser.type_into("#search-nhs", "9434765919").await;
    browser.select("#search-status", "0005").await;
    browser.click("#search-submit").await;
    searched(&browser, "status Cancelled, NHS number 9434765919").await;
    listed(&browser, &row).await;
    assert_eq!(row_cells(&browser, &row).await[4], "Cancelled");
    browser.screenshot("09-practice-cancelled").await;
    browser.click(&format!("{row} a")).await;
    detail_loaded(&browser).await;
    assert_eq!(browser.text("#detail-id").await, id);
    assert_eq!(browser.text("#detail-status").await, "Cancelled");

    // At tablet width the screens still fit.
    browser
        .client
        .set_window_size(800, 1100)
        .await
        .expect("resize");
    browser.screenshot("10-detail-tablet").await;
    browser.assert_accessible("10-detail-tablet").await;
    let overflow = browser
        .run(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await;
    assert_eq!(
        overflow,
        json!(false),
        "nothing wider than the tablet screen"
    );
    for screen in ["issue", "print"] {
        let hash = if screen == "print" {
            format!("#print/{id}")
        } else {
            "#issue".to_owned()
        };
        browser
            .run("location.hash = arguments[0];", vec![json!(hash)])
            .await;
        visible(&browser, screen).await;
        let overflow = browser
            .run(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await;
        assert_eq!(overflow, json!(false), "the {screen} screen fits a tablet");
        browser.screenshot(&format!("10-{screen}-tablet")).await;
    }

    // Revoke the key: the service marks it revoked; the browser forgets it.
    browser
        .client
        .set_window_size(1280, 800)
        .await
        .expect("resize");
    browser.click("a[data-nav=key]").await;
    visible(&browser, "key").await;
    browser.click("#key-revoke").await;
    browser
        .until(
            "the key to go",
            "return document.getElementById('key-kid').textContent === '—';",
        )
        .await;
    assert_eq!(browser.text("#key-state").await, "No key in this browser");
    assert_eq!(browser.focused().await, "key-enrol");
    let (_, set) = endpoint.get("/api/v1/prescriber-keys.json", &gp).await;
    let revoked = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("{kid} not in {set}"));
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    browser.screenshot("11-key-revoked").await;

    // Sign out forgets the bearer token.
    browser.click("a[data-nav=signin]").await;
    browser.click("#sign-out").await;
    browser
        .until(
            "the sign-in form",
            "return !document.getElementById('signin-form').hidden;",
        )
        .await;
    assert_eq!(
        browser
            .run("return sessionStorage.getItem('prescrypt.bearer');", vec![])
            .await,
        Value::Null
    );
    browser.close().await;
}

/// A prescription with a dispenser is only marked for cancellation; the console says so.
#[tokio::test]
async fn cancelling_a_prescription_with_a_dispenser_shows_pending_cancellation() {
    let service = Service::start(prescrypt_bin!());
    let endpoint = service.endpoint();
    let gp = service.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER);
    let pharmacist = service.token(Role::Pharmacist, PHARMACY, PHARMACIST);
    // Issued without a prescriber signature (a --dev service allows it), released to a pharmacy.
    let (status, view) = endpoint
        .post(
            "/api/v1/prescriptions",
            &gp,
            &prescrypt_testkit::new_prescription(),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    let (status, released) = endpoint
        .post(
            "/api/v1/release",
            &pharmacist,
            &json!({"token": view["token"]}),
        )
        .await;
    assert_eq!(status, 200, "{released}");
    // More than the console's page of 25, all newer than the released one.
    let mut issued = vec![id.clone()];
    for _ in 0..25 {
        let (status, other) = endpoint
            .post(
                "/api/v1/prescriptions",
                &gp,
                &prescrypt_testkit::new_prescription(),
            )
            .await;
        assert_eq!(status, 201, "{other}");
        issued.push(other["id"].as_str().unwrap().to_owned());
    }

    let browser = Browser::start("pending").await;
    browser
        .goto(&format!("{}/console/", endpoint.address))
        .await;
    browser
        .until(
            "the console to start",
            "return document.body.dataset.ready === 'true';",
        )
        .await;
    // Signed in already (the session holds the token), straight to the practice list: a new
    // document (index.html, not /console/), so the wait below cannot see the old one.
    browser
        .run(
            "sessionStorage.setItem('prescrypt.bearer', arguments[0]);",
            vec![json!(gp)],
        )
        .await;
    browser
        .goto(&format!("{}/console/index.html#practice", endpoint.address))
        .await;
    browser
        .until(
            "the console to restart",
            "return document.body.dataset.ready === 'true';",
        )
        .await;
    // A page of 25, newest first, then "More" brings the rest: none twice, none missed.
    browser
        .until(
            "the first page",
            "return document.querySelectorAll('#results tr').length === 25;",
        )
        .await;
    let more_shown = "return !document.getElementById('results-more').hidden;";
    assert_eq!(browser.run(more_shown, vec![]).await, json!(true));
    assert!(
        !result_ids(&browser).await.contains(&id),
        "the oldest is on page 2"
    );
    browser.click("#results-more").await;
    browser
        .until(
            "the second page",
            "return document.querySelectorAll('#results tr').length === 26;",
        )
        .await;
    assert_eq!(browser.run(more_shown, vec![]).await, json!(false));
    let mut listed_ids = result_ids(&browser).await;
    assert_eq!(listed_ids.last(), Some(&id), "the oldest last");
    // Focus moves from the vanished "More" to the row it brought.
    assert_eq!(
        browser
            .run("return document.activeElement.textContent;", vec![])
            .await,
        json!(id)
    );
    listed_ids.sort();
    issued.sort();
    assert_eq!(listed_ids, issued);
    let row = format!("#results tr[data-id='{id}']");
    assert_eq!(row_cells(&browser, &row).await[4], "With Dispenser");
    browser.screenshot("practice-paged").await;
    browser.assert_accessible("practice-paged").await;
    browser.click(&format!("{row} a")).await;
    detail_loaded(&browser).await;
    assert_eq!(browser.text("#detail-status").await, "With Dispenser");
    // Its token prints (from the detail screen's link).
    browser.click("#detail-print").await;
    visible(&browser, "print").await;
    browser
        .until("the token preview", "const i = document.getElementById('print-preview'); return i.complete && i.naturalWidth > 0;")
        .await;
    // The PDF viewer in the preview frame gives the page no sign when it has drawn; the pause
    // is for the screenshot only (nothing below depends on it).
    tokio::time::sleep(Duration::from_secs(2)).await;
    browser.screenshot("print").await;
    browser.assert_accessible("print").await;
    assert_token_printable(&browser, &id, view["token"].as_str().unwrap()).await;
    browser.client.back().await.expect("back to the detail");
    detail_loaded(&browser).await;
    assert_eq!(
        browser.text("#detail-signed").await,
        "None (issued without one)"
    );
    browser.click("#cancel-submit").await;
    let outcome = browser
        .until(
            "the cancellation outcome",
            "return document.getElementById('cancel-outcome').textContent;",
        )
        .await;
    assert!(outcome.as_str().unwrap().starts_with("R-0002"), "{outcome}");
    assert_eq!(
        browser
            .run(
                "return document.getElementById('detail-pending').hidden;",
                vec![]
            )
            .await,
        json!(false)
    );
    browser.screenshot("pending-cancellation").await;
    browser.assert_accessible("pending-cancellation").await;
    browser.close().await;
}

/// On the print screen of `id`: the preview's barcodes are the ID (Code 128) and `token` (Data
/// Matrix), decoded by the pharmacy's decoder; the PDF to print is a PDF.
async fn assert_token_printable(browser: &Browser, id: &str, token: &str) {
    let preview_src = browser
        .run(
            "return document.getElementById('print-preview').src;",
            vec![],
        )
        .await;
    let png = base64(&browser.run(FETCH_BYTES, vec![preview_src]).await);
    let decoder = Decoder::new(DecodeOptions {
        want: Want::All,
        time_budget: Duration::from_secs(20),
        ..DecodeOptions::default()
    });
    let codes = decoder.decode_bytes(&png).expect("a readable preview");
    // Kept for review (and for a failure below).
    let kept = crate::browser::screenshots_dir().join(format!("{}-token-{id}.png", browser.name));
    std::fs::write(&kept, &png).expect("keep the preview");
    assert!(
        // The Code 128's text, whatever class the decoder gives it: on main (after the GS1
        // work) rxing reports this symbol as `]C4`, which the decoder files as foreign data.
        codes.iter().any(|code| code.format == CodeFormat::Code128
            && PrescriptionId::parse(&code.text).is_ok_and(|found| found.to_string() == id)),
        "the ID's Code 128 in {}: {codes:?}",
        kept.display()
    );
    assert!(
        codes
            .iter()
            .any(|code| matches!(code.payload, Payload::Token(_)) && code.text == token),
        "the token's Data Matrix in {}: {codes:?}",
        kept.display()
    );
    let pdf_href = browser
        .run(
            "return document.getElementById('print-download').href;",
            vec![],
        )
        .await;
    let pdf = base64(&browser.run(FETCH_BYTES, vec![pdf_href]).await);
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
}

/// The prescriber JWS's protected header starts `{"alg":"EdDSA","kid":` in BASE64URL.
fn kid_header_prefix() -> String {
    "eyJhbGciOiJFZERTQSIsImtpZCI6".to_owned()
}
