"""Invalid files: a file that could not be used, with the reason decoding gave
(:data:`vislint.decode.REASONS`) and a message saying how to fix it."""
from __future__ import annotations


def invalid(ctx):
    from ..vocabulary import CheckResult

    return CheckResult(flag=~ctx.valid, columns={"invalid_reason": ctx.meta["reason"],
                                                 "invalid_message": ctx.meta["message"]})
