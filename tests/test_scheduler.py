"""The server's scheduler on the real Turbo engine: fair batches, a failing request isolated
from the others in its batch, and a cancel that ends a row mid-decode."""

import queue
import threading

import pytest

from chatterbox_cli.server.scheduler import Cancelled, Scheduler, Ticket
from chatterbox_cli.synth.batched import Job
from chatterbox_cli.text.segment import TextGroup


class Polled(threading.Event):
    """A real Event that counts how often the decode loop asks it (once a step per row)."""

    def __init__(self):
        super().__init__()
        self.polls = 0

    def is_set(self) -> bool:
        self.polls += 1
        return super().is_set()


def ticket(engine, name: str, groups: int, cap: int = 3, conds=None, cancelled=None):
    """A request of `groups` groups; what it receives goes to `got` with the batch number."""
    conds = conds or engine.builtin_voice
    jobs = [
        Job(TextGroup(i, f"{name} {i}.", 0), conds, engine.family.defaults, cap, seed=i)
        for i in range(groups)
    ]
    got: queue.Queue = queue.Queue()
    t = Ticket(jobs, got.put, **({"cancelled": cancelled} if cancelled else {}))
    return t, got


def drain(got: queue.Queue, timeout: float = 300) -> list:
    """Everything a ticket received, up to its end (None) or an exception."""
    items = []
    while True:
        item = got.get(timeout=timeout)
        items.append(item)
        if item is None or isinstance(item, BaseException):
            return items


@pytest.fixture
def scheduler(engine):
    made = []

    def make(batch_size: int, **kw) -> Scheduler:
        made.append(Scheduler(engine, batch_size=batch_size, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()
        s.thread.join(timeout=60)


def test_batches_take_every_request_in_turn(engine, scheduler):
    """Two rows a batch: a long request does not hold a short one back; each gives one group
    to a batch before any gives a second."""
    sched = scheduler(2)
    long, long_got = ticket(engine, "long", 3)
    short, short_got = ticket(engine, "short", 1)
    batch_of: dict[tuple[str, int], int] = {}

    def note(name, got):
        def put(item):
            if item is not None and not isinstance(item, BaseException):
                batch_of[(name, item.group.index)] = sched.batches
            got.put(item)

        return put

    long.deliver, short.deliver = note("long", long_got), note("short", short_got)
    with sched.wake:  # both queued before the worker plans its first batch
        sched.submit(long)
        sched.submit(short)
    assert drain(short_got)[-1] is None and drain(long_got)[-1] is None
    assert batch_of == {("long", 0): 1, ("short", 0): 1, ("long", 1): 2, ("long", 2): 2}


def test_a_failing_request_ends_alone(engine, scheduler):
    """A voice S3Gen can't use fails its own request; the other request in the same batch
    gets its audio, and the scheduler goes on to the next batch."""
    from chatterbox.tts_turbo import Conditionals

    good_voice = engine.builtin_voice
    broken = Conditionals(
        good_voice.t3, {k: v for k, v in good_voice.gen.items() if k != "embedding"}
    )
    sched = scheduler(2)
    bad, bad_got = ticket(engine, "bad", 2, conds=broken)
    good, good_got = ticket(engine, "good", 2)
    with sched.wake:
        sched.submit(bad)
        sched.submit(good)
    bad_items, good_items = drain(bad_got), drain(good_got)
    assert len(bad_items) == 1 and isinstance(bad_items[0], Exception)
    assert not isinstance(bad_items[0], Cancelled)
    assert good_items[-1] is None and [c.group.index for c in good_items[:-1]] == [0, 1]
    after, after_got = ticket(engine, "after", 1)
    sched.submit(after)
    assert drain(after_got)[-1] is None


def test_a_cancel_ends_its_row_at_the_next_step(engine, scheduler):
    """Cancelled while its batch decodes, a request's row stops within a step (the loop asks
    once a step) while the other row runs on; the canceller is told, the waiter gets
    `Cancelled`, and nothing of the cancelled request is rendered."""
    cancelled_count = []
    sched = scheduler(2, on_cancel=lambda: cancelled_count.append(1))
    event = Polled()
    victim, victim_got = ticket(engine, "victim", 2, cap=400, cancelled=event)
    other, other_got = ticket(engine, "other", 1, cap=40)
    polls_at_cancel = []

    def cancel_when_decoding():
        while event.polls < 5:  # a few decode steps in
            threading.Event().wait(0.01)
        polls_at_cancel.append(event.polls)
        victim.cancel()

    canceller = threading.Thread(target=cancel_when_decoding)
    canceller.start()
    with sched.wake:
        sched.submit(victim)
        sched.submit(other)
    assert isinstance(drain(victim_got)[-1], Cancelled)
    assert drain(other_got)[-1] is None
    canceller.join()
    assert event.polls - polls_at_cancel[0] < 20  # not the ~400 a full decode asks
    assert cancelled_count == [1] and victim.rendered == 0
