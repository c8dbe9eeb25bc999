"""The nightly refresh: what changed between two APK locks (changelog), and whether a rebuilt image
differs from what a registry has under its moving tag (plan). Plain Python, no Pants."""

__all__ = ["changelog", "content", "plan", "pipeline", "settings"]
