// Case tokens as a person types and keeps them. Two shapes are in use: the first 43-character
// base64url tokens (case matters), and the newer ones in dash-separated groups of four from an
// alphabet without look-alikes ("7K3M-Q9XD-..."), which a person may type in lower case, with
// spaces, or without the dashes. Both keep working: the page sends an old token as typed and a
// new one in the form it was issued in.
const OLD_TOKEN = /^[A-Za-z0-9_-]{43}$/;
const GROUPED = /^[0-9A-Z]+(-[0-9A-Z]+)+$/;

// A Japanese keyboard types full-width letters and long-vowel marks or other dashes for "-";
// NFKC folds the letters, the dashes are mapped here. What is left outside printable ASCII can
// be no token, and would make fetch throw (a header carries Latin-1 only): it is dropped, and the
// server then says plainly that no case matches.
const DASHES = /[\u30fc\u2010\u2011\u2012\u2013\u2014\u2212\uff70]/g;

/** The token to send for what the person typed or pasted. */
export function normalizeToken(typed) {
  const compact = String(typed || '').normalize('NFKC').replace(DASHES, '-')
    .replace(/\s+/g, '').replace(/[^\x21-\x7e]/g, '');
  if (OLD_TOKEN.test(compact)) return compact;
  const upper = compact.toUpperCase();
  if (GROUPED.test(upper)) return upper;
  if (/^[0-9A-Z]+$/.test(upper) && upper.length >= 16 && upper.length % 4 === 0) {
    return upper.match(/.{4}/g).join('-'); // typed without the dashes
  }
  return compact; // the server says plainly that no case matches
}

/** Pieces that may be wrapped between (a group with its dash), so a token breaks only at a
 * group on a narrow screen; an old token has no groups and wraps anywhere. */
export function tokenPieces(token) {
  return /-/.test(token) && !OLD_TOKEN.test(token) ? token.match(/[^-]+-?/g) : [token];
}
