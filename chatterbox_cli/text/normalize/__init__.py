"""Say what the text means: numbers, money, dates, times, units, phone numbers, roman
numerals, URLs and symbols become words in the text's language, before grouping.

`normalize(text, "de")`; `--no-normalize` / `normalize=False` turns it off. The lexicon is
applied first and what it produced is not read again (`markup.speak`). Light to import: the
libraries (num2words, cn2an, Babel) load on first use."""

from chatterbox_cli.text.normalize.rules import normalize
from chatterbox_cli.text.normalize.words import SPOKEN

__all__ = ["SPOKEN", "normalize"]
