"""The question bank: loading YAML files, validating them, and choosing the next question."""

from bot.questions.model import Bank, Question

__all__ = ["Bank", "Question"]
