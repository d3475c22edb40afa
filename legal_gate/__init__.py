"""legal_gate."""
