"""The partner (platform) API: authenticated pulls, feedback, matching."""
