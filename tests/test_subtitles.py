"""Subtitles from timed segments: readable cues that tile the audio, written as SRT and WebVTT
and read back by pysubs2 and by FFmpeg (through PyAV)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatterbox_cli.post.audio import joined
from chatterbox_cli.sinks.subtitles import render, subtitle_format, write_subtitles
from chatterbox_cli.text.cues import LINE_CHARS, LINES, Segment, TimedWord, cues, word_cues
from chatterbox_cli.text.languages import LANGUAGES

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
SENTENCE = st.lists(WORDS, min_size=1, max_size=14).map(lambda w: " ".join(w).capitalize())
PUNCT = st.sampled_from([".", "!", "?", ",", ";"])
TEXT = st.lists(st.tuples(SENTENCE, PUNCT), min_size=1, max_size=6).map(
    lambda parts: " ".join(s + p for s, p in parts)
)


def timeline(texts: list[str], gaps: list[float]) -> list[Segment]:
    """Segments said at 14 characters a second, with the given silences between them."""
    out, at = [], 0.3
    for i, text in enumerate(texts):
        end = at + max(0.2, len(text) / 14)
        out.append(Segment(i, text, at, end))
        at = end + gaps[i % len(gaps)]
    return out


def check_tiling(made, segments):
    assert made, "no cues"
    for a, b in zip(made, made[1:], strict=False):
        assert a.end <= b.start + 1e-9 and a.start < a.end
    assert made[0].start >= segments[0].start - 1e-9
    assert abs(made[-1].end - segments[-1].end) <= 0.1  # the last ends with the speech
    for cue in made:
        lines = cue.text.split("\n")
        assert len(lines) <= LINES
        assert all(len(line) <= LINE_CHARS for line in lines if " " in line)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=5), st.lists(st.floats(0, 2), min_size=1, max_size=3))
def test_cues_tile_the_speech_and_give_back_its_text(texts, gaps):
    segments = timeline(texts, gaps)
    made = cues(segments, LANGUAGES["en"])
    check_tiling(made, segments)
    said = " ".join(" ".join(c.text.split()) for c in made)
    assert said == " ".join(" ".join(s.text.split()) for s in segments)
    for cue in made:  # inside its segment, or held on into the silence after it
        seg = next(s for s in segments if s.start - 1e-9 <= cue.start < s.end)
        following = [s.start for s in segments if s.start > seg.start]
        assert cue.end <= (following[0] if following else seg.end) + 1e-9


def test_a_long_group_is_cut_at_clauses_into_two_line_cues():
    text = (
        "When the storm passed over the harbour, the fishermen went back to their "
        "boats; the old lighthouse keeper, who had watched all night, went home to sleep."
    )
    made = cues([Segment(0, text, 1.0, 11.0)], LANGUAGES["en"])
    assert len(made) == 2 and made[0].text.replace("\n", " ").endswith("boats;")
    assert all("\n" in c.text for c in made)  # each piece on two balanced lines
    assert made[0].start == 1.0 and made[-1].end == 11.0
    first, second = ("".join(c.text.split()) for c in made)
    assert made[0].end == pytest.approx(1.0 + 10 * len(first) / (len(first) + len(second)))


def test_short_sentences_share_a_cue_and_a_short_cue_is_held_a_second():
    segments = [Segment(0, "Yes. No.", 0.5, 1.0), Segment(1, "Then we left.", 3.0, 4.0)]
    made = cues(segments, LANGUAGES["en"])
    assert [c.text for c in made] == ["Yes. No.", "Then we left."]
    assert made[0].end == pytest.approx(1.5)  # held to 1 s in the silence after it
    tight = cues([Segment(0, "Yes.", 0.5, 1.0), Segment(1, "No.", 1.2, 2.0)], LANGUAGES["en"])
    assert tight[0].end == pytest.approx(1.2)  # never into the next cue


def test_heard_words_move_a_cut_to_the_silence_between_words():
    text = "The first half of this rather long group goes here, and then the second half follows."
    words = [TimedWord(w, 1.0 + 0.4 * i, 1.3 + 0.4 * i) for i, w in enumerate(text.split())]
    words[10:] = [TimedWord(w.text, w.start + 1.0, w.end + 1.0) for w in words[10:]]
    seg = Segment(0, text, 1.0, words[-1].end, tuple(words))
    made = cues([seg], LANGUAGES["en"])
    assert len(made) == 2
    assert made[0].text.endswith("here,")  # the clause break, moved to the pause after it
    assert made[0].end == pytest.approx((words[9].end + words[10].start) / 2)
    per_word = word_cues([seg])
    assert [c.text for c in per_word] == text.split() and per_word[0].start == 1.0


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_files_read_back_with_pysubs2_and_ffmpeg(fmt, tmp_path):
    import av
    import pysubs2

    segments = timeline(["Hello there, how are you?", "Fine --> thanks. Bye."], [0.6])
    made = cues(segments, LANGUAGES["en"])
    path = write_subtitles(tmp_path / f"s.{fmt}", made)
    back = pysubs2.load(str(path))
    assert [(e.start, e.end) for e in back] == [
        (round(c.start * 1000), round(c.end * 1000)) for c in made
    ]
    assert [e.plaintext for e in back] == [
        c.text.replace("-->", "->") if fmt == "vtt" else c.text for c in made
    ]
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        packets = [p for p in container.demux(stream) if p.size]
        starts = [float(p.pts * stream.time_base) for p in packets]
    assert starts == pytest.approx([c.start for c in made], abs=0.002)


def test_formats_are_checked_by_name():
    assert subtitle_format("a.SRT") == "srt" and subtitle_format("vtt") == "vtt"
    with pytest.raises(Exception, match=r"\.srt or \.vtt"):
        subtitle_format("a.txt", "--subtitles")
    assert render([], "vtt") == "WEBVTT\n\n" and render([], "srt") == ""


def test_joined_says_where_each_part_landed():
    sr = 1000
    parts = [np.ones(100, np.float32), np.zeros(0, np.float32), np.ones(50, np.float32),
             np.ones(30, np.float32)]  # fmt: skip
    audio, spans = joined(parts, sr, gaps=[0.2, 0.1, 0.0], lead_s=0.05, tail_s=0.1)
    assert not audio[:50].any() and not audio[150:350].any() and audio[60:140].all()
    n_fade = 10  # crossfade at the gap of 0: the last part starts 10 samples early
    assert spans == [(50, 150), (150, 150), (350, 400), (400 - n_fade, 420)]
    assert len(audio) == 420 + 100


def test_drift_is_measured_against_the_speech(tmp_path):
    import soundfile as sf

    from chatterbox_cli.sinks.subtitles import read_cues
    from chatterbox_cli.sinks.verify import FileReport, subtitle_drift
    from chatterbox_cli.testing.checkpoints import speech_like
    from chatterbox_cli.text.cues import Cue

    sr = 24000
    audio = np.concatenate([np.zeros(sr), speech_like(3.0, sr, seed=3) * 0.3, np.zeros(sr // 2)])
    wav = tmp_path / "a.wav"
    sf.write(wav, audio.astype(np.float32), sr)
    good = write_subtitles(tmp_path / "good.vtt", [Cue(1.0, 2.5, "One."), Cue(2.5, 4.0, "Two.")])
    assert read_cues(good) == [Cue(1.0, 2.5, "One."), Cue(2.5, 4.0, "Two.")]
    report = FileReport(str(wav), ok=True)
    subtitle_drift(wav, good, report)
    assert report.ok and abs(report.subtitles["start_drift_s"]) < 0.05
    assert abs(report.subtitles["end_drift_s"]) < 0.05 and report.subtitles["uncovered_s"] < 0.1
    late = write_subtitles(tmp_path / "late.srt", [Cue(2.0, 5.0, "One, late.")])
    report = FileReport(str(wav), ok=True)
    subtitle_drift(wav, late, report)
    assert not report.ok and "drift +1.00 s at the start" in report.problems[0]


def test_written_sentences_are_timed_from_what_was_said():
    from chatterbox_cli.text.align import sentence_times

    said = [
        Segment(0, "It costs five dollars.", 0.0, 2.0),
        Segment(1, "We left at five p.m. and walked home.", 2.5, 6.0),
    ]
    written = ["It costs $5.", "We left at 5 p.m.", "And walked home.", "[pause:1s]"]
    times = sentence_times(written, said, "en")
    assert times[0] == (0.0, 2.0) and times[1][0] == 2.5 and times[2][1] == 6.0
    assert times[1][1] == times[2][0]  # the cut inside the group, by its words' share
    assert times[3] == (6.0, 6.0)  # nothing said: the moment after its neighbour
    assert all(a[1] <= b[0] for a, b in zip(times, times[1:], strict=False))
