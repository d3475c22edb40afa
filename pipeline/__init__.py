"""Orchestration: `horeca run` and `horeca demo` chain the stages in data-flow order."""
