"""Report text: split into findings/impression, and clean what a (possibly random) model generated."""

from __future__ import annotations

import re
import unicodedata

_SECTION = re.compile(r"(?i)\b(findings|impressions?|conclusions?)\s*(?:\*\*)?\s*[:：]")
MAX_SECTION_CHARS = 4000


def clean_text(text: str) -> str:
    """Drop control/private-use/unassigned characters, normalise Unicode, collapse runs of blanks."""
    text = unicodedata.normalize("NFKC", text or "")
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\n\t" or not (cat.startswith("C")):
            kept.append(ch)
    text = "".join(kept).replace("\t", " ")
    text = re.sub(r"[ \u00a0]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n", text)
    return "\n".join(line.strip() for line in text.strip().splitlines())


# The Indiana University reports' de-identification token ("XXXX", sometimes glued to a word: "ComparisXXXX").
# A report that carries it identifies the public corpus, so it never reaches a draft (docs/design.md section 5).
REDACTION = re.compile(r"X{3,}")
# Tokens whose word is certain from the context; any other sentence with a token is dropped.
_REDACTION_REPAIRS = (
    (re.compile(r"\b([xX])-XXXX\b"), r"\1-ray"),  # "chest x-XXXX"
    (re.compile(r"\blymph XXXX\b"), "lymph nodes"),  # "calcified hilar lymph XXXX"
    (re.compile(r"\b([Nn]o) XXXX of\b"), r"\1 signs of"),  # "(There are) no XXXX of pleural effusion"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def remove_redactions(text: str) -> str:
    """``text`` without de-identification tokens: the few whose word is certain are repaired, every other sentence
    carrying one is dropped (a guessed word would put words in the reporter's mouth). Whitespace collapsed."""
    if not REDACTION.search(text or ""):
        return text or ""
    for pattern, repl in _REDACTION_REPAIRS:
        text = pattern.sub(repl, text)
    kept = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s and not REDACTION.search(s)]
    return " ".join(kept)


def parse_report(text: str) -> tuple[str, str]:
    """``(findings, impression)`` from a report's text.

    Recognises ``Findings:`` and ``Impression:`` (or ``Conclusion:``) headings, case-insensitive, anywhere.
    Without headings, the whole text is the findings and the impression is empty. Never raises; each section is
    cut to ``MAX_SECTION_CHARS``.
    """
    text = clean_text(text)
    matches = list(_SECTION.finditer(text))
    findings_parts: list[str] = []
    impression_parts: list[str] = []
    if not matches:
        return text[:MAX_SECTION_CHARS], ""
    preamble = text[: matches[0].start()].strip()
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        if match.group(1).lower().startswith("finding"):
            findings_parts.append(body)
        else:
            impression_parts.append(body)
    if preamble and not findings_parts:
        findings_parts.append(preamble)
    findings = " ".join(p for p in findings_parts if p)[:MAX_SECTION_CHARS]
    impression = " ".join(p for p in impression_parts if p)[:MAX_SECTION_CHARS]
    return findings, impression


def format_report(findings: str, impression: str) -> str:
    parts = []
    if findings:
        parts.append(f"Findings: {findings}")
    if impression:
        parts.append(f"Impression: {impression}")
    return "\n".join(parts)
