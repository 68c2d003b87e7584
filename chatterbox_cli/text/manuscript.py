"""Markdown and plain-text manuscripts as chapters.

Markdown: the chapter level is `#`, unless the file has a single `#` (the book's title) over
several `##` (then those are chapters); YAML front matter gives title, author and language;
formatting, links, images, code blocks, HTML and footnotes are reduced to the words read.
Plain text: paragraphs are split by blank lines; a short line such as "Chapter 7", "CHAPTER
SEVEN", "Chapter VII: The Storm", "Prologue" or "Epilogue" starts a chapter (a second line in
the same paragraph is its title). Text before the first chapter heading is front matter.
"""

from __future__ import annotations

import re

from chatterbox_cli.text.chapters import Book, Chapter, short_language

NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last"
)
CHAPTER_LINE = re.compile(
    rf"(?i:chapter|part|book)\s+(?:\d+|[IVXLCDM]+|(?i:(?:{NUMBER_WORDS})(?:[-\s](?:{NUMBER_WORDS}))*))"
    r"\b[.:]?(?:\s*[-:.—–]\s*\S.*)?|(?i:prologue|epilogue|preface|foreword|introduction)\b.*"
)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def read_text(text: str, stem: str, include_front_matter: bool = False) -> Book:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    paragraphs = [p for p in paragraphs if p]
    book = Book(title=stem)
    front: list[str] = []
    for para in paragraphs:
        lines = para.splitlines()
        title = _chapter_title(lines)
        if title is not None:
            book.chapters.append(Chapter(title, ""))
            body = lines[2:] if len(lines) > 1 and _is_title_line(lines[1]) else lines[1:]
            para = "\n".join(body).strip()
            if not para:
                continue
        target = book.chapters[-1] if book.chapters else None
        if target is None:
            front.append(para)
        else:
            target.text = f"{target.text}\n\n{para}" if target.text else para
    if book.chapters and front and _is_title_line(front[0]) and front[0][-1] not in ".!?":
        book.title = front[0].strip()
    return _with_front(book, front, include_front_matter)


def _chapter_title(lines: list[str]) -> str | None:
    first = lines[0].strip()
    if len(first) > 80 or not CHAPTER_LINE.fullmatch(first):
        return None
    title = first.rstrip(".")
    if title.isupper():
        title = title.title()
    if len(lines) > 1 and _is_title_line(lines[1]):
        title = f"{title}: {lines[1].strip().rstrip('.')}"
    return title


def _is_title_line(line: str) -> bool:
    line = line.strip()
    return 0 < len(line) <= 80 and not re.search(r"[.!?,;]\s*\S", line)


def _with_front(book: Book, front: list[str], include: bool) -> Book:
    """No chapter headings: the whole text is one chapter. Otherwise what came before the
    first heading is front matter: kept (as a first chapter) only on request."""
    if not book.chapters:
        book.chapters = [Chapter(book.title, "\n\n".join(front))]
    elif front and include:
        book.chapters.insert(0, Chapter(book.title, "\n\n".join(front)))
    return book


def read_markdown(text: str, stem: str, include_front_matter: bool = False) -> Book:
    text = text.replace("\r\n", "\n")
    meta, text = _front_matter(text)
    text = _strip_blocks(text)
    lines = text.split("\n")
    levels = [len(m[1]) for m in map(HEADING.match, lines) if m]
    level = 1 if levels.count(1) > 1 or 2 not in levels else 2
    book = Book(meta.get("title") or stem, meta.get("author"), short_language(meta.get("lang")))
    if level == 2 and levels.count(1) == 1 and "title" not in meta:
        book.title = _inline(next(m[2] for m in map(HEADING.match, lines) if m and len(m[1]) == 1))
    front: list[str] = []
    for line in lines:
        m = HEADING.match(line)
        if m and len(m[1]) == level:
            book.chapters.append(Chapter(_inline(m[2]), ""))
            continue
        if m and len(m[1]) < level:
            continue
        body = f"\n{_inline(m[2])}.\n" if m else _line(line)
        if book.chapters:
            book.chapters[-1].text += body + "\n"
        else:
            front.append(body)
    for chapter in book.chapters:
        chapter.text = _paragraphs(chapter.text)
    front_text = _paragraphs("\n".join(front))
    return _with_front(book, [front_text] if front_text else [], include_front_matter)


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    m = re.match(r"---\n(.*?)\n(?:---|\.\.\.)\n", text, re.S)
    if not m:
        return {}, text
    meta = {}
    for line in m[1].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip().lower()] = value.strip().strip("\"'")
    meta.setdefault("lang", meta.get("language", ""))
    return meta, text[m.end() :]


