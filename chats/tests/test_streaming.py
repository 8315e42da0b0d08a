"""The engine and the run that drives it, without any surface: what is stored, logged and charged
however an answer ends (docs/runs.md; docs/reliability.md C4, C5, E11, E12).

Each surface's tests only check its own mapping of these events.
"""

import asyncio
import datetime

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import CallOutcome, DailyUsage, ModelCall
from chats.models import Message, MessageStatus, Run, RunStatus
from chats.runs.log import local_log
from chats.runs.reader import run_events
from chats.runs.reconcile import runs_reconcile
from chats.runs.runner import live_run, run_launch, run_stop
from chats.services import turn_start
from tests.helpers import metric_total

pytestmark = pytest.mark.django_db(transaction=True)


def start(user, bot, prompt: str = "hello there", **extra):
    reply, _task_type = turn_start(user=user, prompt=prompt, bot=bot, **extra)
    return reply


async def launched(user, bot, prompt: str = "hello there", **extra):
    reply = await sync_to_async(start)(user, bot, prompt, **extra)
    return run_launch(reply)


async def events_of(run, after: int = 0) -> list:
    return [item async for item in run_events(run, after=after)]


def calls_today(user) -> int:
    usage = DailyUsage.objects.filter(user=user, day=timezone.localdate()).first()
    return usage.requests if usage else 0


@pytest.mark.bot(models=[("general", "custom", "fake-echo")])
async def test_a_complete_answer_is_stored_with_its_run_and_logged_once_in_order(user, bot, upstream):
    live = await launched(user, bot)
    # The answer's row exists from the start, streaming, and the chat points at it.
    answer = await Message.objects.aget(pk=live.run.message_id)
    assert answer.status in (MessageStatus.STREAMING, MessageStatus.COMPLETE)
    events = await events_of(live.run)
    assert [item.seq for item in events] == list(range(1, len(events) + 1))
    assert {item.event.type for item in events[:-1]} == {"chunk"} and events[-1].event.type == "done"
    text = "".join(item.event.content for item in events[:-1])
    await answer.arefresh_from_db()
    run = await Run.objects.aget(pk=live.run.pk)
    assert (answer.status, answer.content, answer.model, answer.finish_reason) == (
        MessageStatus.COMPLETE,
        text,
        "fake-echo",
        "stop",
    )
    assert text == "Echo: hello there" == events[-1].event.content
    assert (run.status, run.seq, run.lease_holder) == (RunStatus.COMPLETE, events[-1].seq, "")
    assert [c.outcome async for c in ModelCall.objects.filter(user=user)] == [CallOutcome.COMPLETE]
    # A reader that starts after the end gets the same events; one at the end gets nothing.
    assert [(i.seq, i.event.content) for i in await events_of(live.run)] == [(i.seq, i.event.content) for i in events]
    assert await events_of(live.run, after=events[-1].seq) == []


@pytest.mark.bot(models=[("general", "custom", "fake-tokens-40-1")])
async def test_chunks_arriving_together_are_coalesced_into_fewer_events(user, bot, upstream, settings):
    settings.RUN_COALESCE_MS = 50
    live = await launched(user, bot)
    events = await events_of(live.run)
    chunks = [item for item in events if item.event.type == "chunk"]
    assert "".join(item.event.content for item in chunks).split() == [f"t{i}" for i in range(40)]
    assert len(chunks) < 20  # 40 tokens a millisecond apart: many per event
    settings.RUN_COALESCE_MS = 0
    live = await launched(user, bot, "again", chat=await sync_to_async(lambda: live.request.chat)())
    chunks = [item for item in await events_of(live.run) if item.event.type == "chunk"]
    assert len(chunks) >= 20  # without coalescing, close to one event per token


@pytest.mark.bot(models=[("general", "custom", "fake-tokens-60-20")])
async def test_the_text_is_checkpointed_while_it_streams(user, bot, upstream, settings):
    settings.RUN_CHECKPOINT_SECONDS = 0.1
    live = await launched(user, bot)
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for item in run_events(live.run):
            if item.seq == 30:
                message = await Message.objects.aget(pk=live.run.message_id)
                run = await Run.objects.aget(pk=live.run.pk)
                seen.append(message.content)
                assert message.status == MessageStatus.STREAMING and run.status == RunStatus.RUNNING
                assert 0 < run.seq <= 30 and len(message.content.split()) >= run.seq - 3
    assert seen and seen[0]  # the stored text grew before the answer ended


