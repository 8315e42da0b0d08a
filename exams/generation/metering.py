"""The one door every exam model call goes through: charged to the daily quota, refunded if it fails, recorded.

The rule for exams: each model call is one unit of the user's daily quota, taken before the call
(so a user with no quota left gets 429 before any work). A call that raises before returning
(provider down, timeout, not enough material for the offline generator) is refunded: it produced
nothing. A call that returned is charged and recorded with its usage even when its output is then
found invalid or the PDF fails to render: the model did the work. A remote exam therefore costs
1 to EXAM_GENERATION_ATTEMPTS units; an offline exam costs 1, with estimated tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from accounts.models import User
from accounts.quotas import quota_refund, quota_take
from accounts.services import model_call_record
from bots.llm.types import Usage
from core.connections import database_connection_release

SURFACE = "exams"


class ModelOutput(Protocol):
    model: str
    usage: Usage


Output = TypeVar("Output", bound=ModelOutput)


def metered_call(*, user: User, call: Callable[[], Output]) -> Output:
    charge = quota_take(user=user)
    database_connection_release()
    try:
        output = call()
    except BaseException:
        quota_refund(charge)
        raise
    model_call_record(user_id=user.pk, surface=SURFACE, model=output.model, usage=output.usage, day=charge.day)
    return output
