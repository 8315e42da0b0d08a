"""Exam questions from a user's material: the offline cloze generator for `local`, a remote model otherwise."""

from __future__ import annotations

import json

from accounts.models import User
from bots.llm.local import MODEL_ID as LOCAL_MODEL_ID
from bots.llm.types import Usage
from bots.models import TaskType
from bots.routing import route_model
from exams.generation.cloze import cloze_exam
from exams.generation.metering import metered_call
from exams.generation.remote import remote_exam
from exams.generation.types import ExamSpec, Generated, Material


def local_exam(*, spec: ExamSpec, material: Material) -> Generated:
    drafts = tuple(cloze_exam(passages=material.passages, spec=spec))
    written = json.dumps([[d.text, d.options, d.hint] for d in drafts], ensure_ascii=False)
    usage = Usage.estimate((passage.text for passage in material.passages), written)
    return Generated(drafts=drafts, model=LOCAL_MODEL_ID, usage=usage)


def questions_generate(*, user: User, spec: ExamSpec, material: Material) -> Generated:
    """The exam's questions, every model call charged to `user` (see `metering`)."""
    model, _task_type = route_model(configs=(), query=spec.subject, task_type=TaskType.GENERAL)
    if model.provider == "local":
        return metered_call(user=user, call=lambda: local_exam(spec=spec, material=material))
    return remote_exam(user=user, spec=spec, material=material, model=model)
