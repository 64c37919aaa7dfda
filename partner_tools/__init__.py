"""What partners run, and only partners: the transparency-log verifier (and its `hashguard
transparency verify` verb) and the webhook verifier.

Its own room, apart from hashing/ (the person's device: a person's client must not carry partner
code, nor `cryptography` for it) and from the server (api/, partners/, store/: nothing there
imports this package, so a partner's tools never depend on server code and the server never on
them). It imports txlog/ for the log's primitives and, for formats, hashing.signals.
Installed with the `partner` extra (`pip install 'hashguard[partner]'`).
"""
