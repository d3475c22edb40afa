"""keying."""
