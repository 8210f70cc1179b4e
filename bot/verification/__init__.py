"""Every fix verified in its thread: verdicts (pure) and the checker (I/O, bot/verification/checker.py)."""

from bot.verification.verdicts import ReleaseFacts, Verdict, judge_kill, judge_pgbouncer, judge_restart

__all__ = ["ReleaseFacts", "Verdict", "judge_kill", "judge_pgbouncer", "judge_restart"]
