//! The console checks an NHS number as it is typed; its rule must be the service's
//! (`prescrypt_barcode::NhsNumber`). Compared here on thousands of numbers, in chromium.

use prescrypt_barcode::NhsNumber;
use prescrypt_testkit::{Service, prescrypt_bin};
use serde_json::json;

use crate::browser::Browser;

#[tokio::test]
async fn the_console_nhs_number_rule_is_the_service_rule() {
    let service = Service::start(prescrypt_bin!());
    let browser = Browser::start("nhs-rule").await;
    browser
        .goto(&format!("{}/console/", service.endpoint().address))
        .await;
    browser
        .until(
            "the console to start",
            "return document.body.dataset.ready === 'true';",
        )
        .await;

    // Every check digit of a spread of nine-digit stems, the grouped layouts, placeholders and
    // malformed text.
    let mut cases: Vec<String> = Vec::new();
    let mut stem: u64 = 123_456_789;
    for _ in 0..400 {
        stem = (stem * 6_364_136_223 + 1_442_695_040) % 1_000_000_000;
        for check in 0..10 {
            cases.push(format!("{stem:09}{check}"));
        }
    }
    for digit in 0..10 {
        cases.push(digit.to_string().repeat(10));
    }
    cases.extend(
        [
            "943 476 5919",
            "943-476-5919",
            "943 476-5919",
            "943  476 5919",
            "9434765919 ",
            " 9434765919",
            "94347659190",
            "943476591",
            "",
            "abcdefghij",
            "９４３４７６５９１９",
            "943 4765 919",
            "4010232137",
            "401 023 2137",
            "0000000000",
            "9434765918",
        ]
        .map(str::to_owned),
    );
    let answers = browser
        .run(
            "return import('./nhs.js').then(m => arguments[0].map(t => m.nhsNumberProblem(t) === null));",
            vec![json!(cases)],
        )
        .await;
    let answers = answers.as_array().expect("an array of answers");
    assert_eq!(answers.len(), cases.len());
    let mut valid = 0;
    for (case, answer) in cases.iter().zip(answers) {
        let service_says = NhsNumber::parse(case).is_ok();
        assert_eq!(answer.as_bool(), Some(service_says), "{case:?}");
        valid += usize::from(service_says);
    }
    assert!(valid > 300, "the sample holds valid numbers too ({valid})");
    browser.close().await;
}
