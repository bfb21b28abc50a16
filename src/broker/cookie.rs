//! `Cookie` request header parsing (RFC 6265 section 5.4 / 4.2.1).
//!
//! The seed matched `/token=([^;]+)/`, so `xtoken=` or `csrftoken=` counted as `token`.
//! Here a cookie is found by its exact name among the `;`-separated pairs.

/// The value of the cookie named exactly `name`, percent-decoded when the encoding is
/// valid, unquoted when double-quoted. The first occurrence wins, as browsers send the
/// most specific cookie first.
pub fn find_cookie(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some(percent_decode(value).unwrap_or_else(|| value.to_string()))
    })
}

/// Several `Cookie` header fields as one header: HTTP/2 clients may split cookies over
/// several fields (RFC 9113 section 8.2.3); they are joined back with `; `.
pub fn join_cookie_fields<'a>(mut fields: impl Iterator<Item = &'a str>) -> Option<String> {
    let first = fields.next()?.to_string();
    Some(fields.fold(first, |mut all, more| {
        all.push_str("; ");
        all.push_str(more);
        all
    }))
}

/// Decode `%XX` sequences; `None` when an escape is malformed or the result is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    if !value.contains('%') {
        return Some(value.to_string());
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::{find_cookie, join_cookie_fields};

    #[test]
    fn split_fields_are_joined() {
        assert_eq!(join_cookie_fields(std::iter::empty()), None);
        let joined = join_cookie_fields(["a=1", "token=t"].into_iter()).unwrap();
        assert_eq!(joined, "a=1; token=t");
        assert_eq!(find_cookie(&joined, "token").as_deref(), Some("t"));
    }

    #[test]
    fn exact_name_only() {
        assert_eq!(find_cookie("xtoken=a; csrftoken=b", "token"), None);
        assert_eq!(
            find_cookie("xtoken=a; token=b", "token").as_deref(),
            Some("b")
        );
        assert_eq!(
            find_cookie("token=a;token=b", "token").as_deref(),
            Some("a")
        );
        assert_eq!(find_cookie(" token = v ", "token").as_deref(), Some("v"));
    }

    #[test]
    fn values_are_unquoted_and_decoded() {
        assert_eq!(
            find_cookie("token=\"abc\"", "token").as_deref(),
            Some("abc")
        );
        assert_eq!(find_cookie("token=a%2Eb", "token").as_deref(), Some("a.b"));
        assert_eq!(find_cookie("token=a%zz", "token").as_deref(), Some("a%zz"));
        assert_eq!(find_cookie("token=", "token").as_deref(), Some(""));
        assert_eq!(find_cookie("token", "token"), None);
    }
}
