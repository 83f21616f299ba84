use super::*;

/// A row type as a report declares one.
#[derive(Debug, Deserialize, PartialEq)]
struct Row<'a> {
    #[serde(borrow, default)]
    agent_id: Text<'a>,
    #[serde(borrow, default)]
    time: Text<'a>,
}

fn reason(status: u16, body: impl AsRef<[u8]>) -> &'static str {
    match interpret::<Row>(status, body.as_ref()) {
        Ok(Answer::Empty) => "empty",
        Ok(Answer::Records(_)) => "records",
        Err(e) => e.reason().as_str(),
    }
}

fn err(code: u16, text: &str) -> String {
    format!(r#"{{"code":{code},"error":"{text}","msg":"{text}","data":[]}}"#)
}

/// Each text of the vendor's "API response codes" page, as the page writes it and in
/// other cases, maps to its reason.
#[test]
fn the_vendors_texts_map_to_their_reasons() {
    let cases = [
        (404, "Validate dates entered", "empty"),
        (404, "VALIDATE DATES ENTERED", "empty"),
        (400, "THE API YOU WANT TO CONSULT DOES NOT EXIST", "bad_request"),
        (400, "SOME PARAMETERS ARE REQUIRED", "bad_request"),
        (401, "PLEASE ENTER THE WOLKVOX-TOKEN", "unauthorized"),
        (403, "TOKEN LIMIT EXCEEDED", "quota_exceeded"),
        (403, "Token limit exceeded", "quota_exceeded"),
        (403, "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)", "concurrency_limit"),
        (403, "PLEASE VALIDATE TOKEN", "invalid_token"),
        (403, "please validate token", "invalid_token"),
        (403, "Invalid, expired or malformed token", "invalid_token"),
        (403, "Server under MAINTENANCE (backups), try again later", "maintenance"),
        (403, "Nope", "forbidden"),
    ];
    for (status, text, expected) in cases {
        assert_eq!(reason(status, err(status, text)), expected, "{status} {text}");
        // The same answer inside a 200, as some proxies pass it on.
        assert_eq!(reason(200, err(status, text)), expected, "200/{status} {text}");
    }
}

#[test]
fn every_other_answer_has_one_reason() {
    assert_eq!(reason(200, r#"{"code":200,"data":[]}"#), "records");
    assert_eq!(reason(200, r#"{"code":"200","data":{}}"#), "records");
    assert_eq!(reason(404, ""), "empty");
    assert_eq!(reason(404, "<html>not found</html>"), "bad_response");
    assert_eq!(reason(403, "<html>Forbidden</html>"), "forbidden");
    assert_eq!(reason(502, "<html>Bad gateway</html>"), "http_5xx");
    assert_eq!(reason(500, ""), "http_5xx");
    assert_eq!(reason(200, "<html>oops</html>"), "bad_response");
    assert_eq!(reason(200, r#"{"code":200,"data":[{"agent_id":"1"#), "bad_response");
    assert_eq!(reason(302, ""), "bad_response");
}

#[test]
fn rows_borrow_from_the_body_and_shapes_are_lenient() {
    let body = br#"{"code":"200","error":null,"msg":"ok","data":[
        {"agent_id":"1001","time":"00:02:05","telephone":"3001234567"},
        {"agent_id":1002,"time":null},
        {"agent_id":{"x":1},"time":[1]},
        7, "x", [1], null]}"#;
    let Ok(Answer::Records(items)) = interpret::<Row>(200, body) else { panic!() };
    assert_eq!(items.len(), 7);
    let Item::Record(first) = &items[0] else { panic!() };
    assert!(matches!(first.agent_id.0, Some(Cow::Borrowed("1001"))));
    let Item::Record(second) = &items[1] else { panic!() };
    assert_eq!((second.agent_id.get(), second.time.get()), (Some("1002"), None));
    let Item::Record(third) = &items[2] else { panic!() };
    assert_eq!((third.agent_id.get(), third.time.get()), (None, None));
    assert!(items[3..].iter().all(|i| *i == Item::NotAnObject));

    let one = br#"{"code":200,"data":{"agent_id":"9"}}"#;
    let Ok(Answer::Records(items)) = interpret::<Row>(200, one) else { panic!() };
    assert_eq!(items.len(), 1);
    let Ok(Answer::Records(none)) = interpret::<Row>(200, br#"{"code":200,"data":null}"#) else { panic!() };
    assert!(none.is_empty());
}

#[test]
fn broken_bodies_are_errors() {
    for body in [
        &b"<html>502 Bad Gateway</html>"[..],
        br#"{"code":200,"data":[{"agent_id":"1"#,
        br#"{"code":200} trailing"#,
        b"",
        b"[]",
        b"{\"code\":200,\"data\":[{\"agent_id\":\"\xff\"}]}",
    ] {
        assert_eq!(reason(200, body), "bad_response", "{:?}", String::from_utf8_lossy(body));
    }
}
