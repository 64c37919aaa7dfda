"""The one storage layer shared by api/ and partners/: models, sessions, the change log."""