@pytest.mark.bot(models=[("general", "custom", "fake-tokens-200-20")])
async def test_a_stopped_answer_keeps_its_partial_text_as_cancelled_and_frees_the_chat(user, bot, upstream):
    stopped = metric_total("bytchat_runs_total", status="cancelled")
    calls_cancelled = metric_total("gen_ai_client_operation_duration_seconds_count", error_type="cancelled")
    streaming = metric_total("bytchat_runs_streaming")
    live = await launched(user, bot)
    events = []
    async for item in run_events(live.run):
        events.append(item)
        if item.seq == 3:
            await run_stop(live.run)
    last = events[-1].event
    assert last.type == "done" and last.data["finish_reason"] == "cancelled"
    text = "".join(item.event.content for item in events[:-1])
    message = await Message.objects.aget(pk=live.run.message_id)
    assert (message.status, message.content) == (MessageStatus.CANCELLED, text)
    assert 3 <= len(text.split()) < 200
    assert await sync_to_async(upstream.wait_for)(lambda: upstream.disconnects == 1)
    assert [c.outcome async for c in ModelCall.objects.filter(user=user)] == [CallOutcome.CANCELLED]
    # The chat takes the next question at once: the run was its lock.
    again = await launched(user, bot, "next", chat=live.request.chat)
    await run_stop(again.run)
    assert (await Run.objects.aget(pk=again.run.pk)).status == RunStatus.CANCELLED
    # Both stops counted (docs/observability.md); the model call cut short is measured as `cancelled`.
    assert metric_total("bytchat_runs_total", status="cancelled") == stopped + 2
    assert metric_total("gen_ai_client_operation_duration_seconds_count", error_type="cancelled") >= calls_cancelled + 1
    assert metric_total("bytchat_runs_streaming") == streaming


@pytest.mark.bot(models=[("general", "custom", "fake-stall")])
async def test_an_answer_stopped_before_its_first_token_is_given_back_and_leaves_no_message(user, bot, upstream):
    live = await launched(user, bot)
    assert await sync_to_async(upstream.wait_for)(lambda: len(upstream.requests) == 1)
    assert await sync_to_async(calls_today)(user) == 1
    await run_stop(live.run)
    assert await sync_to_async(calls_today)(user) == 0
    run = await Run.objects.aget(pk=live.run.pk)
    assert run.status == RunStatus.CANCELLED
    # A stop keeps what was written, even nothing: the answer is there, empty and cancelled.
    message = await Message.objects.aget(pk=live.run.message_id)
    assert (message.status, message.content) == (MessageStatus.CANCELLED, "")


@pytest.mark.bot(models=[("general", "custom", "fake-drop-3")])
async def test_a_provider_failure_mid_answer_keeps_the_text_as_error_and_ends_with_an_error_event(user, bot, upstream):
    live = await launched(user, bot, "a b c d e")
    events = await events_of(live.run)
    last = events[-1].event
    assert last.type == "error" and last.data["code"] == "stream_interrupted"
    assert last.data["partial"] == "Echo: a b " == "".join(item.event.content for item in events[:-1])
    message = await Message.objects.aget(pk=live.run.message_id)
    run = await Run.objects.aget(pk=live.run.pk)
    assert (message.status, message.content) == (MessageStatus.ERROR, "Echo: a b ")
    assert (run.status, run.error_code) == (RunStatus.ERROR, "stream_interrupted")
    assert [c.outcome async for c in ModelCall.objects.filter(user=user)] == [CallOutcome.ERROR]
    assert await sync_to_async(calls_today)(user) == 1  # it wrote: charged


