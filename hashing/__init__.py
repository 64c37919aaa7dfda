"""hashguard's client side: turns a file on the person's device into hashes. No network, no database."""
