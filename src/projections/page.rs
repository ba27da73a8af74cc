//! Pages of the listings: an opaque token holding the sort key a page
//! goes on after, and a walk over an ordered index of the board that
//! examines a bounded number of entries. Shared by every listing.

/// Encodes a sort key as a page token.
pub fn token(parts: &[String]) -> String {
    hex::encode(parts.join("\n"))
}

/// Decodes a page token; `None` if it is not one of ours.
pub fn untoken(t: &str) -> Option<Vec<String>> {
    let bytes = hex::decode(t).ok()?;
    Some(
        String::from_utf8(bytes)
            .ok()?
            .split('\n')
            .map(String::from)
            .collect(),
    )
}

/// Most promises or warnings one page examines: each may fold a case's
/// stream that the board's cache does not hold, so a page's cost is
/// bounded however rare its matches. A page that runs out of it before it
/// is full ends early, with a token to go on from: fewer entries than
/// asked (even none) with a token means "ask again", not "that is all".
pub const SCAN_BUDGET: usize = 2048;

/// Keys a page reads from an index: enough to fill the budget and see
/// whether one more follows.
pub const PAGE_KEYS: usize = SCAN_BUDGET + 1;

/// One page of a walk over an ordered index: `entry` makes the listed
/// entry of a key, or None when the key does not match; the walk ends at
/// the first key `past` says is beyond every match. Returns the entries and
/// the key the next page goes on after, if any: the last one listed when
/// the page is full and another matches, or when the [`SCAN_BUDGET`] runs
/// out with the page full; otherwise the last one examined.
pub fn walk_page<K: Clone, T>(
    keys: impl IntoIterator<Item = K>,
    limit: usize,
    past: impl Fn(&K) -> bool,
    mut entry: impl FnMut(&K) -> Option<T>,
) -> (Vec<T>, Option<K>) {
    let mut out = Vec::new();
    let (mut last_listed, mut last_seen): (Option<K>, Option<K>) = (None, None);
    for (examined, key) in keys.into_iter().enumerate() {
        if past(&key) {
            break;
        }
        if examined == SCAN_BUDGET {
            let resume = if out.len() == limit {
                last_listed
            } else {
                last_seen
            };
            return (out, resume);
        }
        let Some(e) = entry(&key) else {
            last_seen = Some(key);
            continue;
        };
        if out.len() == limit {
            // One more matches: the page ends at the last one listed.
            return (out, last_listed);
        }
        out.push(e);
        last_listed = Some(key.clone());
        last_seen = Some(key);
    }
    (out, None)
}