@pytest.mark.bot(models=[("general", "custom", "fake-status-500")])
async def test_a_failure_before_the_first_token_stores_no_answer_and_gives_the_charge_back(
    user, bot, upstream, settings
):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", "fake-status-500"  # nothing to fail over to
    live = await launched(user, bot)
    [item] = await events_of(live.run)
    assert item.seq == 1 and item.event.type == "error"
    run = await Run.objects.select_related("chat").aget(pk=live.run.pk)
    assert run.status == RunStatus.ERROR and run.message_id is None and run.error
    assert not await Message.objects.filter(role="assistant").aexists()
    # The chat points at the question again, and the quota was given back.
    assert run.chat.current_node_id == live.run.question_id
    assert await sync_to_async(calls_today)(user) == 0
    # A reader after the fact gets the same end from the stored run.
    local_log(str(run.pk)).ended_at -= 10**6  # the log expired
    [again] = await events_of(live.run)
    assert (again.seq, again.event.type, again.event.data["code"]) == (1, "error", run.error_code)


async def test_autocontinue_continues_an_answer_cut_for_length_as_one_answer(user, make_bot, upstream, settings):
    settings.LLM_CHAT_MODELS = ["custom/fake-length-3"]
    bot = await sync_to_async(make_bot)(owner=user)
    live = await launched(user, bot, "go", model="custom/fake-length-3", autocontinue=True)
    events = await events_of(live.run)
    done = events[-1].event
    # Every call stops for length: the first and CHAT_AUTOCONTINUE_MAX (3) more, one answer.
    assert done.type == "done" and done.data["continuations"] == 3 and done.content.count("Part") == 4
    assert [item.seq for item in events] == list(range(1, len(events) + 1))
    assert await ModelCall.objects.filter(user=user).acount() == 4
    assert await sync_to_async(calls_today)(user) == 4


@pytest.mark.bot(models=[("general", "custom", "fake-tokens-100-20")])
async def test_a_reader_behind_the_kept_events_gets_the_stored_text_as_a_snapshot(user, bot, upstream, settings):
    settings.RUN_LOG_MAX_EVENTS = 8
    settings.RUN_CHECKPOINT_SECONDS = 0.05
    settings.RUN_COALESCE_MS = 0
    live = await launched(user, bot)
    async with asyncio.timeout(10):
        while live.log.first <= 2:
            await asyncio.sleep(0.02)
    fallbacks = metric_total("bytchat_run_gap_fallbacks_total")
    events = await events_of(live.run, after=1)
    assert events[0].event.type == "snapshot"
    assert metric_total("bytchat_run_gap_fallbacks_total") == fallbacks + 1
    # The snapshot stands for every event up to its seq; what follows continues from there, once each.
    assert [item.seq for item in events[1:]] == list(range(events[0].seq + 1, events[-1].seq + 1))
    text = events[0].event.content + "".join(item.event.content for item in events[1:-1])
    message = await Message.objects.aget(pk=live.run.message_id)
    assert message.status == MessageStatus.COMPLETE and text == message.content == events[-1].event.content


