"""hashguard's people-facing service and composition root (app factory, settings, case routes)."""
