"""The text front-end's cost (`make bench-text`): normalization and grouping of 100, 200 and
400 KB of number-dense text per language, the median of a few runs each, and the 400 KB / 100
KB ratio (linear is 4; the grouping bar is <= 6). JSON on stdout, a table on stderr."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

PARAGRAPHS = {
    "en": "On 12/05/2026 at 3:45 p.m., Henry VIII paid $1,200.50 for 5 km of road, up 21% "
    "from 1990–1995. Call (555) 123-4567 or write to info@example.com. Chapter IV starts here.",
    "de": "Am 05.12.2026 um 15:45 zahlte Heinrich VIII. 1.200,50 € für 5 km Straße, 21 % mehr "
    "als 1990–1995. Rufen Sie +49 30 1234567 an. Kapitel IV beginnt hier am 1. Mai.",
    "fr": "Le 05/12/2026 à 15:45, Louis XIV a payé 1 200,50 € pour 5 km de route, 21 % de plus "
    "qu'en 1990–1995. Écrivez à info@example.com. Le chapitre IV commence le 1er mai.",
    "ja": "2026年12月5日15:45に、5 kmの道に$1,200.50を払いました。21%増えました。",
    "zh": "2026年12月5日15:45，他为5公里的路付了¥1,200.50，比1990年多21%。",
}
"""Each ~200 bytes with ~12 things to say in words."""


def sized(lang: str, kb: int) -> str:
    """Paragraphs until `kb`, each with numbers of its own (so no cache makes it cheaper)."""
    out, size, i = [], 0, 0
    while size < kb * 1024:
        para = f"{PARAGRAPHS[lang]} #{i}: {i * 37 % 100_000} kg, {i % 24}:{i % 60:02d}."
        out.append(para)
        size += len(para.encode()) + 2
        i += 1
    return "\n\n".join(out)


def cold() -> None:
    """The number-word caches emptied: each run pays for every number it says (else a small
    text's repeated runs are all cache hits and a big one's overflow the caches)."""
    from chatterbox_cli.text.normalize import locale, words

    for cached in (words.cardinal, words.ordinal, words.year, locale.unit,
                   locale.currency_name, locale.formatted):  # fmt: skip
        cached.cache_clear()


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        cold()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(lang: str, kb: int, runs: int) -> dict:
    from chatterbox_cli.text.languages import LANGUAGES
    from chatterbox_cli.text.markup import split_marked
    from chatterbox_cli.text.normalize import normalize

    text = sized(lang, kb)
    code = LANGUAGES[lang]
    return {
        "lang": lang,
        "kb": kb,
        "normalize_s": timed(lambda: normalize(text, lang), runs),
        "grouping_s": timed(lambda: split_marked(text, lang=code, normalize=False), runs),
        "both_s": timed(lambda: split_marked(text, lang=code), runs),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--langs", default="en,de,fr,ja,zh")
    ap.add_argument("--sizes", default="100,200,400", help="KB")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    for lang in args.langs.split(","):
        measure(lang, 4, 1)  # imports, CLDR data and pysbd's rules loaded once, not timed
    rows = []
    for lang in args.langs.split(","):
        for kb in map(int, args.sizes.split(",")):
            rows.append(measure(lang, kb, args.runs))
            r = rows[-1]
            per = r["normalize_s"] / kb * 100
            print(
                f"{lang} {kb:>4} KB  normalize {r['normalize_s']:6.2f} s ({per:.2f} s/100 KB)"
                f"  grouping {r['grouping_s']:6.2f} s  both {r['both_s']:6.2f} s",
                file=sys.stderr,
            )
    sizes = sorted({r["kb"] for r in rows})
    ratios = {}
    for lang in args.langs.split(","):
        by = {r["kb"]: r for r in rows if r["lang"] == lang}
        lo, hi = by[sizes[0]], by[sizes[-1]]
        ratios[lang] = {k: round(hi[k] / lo[k], 2) for k in ("normalize_s", "both_s")}
        print(f"{lang} {sizes[-1]}/{sizes[0]} KB time ratio: {ratios[lang]}", file=sys.stderr)
    json.dump({"rows": rows, "ratios": ratios, "runs": args.runs}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