@pytest.mark.bot(models=[("general", "custom", "fake-echo")])
async def test_a_run_whose_process_died_is_interrupted_with_its_checkpointed_text(user, bot, upstream):
    # A run written by a process that is gone: its lease lapsed, its text is what was checkpointed.
    reply = await sync_to_async(start)(user, bot)
    await Message.objects.filter(pk=reply.run.message_id).aupdate(content="Half an ans")
    await Run.objects.filter(pk=reply.run.pk).aupdate(
        seq=4, lease_holder="gone:1:x", lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    # Its chat takes a new question at once: the dead run is interrupted on the way.
    nxt = await launched(user, bot, "anyone there?", chat=reply.chat)
    await events_of(nxt.run)
    run = await Run.objects.select_related("message").aget(pk=reply.run.pk)
    assert (run.status, run.seq, run.error_code) == (RunStatus.INTERRUPTED, 5, "interrupted")
    assert (run.message.status, run.message.content) == (MessageStatus.INTERRUPTED, "Half an ans")
    # A reader of it gets the text kept and an `interrupted` error.
    events = await events_of(run)
    assert [(i.seq, i.event.type) for i in events] == [(4, "snapshot"), (5, "error")]
    assert events[0].event.content == "Half an ans" and events[1].event.data["code"] == "interrupted"
    assert await sync_to_async(runs_reconcile)() == 0  # nothing left to interrupt


@pytest.mark.bot(models=[("general", "custom", "fake-echo")])
async def test_a_run_renewed_by_its_process_is_not_interrupted(user, bot, upstream):
    reply = await sync_to_async(start)(user, bot)
    assert await sync_to_async(runs_reconcile)() == 0
    assert (await Run.objects.aget(pk=reply.run.pk)).status == RunStatus.RUNNING
    live = run_launch(reply)
    await events_of(live.run)
    assert live_run(live.id) is None  # ended: no longer this process's to renew


@pytest.mark.bot(models=[("general", "custom", "fake-echo")])
async def test_a_reader_of_a_run_whose_process_died_interrupts_it_itself(user, bot, upstream):
    # Nothing else touches the run: its reader, on a process that is not writing it, sees the lease lapsed.
    reply = await sync_to_async(start)(user, bot)
    await Message.objects.filter(pk=reply.run.message_id).aupdate(content="Half an ans")
    await Run.objects.filter(pk=reply.run.pk).aupdate(
        seq=4, lease_holder="gone:1:x", lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    events = await events_of(reply.run)
    assert [(i.seq, i.event.type) for i in events] == [(4, "snapshot"), (5, "error")]
    assert events[0].event.content == "Half an ans" and events[1].event.data["code"] == "interrupted"
    assert (await Run.objects.aget(pk=reply.run.pk)).status == RunStatus.INTERRUPTED


@pytest.mark.bot(models=[("general", "custom", "fake-tokens-200-20")])
async def test_a_stopping_process_lets_its_runs_finish_then_keeps_the_rest_as_interrupted(
    user, make_bot, bot, upstream
):
    from chats.runs.runner import runs_shutdown

    quick_bot = await sync_to_async(make_bot)(owner=user, name="quick", models=[("general", "custom", "fake-echo")])
    interrupted = metric_total("bytchat_runs_total", status="interrupted")
    slow = await launched(user, bot)
    quick = await launched(user, quick_bot)
    seen = []
    async for item in run_events(slow.run):
        seen.append(item)
        if item.seq == 3:
            break
    await runs_shutdown(grace=0.3)
    # The quick answer finished within the grace; the slow one ended with the text it had, at once.
    assert (await Run.objects.aget(pk=quick.run.pk)).status == RunStatus.COMPLETE
    run = await Run.objects.select_related("message").aget(pk=slow.run.pk)
    assert (run.status, run.error_code, run.message.status) == (
        RunStatus.INTERRUPTED,
        "interrupted",
        MessageStatus.INTERRUPTED,
    )
    events = await events_of(slow.run, after=3)
    last = events[-1].event
    assert last.type == "error" and last.data["code"] == "interrupted"
    text = "".join(item.event.content for item in seen) + "".join(item.event.content for item in events[:-1])
    assert text == run.message.content == last.data["partial"] and 3 <= len(text.split()) < 200
    assert live_run(slow.id) is None and await sync_to_async(calls_today)(user) == 2
    assert metric_total("bytchat_runs_total", status="interrupted") == interrupted + 1


@pytest.mark.bot(models=[("general", "custom", "fake-stall")])
async def test_a_stop_asked_through_another_process_reaches_a_run_whose_model_is_silent(user, bot, upstream, settings):
    from chats.runs.services import run_stop_request

    settings.RUN_LEASE_RENEW_SECONDS = 0.1
    live = await launched(user, bot)
    assert await sync_to_async(upstream.wait_for)(lambda: len(upstream.requests) == 1)
    # What POST /runs/{id}/stop on another process writes; the silent model writes no checkpoint.
    assert await sync_to_async(run_stop_request)(run=live.run)
    async with asyncio.timeout(5):
        await live.task
    run = await Run.objects.aget(pk=live.run.pk)
    assert run.status == RunStatus.CANCELLED
    assert await sync_to_async(calls_today)(user) == 0  # nothing was written: the call is given back
