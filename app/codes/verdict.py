"""What to do with a failed recipient's address: the verdict.

(Skeleton: the types are fixed; ``decide`` is being written.)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RETRY", "Verdict", "decide"]

# Whether resending can help: 'no' (the address will not take mail: use another address or
# channel), 'after_fix' (once something is fixed: the address's spelling, the sending domain's
# authentication, the content), 'later' (a temporary condition: resend in a while), 'wait' (not
# failed yet: the sending server keeps trying by itself).
RETRY = ("no", "after_fix", "later", "wait")


@dataclass(frozen=True)
class Verdict:
    reason: str  # Sisimai's taxonomy: 'userunknown', 'mailboxfull', 'blocked', ...; 'undefined' when nothing tells
    hard: bool  # permanent for this address (Sisimai's hardbounce)
    retry: str  # one of RETRY
    suppress: bool  # the address belongs on a suppression list now
    evidence: str | None  # the line of the bounce the reason was read from (at most ~200 characters)
    basis: str  # what decided the reason: 'provider', 'text', 'status', 'reply' or 'kind'


def decide(status: str | None, reply: str | None, diagnostic: str | None, *, action: str = "failed",
           kind: str = "failure", text: str = "", providers: frozenset[str] | set[str] = frozenset()) -> Verdict:
    raise NotImplementedError