def _strip_blocks(text: str) -> str:
    text = _without_comments(text)
    text = re.sub(r"^(```|~~~).*?^\1\s*$", "", text, flags=re.S | re.M)
    return re.sub(r"^\[\^[^\]]+\]:.*(?:\n(?: {2,}|\t).*)*", "", text, flags=re.M)


def _without_comments(text: str) -> str:
    """HTML comments cut out (an unclosed one runs to the end), in one pass: the regex
    `<!--.*?-->` rescanned the rest of the text from every unclosed `<!--`."""
    out, pos = [], 0
    while (start := text.find("<!--", pos)) >= 0:
        out.append(text[pos:start])
        end = text.find("-->", start + 4)
        if end < 0:
            return "".join(out)
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def _line(line: str) -> str:
    line = re.sub(r"^\s{0,3}(?:>\s?)+", "", line)
    line = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line)
    if re.fullmatch(r"\s*(?:[-*_]\s*){3,}", line) or re.fullmatch(r"\s*\|?[-:| ]+\|?\s*", line):
        return ""
    return _inline(line)


ESCAPED = 0xE000
"""Escaped punctuation (`\\*`) is parked in the private-use area while markup is stripped."""


def _inline(text: str) -> str:
    text = re.sub(r"\\([^\[\]\w\s])", lambda m: chr(ESCAPED + ord(m[1])), text)
    text = re.sub(r"!\[[^\][]*\]\([^()]*\)", "", text)
    text = re.sub(r"\[\^[^\][]+\]", "", text)
    text = re.sub(r"\[([^\][]+)\]\([^()]*\)", r"\1", text)
    text = re.sub(r"\[([^\][]+)\]\[[^\][]*\]", r"\1", text)
    text = re.sub(r"</?[A-Za-z][^<>]*>", "", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = _emphasis(text)
    text = re.sub(r"[\ue000-\ue0ff]", lambda m: chr(ord(m[0]) - ESCAPED), text)
    return re.sub(r"\s+([.,])(?=\s|$)", r"\1", text)


def _wordish(ch: str) -> bool:
    return ch.isalnum() or ch in "_*"


def _emphasis(line: str) -> str:
    """`*a*` and `_a_` unwrapped, as `(?<![\\w*])([*_])(?!\\s)(.+?)(?<!\\s)\\1(?![\\w*])`
    would, in linear time: each opener takes the first closer of its kind past it (found by
    bisection in the closers listed in one pass), where the lazy regex rescanned the line from
    every unmatched opener."""
    from bisect import bisect_left

    n = len(line)
    closers: dict[str, list[int]] = {"*": [], "_": []}
    for j, ch in enumerate(line):
        if ch in closers and j and not line[j - 1].isspace():
            if j + 1 == n or not _wordish(line[j + 1]):
                closers[ch].append(j)
    out, pos, i = [], 0, 0
    while i < n - 2:
        ch = line[i]
        if ch in closers and not line[i + 1].isspace() and (i == 0 or not _wordish(line[i - 1])):
            ends = closers[ch]
            k = bisect_left(ends, i + 2)
            if k < len(ends):
                out += [line[pos:i], line[i + 1 : ends[k]]]
                pos = i = ends[k] + 1
                continue
        i += 1
    out.append(line[pos:])
    return "".join(out)


def _paragraphs(text: str) -> str:
    """Lines joined into paragraphs, blank lines kept as paragraph breaks."""
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paras if p)
