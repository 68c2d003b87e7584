"""`chatterbox models`: every model family, what it is for, and whether its weights are here."""

from __future__ import annotations

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.options import JsonOpt
from chatterbox_cli.cli.output import Output


@mapped_errors
def models(json_out: JsonOpt = False) -> None:
    """List the models: size, languages, hub repo, T3 file, use, and whether the weights are
    in the Hugging Face cache (use one with --model NAME)."""
    from rich.markup import escape
    from rich.table import Table

    from chatterbox_cli.models import FAMILIES
    from chatterbox_cli.models.source import hub_cached

    rows = [
        {
            "model": f.name,
            "size": f.size,
            "languages": list(f.languages),
            "hub_repo": f.hub_repo,
            "t3_file": f.t3_file,
            "summary": f.summary,
            "cached": hub_cached(f.name),
        }
        for f in FAMILIES.values()
    ]
    out = Output(json=json_out)
    if json_out:
        out.data(rows)
        return
    table = Table(show_edge=False)
    for col in ("model", "size", "languages", "hub repo", "T3 file", "cached", "for"):
        table.add_column(col)
    for r in rows:
        langs = ", ".join(r["languages"]) if len(r["languages"]) < 4 else f"{len(r['languages'])}"
        cached = "yes" if r["cached"] else "no"
        table.add_row(r["model"], r["size"], langs, r["hub_repo"], r["t3_file"], cached,
                      escape(r["summary"]))  # fmt: skip
    out.console.print(table)
