"""The transparency log's primitives, shared by the server (store/merkle.py,
partners/transparency.py) and by the tools partners run (partner_tools/): pure functions over
bytes, no I/O, no dependency beyond the standard library.

  rfc6962.py  leaf and node hashing (RFC 6962 / RFC 9162 section 2.1.1)
  compact.py  the frontier ("compact range"): append leaves and get the root in O(log n) memory
  proof.py    building and verifying inclusion and consistency proofs (RFC 9162 2.1.3, 2.1.4)
  errors.py   typed verification failures that carry their evidence
  entry.py    hashguard's leaf: a change-log entry's position, pathway and hiding commitment
  head.py     the signed tree head's bytes and JSON, the key id, the HTTP paths of the log

Kept apart from hashing/ (the person's device, which never talks to the log) and from
partner_tools/ (which nothing on the server may import), the way transparency-dev/merkle keeps
its rfc6962/, compact/ and proof/ packages apart from any log server or client.
"""
