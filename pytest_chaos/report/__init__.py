"""Reporting: the event model shared by every sink (timeline, journal, junit, summary)."""
