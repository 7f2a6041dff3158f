"""Adaptive practice: spaced-repetition scheduling, per-topic skills and review reminders."""
